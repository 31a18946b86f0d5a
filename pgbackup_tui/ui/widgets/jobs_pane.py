"""The Jobs pane: every job of the session in a table, the selected job's log streaming below.

Jobs report through listeners (core/jobs.py) called on the event loop that runs them. The pane's
listener only turns each event into a message posted to the pane; the widgets change in the
message handlers. Log lines are kept per job (the last LOG_LINES_KEPT; the whole log is on disk
at job.log_path) and written to the log view in batches, so a chatty pg_dump --verbose does not
cost one repaint per line. One timer ticks the elapsed column, and only while a job runs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable, ProgressBar, Static

from ...core.formatting import human_bytes, human_duration
from ...core.jobs import Job, JobEvent, JobResult, JobState, LogLine, ProgressUpdated, StateChanged
from ...core.jobs import JobFinished as JobFinishedEvent
from ...core.progress import human_count
from .job_log import LOG_LINES_KEPT, JobLog

TICK_S = 1.0
BAR_WIDTH = 8
COLUMNS = ("kind", "target", "state", "progress", "bytes", "elapsed")
FINISHED_OK = (JobState.SUCCEEDED, JobState.PARTIAL)


@dataclass(frozen=True)
class ProgressView:
    """What the pane shows of a job's progress; made in one place, progress_view()."""

    fraction: float | None  # 0..1, or None while it cannot be told (indeterminate)
    cell: str  # the text bar in the table
    bytes_text: str
    detail: str  # phase, current object, ETA: the line above the log


def text_bar(fraction: float | None, tick: int = 0, width: int = BAR_WIDTH) -> str:
    """'█████░░░░░  50%'; with fraction None a short block that moves one cell per tick."""
    if fraction is None:
        block = 3
        travel = width - block
        position = tick % (2 * travel) if travel else 0
        position = position if position <= travel else 2 * travel - position
        return "░" * position + "█" * block + "░" * (travel - position) + "     "
    fraction = min(1.0, max(0.0, fraction))
    filled = round(fraction * width)
    return "█" * filled + "░" * (width - filled) + f" {fraction * 100:3.0f}%"


def progress_view(job: Job, snapshot: Any | None, tick: int = 0) -> ProgressView:
    """The job's progress as the pane shows it, from its state and its latest snapshot.

    `snapshot` is whatever ProgressUpdated carried (core.progress.ProgressSnapshot); it is read
    through its attributes with getattr, each optional, so an older or newer snapshot still shows
    what it has. The detail line: phase · what a backend waits for · table(s) being copied or
    indexed · tables done · rows · rate · time left, and which estimate it is when the server's
    progress view could not be read (e.g. "table counts and output size").
    """
    state = job.state
    percent = getattr(snapshot, "percent", None)
    fraction = percent / 100 if isinstance(percent, (int, float)) else None
    bytes_done = getattr(snapshot, "bytes_done", None)
    bytes_total = getattr(snapshot, "bytes_total", None)
    bytes_text = f"{human_bytes(bytes_done or 0)} / {human_bytes(bytes_total)}" if bytes_total else ""
    running = state == JobState.RUNNING
    phase = getattr(snapshot, "phase", None)
    detail_parts = [str(phase)] if phase and (running or phase == "done") else []
    waiting = getattr(snapshot, "waiting", None)
    if running and waiting:  # first: the answer to "is it hung?" must not be cut off
        detail_parts.append(f"waiting for {waiting}")
    current = tuple(getattr(snapshot, "current", None) or ())
    if running and current:
        detail_parts.append(", ".join(current[:2]) + (f" +{len(current) - 2}" if len(current) > 2 else ""))
    tables_total = getattr(snapshot, "tables_total", 0)
    if tables_total:
        detail_parts.append(f"{getattr(snapshot, 'tables_done', 0)}/{tables_total} tables")
    rows_done = getattr(snapshot, "rows_done", 0)
    if rows_done:
        detail_parts.append(f"{human_count(rows_done)} rows")
    rate = getattr(snapshot, "rate_bps", None)
    if running and rate:
        detail_parts.append(f"{human_bytes(rate)}/s")
    eta_s = getattr(snapshot, "eta_s", None)
    if running and eta_s is not None:
        detail_parts.append(f"about {human_duration(eta_s)} left")
    estimate = getattr(snapshot, "estimate", "")
    if running and estimate and not estimate.startswith("pg_stat_progress_copy"):
        detail_parts.append(f"estimated from {estimate}")

    if state in FINISHED_OK:
        fraction, cell = 1.0, text_bar(1.0)
    elif running:
        cell = text_bar(fraction, tick)
    elif state == JobState.QUEUED:
        cell = "queued"
    else:  # failed / cancelled: where it stopped, if known
        cell = text_bar(fraction) if fraction is not None else "—"
    if job.result is not None and job.result.bytes_written:
        bytes_text = human_bytes(job.result.bytes_written)
    return ProgressView(fraction, cell, bytes_text, " · ".join(detail_parts))


