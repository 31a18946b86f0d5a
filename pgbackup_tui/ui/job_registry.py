"""The jobs the TUI shows: one registry that the app, the Jobs pane, the quit dialog and the
command palette all read, so that they cannot disagree on which jobs there are or which still run.

The app creates it and hands it to the Jobs pane; JobsPane.add_job / remove_job are the only
writers (the pane subscribes to a job as it adds it). A job's state is the job's own
(JobView.state): the registry only says which jobs are shown and which were started here.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..core.job_follow import JobView


class JobRegistry:
    """Jobs by id, oldest first, and which of them this app started."""

    def __init__(self) -> None:
        self._jobs: dict[str, JobView] = {}
        self._mine: set[str] = set()

    def add(self, job: JobView) -> bool:
        """Register `job`; False when a job with its id is already there (it is kept)."""
        if job.id in self._jobs:
            return False
        self._jobs[job.id] = job
        return True

    def remove(self, job_id: str) -> JobView | None:
        """Forget a job (the list is bounded); the job itself is not touched."""
        self._mine.discard(job_id)
        return self._jobs.pop(job_id, None)

    def get(self, job_id: str | None) -> JobView | None:
        """The job with this id, if shown."""
        return self._jobs.get(job_id) if job_id is not None else None

    def mark_mine(self, job_id: str) -> None:
        """Say that this app started the job (its end is notified; quitting asks about it)."""
        self._mine.add(job_id)

    def is_mine(self, job_id: str) -> bool:
        """Whether this app started the job."""
        return job_id in self._mine

    def running(self, *, mine: bool = False) -> list[JobView]:
        """Jobs not finished yet (queued or running), oldest first; `mine`: only those started here."""
        return [job for job in self._jobs.values() if not job.state.is_final and (not mine or job.id in self._mine)]

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

    def __iter__(self) -> Iterator[JobView]:
        return iter(list(self._jobs.values()))

    def __len__(self) -> int:
        return len(self._jobs)

    def __getitem__(self, index: int) -> JobView:
        return list(self._jobs.values())[index]
