"""Pilot tests: the Jobs table repaints only the row whose cell changed, and still shows every
change, the header and the rows aligned after a column's width changed; the progress bar of a job
whose size is not known yet animates at 4 frames a second (issue 15, point 3)."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets.data_table import ColumnKey, RowKey

from pgbackup_tui.ui.widgets.job_progress_bar import INDETERMINATE_FRAME_S, CalmBar, JobProgressBar
from pgbackup_tui.ui.widgets.jobs_table import JobsTable


class TableHost(App[None]):
    def compose(self) -> ComposeResult:
        yield JobsTable(id="t", cursor_type="row")


def lines(table: JobsTable) -> list[str]:
    return ["".join(segment.text for segment in table.render_line(y)).rstrip() for y in range(4)]


def cells_drawn(table: JobsTable, row: str, column: str) -> list:
    """The keys of the cached renderings of one cell (DataTable's cache: row key, column key, ...)."""
    keys = table._cell_render_cache.keys()  # noqa: SIM118  # LRUCache has no __iter__
    return [key for key in keys if key[:2] == (RowKey(row), ColumnKey(column))]


async def test_a_cell_update_redraws_its_row_only_and_widths_stay_aligned() -> None:
    app = TableHost()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(JobsTable)
        table.add_column("name", key="name")
        table.add_column("bytes", key="bytes")
        for key in ("a", "b", "c"):
            table.add_row(Text(key), Text("1.0 MB", justify="right"), key=key)
        await pilot.pause()
        assert [line.split() for line in lines(table)[1:]] == [["a", "1.0", "MB"], ["b", "1.0", "MB"],
                                                                ["c", "1.0", "MB"]]
        table.update_cell("b", "bytes", Text("2.0 MB", justify="right"))  # the widths drawn are recorded
        table.update_cell("b", "bytes", Text("3.0 MB", justify="right"))
        count = table._update_count
        await pilot.pause()
        lines(table)
        names_drawn = cells_drawn(table, "b", "name")
        assert names_drawn
        table.update_cell("b", "bytes", Text("4.5 MB", justify="right"))
        assert table._update_count == count  # not an update of the whole table
        # the row's other cells stay drawn: only the changed one is rendered again
        assert all(key in table._cell_render_cache for key in names_drawn)
        assert not cells_drawn(table, "b", "bytes")
        await pilot.pause()
        assert "4.5 MB" in lines(table)[2] and "1.0 MB" in lines(table)[1] and "1.0 MB" in lines(table)[3]

        table.update_cell("c", "bytes", Text("12.5 MB / 15.0 MB", justify="right"), update_width=True)
        await pilot.pause()
        table.update_cell("a", "bytes", Text("9.9 MB", justify="right"))  # the first since the width changed
        await pilot.pause()
        header, *rows = lines(table)
        assert len({len(row) for row in rows}) == 1, rows  # right-justified figures end together
        assert rows[0].endswith("9.9 MB") and rows[2].endswith("12.5 MB / 15.0 MB")
        assert header.index("bytes") == rows[2].index("12.5")  # the header over its column

        name = table.columns[ColumnKey("name")]  # as the pane gives the target column room
        name.auto_width, name.width = False, 12
        table.update_cell("a", "name", Text("aa"))  # a width changed: header and rows drawn again
        await pilot.pause()
        header, *rows = lines(table)
        assert header.index("bytes") == rows[2].index("12.5") == len(" ") + 12 + 2
        assert rows[0].split()[0] == "aa" and rows[1].split()[0] == "b"


class BarHost(App[None]):
    def compose(self) -> ComposeResult:
        yield JobProgressBar(total=100, show_eta=False)


async def test_the_bar_of_a_job_of_unknown_size_animates_at_4_frames_a_second() -> None:
    app = BarHost()
    async with app.run_test(size=(60, 5)) as pilot:
        bar = app.query_one(JobProgressBar)
        inner = bar.query_one(CalmBar)
        bar.update(total=None)  # pg_dump still reading the catalog: the size is not known
        await pilot.pause()
        assert inner.auto_refresh == INDETERMINATE_FRAME_S == 0.25  # Textual's bar: 1/15 s
        bar.update(total=100, progress=40)
        await pilot.pause()
        assert inner.auto_refresh is None  # a known fraction repaints only when it moves
