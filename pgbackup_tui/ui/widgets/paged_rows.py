"""A DataTable's rows shown a page at a time: thousands of rows never freeze the UI.

add_row costs about 25 µs a row and DataTable then measures every cell of the new rows at once
(80 µs a row), then lays the screen out again: a list of 5,000 backups added in one handler froze
the UI for half a second, and adding it in batches still took 50 ms a batch of 250 and two
seconds in all. So a table shows its first `page` rows and a last row that stands for the rest
("…  4,900 more backups (enter)"); its owner calls `next_page` when that row is chosen. A page
is 100 rows, two to four screens: the frame that shows a page adds and measures its rows and
then paints the rows in view. At 200 rows the first page's frame took 85-120 ms on a machine at
half the reference's pace (scripts/bench_tui.py, 5,000 backups), 75-95 ms at 100; the next
page's frame still took 85-130 ms at 100 (mostly DataTable painting the rows in view, each cell
through Rich, whatever the page's length).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from rich.text import Text
from textual.widgets import DataTable

T = TypeVar("T")
PAGE_ROWS = 100  # rows added at a time: about 10 ms of adding and 15 ms of measuring at half the reference pace
MORE_KEY = "\0more"  # the key of the last row while rows are left (no path or name starts with NUL)


class PagedRows(Generic[T]):
    """Fills `table` from `items` with `add(item)`, a page at a time; `noun` names them in the last row."""

    def __init__(self, table: DataTable[str | Text], noun: str, page: int = PAGE_ROWS) -> None:
        self.table = table
        self.noun = noun
        self.page = page
        self._items: Sequence[T] = ()
        self._add: Callable[[T], object] = lambda item: None
        self._shown = 0

    @property
    def shown(self) -> int:
        """How many items are rows of the table."""
        return self._shown

    @property
    def left(self) -> int:
        """How many items the last row stands for."""
        return len(self._items) - self._shown

    def show(self, items: Sequence[T], add: Callable[[T], object], at_least: int = 0) -> None:
        """Fill the (cleared) table: the first page, or pages up to item `at_least` included."""
        self._items, self._add, self._shown = items, add, 0
        self._extend(max(self.page, at_least + 1))

    def next_page(self) -> bool:
        """Replace the last row with the next page, the cursor on its first row; False when none is left."""
        if not self.left:
            return False
        row = self._shown
        self._extend(self.page)
        self.table.move_cursor(row=row)
        return True

    def reveal(self, index: int) -> None:
        """Show pages until item `index` is a row."""
        if index >= self._shown:
            self._extend(index + 1 - self._shown)

    def _extend(self, count: int) -> None:
        table = self.table
        if MORE_KEY in table.rows:
            table.remove_row(MORE_KEY)
        end = min(len(self._items), self._shown + max(count, 1))
        for item in self._items[self._shown:end]:
            self._add(item)
        self._shown = end
        if self.left:
            cells = [Text("")] * len(table.columns)
            cells[0] = Text("…", style="italic")
            # Short: at 80 columns a tab is 40 wide, and this cell widens its column like any other.
            cells[min(1, len(cells) - 1)] = Text(f"{self.left:,} more {self.noun} (enter)", style="italic")
            table.add_row(*cells, key=MORE_KEY)