class JobsPane(Widget):
    """The session's jobs (DataTable, row key = job.id) and the selected job's log."""

    DEFAULT_CSS = """
    JobsPane {
        height: 1fr;
        layout: vertical;
    }
    JobsPane > #jobs-table {
        height: auto;
        max-height: 40%;
    }
    JobsPane > #job-title {
        height: 1;
        margin-top: 1;
        text-style: bold;
    }
    JobsPane > #job-progress {
        height: 1;
    }
    JobsPane > #job-result {
        height: auto;
        max-height: 2;
    }
    JobsPane > #job-result.-succeeded {
        color: $success;
    }
    JobsPane > #job-result.-failed {
        color: $error;
    }
    JobsPane > #job-result.-cancelled, JobsPane > #job-result.-partial {
        color: $warning;
    }
    JobsPane > #job-paths {
        height: auto;
        max-height: 4;
        color: $text-muted;
    }
    JobsPane > #job-log {
        height: 1fr;
        min-height: 3;
        border-top: solid $primary-muted;
    }
    JobsPane > .jobs-pane--succeeded {
        color: $success;
    }
    JobsPane > .jobs-pane--failed {
        color: $error;
    }
    JobsPane > .jobs-pane--cancelled, JobsPane > .jobs-pane--partial {
        color: $warning;
    }
    JobsPane > .jobs-pane--running {
        color: $accent;
    }
    JobsPane > .jobs-pane--queued {
        color: $text-muted;
    }
    """
    COMPONENT_CLASSES = {f"jobs-pane--{state.value}" for state in JobState}

    # -- messages: from the job listener to the pane (past tense: they report what happened) --
    class JobLogged(Message, bubble=False):
        """A job wrote one line to its log."""

        def __init__(self, job_id: str, text: str, level: str) -> None:
            super().__init__()
            self.job_id, self.text, self.level = job_id, text, level

    class JobProgressed(Message, bubble=False):
        """A job reported progress; a newer one for the same job replaces a queued older one."""

        def __init__(self, job_id: str, progress: Any) -> None:
            super().__init__()
            self.job_id, self.progress = job_id, progress

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, JobsPane.JobProgressed) and message.job_id == self.job_id

    class JobStateChanged(Message):
        """A job moved to `state`. Bubbles, so the app can refresh what depends on it."""

        def __init__(self, job: Job, state: JobState) -> None:
            super().__init__()
            self.job, self.state = job, state

    class JobFinished(Message):
        """A job ended with `result`. Bubbles (e.g. to refresh the Backups tab)."""

        def __init__(self, job: Job, result: JobResult) -> None:
            super().__init__()
            self.job, self.result = job, result

    class JobSelected(Message):
        """The user moved to another job in the table."""

        def __init__(self, job: Job) -> None:
            super().__init__()
            self.job = job

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._jobs: dict[str, Job] = {}
        self._lines: dict[str, deque[tuple[str, str]]] = {}
        self._snapshots: dict[str, Any] = {}
        self._selected_id: str | None = None
        self._pending_display: list[tuple[str, str]] = []
        self._flush_scheduled = False
        self._tick = 0
        self._ticker: Timer | None = None

    def compose(self) -> ComposeResult:
        table: DataTable[Text] = DataTable(id="jobs-table", cursor_type="row")
        for column in COLUMNS:
            table.add_column(column, key=column)
        yield table
        yield Static("No jobs yet.", id="job-title", markup=False)
        yield ProgressBar(total=100, show_eta=False, id="job-progress")
        yield Static("", id="job-result", markup=False)
        yield Static("", id="job-paths", markup=False)
        yield JobLog(id="job-log")

    def on_mount(self) -> None:
        self._ticker = self.set_interval(TICK_S, self._on_tick, pause=True)
        self.query_one("#job-progress").display = False

    def on_unmount(self) -> None:
        for job in self._jobs.values():
            job.unsubscribe(self._forward)

    # -- public API --------------------------------------------------------------------------
    def add_job(self, job: Job) -> None:
        """Show `job` (call before it runs so no event is missed) and select it."""
        if job.id in self._jobs:
            return
        self._jobs[job.id] = job
        self._lines[job.id] = deque(maxlen=LOG_LINES_KEPT)
        job.subscribe(self._forward)
        table = self.query_one("#jobs-table", DataTable)
        table.add_row(*self._row_cells(job), key=job.id)
        table.move_cursor(row=table.get_row_index(job.id))
        self._select(job.id)
        self._update_ticker()

    def selected_job(self) -> Job | None:
        """The job under the table's cursor, if any."""
        return self._jobs.get(self._selected_id) if self._selected_id else None

    def running_jobs(self) -> list[Job]:
        """Jobs not finished yet (queued or running): what quitting must cancel."""
        return [job for job in self._jobs.values() if not job.state.is_final]

    def all_jobs(self) -> list[Job]:
        """Every job added, oldest first."""
        return list(self._jobs.values())

    def log_lines(self, job: Job) -> list[tuple[str, str]]:
        """The (text, level) lines kept in memory for `job` (the last LOG_LINES_KEPT)."""
        return list(self._lines.get(job.id, ()))

    # -- from the jobs -----------------------------------------------------------------------
    def _forward(self, event: JobEvent) -> None:
        """Job listener: runs on the loop that runs the job; posts, never touches widgets."""
        job = self._jobs.get(event.job_id)
        if job is None:
            return
        if isinstance(event, LogLine):
            self.post_message(self.JobLogged(event.job_id, event.text, event.level))
        elif isinstance(event, ProgressUpdated):
            self.post_message(self.JobProgressed(event.job_id, event.progress))
        elif isinstance(event, StateChanged):
            self.post_message(self.JobStateChanged(job, event.state))
        elif isinstance(event, JobFinishedEvent):
            self.post_message(self.JobFinished(job, event.result))

    @on(JobLogged)
    def _job_logged(self, message: JobLogged) -> None:
        line = (message.text, message.level)
        self._lines[message.job_id].append(line)
        if message.job_id == self._selected_id:
            self._pending_display.append(line)
            if not self._flush_scheduled:
                # Runs after the messages already queued: one write for a burst of lines.
                self._flush_scheduled = True
                self.call_later(self._flush_log)

    def _flush_log(self) -> None:
        self._flush_scheduled = False
        lines, self._pending_display = self._pending_display, []
        self.query_one(JobLog).write_levelled(lines)

    @on(JobProgressed)
    def _job_progressed(self, message: JobProgressed) -> None:
        self._snapshots[message.job_id] = message.progress
        self._refresh_job(message.job_id)

    @on(JobStateChanged)
    def _job_state_changed(self, message: JobStateChanged) -> None:
        self._refresh_job(message.job.id)
        self._update_ticker()

    @on(JobFinished)
    def _job_finished(self, message: JobFinished) -> None:
        self._refresh_job(message.job.id)
        self._update_ticker()

    # -- showing -----------------------------------------------------------------------------
    def _row_cells(self, job: Job) -> list[Text]:
        view = progress_view(job, self._snapshots.get(job.id), self._tick)
        state_style = self.get_component_rich_style(f"jobs-pane--{job.state.value}", partial=True)
        elapsed = human_duration(job.elapsed_s) if job.started_at is not None else ""
        return [
            Text(job.kind),
            Text(f"{job.database}@{job.server}"),
            Text(job.state.value, style=state_style),
            Text(view.cell),
            Text(view.bytes_text, justify="right"),
            Text(elapsed, justify="right"),
        ]

    def _refresh_job(self, job_id: str) -> None:
        """Bring the job's row (and, when it is selected, the details) up to date."""
        job = self._jobs[job_id]
        table = self.query_one("#jobs-table", DataTable)
        for column, cell in zip(COLUMNS, self._row_cells(job), strict=True):
            table.update_cell(job_id, column, cell, update_width=True)
        if job_id == self._selected_id:
            self._show_details(job)

    def _show_details(self, job: Job) -> None:
        view = progress_view(job, self._snapshots.get(job.id), self._tick)
        title = f"{job.title} — {job.state.value}"
        if view.detail:
            title += f" · {view.detail}"
        self.query_one("#job-title", Static).update(title)

        bar = self.query_one("#job-progress", ProgressBar)
        bar.display = job.state == JobState.RUNNING or job.state in FINISHED_OK
        if job.state == JobState.RUNNING and view.fraction is None:
            bar.update(total=None)
        elif bar.display:
            bar.update(total=100, progress=100 * (view.fraction or 0.0))

        result = self.query_one("#job-result", Static)
        for state in JobState:
            result.set_class(job.result is not None and job.result.state == state, f"-{state.value}")
        message = job.result.message if job.result is not None else ""
        result.update(message)
        paths = []
        output = job.result.output_path if job.result is not None else None
        # A dump's message already names its archive; a narrow pane need not show it twice.
        if output is not None and str(output) not in message:
            paths.append(f"output: {output}")
        if job.log_path is not None:
            paths.append(f"log: {job.log_path}")
        self.query_one("#job-paths", Static).update("\n".join(paths))

    def _select(self, job_id: str) -> None:
        if job_id == self._selected_id or job_id not in self._jobs:
            return
        self._selected_id = job_id
        self._pending_display = []  # those lines are in the buffer shown below
        log = self.query_one(JobLog)
        log.clear()
        log.write_levelled(self._lines[job_id])
        self._show_details(self._jobs[job_id])
        self.post_message(self.JobSelected(self._jobs[job_id]))

    @on(DataTable.RowHighlighted, "#jobs-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if event.row_key.value is not None:
            self._select(event.row_key.value)

    # -- the clock ---------------------------------------------------------------------------
    def _update_ticker(self) -> None:
        """Run the one elapsed-time timer only while some job runs."""
        if self._ticker is None:
            return
        if any(job.state == JobState.RUNNING for job in self._jobs.values()):
            self._ticker.resume()
        else:
            self._ticker.pause()

    def _on_tick(self) -> None:
        self._tick += 1
        for job in self._jobs.values():
            if job.state == JobState.RUNNING:
                self._refresh_job(job.id)
        self._update_ticker()
