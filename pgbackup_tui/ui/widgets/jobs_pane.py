"""The Jobs pane: the jobs in a table, the selected job's details (job_details.py) and its log streaming below.

It shows the jobs of a JobRegistry (ui/job_registry.py: the app's, the one list the app and the
quit dialog read too), followed from their runner (core/job_follow.py) or run in-process (JobView).
A job's listener only posts messages to the pane; the widgets change in the handlers. A running
job's changes reach the screen in frames, at most every FRAME_S (the progress criteria need 2
updates a second), updating only the cells and lines that changed; a flood of log lines (pg_dump
--verbose: four a table, taken a chunk at a time from a follower) is written at most every
LOG_WRITE_S (a repaint of the log). Log lines are kept (the last LOG_LINES_KEPT; the whole log is
on disk) for the jobs that have not finished and the selected one: selecting a finished job reads
its log's tail again (job_log_tail.py). A job's end comes as one message, JobFinished, shown at
once, then bubbling to the app. The app keeps the list bounded; the pane says how many it leaves out.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import TypeAlias

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.timer import Timer
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Static

from ...core.job_follow import JobFollower, JobView, LogLines
from ...core.jobs import JobEvent, JobState, LogLine, ProgressUpdated, StateChanged
from ...core.jobs import JobFinished as JobFinishedEvent
from ...core.progress import ProgressSnapshot
from ..job_registry import JobRegistry
from .job_log import LOG_LINES_KEPT, JobLog
from .detail_line import update_in_place
from .job_log_tail import read_log_tail
from . import job_messages as messages
from .job_details import JobDetails
from .job_progress import row_cells
from .job_progress_bar import JobProgressBar
from .jobs_columns import COLUMNS, JobsColumns
from .jobs_heights import fit_heights
from .jobs_table import JobsTable

TICK_S = 1.0  # the elapsed column and an indeterminate bar's moving block
FRAME_S = 0.4  # a running job's changes reach the screen at most this often
LOG_WRITE_S = 2.0  # lines that keep coming are written at most this often (a quiet log's at the next frame)


class JobsPane(JobsColumns):
    """Jobs (DataTable, row key = job.id, newest first) and the selected job's log."""

    DEFAULT_CSS = """
    JobsPane { height: 1fr; layout: vertical; }
    JobsPane > #jobs-table { height: 40%; }  /* not auto: see jobs_table.py */
    JobsPane > #jobs-hidden { height: auto; color: $text-muted; }
    JobsPane > #job-log-box { height: 1fr; min-height: 3; border-top: solid $primary-muted; background: $surface; }
    JobsPane > #job-log-box > #job-log { height: 1fr; }
    JobsPane.-compact #job-title { margin-top: 0; }  /* a short pane (jobs_heights.py); job_details.py */
    JobsPane.-compact #job-result { max-height: 1; }
    JobsPane.-compact #job-paths { display: none; }
    JobsPane > .jobs-pane--succeeded { color: $success; }
    JobsPane > .jobs-pane--failed { color: $error; }
    JobsPane > .jobs-pane--cancelled, JobsPane > .jobs-pane--partial { color: $warning; }
    JobsPane > .jobs-pane--running { color: $accent; }
    JobsPane > .jobs-pane--queued { color: $text-muted; }
    """
    COMPONENT_CLASSES = {f"jobs-pane--{state.value}" for state in JobState}

    # What happened to a job, posted by its listener (job_messages.py); handlers: on_jobs_pane_...
    JobLogged: TypeAlias = messages.JobLogged
    JobProgressed: TypeAlias = messages.JobProgressed
    JobStateChanged: TypeAlias = messages.JobStateChanged
    JobFinished: TypeAlias = messages.JobFinished
    JobSelected: TypeAlias = messages.JobSelected

    def __init__(self, jobs: JobRegistry | None = None, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.jobs = jobs if jobs is not None else JobRegistry()  # the app's, or the pane's own
        self._lines: dict[str, deque[tuple[str, str]]] = {}  # running jobs' and the selected one's
        self._snapshots: dict[str, ProgressSnapshot] = {}
        self._inbox: dict[str, list[tuple[str, str]]] = {}  # lines logged, not handled yet
        self._cells = {}  # each row as shown, to update only the cells that changed
        self._hidden_note = ""  # the note on the jobs left out, as shown
        self._widths = {}
        self._selected_id: str | None = None
        self._pending_display: deque[tuple[str, str]] = deque(maxlen=LOG_LINES_KEPT)
        self._dirty: set[str] = set()  # jobs whose row or details changed since the last frame
        self._frame_due = False
        self._last_frame = self._last_log_write = 0.0
        self._tick = 0
        self._ticker: Timer | None = None
        self._target_width, self._compact, self._shown = None, False, COLUMNS  # see JobsColumns

    def compose(self) -> ComposeResult:
        table = JobsTable(id="jobs-table", cursor_type="row")
        for column in COLUMNS:
            table.add_column(column, key=column)
        yield table
        yield Static("", id="jobs-hidden", markup=False)
        yield JobDetails(id="job-details")  # the selected job's title, bar, result and paths
        # In a box of its own: Textual repaints every widget whose container overlaps a change, so
        # the log (and its scrollbars) beside the figures would be painted again at every frame.
        with Vertical(id="job-log-box"):
            yield JobLog(id="job-log")

    def on_mount(self) -> None:
        self._ticker = self.set_interval(TICK_S, self._on_tick, pause=True)
        self.query_one("#jobs-hidden").display = False

    def on_resize(self) -> None:  # JobsColumns' runs too (Textual calls each class's handler)
        # The log keeps a few lines on a short pane; fitted again once the layout this resize is
        # part of has settled (a tab shown: the pane's height may change again in that layout).
        table = self.query_one("#jobs-table")
        fit_heights(self, table)
        self.call_after_refresh(fit_heights, self, table)

    def on_unmount(self) -> None:
        for job in self.jobs:
            job.unsubscribe(self._forward)

    # -- public API --------------------------------------------------------------------------
    def add_job(self, job: JobView, *, lines: Iterable[tuple[str, str]] = (), select: bool = True) -> None:
        """Show `job` (before it runs or is followed, so no event is missed), with the (text, level)
        log `lines` already read; `select`: make it the selected job."""
        if not self.jobs.add(job):
            return
        if select or not job.state.is_final:  # a finished one's are read again if it is selected
            self._lines[job.id] = deque(lines, maxlen=LOG_LINES_KEPT)
        if job.progress is not None:
            # Its figures as its runner last wrote them: a job read from the store (finished before
            # the app started, or running) has had no ProgressUpdated here, and a finished one never will.
            self._snapshots[job.id] = job.progress
        if isinstance(job, JobFollower):  # a chunk's log lines in one event
            job.subscribe_batched(self._forward)
        else:
            job.subscribe(self._forward)
        table = self.query_one("#jobs-table", JobsTable)
        table.add_row(*self._shown_cells(self._row_cells(job)), key=job.id)
        self._order_rows(table)
        self._refresh_job(job.id)  # cells cut to the target column's width once the figures are in
        if select:
            self.select_job(job.id)
        else:  # started elsewhere (cron, another shell) or read from the store: its row, the first, in view
            table.call_after_refresh(table.scroll_home, animate=False)  # after the cursor's own scroll
        self._update_ticker()

    def _order_rows(self, table: JobsTable) -> None:
        """Newest first, as `pgbackup-tui jobs list` and the Backups tab list theirs: a new job, from
        here or from the CLI, is the first row, in view without scrolling. The cursor stays on the
        selected job."""
        newest_first = sorted(self.jobs, key=lambda job: (job.created_at, job.id), reverse=True)
        table.order_rows(job.id for job in newest_first)
        if self._selected_id is not None:
            table.move_cursor(row=table.get_row_index(self._selected_id), scroll=False)

    def select_job(self, job_id: str) -> None:
        """Move the table's cursor to `job_id` and show its details and log."""
        if job_id in self.jobs:
            table = self.query_one("#jobs-table", DataTable)
            table.move_cursor(row=table.get_row_index(job_id))
            self._select(job_id)

    def remove_job(self, job_id: str) -> None:
        """Stop showing a job (the list is bounded); the job itself is not touched."""
        job = self.jobs.remove(job_id)
        if job is None:
            return
        job.unsubscribe(self._forward)
        for per_job in (self._lines, self._snapshots, self._cells, self._inbox):
            per_job.pop(job_id, None)
        self._dirty.discard(job_id)
        (table := self.query_one("#jobs-table", DataTable)).remove_row(job_id)
        if self._selected_id == job_id:
            self._selected_id = None
            self.query_one("#job-progress").display = False  # no job's bar, nor frames to move it
        elif self._selected_id is not None:  # rows below moved up: keep the cursor on the same job
            table.move_cursor(row=table.get_row_index(self._selected_id))

    def show_hidden(self, count: int) -> None:
        """Say how many older jobs the list leaves out (0: say nothing)."""
        note = self.query_one("#jobs-hidden", Static)
        if note.display != (count > 0):
            note.display = count > 0
        text = f"{count} older job{'' if count == 1 else 's'} not shown (pgbackup-tui jobs list)"
        if self._hidden_note != text:
            self._hidden_note = text
            update_in_place(note, text)

    def selected_job(self) -> JobView | None:
        """The job under the table's cursor, if any."""
        return self.jobs.get(self._selected_id)

    def log_lines(self, job: JobView) -> list[tuple[str, str]]:
        """The (text, level) lines kept in memory for `job` (the last LOG_LINES_KEPT; none for a
        finished job that is not selected)."""
        return list(self._lines.get(job.id, ()))

    # -- from the jobs -----------------------------------------------------------------------
    def _forward(self, event: JobEvent | LogLines) -> None:
        """Job listener: runs where the job reports (a loop, a thread); posts, never touches widgets."""
        job = self.jobs.get(event.job_id)
        if job is None:
            return
        if isinstance(event, (LogLine, LogLines)):
            # pg_dump --verbose writes lines for every table: one message per burst, not per line.
            inbox = self._inbox.setdefault(event.job_id, [])
            was_empty = not inbox
            if isinstance(event, LogLines):
                inbox.extend(event.lines)
            else:
                inbox.append((event.text, event.level))
            if was_empty and inbox:
                self.post_message(self.JobLogged(event.job_id))
        elif isinstance(event, ProgressUpdated):
            self.post_message(self.JobProgressed(event.job_id, event.progress))
        elif isinstance(event, StateChanged) and not event.state.is_final:
            self.post_message(self.JobStateChanged(job, event.state))
        elif isinstance(event, JobFinishedEvent):
            self.post_message(self.JobFinished(job, event.result))

    @on(messages.JobLogged)
    def _job_logged(self, message: messages.JobLogged) -> None:
        lines = self._inbox.pop(message.job_id, [])
        kept = self._lines.get(message.job_id)
        if kept is None:
            return  # removed from the list meanwhile, or finished and not selected (the file has them)
        kept.extend(lines)
        if message.job_id == self._selected_id:
            self._pending_display.extend(lines)
            self._want_frame()

    @on(messages.JobProgressed)
    def _job_progressed(self, message: messages.JobProgressed) -> None:
        if message.job_id in self.jobs:
            self._snapshots[message.job_id] = message.progress
            self._dirty.add(message.job_id)
            self._want_frame()

    @on(messages.JobStateChanged)
    def _job_state_changed(self, message: messages.JobStateChanged) -> None:
        if message.job.id in self.jobs:
            self._refresh_job(message.job.id)
            self._update_ticker()

    @on(messages.JobFinished)
    def _job_finished(self, message: messages.JobFinished) -> None:
        if message.job.id not in self.jobs:
            return
        self._flush_log()  # its last lines now, not a frame later
        self._dirty.discard(message.job.id)
        if message.job.id != self._selected_id:
            self._lines.pop(message.job.id, None)  # read again from the file if it is selected
        self._refresh_job(message.job.id)  # its final figures, at once
        self._update_ticker()

    # -- frames ------------------------------------------------------------------------------
    def _want_frame(self) -> None:
        """Show what changed: now when the last frame is FRAME_S old, else when it is."""
        if self._frame_due:
            return
        wait = self._last_frame + FRAME_S - time.monotonic()
        if wait <= 0:
            self._frame()
        else:
            self._frame_due = True
            self.set_timer(wait, self._frame)

    def _frame(self) -> None:
        self._frame_due = False
        self._last_frame = now = time.monotonic()
        if self._pending_display and now - self._last_log_write >= LOG_WRITE_S:
            self._flush_log()
        dirty, self._dirty = self._dirty, set()
        for job_id in dirty:
            if job_id in self.jobs:
                self._refresh_job(job_id)
        bar = self.query_one("#job-progress", JobProgressBar)
        indeterminate = bar.display and bar.total is None  # the selected job's size not known yet
        if indeterminate:
            bar.step()  # its block moves in this frame's repaint, not in one of its own
        if self._pending_display or indeterminate:  # lines that keep coming, a block that moves: a later frame
            self._want_frame()

    def _flush_log(self) -> None:
        self._last_log_write = time.monotonic()
        lines = list(self._pending_display)
        self._pending_display.clear()
        if lines:
            log = self.query_one(JobLog)
            follow = log.auto_scroll and log.scroll_y >= log.max_scroll_y - 1
            log.write_levelled(lines)
            if follow:  # in the same repaint as the lines, not one more after it (the log's own, then a no-op)
                log.scroll_end(animate=False, immediate=True)

    # -- showing -----------------------------------------------------------------------------
    def _row_cells(self, job: JobView) -> list[Text]:
        state_style = self.get_component_rich_style(f"jobs-pane--{job.state.value}", partial=True)
        return row_cells(job, self._snapshots.get(job.id), self._tick, state_style, self._target_width,
                         compact=self._compact)

    def _refresh_job(self, job_id: str) -> None:
        """Bring the job's row (and, when it is selected, the details) up to date: only the cells
        that changed. A figure column is widened (a relayout) when a cell outgrows it, never narrowed:
        the next jobs' figures ("1.5 MB / 15.0 MB" as a dump runs, "15.0 MB" after) fit, a repaint."""
        job = self.jobs.get(job_id)
        if job is None:
            return
        table, cells = self.query_one("#jobs-table", JobsTable), self._row_cells(job)
        before = self._cells.get(job_id, ())
        self._cells[job_id] = tuple(cells)
        changed: dict[str, Text] = {}
        widen: set[str] = set()
        for index, (column, cell) in enumerate(zip(COLUMNS, cells, strict=True)):
            old = before[index] if index < len(before) else None
            if old is None or old != cell:  # measured only if wider: DataTable would narrow the column
                shown = column in self._shown  # a hidden one's width still counts when room comes back
                if shown:
                    changed[column] = cell
                if column != "target" and cell.cell_len > self._widths.get(column, len(self._label(column))):
                    self._widths[column] = cell.cell_len
                    if shown:
                        widen.add(column)
        if changed:
            table.update_row(job_id, changed, widen=widen)
        if widen:
            self._fit_target()  # in the same layout as the growth, not one more after it
        if job_id == self._selected_id:
            self._show_details(job)

    def _show_details(self, job: JobView) -> None:
        if self.query_one(JobDetails).show(job, self._snapshots.get(job.id), self._tick):
            self._want_frame()  # the frames that move its bar's block (a frame due already: nothing more)

    def _select(self, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job_id == self._selected_id or job is None:
            return
        left = self.jobs.get(self._selected_id)
        if left is not None and left.state.is_final:
            self._lines.pop(left.id, None)
        self._selected_id = job_id
        self._pending_display.clear()  # those lines are in the buffer shown below
        if job_id not in self._lines:  # a finished job's: read on the UI thread, 512 KB at most
            self._lines[job_id] = deque(read_log_tail(job), maxlen=LOG_LINES_KEPT)
        log = self.query_one(JobLog)
        log.clear()
        log.log_path = job.log_path  # named in the note once the view is full
        log.write_levelled(self._lines[job_id])
        self._show_details(job)
        self.post_message(self.JobSelected(job))

    @on(DataTable.RowHighlighted, "#jobs-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        # The row under the cursor now, not the event's: a job coming in reorders the rows (newest
        # first), and an event posted before that names the job that was at the cursor's index then.
        table = event.data_table
        if table.cursor_row < table.row_count:
            row_key, _ = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0))
            if row_key.value is not None:
                self._select(row_key.value)

    # -- the clock ---------------------------------------------------------------------------
    def _update_ticker(self) -> None:
        """Run the one elapsed-time timer only while some job runs."""
        if self._ticker is None:
            return
        if any(job.state == JobState.RUNNING for job in self.jobs):
            self._ticker.resume()
        else:
            self._ticker.pause()

    def _on_tick(self) -> None:
        self._tick += 1
        self._dirty.update(job.id for job in self.jobs if job.state == JobState.RUNNING)  # elapsed moved
        self._want_frame()
        self._update_ticker()
