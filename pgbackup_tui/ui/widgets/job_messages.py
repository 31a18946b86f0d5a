"""What the Jobs pane's job listener reports, as messages (past tense: they say what happened).

Posted by JobsPane's listener and handled by the pane; JobFinished and JobSelected then bubble
to the app (JobStateChanged does not). Namespaced "jobs_pane" (handlers: on_jobs_pane_job_finished
...) and reachable as JobsPane.JobFinished etc.
"""

from __future__ import annotations

from textual.message import Message

from ...core.job_follow import JobView
from ...core.jobs import JobResult, JobState
from ...core.progress import ProgressSnapshot


class JobLogged(Message, bubble=False, namespace="jobs_pane"):
    """A job wrote lines to its log (they wait in the pane's inbox: one message for a burst)."""

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id


class JobProgressed(Message, bubble=False, namespace="jobs_pane"):
    """A job reported progress; a newer one for the same job replaces a queued older one."""

    def __init__(self, job_id: str, progress: ProgressSnapshot) -> None:
        super().__init__()
        self.job_id, self.progress = job_id, progress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, JobProgressed) and message.job_id == self.job_id


class JobStateChanged(Message, bubble=False, namespace="jobs_pane"):
    """A job moved to a state that is not final (queued, running): its row changes. No key depends
    on it (cancel applies to queued and running jobs alike); the final state comes with JobFinished."""

    def __init__(self, job: JobView, state: JobState) -> None:
        super().__init__()
        self.job, self.state = job, state


class JobFinished(Message, namespace="jobs_pane"):
    """A job ended with `result`: the one message a job's end comes as (whoever started it,
    whether it ran here or in its runner). Bubbles: the app notifies, refreshes the bindings
    and the Backups tab."""

    def __init__(self, job: JobView, result: JobResult) -> None:
        super().__init__()
        self.job, self.result = job, result


class JobSelected(Message, namespace="jobs_pane"):
    """The user moved to another job in the table."""

    def __init__(self, job: JobView) -> None:
        super().__init__()
        self.job = job
