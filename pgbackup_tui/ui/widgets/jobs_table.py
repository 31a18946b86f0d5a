"""The Jobs pane's table: a DataTable whose cell updates repaint only the row that changed, and
whose one column of variable width (the target) gives way to the figures (give_room).

DataTable.update_cell counts an update of the whole table: every cached rendering (each cell of
each row, each line) is keyed by that count, so a running job's figures changing (2.5 frames a
second, plus the elapsed clock) rendered every row again, the finished jobs' too: in
scripts/bench_tui.py a quarter of the app's CPU while a dump ran (py-spy), more with more jobs
shown. Here an update that keeps the column widths forgets the cached renderings of the cells it
sets and of their row only (and the cached lines, cheap to build again from the rows') and repaints
that row's region once (update_row: the cells a frame changes together): the row's other cells are
drawn from the cache. An update that may change a width, or the first one after the columns'
widths changed (the target column given way), goes through DataTable's own path: every row and the
header drawn again.

Its height does not follow its rows (DEFAULT_CSS; JobsPane gives it 40 % of the pane): a row added
or a column widened changes its scrollbars and repaints it, without a layout of the screen (a row
removed, as the list keeps its newest 50, still asks for one: DataTable's remove_row). With
`height: auto` each new job laid the whole screen out twice (the table grew, then every widget
below it had moved and asked for another), about 25 ms each at 120x40 (scripts/bench_tui.py): as
much of the app's CPU as a dump's whole stream of progress frames. A user with jobs in the store
saw the table at its full height anyway; it is now that height from the first job.

Its cache of rendered cells holds CELL_CACHE entries, not DataTable's 10,000: entries of the rows
removed as the list keeps its newest 50 jobs stayed until 10,000 were reached (scripts/bench_tui.py
--trace-memory: that cache was most of what grew from the 51st finished job to the 85th). Its two
caches know their keys by row and cell (CacheByPlace): forgetting a cell's renderings was a scan of
every key, each compared through DataTable's keys' Python __eq__, 40 % of the table's cost a frame.
Its cells are drawn as OneLineTable draws them.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping
from typing import Any

from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets.data_table import CellDoesNotExist, CellKey, ColumnKey, RowKey

from .one_line_table import OneLineTable


CELL_CACHE = 2_000  # cells drawn: 7 a row, the visible rows (40 % of the screen) with and without the cursor
ROW_CACHE = 1_000  # DataTable's


class CacheByPlace(LRUCache[Any, Any]):
    """An LRUCache that finds its keys by their first `width` items, their place (DataTable keys its
    cells' renderings (row, column, styles...) and its rows' (row, line, styles...)). The index is
    built again from the keys left whenever as many were added as the cache holds, so that keys the
    cache let go of do not pile up in it."""

    def __init__(self, maxsize: int, width: int) -> None:
        super().__init__(maxsize)
        self._width = width
        self._by_place: dict[tuple[Hashable, ...], set[tuple[Hashable, ...]]] = {}
        self._added = 0

    def set(self, key: Any, value: Any) -> None:
        super().set(key, value)
        self._by_place.setdefault(key[:self._width], set()).add(key)
        self._added += 1
        if self._added > self.maxsize:
            self._added = 0
            self._by_place = {}
            for kept in self.keys():
                self._by_place.setdefault(kept[:self._width], set()).add(kept)

    __setitem__ = set

    def forget(self, place: tuple[Hashable, ...]) -> None:
        """Discard every key that starts with `place`."""
        for key in self._by_place.pop(place, ()):
            self.discard(key)

    def clear(self) -> None:
        super().clear()
        self._by_place = {}


class JobsTable(OneLineTable[Text]):
    """DataTable with row-local cell updates and a height of its own (see the module docstring)."""

    DEFAULT_CSS = "JobsTable { height: 1fr; }"  # never `auto`: its rows do not lay the screen out (see the top)
    # Widget's, without layout=True: what it holds changes its scrollbars, not its size.
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cell_render_cache: CacheByPlace = CacheByPlace(CELL_CACHE, 2)  # (row, column, ...)
        self._row_render_cache: CacheByPlace = CacheByPlace(ROW_CACHE, 1)  # (row, line, ...)

    def watch_virtual_size(self, size: Size) -> None:
        # What the layout would do for a scrolling widget (ScrollView._size_updated): the scrollbars
        # (shown or hidden, a layout then; their thumbs) and the scroll offsets kept in range.
        self._scrollbar_changes.clear()
        self._scroll_update(size)

    _widths_drawn: tuple[int, ...] = ()  # the columns' widths when every row was last drawn again

    # DataTable measures new rows and changed cells when idle, and keys its cached renderings by its
    # count of updates, not by the widths: a repaint between an update and that measure cached cells
    # cut to the old widths ("succe" for "succeeded", "1" for "100%" once the columns were made
    # again at a resize), kept until the next update. A measure that changes a width counts as one.
    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        before = self._render_widths()
        super()._update_dimensions(new_rows)
        self._widths_changed(before)

    def _update_column_widths(self, updated_cells: set[CellKey]) -> None:
        before = self._render_widths()
        super()._update_column_widths(updated_cells)
        self._widths_changed(before)

    def _render_widths(self) -> tuple[int, ...]:
        return tuple(column.get_render_width(self) for column in self.ordered_columns)

    def _widths_changed(self, before: tuple[int, ...]) -> None:
        if self._render_widths() != before:
            self._update_count += 1
            self.refresh()

    def room_left(self, others: Iterable[int], available: int, *, scrollbar: bool = True) -> int:
        """The cells `available` leave one more column once the columns of widths `others` (their
        contents'), their padding and (`scrollbar`) the vertical scrollbar have theirs (negative:
        they do not fit)."""
        pad = 2 * self.cell_padding
        bar = self.styles.scrollbar_size_vertical if scrollbar else 0
        return available - bar - pad - sum(pad + w for w in others)

    def give_room(self, column: str, others: Iterable[int], available: int, minimum: int) -> int | None:
        """Make `column` as wide as `available` cells leave once the other columns (their contents'
        widths: `others`) and the scrollbar have theirs, at least `minimum`, so that no other column
        is pushed out of sight; its new width, None when it had that width already."""
        width = max(minimum, self.room_left(others, available))
        target = self.columns[ColumnKey(column)]
        if not target.auto_width and target.width == width:
            return None
        target.auto_width, target.width = False, width  # auto widths only ever grow
        return width

    def update_cell(self, row_key: RowKey | str, column_key: ColumnKey | str, value: Text, *,
                    update_width: bool = False) -> None:
        self.update_row(row_key, {column_key: value}, widen={column_key} if update_width else ())

    def update_row(self, row_key: RowKey | str, cells: Mapping[str, Text] | Mapping[ColumnKey | str, Text], *,
                   widen: Collection[ColumnKey | str] = ()) -> None:
        """Set cells of one row (column key: value), repainting the row once; the columns in `widen`
        are measured again (DataTable's update_width: every row drawn again)."""
        widths = self._render_widths()
        row = RowKey(row_key) if isinstance(row_key, str) else row_key
        index = self._row_locations.get(row)
        if widen or widths != self._widths_drawn or index is None:
            self._widths_drawn = widths
            for column_key, value in cells.items():
                super().update_cell(row_key, column_key, value, update_width=column_key in widen)
            return
        columns = {ColumnKey(key) if isinstance(key, str) else key: value for key, value in cells.items()}
        for column in columns:  # all known before any is set: never a row half updated
            if column not in self._column_locations:
                raise CellDoesNotExist(f"No cell exists for row_key={row!r}, column_key={column!r}.")
        for column, value in columns.items():
            self._data[row][column] = value
            # Only this cell's rendering is forgotten: the row's line is drawn again from its cells,
            # the others from the cache (a frame changes 3-4 of a row's 7 cells).
            self._cell_render_cache.forget((row, column))
        self._row_renderable_cache.discard((self._update_count, index))
        self._row_render_cache.forget((row,))
        self._line_cache.clear()
        self.refresh_row(index)

    def order_rows(self, row_keys: Iterable[str]) -> None:
        """Show the rows in the order of `row_keys` (every row's key, once): DataTable.sort, by key
        rather than by the cells' values (a job's row does not hold when it was created). The
        cursor stays at its index: the caller moves it back onto its row."""
        self._row_locations = TwoWayDict({RowKey(key): index for index, key in enumerate(row_keys)})
        self._update_count += 1  # every cache of DataTable's is keyed by it (rows' places, offsets, lines)
        self.refresh()

    def remove_row(self, row_key: RowKey | str) -> None:
        super().remove_row(row_key)
        row = RowKey(row_key) if isinstance(row_key, str) else row_key
        for column in self.columns:
            self._cell_render_cache.forget((row, column))
        self._row_render_cache.forget((row,))
