"""The Jobs pane: the jobs in the store in a table, the selected job's log streaming below.

It shows whatever it is given: jobs followed from their runner (core/job_follow.py, started
here, by the CLI or by cron) and in-process ones alike (JobView). Jobs report through listeners
called on the event loop that follows them (or, for a log tail read ahead, a thread). The
pane's listener only turns each event into a message posted to the pane; the widgets change in
the message handlers. Log lines are kept per job (the last LOG_LINES_KEPT; the whole log is on
disk at job.log_path) and written to the log view in batches, so a chatty pg_dump --verbose does
not cost one repaint per line. One timer ticks the elapsed column, and only while a job runs.
The app keeps the list bounded; the pane says how many older jobs it does not show.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable, ProgressBar, Static
from textual.widgets.data_table import ColumnKey

from ...core.job_follow import JobView
from ...core.jobs import JobEvent, JobResult, JobState, LogLine, ProgressUpdated, StateChanged
from ...core.jobs import JobFinished as JobFinishedEvent
from .job_log import LOG_LINES_KEPT, JobLog
from .job_progress import FINISHED_OK, ProgressView, progress_view, row_cells, text_bar

__all__ = ["JobsPane", "ProgressView", "progress_view", "text_bar"]

TICK_S = 1.0
LOG_FLUSH_S = 0.1  # log lines reach the view at most this late, in one write
COLUMNS = ("kind", "target", "state", "progress", "bytes", "elapsed", "left")
MIN_TARGET = 8  # the target (db@server) gives way to the figures down to this many cells


class JobsPane(Widget):
    """Jobs (DataTable, row key = job.id, oldest first) and the selected job's log."""

    DEFAULT_CSS = """
    JobsPane {
        height: 1fr;
        layout: vertical;
    }
    JobsPane > #jobs-table {
        height: auto;
        max-height: 40%;
    }
    JobsPane > #jobs-hidden {
        height: auto;
        color: $text-muted;
    }
    JobsPane > #job-title {
        height: 1;
        margin-top: 1;
        text-style: bold;
    }
    JobsPane > #job-progress { height: 1; }
    JobsPane > #job-result {
        height: auto;
        max-height: 2;
    }
    JobsPane > #job-result.-succeeded { color: $success; }
    JobsPane > #job-result.-failed { color: $error; }
    JobsPane > #job-result.-cancelled, JobsPane > #job-result.-partial { color: $warning; }
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
    JobsPane > .jobs-pane--succeeded { color: $success; }
    JobsPane > .jobs-pane--failed { color: $error; }
    JobsPane > .jobs-pane--cancelled, JobsPane > .jobs-pane--partial { color: $warning; }
    JobsPane > .jobs-pane--running { color: $accent; }
    JobsPane > .jobs-pane--queued { color: $text-muted; }
    """
    COMPONENT_CLASSES = {f"jobs-pane--{state.value}" for state in JobState}

    # -- messages: from the job listener to the pane (past tense: they report what happened) --
    class JobLogged(Message, bubble=False):
        """A job wrote lines to its log (they wait in the pane's inbox: one message for a burst)."""

        def __init__(self, job_id: str) -> None:
            super().__init__()
            self.job_id = job_id

    class JobProgressed(Message, bubble=False):
        """A job reported progress; a newer one for the same job replaces a queued older one."""

        def __init__(self, job_id: str, progress: Any) -> None:
            super().__init__()
            self.job_id, self.progress = job_id, progress

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, JobsPane.JobProgressed) and message.job_id == self.job_id

    class JobStateChanged(Message):
        """A job moved to `state`. Bubbles, so the app can refresh what depends on it."""

        def __init__(self, job: JobView, state: JobState) -> None:
            super().__init__()
            self.job, self.state = job, state

    class JobFinished(Message):
        """A job ended with `result`. Bubbles (e.g. to refresh the Backups tab)."""

        def __init__(self, job: JobView, result: JobResult) -> None:
            super().__init__()
            self.job, self.result = job, result

    class JobSelected(Message):
        """The user moved to another job in the table."""

        def __init__(self, job: JobView) -> None:
            super().__init__()
            self.job = job

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._jobs: dict[str, JobView] = {}
        self._lines: dict[str, deque[tuple[str, str]]] = {}
        self._snapshots: dict[str, Any] = {}
        self._inbox: dict[str, list[tuple[str, str]]] = {}  # lines logged, not handled yet
        self._shown: dict[str, tuple[Any, ...]] = {}  # what each widget shows, to skip unchanged updates
        self._selected_id: str | None = None
        self._pending_display: list[tuple[str, str]] = []
        self._flush_scheduled = False
        self._tick = 0
        self._ticker: Timer | None = None
        self._target_width: int | None = None  # None: as wide as it is

    def compose(self) -> ComposeResult:
        table: DataTable[Text] = DataTable(id="jobs-table", cursor_type="row")
        for column in COLUMNS:
            table.add_column(column, key=column)
        yield table
        yield Static("", id="jobs-hidden", markup=False)
        yield Static("No jobs yet.", id="job-title", markup=False)
        yield ProgressBar(total=100, show_eta=False, id="job-progress")
        yield Static("", id="job-result", markup=False)
        yield Static("", id="job-paths", markup=False)
        yield JobLog(id="job-log")

    def on_mount(self) -> None:
        self._ticker = self.set_interval(TICK_S, self._on_tick, pause=True)
        self.query_one("#job-progress").display = False
        self.query_one("#jobs-hidden").display = False

    def on_unmount(self) -> None:
        for job in self._jobs.values():
            job.unsubscribe(self._forward)

    # -- public API --------------------------------------------------------------------------
    def add_job(self, job: JobView, *, lines: Iterable[tuple[str, str]] = (), select: bool = True) -> None:
        """Show `job` (before it runs or is followed, so no event is missed), with the (text, level)
        log `lines` already read; `select`: make it the selected job."""
        if job.id in self._jobs:
            return
        self._jobs[job.id] = job
        self._lines[job.id] = deque(lines, maxlen=LOG_LINES_KEPT)
        job.subscribe(self._forward)
        table = self.query_one("#jobs-table", DataTable)
        table.add_row(*self._row_cells(job), key=job.id)
        self._refresh_job(job.id)  # cells cut to the target column's width once the figures are in
        if select:
            self.select_job(job.id)
        self._update_ticker()

    def select_job(self, job_id: str) -> None:
        """Move the table's cursor to `job_id` and show its details and log."""
        if job_id in self._jobs:
            table = self.query_one("#jobs-table", DataTable)
            table.move_cursor(row=table.get_row_index(job_id))
            self._select(job_id)

    def remove_job(self, job_id: str) -> None:
        """Stop showing a job (the list is bounded); the job itself is not touched."""
        job = self._jobs.pop(job_id, None)
        if job is None:
            return
        job.unsubscribe(self._forward)
        self._lines.pop(job_id, None)
        self._snapshots.pop(job_id, None)
        self._shown.pop(job_id, None)
        self._inbox.pop(job_id, None)
        table = self.query_one("#jobs-table", DataTable)
        table.remove_row(job_id)
        if self._selected_id == job_id:
            self._selected_id = None
        elif self._selected_id is not None:  # rows below moved up: keep the cursor on the same job
            table.move_cursor(row=table.get_row_index(self._selected_id))

    def show_hidden(self, count: int) -> None:
        """Say how many older jobs the list leaves out (0: say nothing)."""
        note = self.query_one("#jobs-hidden", Static)
        note.display = count > 0
        note.update(f"{count} older job{'' if count == 1 else 's'} not shown (pgbackup-tui jobs list)")

    def selected_job(self) -> JobView | None:
        """The job under the table's cursor, if any."""
        return self._jobs.get(self._selected_id) if self._selected_id else None

    def running_jobs(self) -> list[JobView]:
        """Jobs not finished yet (queued or running)."""
        return [job for job in self._jobs.values() if not job.state.is_final]

    def all_jobs(self) -> list[JobView]:
        """Every job added, oldest first."""
        return list(self._jobs.values())

    def log_lines(self, job: JobView) -> list[tuple[str, str]]:
        """The (text, level) lines kept in memory for `job` (the last LOG_LINES_KEPT)."""
        return list(self._lines.get(job.id, ()))

    # -- from the jobs -----------------------------------------------------------------------
    def _forward(self, event: JobEvent) -> None:
        """Job listener: runs where the job reports (a loop, a thread); posts, never touches widgets."""
        job = self._jobs.get(event.job_id)
        if job is None:
            return
        if isinstance(event, LogLine):
            # pg_dump --verbose writes lines for every table: one message per burst, not per line.
            inbox = self._inbox.setdefault(event.job_id, [])
            inbox.append((event.text, event.level))
            if len(inbox) == 1:
                self.post_message(self.JobLogged(event.job_id))
        elif isinstance(event, ProgressUpdated):
            self.post_message(self.JobProgressed(event.job_id, event.progress))
        elif isinstance(event, StateChanged):
            self.post_message(self.JobStateChanged(job, event.state))
        elif isinstance(event, JobFinishedEvent):
            self.post_message(self.JobFinished(job, event.result))

    @on(JobLogged)
    def _job_logged(self, message: JobLogged) -> None:
        lines = self._inbox.pop(message.job_id, [])
        if message.job_id not in self._lines:
            return  # removed from the list meanwhile
        self._lines[message.job_id].extend(lines)
        if message.job_id == self._selected_id:
            self._pending_display.extend(lines[-LOG_LINES_KEPT:])
            if not self._flush_scheduled:
                # At most LOG_FLUSH_S apart: one write (one repaint) for a burst of lines.
                self._flush_scheduled = True
                self.set_timer(LOG_FLUSH_S, self._flush_log)

    def _flush_log(self) -> None:
        self._flush_scheduled = False
        lines, self._pending_display = self._pending_display[-LOG_LINES_KEPT:], []
        if lines:
            self.query_one(JobLog).write_levelled(lines)

    @on(JobProgressed)
    def _job_progressed(self, message: JobProgressed) -> None:
        if message.job_id not in self._jobs:
            return
        self._snapshots[message.job_id] = message.progress
        self._refresh_job(message.job_id)

    @on(JobStateChanged)
    def _job_state_changed(self, message: JobStateChanged) -> None:
        if message.job.id not in self._jobs:
            return
        self._refresh_job(message.job.id)
        self._update_ticker()

    @on(JobFinished)
    def _job_finished(self, message: JobFinished) -> None:
        if message.job.id not in self._jobs:
            return
        self._flush_log()  # its last lines now, not a flush interval later
        self._refresh_job(message.job.id)
        self._fit_target()  # its final figures, at once: a finished job's row always looks the same
        self._update_ticker()

    # -- showing -----------------------------------------------------------------------------
    def _row_cells(self, job: JobView) -> list[Text]:
        state_style = self.get_component_rich_style(f"jobs-pane--{job.state.value}", partial=True)
        return row_cells(job, self._snapshots.get(job.id), self._tick, state_style, self._target_width)

    def on_resize(self) -> None:
        self._fit_target()

    def _fit_target(self) -> None:
        """Give the target column what the figures leave, so that no figure is pushed out of sight."""
        table = self.query_one("#jobs-table", DataTable)
        # From the cells the rows show now, not the table's widths (they lag a refresh): same rows, same layout.
        rows = [cells for job_id, cells in self._shown.items() if job_id in self._jobs]
        figures = sum(2 * table.cell_padding + max([table.columns[ColumnKey(name)].label.cell_len,
                                                    *(row[index].cell_len for row in rows if index < len(row))])
                      for index, name in enumerate(COLUMNS) if name != "target")
        room = self.size.width - table.styles.scrollbar_size_vertical - 2 * table.cell_padding
        width = max(MIN_TARGET, room - figures)
        if width != self._target_width:
            self._target_width = width
            column = table.columns[ColumnKey("target")]
            column.auto_width, column.width = False, width  # auto widths only ever grow
            for job_id in self._jobs:
                self._refresh_job(job_id)

    def _refresh_job(self, job_id: str) -> None:
        """Bring the job's row (and, when it is selected, the details) up to date: only the cells
        that changed are updated, and widths are measured again only when a cell's length changed
        (a progress update every 250 ms must not cost a relayout)."""
        job = self._jobs[job_id]
        table = self.query_one("#jobs-table", DataTable)
        cells = self._row_cells(job)
        before = self._shown.get(job_id, ())
        resized = False
        for index, (column, cell) in enumerate(zip(COLUMNS, cells, strict=True)):
            old = before[index] if index < len(before) else None
            if old is None or old != cell:
                grew = old is None or old.cell_len != cell.cell_len
                table.update_cell(job_id, column, cell, update_width=grew)
                resized |= grew
        self._shown[job_id] = tuple(cells)
        if resized:
            self.call_after_refresh(self._fit_target)  # figures may have grown: measured at the next layout
        if job_id == self._selected_id:
            self._show_details(job)

    def _show(self, selector: str, text: str, *, layout: bool = True) -> None:
        """Update a line of the details only when its text changed (layout=False: a fixed height)."""
        if self._shown.get(selector) != (text,):
            self._shown[selector] = (text,)
            self.query_one(selector, Static).update(text, layout=layout)

    def _show_details(self, job: JobView) -> None:
        view = progress_view(job, self._snapshots.get(job.id), self._tick)
        title = f"{job.title} — {job.state.value}"
        if view.detail:
            title += f" · {view.detail}"
        self._show("#job-title", title, layout=False)  # one line high, whatever it says

        bar = self.query_one("#job-progress", ProgressBar)
        bar.display = job.state == JobState.RUNNING or job.state in FINISHED_OK
        if job.state == JobState.RUNNING and view.fraction is None:
            bar.update(total=None)
        elif bar.display and (bar.total != 100 or abs(bar.progress - 100 * (view.fraction or 0.0)) >= 0.1):
            bar.update(total=100, progress=100 * (view.fraction or 0.0))

        result = self.query_one("#job-result", Static)
        for state in JobState:
            result.set_class(job.result is not None and job.result.state == state, f"-{state.value}")
        message = job.result.message if job.result is not None else ""
        self._show("#job-result", message)
        paths = []
        output = job.result.output_path if job.result is not None else None
        # A dump's message already names its archive; a narrow pane need not show it twice.
        if output is not None and str(output) not in message:
            paths.append(f"output: {output}")
        if job.log_path is not None:
            paths.append(f"log: {job.log_path}")
        self._show("#job-paths", "\n".join(paths))

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
