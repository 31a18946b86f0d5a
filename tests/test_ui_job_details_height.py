"""Pilot test: a job that starts does not lay the screen out again for its detail lines (issue 15,
point 3): queued, its paths line is blank in the height the last job's left; running, its result
line is; each shows its text once it has one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from textual.app import App, ComposeResult
from textual.widgets import Static

from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.jobs import JobFinished, JobResult, JobState, StateChanged
from pgbackup_tui.core.plans import DumpPlan
from pgbackup_tui.ui.widgets.jobs_pane import JobsPane
from pgbackup_tui.ui.widgets.jobs_table import JobsTable

SIZE = (60, 30)
LOG = Path("/var/lib/pgbackup-tui/state/logs/20260101T000000Z-dump-warehouse-0badc0de.log")  # wraps at 60


class PaneHost(App[None]):
    def compose(self) -> ComposeResult:
        yield JobsPane()


def layouts_counted(app: App[None], monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The times the screen is laid out from now on (appended as it happens)."""
    layouts: list[float] = []
    screen_layout = app.screen._refresh_layout

    def counted_layout(*args: object, **kwargs: object) -> None:
        layouts.append(time.monotonic())
        screen_layout(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(app.screen, "_refresh_layout", counted_layout)
    return layouts


def dump_job() -> DumpJob:
    return DumpJob(DumpPlan(target=target_from_dsn("host=db1.example user=app", label="prod"), dbname="warehouse"))


async def test_a_starting_job_keeps_the_detail_lines_heights_the_last_job_left(home, monkeypatch) -> None:
    done = dump_job()
    done.state, done.started_at, done.log_path = JobState.FAILED, time.time() - 5, LOG
    done.result = JobResult(JobState.FAILED, 1, "server 'prod' (db1.example:5432): connection refused; is the "
                            "server running and listening on that host and port?", LOG, 1.0)
    app = PaneHost()
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(JobsPane)
        pane.add_job(done)
        await pilot.pause()
        paths, result = app.query_one("#job-paths", Static), app.query_one("#job-result", Static)
        heights = paths.size.height, result.size.height
        assert min(heights) >= 2, heights  # the log's path and the message wrap (blank, each would be 1 line)

        queued = dump_job()  # no log yet, no result yet
        pane.add_job(queued)
        await pilot.pause()
        assert (paths.size.height, result.size.height) == heights
        assert str(paths.render()).strip() == "" and str(result.render()).strip() == ""

        queued.state, queued.started_at, queued.log_path = JobState.RUNNING, time.time(), LOG
        pane._forward(StateChanged(queued.id, JobState.RUNNING))
        await pilot.pause()
        await pilot.pause()
        assert (paths.size.height, result.size.height) == heights
        assert "log:" in str(paths.render())

        # Ending with a message as high as the last job's: no layout of the screen at all (partial: its
        # bar stays, and its state is no wider than "running" in the table).
        layouts = layouts_counted(app, monkeypatch)
        queued.state = JobState.PARTIAL
        queued.result = JobResult(JobState.PARTIAL, 0, "3 tables of 50 could not be read (permission denied "
                                  "for table orders); the others are in the archive", LOG, 2.0)
        pane._forward(JobFinished(queued.id, queued.result))
        await pilot.pause()
        await pilot.pause()
        assert "permission denied" in str(result.render())
        assert (paths.size.height, result.size.height) == heights
        assert layouts == []


async def test_a_new_job_in_the_table_does_not_lay_the_screen_out(home, monkeypatch) -> None:
    """The table's height is its own, not its rows' (jobs_table.py): a job added shows its row with a
    repaint, where a table of `height: auto` laid the whole screen out twice for it."""
    done = dump_job()
    done.state, done.started_at, done.log_path = JobState.SUCCEEDED, time.time() - 5, LOG
    done.result = JobResult(JobState.SUCCEEDED, 0, "dumped warehouse", LOG, 1.0)
    app = PaneHost()
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(JobsPane)
        pane.add_job(done)
        await pilot.pause()
        await pilot.pause()
        table = app.query_one("#jobs-table", JobsTable)
        height = table.size.height
        layouts = layouts_counted(app, monkeypatch)
        added = [dump_job() for _ in range(3)]
        for job in added:
            pane.add_job(job, select=False)
            await pilot.pause()
            await pilot.pause()
        assert layouts == []
        assert table.size.height == height
        shown = [str(table.get_row(job.id)[0]) for job in added]  # in the table, and on screen:
        assert shown == ["dump"] * 3
        strips = app.screen._compositor.render_strips()
        screen_text = "\n".join("".join(segment.text for segment in line) for line in strips)
        assert [line.split()[0] for line in screen_text.splitlines()[1:5]] == ["dump"] * 4, screen_text
