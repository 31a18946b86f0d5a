"""The Jobs pane's table: a DataTable whose cell updates repaint only the row that changed, and
whose one column of variable width (the target) gives way to the figures (give_room).

DataTable.update_cell counts an update of the whole table: every cached rendering (each cell of
each row, each line) is keyed by that count, so a running job's figures changing (2.5 frames a
second, plus the elapsed clock) rendered every row again, the finished jobs' too: in
scripts/bench_tui.py a quarter of the app's CPU while a dump ran (py-spy), more with more jobs
shown. Here an update that keeps the column widths forgets the cached rendering of that cell and
of its row only (and the cached lines, cheap to build again from the rows') and repaints that row's
region: the row's other cells are drawn from the cache. An
update that may change a width, or the first one after the columns' widths changed (the target
column given way), goes through DataTable's own path: every row and the header drawn again.

Its cache of rendered cells holds CELL_CACHE entries, not DataTable's 10,000: entries of the rows
removed as the list keeps its newest 50 jobs stayed until 10,000 were reached (scripts/bench_tui.py
--trace-memory: that cache was most of what grew from the 51st finished job to the 85th).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.cache import LRUCache
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, RowKey


CELL_CACHE = 2_000  # cells drawn: 7 a row, the visible rows (40 % of the screen) with and without the cursor


class JobsTable(DataTable[Text]):
    """DataTable with row-local cell updates (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cell_render_cache = LRUCache(CELL_CACHE)

    _widths_drawn: tuple[int, ...] = ()  # the columns' widths when every row was last drawn again

    def give_room(self, column: str, others: Iterable[int], available: int, minimum: int) -> int | None:
        """Make `column` as wide as `available` cells leave once the other columns (their contents'
        widths: `others`) and the scrollbar have theirs, at least `minimum`, so that no other column
        is pushed out of sight; its new width, None when it had that width already."""
        pad = 2 * self.cell_padding
        width = max(minimum, available - self.styles.scrollbar_size_vertical - pad - sum(pad + w for w in others))
        target = self.columns[ColumnKey(column)]
        if not target.auto_width and target.width == width:
            return None
        target.auto_width, target.width = False, width  # auto widths only ever grow
        return width

    def update_cell(self, row_key: RowKey | str, column_key: ColumnKey | str, value: Text, *,
                    update_width: bool = False) -> None:
        widths = tuple(column.get_render_width(self) for column in self.ordered_columns)
        row = RowKey(row_key) if isinstance(row_key, str) else row_key
        index = self._row_locations.get(row)
        if update_width or widths != self._widths_drawn or index is None:
            self._widths_drawn = widths
            super().update_cell(row_key, column_key, value, update_width=update_width)
            return
        column = ColumnKey(column_key) if isinstance(column_key, str) else column_key
        if column not in self._column_locations:
            raise CellDoesNotExist(f"No cell exists for row_key={row!r}, column_key={column!r}.")
        self._data[row][column] = value
        self._row_renderable_cache.discard((self._update_count, index))
        # The row's line is drawn again, from its cells: only this one's rendering is forgotten
        # (a frame changes 1-3 of a row's 7 cells; each drawn again cost a Rich render).
        for cell_key in [key for key in self._cell_render_cache.keys() if key[:2] == (row, column)]:  # noqa: SIM118
            self._cell_render_cache.discard(cell_key)
        for line_key in [key for key in self._row_render_cache.keys() if key[0] == row]:  # noqa: SIM118  # no __iter__
            self._row_render_cache.discard(line_key)
        self._line_cache.clear()
        self.refresh_row(index)
