"""Which columns the Jobs pane's table shows, and how wide: JobsPane's base (jobs_pane.py).

The target column (db@server) gives way to the figures, down to MIN_TARGET cells; below that the
figures go brief (the percentage alone, the bytes done: row_cells' `compact`), and below that
columns leave the table (HIDDEN_FIRST), so that no figure is pushed out of sight behind a
horizontal scrollbar. The level is chosen again at each resize and when a figure outgrows its
column; a level that changes the columns makes them again (DataTable cannot hide one).
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widget import Widget
from textual.widgets.data_table import ColumnKey

from ...core.job_follow import JobView
from ...core.progress import ProgressSnapshot
from ..job_registry import JobRegistry
from .job_progress import row_cells
from .jobs_table import JobsTable

COLUMNS = ("kind", "target", "state", "progress", "bytes", "elapsed", "left")
MIN_TARGET = 8  # the target (db@server) gives way to the figures down to this many cells
COMPACT_LABELS = {"progress": "%"}  # the headers over compact cells (the percentage alone)
# Where even compact figures leave the target less than MIN_TARGET (the tabs beside the tree at 80
# columns: a 40-cell pane), these columns leave the table, first to last: the bytes and the elapsed
# time are on the selected job's lines below, and its title names the kind; the time left is
# nowhere else, so it stays with the state and the percentage.
HIDDEN_FIRST = ("bytes", "elapsed", "kind")


class JobsColumns(Widget):
    """The Jobs table's columns and their widths, for JobsPane (which holds the jobs and their rows)."""

    jobs: JobRegistry
    _snapshots: dict[str, ProgressSnapshot]
    _cells: dict[str, tuple[Text, ...]]  # each row as shown (all of COLUMNS, hidden ones too)
    _widths: dict[str, int]  # each figure column's width: the widest cell it has shown
    _tick: int
    _target_width: int | None = None  # None: as wide as it is
    _compact = False  # the progress and bytes cells in brief: the pane is too narrow for them whole
    _shown: tuple[str, ...] = COLUMNS  # the table's columns: fewer where even brief ones do not fit

    def _row_cells(self, job: JobView) -> list[Text]:
        raise NotImplementedError  # JobsPane's

    def _refresh_job(self, job_id: str) -> None:
        raise NotImplementedError  # JobsPane's

    def _order_rows(self, table: JobsTable) -> None:
        raise NotImplementedError  # JobsPane's

    def on_resize(self) -> None:
        self._fit_target()

    def _fit_target(self) -> None:
        """Give the target column what the figures leave, so that no figure is pushed out of sight;
        where they would leave it less than MIN_TARGET, the figures go compact (row_cells), and
        where even those would, columns leave the table (HIDDEN_FIRST)."""
        table = self.query_one("#jobs-table", JobsTable)
        if self.size.width:
            compact, shown = self._columns_that_fit(table)
            if shown != self._shown:
                self._show_columns(shown, compact)
            elif compact != self._compact:
                self._set_compact(compact)
        # The widths the table was last told to measure, not its own (they lag a refresh).
        figures = [self._widths.get(name, len(self._label(name))) for name in self._shown if name != "target"]
        width = table.give_room("target", figures, self.size.width, MIN_TARGET)
        if width is not None:
            self._target_width = width
            for job in self.jobs:
                self._refresh_job(job.id)

    def _columns_that_fit(self, table: JobsTable) -> tuple[bool, tuple[str, ...]]:
        """The first of: every column whole, every column in brief, then in brief without the
        columns of HIDDEN_FIRST one by one, that leaves the target MIN_TARGET cells (else the last)."""
        shown: tuple[str, ...] = COLUMNS
        for compact in (False, True):
            widths = self._figure_widths(compact)
            shown = COLUMNS
            for hidden in (None, *HIDDEN_FIRST) if compact else (None,):
                shown = tuple(name for name in shown if name != hidden)
                others = [widths[name] for name in shown if name != "target"]
                # The scrollbar's 2 cells are not held back here: a column less for them would cost a
                # figure on every screen (the bytes at 110 columns), where more jobs than the table
                # shows push at most the last 2 cells under the scrollbar.
                if table.room_left(others, self.size.width, scrollbar=False) >= MIN_TARGET:
                    return compact, shown
        return True, shown

    def _figure_widths(self, compact: bool) -> dict[str, int]:
        """Each figure column's width with its cells whole or in brief: those it has shown (in the
        way it shows them now), or those the jobs' rows would show."""
        if compact == self._compact:
            return {name: self._widths.get(name, len(self._label(name))) for name in COLUMNS if name != "target"}
        rows = [row_cells(job, self._snapshots.get(job.id), self._tick, Style(), None, compact=compact)
                for job in self.jobs]
        labels = {name: COMPACT_LABELS.get(name, name) if compact else name for name in COLUMNS}
        return {name: max([len(labels[name]), *(row[index].cell_len for row in rows)])
                for index, name in enumerate(COLUMNS) if name != "target"}

    def _set_compact(self, compact: bool) -> None:
        """Draw every row's progress and bytes whole or in brief, those columns measured anew (narrowed too)."""
        self._compact = compact
        table = self.query_one("#jobs-table", JobsTable)
        for column, label in COMPACT_LABELS.items():
            if column in self._shown:
                table.columns[ColumnKey(column)].label = Text(label if compact else column)
        changing: list[str] = [column for column in ("progress", "bytes") if column in self._shown]
        for job_id, cells in self._measure_rows_anew():
            table.update_row(job_id, {column: cells[COLUMNS.index(column)] for column in changing}, widen=changing)
        table.refresh()  # the headers (with no row, nothing else repaints them)

    def _show_columns(self, shown: tuple[str, ...], compact: bool) -> None:
        """Give the table the columns `shown` (cells whole or in brief), every row drawn anew. Only
        on a resize that crosses a level: DataTable has no way to hide a column (a width of 0 still
        takes its padding), so the columns are made again."""
        self._shown, self._compact = shown, compact
        table = self.query_one("#jobs-table", JobsTable)
        table.clear(columns=True)
        for column in shown:
            table.add_column(self._label(column), key=column)
        for job_id, cells in self._measure_rows_anew():
            table.add_row(*self._shown_cells(cells), key=job_id)
        self._order_rows(table)

    def _measure_rows_anew(self) -> list[tuple[str, list[Text]]]:
        """Every job's row drawn again (as the table's columns and compactness now ask), and each
        figure column's width measured from those rows alone (narrowed too)."""
        self._widths = {column: len(self._label(column)) for column in COLUMNS if column != "target"}
        rows = []
        for job in self.jobs:
            cells = self._row_cells(job)
            self._cells[job.id] = tuple(cells)
            for column, cell in zip(COLUMNS, cells, strict=True):
                if column != "target":
                    self._widths[column] = max(self._widths[column], cell.cell_len)
            rows.append((job.id, cells))
        return rows

    def _shown_cells(self, cells: list[Text]) -> list[Text]:
        """A row's cells (one per COLUMNS) for the columns the table has."""
        return [cell for column, cell in zip(COLUMNS, cells, strict=True) if column in self._shown]

    def _label(self, column: str) -> str:
        return COMPACT_LABELS.get(column, column) if self._compact else column
