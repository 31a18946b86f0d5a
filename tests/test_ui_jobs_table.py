"""Pilot tests: the Jobs table repaints only the row whose cell changed, and still shows every
change, the header and the rows aligned after a column's width changed; the progress bar of a job
whose size is not known yet moves in the Jobs pane's frames, with no timer of its own (issue 15,
point 3)."""

from __future__ import annotations

import asyncio
import time

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets.data_table import ColumnKey, RowKey

from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.jobs import JobState, ProgressUpdated, StateChanged
from pgbackup_tui.core.plans import DumpPlan
from pgbackup_tui.core.progress import ProgressSnapshot
from pgbackup_tui.ui.widgets.job_progress_bar import JobProgressBar
from pgbackup_tui.ui.widgets.jobs_pane import FRAME_S, JobsPane
from pgbackup_tui.ui.widgets.jobs_table import CacheByPlace, JobsTable
from uiutil import wait_until


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



async def test_cells_of_a_row_set_together_repaint_it_once_and_forget_only_their_renderings() -> None:
    app = TableHost()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(JobsTable)
        for column in ("name", "bytes", "left"):
            table.add_column(column, key=column)
        for key in ("a", "b"):
            table.add_row(Text(key), Text("1.0 MB", justify="right"), Text("5s"), key=key)
        await pilot.pause()
        table.update_cell("b", "left", Text("4s"))  # the widths drawn are recorded
        await pilot.pause()
        lines(table)
        names_drawn, a_drawn = cells_drawn(table, "b", "name"), cells_drawn(table, "a", "bytes")
        assert names_drawn and a_drawn
        repaints: list[int] = []
        refresh_row = table.refresh_row

        def counted(row_index: int) -> JobsTable:
            repaints.append(row_index)
            return refresh_row(row_index)

        table.refresh_row = counted  # type: ignore[method-assign]
        table.update_row("b", {"bytes": Text("2.5 MB", justify="right"), "left": Text("3s")})
        assert repaints == [1]
        assert not cells_drawn(table, "b", "bytes") and not cells_drawn(table, "b", "left")
        assert all(key in table._cell_render_cache for key in names_drawn + a_drawn)
        await pilot.pause()
        assert lines(table)[2].split() == ["b", "2.5", "MB", "3s"]
        assert lines(table)[1].split() == ["a", "1.0", "MB", "5s"]

        table.remove_row("b")  # its renderings are not kept, nor known by place
        await pilot.pause()
        lines(table)
        assert not [key for key in table._cell_render_cache.keys() if key[0] == RowKey("b")]  # noqa: SIM118
        assert not [place for place in table._cell_render_cache._by_place if place[0] == RowKey("b")]


def test_a_cache_by_place_forgets_every_key_of_a_place_and_its_index_stays_bounded() -> None:
    cache = CacheByPlace(50, 2)
    for n in range(1_000):
        cache[("row", n % 7, n)] = n  # the oldest keys go as new ones come
        if n % 97 == 0:
            live = set(cache.keys())  # noqa: SIM118
            cache.forget(("row", 3))
            assert set(cache.keys()) == {key for key in live if key[:2] != ("row", 3)}  # noqa: SIM118
    # What the index holds follows what the cache holds, not everything ever added.
    assert sum(len(keys) for keys in cache._by_place.values()) <= 2 * 50 + 1
    assert len(list(cache.keys())) == 50  # noqa: SIM118
    cache.clear()
    assert cache._by_place == {}

class PaneHost(App[None]):
    def compose(self) -> ComposeResult:
        yield JobsPane()


async def test_the_bar_of_a_job_of_unknown_size_moves_in_the_panes_frames_with_no_timer_of_its_own(home) -> None:
    job = DumpJob(DumpPlan(target=target_from_dsn("host=db1.example user=app", label="prod"), dbname="warehouse"))
    app = PaneHost()
    async with app.run_test(size=(60, 20)) as pilot:
        pane = app.query_one(JobsPane)
        pane.add_job(job)
        await pilot.pause()
        bar = app.query_one(JobProgressBar)
        assert bar.total == 100 and "0%" in str(bar.bar_text())  # queued: at 0

        job.state, job.started_at = JobState.RUNNING, time.time()  # pg_dump reading the catalog: no size yet
        pane._forward(StateChanged(job.id, JobState.RUNNING))
        await pilot.pause()
        assert bar.percentage is None and str(bar.bar_text()).endswith("--%")  # the total unknown
        drawn: list[str] = []
        bar_text = bar.bar_text

        def recorded() -> Text:
            text = bar_text()
            drawn.append(text.markup)
            return text

        bar.bar_text = recorded  # type: ignore[method-assign]
        began = time.monotonic()
        await asyncio.sleep(1.5)
        window = time.monotonic() - began  # longer on a busy machine
        # The block moves, in the pane's frames only (at least FRAME_S apart): Textual's bar repainted
        # itself 15 times a second.
        assert 2 <= len(drawn) <= window / FRAME_S + 1, drawn
        assert len(set(drawn)) >= 2, drawn

        known = ProgressSnapshot(elapsed_s=2.0, phase="copying data", percent=40.0)  # the size is known: 40 % done
        pane._forward(ProgressUpdated(job.id, known))
        await wait_until(lambda: bar.total == 100)
        await pilot.pause()  # its repaint
        assert str(bar.bar_text()).endswith("40%")
        drawn.clear()
        await asyncio.sleep(1.0)
        assert drawn == []  # a known fraction is drawn when it moves, not at every frame
