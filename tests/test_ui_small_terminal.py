"""Pilot tests: on a small terminal (60x20, a tmux pane over SSH) the main screen shows the tree
and the tabs one above the other (side by side the tabs were squeezed out of sight), and the
backup and restore dialogs keep why Start is off and their buttons in view (and the backup
dialog its fields and options, on more lines)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from textual.widget import Widget
from textual.widgets import Button, Input, Select, Static

from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.jobs import JobResult, JobState
from pgbackup_tui.core.pgtools import CLIENT_DIRS_ENV
from pgbackup_tui.core.plans import DumpPlan
from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.screens.backup_dialog import BackupDialog
from pgbackup_tui.ui.screens.restore_dialog import RestoreDialog
from pgbackup_tui.ui.widgets.job_log import JobLog
from pgbackup_tui.ui.widgets.jobs_pane import JobsPane

from test_ui_jobs import DialogHost, settle, socket_target
from test_ui_snapshots import FAKE_CLIENT_MAJOR, fake_client_dir
from uiutil import wait_until

SMALL = (60, 20)


def in_view(widget: Widget) -> bool:
    """Whether all of the widget is drawn: none of it clipped by its containers or the screen."""
    region = widget.region
    return bool(region) and widget.screen.find_widget(widget).visible_region == region


async def test_the_tree_and_the_tabs_stack_when_they_do_not_fit_side_by_side(home) -> None:
    app = PgBackupApp()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        left, tabs = app.query_one("#left"), app.query_one("#tabs")
        assert left.region.height >= 4 and tabs.region.height >= 8, (left.region, tabs.region)
        assert tabs.region.width == SMALL[0] and tabs.region.y >= left.region.bottom

        await pilot.resize_terminal(80, 24)  # wide enough: side by side again
        await pilot.pause()
        assert left.region.right <= tabs.region.x and left.region.y == tabs.region.y
        assert tabs.region.width >= 40


async def test_the_backup_dialogs_buttons_stay_in_view_on_a_short_terminal(home, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(CLIENT_DIRS_ENV, str(fake_client_dir(tmp_path / "bin", FAKE_CLIENT_MAJOR)))
    target = target_from_dsn("host=db1.example port=5432 user=app", label="prod")
    dialog = BackupDialog(target, FAKE_CLIENT_MAJOR, "shop", stamp="20260101T000000Z")
    app = DialogHost(dialog)
    async with app.run_test(size=SMALL) as pilot:
        await settle(app, pilot)
        # Its rows of fields and options take more lines, not more columns: none is cut off.
        for field in ("#format", "#compress", "#jobs", "#schema-only", "#data-only", "#no-owner", "#no-privileges"):
            assert in_view(dialog.query_one(field)), field
        dialog.query_one("#compress", Input).focus()
        await pilot.press("6")
        dialog.query_one("#format", Select).value = "tar"  # Start off, and the line says why
        await pilot.pause()
        error = dialog.query_one("#backup-error", Static)
        assert "Compression: a tar dump is not compressed" in str(error.render())
        for widget in (error, dialog.query_one("#backup-start", Button), dialog.query_one("#backup-cancel", Button)):
            assert in_view(widget), widget


async def test_the_restore_dialogs_buttons_stay_in_view_on_a_short_terminal(sandbox, home) -> None:
    target = socket_target(sandbox)
    dumped = await DumpJob(DumpPlan(target=target, dbname="shop", schema_only=True)).run()
    assert dumped.state == JobState.SUCCEEDED, dumped.message
    dialog = RestoreDialog(dumped.output_path, {"sandbox": target}, "sandbox", "other")
    app = DialogHost(dialog)
    async with app.run_test(size=SMALL) as pilot:
        await settle(app, pilot)
        start = dialog.query_one("#restore-start", Button)
        assert not start.disabled
        for button in (start, dialog.query_one("#restore-cancel", Button)):
            assert in_view(button), button
        dialog.query_one("#target-db", Input).value = ""  # Start off, and the line says why
        await settle(app, pilot)
        error = dialog.query_one("#restore-error", Static)
        assert dialog.query_one("#restore-start", Button).disabled and str(error.render())
        assert in_view(error)



async def test_the_help_s_last_key_can_be_scrolled_into_view(home) -> None:
    # QA: at 80x24 (and 60x20) the help's list scrolled to its end still hid its last line(s),
    # "i  Write the schedules into your crontab": the list was as tall as the dialog, title and all.
    app = PgBackupApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        for size in ((80, 24), SMALL):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            scroll = app.screen.query_one("#help-dialog VerticalScroll")
            assert scroll.max_scroll_y > 0  # the help is longer than the screen: what this tests
            scroll.scroll_end(animate=False)
            await pilot.pause()
            assert scroll.region.bottom <= app.screen.query_one("#help-dialog").content_region.bottom, size
            shown = " ".join("".join(seg.text for seg in line) for line in app.screen._compositor.render_strips())
            assert "Write the schedules into your crontab" in shown, size


@pytest.mark.parametrize("size, zoom", [(SMALL, False), (SMALL, True), ((60, 24), False), ((100, 20), False),
                                        ((80, 24), False)])
async def test_the_jobs_tab_keeps_a_few_log_lines_on_a_short_terminal(home, size, zoom) -> None:
    # QA: at 60x20 the Jobs tab showed the table, the job's result and paths, and no log line at
    # all ("log:" last, the log box pushed out of sight); z was needed to see one.
    app = PgBackupApp()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        job = finished_dump()
        pane = app.query_one(JobsPane)
        pane.add_job(job, lines=[(f"pg_dump: line {n}", "info") for n in range(30)])
        await pilot.press("2", *(["z"] if zoom else []))
        log = pane.query_one(JobLog)
        lines = [pane.query_one(selector) for selector in ("#job-title", "#job-result", "#jobs-table")]

        def shown() -> str:
            strips = app.screen._compositor.render_strips()
            return "\n".join("".join(segment.text for segment in line) for line in strips)

        def fits() -> bool:
            return (log.scrollable_content_region.height >= 3 and in_view(log) and all(map(in_view, lines))
                    and "pg_dump: line 29" in shown())

        # The pane's resize caps the table, a layout more; the log's scroll to its end comes after
        # a refresh: waited for (the timeout only guards a hang), then said if it never came.
        with contextlib.suppress(AssertionError):
            await wait_until(fits, timeout=30)
        assert log.scrollable_content_region.height >= 3 and in_view(log), layout_of(pane)
        assert all(map(in_view, lines)) and "pg_dump: line 29" in shown(), shown()


def layout_of(pane: JobsPane) -> list[tuple[str | None, object]]:
    """Where each of the pane's parts is (said when the log has too little room), its classes first."""
    return [("classes", sorted(pane.classes)), *((child.id, child.region) for child in pane.children)]


def finished_dump() -> DumpJob:
    """A dump as the pane shows one that succeeded (its result and paths long; no dump needed)."""
    job = DumpJob(DumpPlan(target=target_from_dsn("host=db1.example user=app", label="prod"), dbname="shop"))
    folder = Path("/home/dba/.local/share/pgbackup-tui/backups/prod/shop")
    job.log_path = Path("/home/dba/.local/state/pgbackup-tui/log/20261205T094153Z-dump-shop-775d830a.log")
    job.state = JobState.SUCCEEDED
    job.result = JobResult(JobState.SUCCEEDED, 0, f"{folder}/20261205T094153Z.dump (22.6 MB in 2.8s)", job.log_path,
                           2.8, output_path=folder / "20261205T094153Z.dump")
    return job
