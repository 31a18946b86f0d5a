"""The app's jobs: a view on the job store, like `pgbackup-tui jobs list`.

Every dump and restore runs in a runner process of its own (core/runner.py) that outlives the
TUI: quitting, a closed terminal or an SSH drop (SIGHUP) end only the view. Here:

- one registry (ui/job_registry.py) holds the jobs shown: `app.jobs`, which the Jobs pane shows
  and the quit dialog and the command palette read;
- starting: the runner is started from a thread worker (it writes the job's folder and syncs
  it), then the job is shown and followed: JobFollower.follow() in an async worker, group "jobs";
- a job's end, whoever started it, comes as one message: JobsPane.JobFinished (the job's own
  JobFinished event, turned into a message by the pane once it has shown it);
- the store: on mount, and every SCAN_INTERVAL_S after, a thread worker looks for jobs the Jobs
  tab does not show yet (started by the CLI, by cron, by another TUI). Finished ones are shown
  with their result and log tail, running ones are followed live. The newest MAX_SHOWN are kept;
  the pane says how many older ones it leaves out;
- quitting leaves running jobs to their runners, or cancels the ones started here first and
  waits for their cleanup (the user chooses).
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.notifications import SeverityLevel
from textual.timer import Timer
from textual.widgets import TabbedContent
from textual.worker import Worker

from ..core import job_store
from ..core.dump import DumpJob
from ..core.errors import EXIT_OK, PgBackupError
from ..core.job_follow import JobFollower, JobView
from ..core.restore import RestoreJob
from ..core.runner import PROGRESS_WRITE_INTERVAL_S
from ..core.runner_start import start_job
from .job_registry import JobRegistry
from .messages import JobStarted, JobStartFailed, StoreJobsFound
from .screens.confirm import ConfirmScreen
from .screens.quit_confirm import QuitChoice, QuitScreen
from .store_scan import MAX_SHOWN, SCAN_INTERVAL_S, FoundJob, scan
from .toasts import ToastsApp
from .widgets.jobs_pane import JobsPane

BACKUP_KINDS = ("dump", "dumpall", "csv-export")  # jobs that add to the Backups tab when they end
# Jobs that change what their server holds (a database made or refilled) whatever their end: a
# failed one may have dropped what it made, a partial one left what it restored.
TARGET_KINDS = ("restore", "cluster-restore", "csv-import")


class JobsApp(ToastsApp):
    """What PgBackupApp does with jobs; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs = JobRegistry()  # the jobs shown (oldest first; the Jobs pane's table: newest first)
        self._seen: set[str] = set()  # shown, or left out to keep the list bounded
        self._left_out = 0
        self._following: dict[str, Worker[None]] = {}
        self._scan_timer: Timer | None = None
        self._scanning = False
        # Said when quitting with jobs running: `demo` stops its sandbox server with the app, and
        # the jobs on it fail then (they do go on against any other server).
        self.server_stops_on_quit: str | None = None

    @property
    def jobs_pane(self) -> JobsPane:
        return self.query_one(JobsPane)

    def running_jobs(self) -> list[JobView]:
        """Jobs shown that have not finished, whoever started them."""
        return self.jobs.running()

    def backups_changed(self) -> None:
        """A dump, dumpall or CSV export ended: the app refreshes what lists backups (overridden)."""

    def databases_changed(self, server: str) -> None:
        """A restore, cluster restore or CSV import into `server` ended: the app shows what the
        server holds now (overridden)."""

    # -- starting --------------------------------------------------------------------------
    def start_in_runner(self, job: DumpJob | RestoreJob) -> None:
        """Run `job`'s plan in a runner of its own, then show and follow it in the Jobs tab."""
        self.start_plan(job.kind, job.plan, job.title)

    def start_plan(self, kind: str, plan: Any, title: str) -> None:
        """Run a plan of any kind of job (core/job_kinds.py) in a runner, then show and follow it."""
        # As the 2 key shows it: started from the Backups list (r, i), the focus stayed on that list,
        # hidden behind the Jobs tab, and the keys (↓, space, v…) did nothing that could be seen.
        self.action_show_tab("jobs")
        self._start_runner(kind, plan, title)

    def action_show_tab(self, tab: str) -> None:
        """Show the tab `tab`; the focus goes where its keys act (PgBackupApp's)."""
        self.query_one(TabbedContent).active = tab

    @work(thread=True, exit_on_error=False, group="start", description="start a job")
    def _start_runner(self, kind: str, plan: Any, title: str) -> None:

        try:
            job_id, _folder, process = start_job(kind, plan, title)
        except PgBackupError as exc:  # e.g. the state dir cannot be written: one line, nothing started
            self.post_message(JobStartFailed(title, str(exc)))
            return
        except OSError as exc:  # the runner itself could not be started
            self.post_message(JobStartFailed(title, f"cannot start the job's runner: {exc}"))
            return
        record = job_store.load(job_id)
        if record is None:
            self.post_message(JobStartFailed(title, f"job {job_id} started, but its folder cannot be read"))
            return
        self.post_message(JobStarted(JobFollower(record, runner=process)))

    def on_job_started(self, message: JobStarted) -> None:
        job = message.job
        self.jobs.mark_mine(job.id)
        shown = self.jobs.get(job.id)
        if isinstance(shown, JobFollower):  # the store scan was quicker: keep its view, reap our runner
            shown.runner = job.runner
            self.jobs_pane.select_job(job.id)
        else:
            self._show(job, (), select=True)  # selected: JobSelected refreshes the bindings

    def on_job_start_failed(self, message: JobStartFailed) -> None:
        self.notify(message.error, title=f"{message.title}: not started", severity="error", timeout=20)

    def _show(self, job: JobFollower, lines: tuple[tuple[str, str], ...], *, select: bool) -> None:
        self._seen.add(job.id)
        self.jobs_pane.add_job(job, lines=lines, select=select)  # into self.jobs, the pane's registry
        if not job.state.is_final and job.kind in BACKUP_KINDS:
            self.backups_changed()  # its output, being written, is listed as such (it was only once it ended)
        if not job.state.is_final:
            self._following[job.id] = self.run_worker(
                self._follow(job), name=f"job-{job.id}", group="jobs", description=job.title, exit_on_error=False)

    async def _follow(self, job: JobFollower) -> None:
        # As often as a runner writes its progress: more reads find nothing new. Its end still wakes
        # the follower at once (a pidfd) for the runners this app started. The end comes as
        # JobsPane.JobFinished (the follower emits it).
        await job.follow(PROGRESS_WRITE_INTERVAL_S)

    def on_jobs_pane_job_finished(self, message: JobsPane.JobFinished) -> None:
        """The one place a job's end is handled: notify (jobs started here), refresh what lists backups."""
        result = message.result
        self._following.pop(message.job.id, None)
        if isinstance(message.job, JobFollower):
            message.job.keep_summary()  # the Jobs tab shows its message, paths and log, not its details
        # Jobs started elsewhere just change in the Jobs tab; so does one of ours whose result is on
        # screen already (the tab shown, the job selected): a toast would say it again, over the log.
        if self.jobs.is_mine(message.job.id) and not self._result_in_view(message.job):
            severity: SeverityLevel = (
                "information" if result.exit_code == EXIT_OK else "warning" if result.state == "cancelled" else "error")
            title = f"{message.job.title}: {result.state}"
            # A cancelled job's message is that line itself: said once, not as title and text. Two
            # lines at most, the Jobs tab has it whole: the output named by its file's name
            # ("….dump (1.6 MB in 1.0s)"), not by a path that would fill them.
            text = result.message
            if result.output_path is not None:
                text = text.replace(str(result.output_path), result.output_path.name)
            self.notify(text, title="" if result.message == title else title, severity=severity, lines=2)
        if message.job.kind in BACKUP_KINDS:
            self.backups_changed()
        if message.job.kind in TARGET_KINDS:
            self.databases_changed(message.job.server)
        if message.job is self.jobs_pane.selected_job():  # its cancel key greys out (a footer rebuild)
            self.refresh_bindings()

    def _result_in_view(self, job: JobView) -> bool:
        """Whether `job`'s result line is on screen: the Jobs tab shown, no dialog over it, the job selected."""
        shown = self.screen.query(JobsPane)  # none while a dialog is over the main screen
        return (bool(shown) and self.screen.query_one(TabbedContent).active == "jobs"
                and shown.first().selected_job() is job)

    # -- the store -------------------------------------------------------------------------
    def watch_job_store(self) -> None:
        """Show the jobs already in the store, then look for new ones every SCAN_INTERVAL_S."""
        self._scan_store()
        self._scan_timer = self.set_interval(SCAN_INTERVAL_S, self._scan_store)

    def on_unmount(self) -> None:
        if self._scan_timer is not None:
            self._scan_timer.stop()

    def _scan_store(self) -> None:
        if not self._scanning:  # one scan at a time: a slow disk must not pile them up
            self._scanning = True
            self._read_store(frozenset(self._seen))

    @work(thread=True, exit_on_error=False, group="store", description="read the job store")
    def _read_store(self, seen: frozenset[str]) -> None:
        found: tuple[FoundJob, ...] = ()
        left_out: frozenset[str] = frozenset()
        try:
            result = scan(seen)
            found, left_out = result.found, result.left_out
        finally:
            self.post_message(StoreJobsFound(found, left_out))

    def on_store_jobs_found(self, message: StoreJobsFound) -> None:
        self._scanning = False
        if not self.screen_stack or not self.screen.query(JobsPane):
            return  # the scan finished while the app was closing: nothing left to show it in
        first = not self._seen and not self.jobs
        fresh = [item for item in message.found if item.job.id not in self._seen]
        for item in fresh:
            self._show(item.job, item.lines, select=False)
        left_out = message.left_out - self._seen
        self._seen |= left_out
        self._left_out += len(left_out)
        if first and fresh:
            self.jobs_pane.select_job(fresh[-1].job.id)  # the newest
        self._trim()
        if fresh:
            self.refresh_bindings()

    def _trim(self) -> None:
        """Keep the newest MAX_SHOWN jobs: the oldest finished ones go first (a running one stays)."""
        pane = self.jobs_pane
        extra = len(self.jobs) - MAX_SHOWN
        if extra > 0:
            selected = pane.selected_job()
            for job in [job for job in self.jobs if job.state.is_final and job is not selected][:extra]:
                pane.remove_job(job.id)  # out of self.jobs too
                self._left_out += 1
        pane.show_hidden(self._left_out)

    # -- cancelling, quitting --------------------------------------------------------------
    def action_cancel_job(self) -> None:
        job = self.jobs_pane.selected_job()
        if job is not None:
            self.cancel_job(job)

    def cancel_job(self, job: JobView) -> None:
        """Ask, then cancel `job` (its runner removes the partial output)."""
        if job.state.is_final:
            return
        def answered(yes: bool | None) -> None:
            if not yes:
                return
            if job.state.is_final:  # it ended while the question was up: say so, or the "yes" looks lost
                self.notify(f"{job.title} had {job.state.value} already: nothing to cancel", timeout=5)
                return
            job.cancel()

        self.push_screen(ConfirmScreen(f"Cancel {job.title}?"), answered)

    leaving = False  # exit() was called: keys already typed (q then a, pasted text) run nothing more

    def exit(self, *args: Any, **kwargs: Any) -> None:
        # Textual handles the keys queued behind `q` before it exits: a dialog pushed then was
        # mounted without its widgets, a traceback and exit 1 (QA: typing "qa" on the tree).
        self.leaving = True
        super().exit(*args, **kwargs)

    def action_quit(self) -> None:  # type: ignore[override]
        mine = self.jobs.running(mine=True)
        if not mine:
            self.exit(EXIT_OK)
            return

        def answered(choice: QuitChoice | None) -> None:
            if choice == "leave":
                self.exit(EXIT_OK)
            elif choice == "cancel":
                self._cancel_all_and_exit(mine)

        self.push_screen(QuitScreen(len(mine), self.server_stops_on_quit), answered)

    @work(group="shutdown", exit_on_error=False, description="cancel jobs and quit")
    async def _cancel_all_and_exit(self, jobs: list[JobView]) -> None:
        self.notify(f"cancelling {len(jobs)} job(s); waiting for them to clean up…")
        for job in jobs:
            job.cancel()
        # Each runner removes its partial output before its job ends; following sees that end.
        await self.workers.wait_for_complete([self._following[job.id] for job in jobs if job.id in self._following])
        self.exit(EXIT_OK)
