"""The Backups tab with many backups (issue 15, point 3): a summary per backup, not its whole
manifest; a page of rows at a time; the details of one backup read its whole manifest.

One real dump of a 300-table database, copied 449 times with other names, ids and times (the
catalog sees 450 backups), at 80×24 as a user would see them.
"""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.jobs import JobState
from pgbackup_tui.core.manifest import MANIFEST_SUFFIX, load_manifest
from pgbackup_tui.core.plans import DumpPlan
from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.backups_view import BackupRow
from pgbackup_tui.ui.screens.backup_details import BackupDetails
from pgbackup_tui.ui.widgets.backups_pane import BackupsPane
from pgbackup_tui.ui.widgets.paged_rows import MORE_KEY, PAGE_ROWS
from pgbackup_tui.ui.widgets.server_tree import ServerTree

from uiutil import move_to, open_line, settle, socket_profile, write_config

SIZE = (80, 24)
TABLES = 300
BACKUPS = 450
BUILD_SQL = f"""
DO $$ BEGIN FOR i IN 1..{TABLES} LOOP
  EXECUTE format('CREATE TABLE public.w_%s (id int)', lpad(i::text, 4, '0'));
  EXECUTE format('INSERT INTO public.w_%s VALUES (1)', lpad(i::text, 4, '0'));
END LOOP; END $$;
"""


@pytest.fixture
def many_backups(sandbox, home, empty_db) -> str:
    """450 backups of `empty_db` (300 tables): one real dump and copies of it, newest is number 449."""
    sandbox.psql(BUILD_SQL, empty_db, timeout=300)
    target = target_from_dsn(sandbox.dsn("postgres"), label="sandbox")
    result = asyncio.run(DumpJob(DumpPlan(target=target, dbname=empty_db, format="custom")).run())
    assert result.state == JobState.SUCCEEDED, result.message
    archive = result.output_path
    assert archive is not None
    manifest = json.loads((archive.parent / (archive.name + MANIFEST_SUFFIX)).read_text())
    assert len(manifest["toc"]["tables"]) == TABLES
    for n in range(BACKUPS - 1):
        copy = archive.with_name(f"copy-{n:03}.dump")
        shutil.copyfile(archive, copy)
        manifest.update(id=f"{n:08x}", finished_at=f"2030-01-01T00:{n // 60:02}:{n % 60:02}+00:00")
        (copy.parent / (copy.name + MANIFEST_SUFFIX)).write_text(json.dumps(manifest))
    return empty_db


def cell(table: DataTable, row: int, column: int) -> str:
    return str(table.get_row_at(row)[column])


async def test_many_backups_show_a_page_at_a_time_from_summaries(sandbox, home, many_backups):
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ServerTree)
        await open_line(pilot, tree, lambda text: text.startswith("sandbox"))
        await move_to(pilot, tree, lambda text: text.removeprefix("[ ] ").split()[0] == many_backups)
        await pilot.press("3")
        await settle(pilot)
        pane = app.query_one(BackupsPane)
        table = pane.query_one(DataTable)
        assert len(pane.rows) == BACKUPS
        assert pane.shown == PAGE_ROWS and table.row_count == PAGE_ROWS + 1
        assert cell(table, 0, 1) == "copy-448.dump"  # newest first
        assert cell(table, PAGE_ROWS, 1) == f"{BACKUPS - PAGE_ROWS} more backups (enter)"
        # A summary per backup: the TOC's counts, not its 300 tables, nor the dump's per-table totals.
        for row in pane.rows:
            assert row.entry is not None and row.entry.manifest is not None
            assert row.entry.manifest.toc.tables == [] and row.entry.manifest.tables == []
            assert row.entry.manifest.toc.counts["TABLE"] == TABLES
            assert row.holds == "whole database"
        assert len(load_manifest(pane.rows[0].path).toc.tables) == TABLES  # the file itself is whole

        # enter on the last row shows the next page; that row is no backup: its keys do not apply
        table.focus()
        await pilot.press("ctrl+end")
        await pilot.pause()
        assert pane.selected_row() is None and pane.check_action("request", ("verify",)) is None
        await pilot.press("enter")
        await pilot.pause()
        assert pane.shown == 2 * PAGE_ROWS and table.cursor_row == PAGE_ROWS
        assert cell(table, PAGE_ROWS, 1) == f"copy-{448 - PAGE_ROWS:03}.dump"
        assert cell(table, 2 * PAGE_ROWS, 1) == f"{BACKUPS - 2 * PAGE_ROWS} more backups (enter)"

        # the details of one backup read its whole manifest: every table, a page at a time
        await pilot.press("enter")
        await settle(pilot)
        details = app.screen
        assert isinstance(details, BackupDetails)
        listing = details.query_one(DataTable)
        assert listing.row_count == PAGE_ROWS + 1
        assert [cell(listing, n, 0) for n in (0, PAGE_ROWS - 1)] == ["public.w_0001", f"public.w_{PAGE_ROWS:04}"]
        assert cell(listing, PAGE_ROWS, 1) == f"{TABLES - PAGE_ROWS} more tables (enter)"
        for _ in range(-(-TABLES // PAGE_ROWS) - 1):  # the pages left
            await pilot.press("ctrl+end", "enter")
            await pilot.pause()
        assert listing.row_count == TABLES and cell(listing, TABLES - 1, 0) == f"public.w_{TABLES:04}"
        assert MORE_KEY not in listing.rows


class PaneHost(App):
    def compose(self) -> ComposeResult:
        yield BackupsPane()


async def test_a_selection_of_a_table_named_with_a_line_break_is_listed_on_one_line():
    # QA at 80x24: the holds column of a backup of public."line<LF>break" read `public."line`.
    row = BackupRow("k", "a.dump", "complete", "2026-12-05T03:50:51+00:00", 1600, 'public."line\nbreak"')
    app = PaneHost()
    async with app.run_test(size=(120, 24)) as pilot:
        app.query_one(BackupsPane).show_rows("srv", "db", (row,))
        await pilot.pause()
        table = app.query_one(DataTable)
        assert cell(table, 0, 4) == 'public."line\\nbreak"'


async def test_a_new_backup_takes_the_cursor_from_the_newest_row_but_not_from_an_older_one():
    # QA: the cursor on the newest backup (where the list opens) stayed on that backup when a dump
    # ended and its backup came in above it: r then restored the older one. On the top row the
    # cursor stays on the top row, the newest backup; one moved down to an older backup stays on it.
    def row(name: str, minute: int) -> BackupRow:
        return BackupRow(f"/b/{name}", name, "complete", f"2026-12-05T09:{minute:02}:00+00:00", 1, "whole database")

    first, second, third = row("first.dump", 10), row("second.dump", 20), row("third.dump", 30)
    older = row("old.dump", 1)
    app = PaneHost()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(BackupsPane)
        pane.show_rows("srv", "db", (first, older))
        await pilot.pause()
        assert pane.selected_row() == first
        pane.show_rows("srv", "db", (second, first, older))  # a dump ended
        await pilot.pause()
        assert pane.selected_row() == second
        pane.show_rows("srv", "db", (second, first, older))  # listed again, nothing new
        await pilot.pause()
        assert pane.selected_row() == second
        table = pane.query_one(DataTable)
        table.focus()
        await pilot.press("down", "down")
        assert pane.selected_row() == older  # chosen by the DBA
        pane.show_rows("srv", "db", (third, second, first, older))
        await pilot.pause()
        assert pane.selected_row() == older
