"""Memory bounded whatever the number of jobs and the length of their logs (issue 15, point 3):
the job log view is capped and says so (the file on disk keeps every line); the footer lets go of
the keys it replaced (Textual issue #6666); full garbage collections wait for an idle moment; the
Jobs pane keeps no log lines for a finished job that is not selected (read again when it is)."""

from __future__ import annotations

import gc
from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.plans import DumpPlan
from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.idle_gc import CONSIDER, IDLE_S, OUT_OF_REACH, SPACING_S
from pgbackup_tui.ui.widgets.job_log import LOG_LINES_KEPT, JobLog
from pgbackup_tui.ui.widgets.jobs_pane import JobsPane
from pgbackup_tui.ui.widgets.lean_footer import LeanFooter

SIZE = (80, 24)


class LogHost(App[None]):
    def compose(self) -> ComposeResult:
        yield JobLog(id="job-log")


def row_text(log: JobLog, y: int) -> str:
    return "".join(segment.text for segment in log.render_line(y)).rstrip()


async def test_a_long_log_keeps_the_last_lines_and_its_first_row_points_to_the_file():
    app = LogHost()
    async with app.run_test(size=SIZE) as pilot:
        log = app.query_one(JobLog)
        log.write_levelled([(f"pg_dump: dumping contents of table public.t_{n:05}", "info")
                            for n in range(3 * LOG_LINES_KEPT)])
        await pilot.pause()
        assert len(log.lines) == LOG_LINES_KEPT  # rows kept in the view (these lines do not wrap at 80)
        assert len(log.written_lines) == LOG_LINES_KEPT
        assert log.lines[-1].endswith(f"t_{3 * LOG_LINES_KEPT - 1:05}")
        assert log.older_lines_hidden
        log.log_path = Path("/var/lib/pgbackup/jobs/abc/job.log")
        log.scroll_home(animate=False)
        await pilot.pause()
        assert row_text(log, 0) == "… earlier lines are in the log file: /var/lib/pgbackup/jobs/abc/job.log"
        assert row_text(log, 1).endswith(f"t_{2 * LOG_LINES_KEPT + 1:05}")  # the oldest row kept gave way to the note

        log.clear()
        log.write_levelled([("one line", "info")])
        await pilot.pause()
        assert not log.older_lines_hidden
        assert row_text(log, 0) == "one line"  # a short log shows all of itself, no note


class FooterHost(App[None]):
    BINDINGS = [Binding("x", "bell", "Ring"), Binding("y", "bell", "Ring again")]

    def compose(self) -> ComposeResult:
        yield LeanFooter()


async def test_the_footer_keeps_no_watcher_of_the_keys_it_replaced():
    app = FooterHost()
    async with app.run_test(size=SIZE) as pilot:
        footer = app.query_one(Footer)
        for _ in range(10):  # each change of the bindings builds the keys again
            app.screen.refresh_bindings()
            await pilot.pause()
            await pilot.pause()
        keys = list(footer.query(FooterKey))
        assert keys
        watchers = getattr(footer, "__watchers")["compact"]
        # Textual's own Footer keeps one entry per key it ever made (11 here), each holding its key.
        assert 0 < len(watchers) <= len(keys)
        assert all(watcher in keys for watcher, _ in watchers)


async def test_full_collections_wait_for_an_idle_moment_and_thresholds_come_back(home):
    before = gc.get_threshold()
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        collector = app._idle_gc
        assert gc.get_threshold()[2] == OUT_OF_REACH  # no full collection on the allocation path
        for _ in range(CONSIDER):
            gc.collect(1)  # each one counts towards a full collection, as in a busy app
        collector._last_full -= SPACING_S  # due
        await pilot.press("down")  # but the user is there: not now
        assert collector.check() is False and collector.collections == 0
        collector._last_input -= IDLE_S  # no key for IDLE_S: now
        assert collector.check() is True and collector.collections == 1
        assert gc.get_count()[2] == 0
        assert collector.check() is False  # nothing due since
    assert gc.get_threshold() == before  # put back when the app ends


class PaneHost(App[None]):
    def compose(self) -> ComposeResult:
        yield JobsPane()


async def test_finished_jobs_not_selected_keep_no_log_lines_and_read_the_file_again_when_selected(sandbox, home):
    app = PaneHost()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(JobsPane)
        target = target_from_dsn(sandbox.dsn("postgres"), label="sandbox")
        first, second = (DumpJob(DumpPlan(target=target, dbname="shop")) for _ in range(2))
        pane.add_job(first)
        await app.run_worker(first.run()).wait()
        await pilot.pause()
        first_lines = pane.log_lines(first)
        assert any("pg_dump: dumping contents of table" in text for text, _ in first_lines)

        pane.add_job(second)  # selected: the first one, finished, lets go of its lines
        assert pane.log_lines(first) == []
        await app.run_worker(second.run()).wait()
        await pilot.pause()
        assert pane.log_lines(second)  # finished but selected: kept

        pane.select_job(first.id)  # read again from its file: the same lines, the file named
        await pilot.pause()
        log = pane.query_one(JobLog)
        assert pane.log_lines(first) == first_lines
        assert log.written_lines == [text for text, _ in first_lines]
        assert log.log_path == first.log_path is not None
        assert pane.log_lines(second) == []
