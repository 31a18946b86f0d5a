"""Pilot tests of the Backups tab at 80×24 on the real sandbox: list, details (the TOC), verify,
drill, delete (y; the newest verified one only with `force` typed), restore with tables picked
from the TOC, and the server node's pg_dumpall actions (a globals file, a cluster set).

Backups are made by the real jobs (DumpJob, DumpallJob run in the test's loop), then the app
lists them from the catalog as a user would see them.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path


import pytest
from textual.pilot import Pilot
from textual.app import App
from textual.widgets import Button, Checkbox, DataTable, Input, Label, SelectionList, Static
from textual.widgets._footer import FooterKey

from pgbackup_tui.core import catalog
from pgbackup_tui.core.catalog_ops import delete
from pgbackup_tui.core.cluster_plans import DumpallPlan
from pgbackup_tui.core.csv_plans import MANIFEST_NAME as CSV_MANIFEST
from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.dumpall import DumpallJob
from pgbackup_tui.core.errors import UsageError
from pgbackup_tui.core.jobs import JobState
from pgbackup_tui.core.pgtools import find_client_tools
from pgbackup_tui.core.plans import DumpPlan
from pgbackup_tui.core.verify import verify_backup
from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.screens.backup_details import BackupDetails
from pgbackup_tui.ui.screens.cluster_restore_dialog import ClusterRestoreDialog
from pgbackup_tui.ui.screens.confirm import ConfirmScreen
from pgbackup_tui.ui.screens.csv_export_dialog import CsvExportDialog
from pgbackup_tui.ui.screens.csv_import_dialog import CsvImportDialog
from pgbackup_tui.ui.screens.dumpall_dialog import DumpallDialog
from pgbackup_tui.ui.screens.restore_dialog import RestoreDialog
from pgbackup_tui.ui.screens.server_pick import ServerPick
from pgbackup_tui.ui.widgets.backups_pane import BackupsPane
from pgbackup_tui.ui.widgets.lean_footer import LeanFooter
from pgbackup_tui.ui.widgets.server_tree import ServerTree

from cliutil import run_cli
from uiutil import move_to, open_line, settle, socket_profile, wait_until, write_config

SIZE = (80, 24)
CUSTOMERS = '"Sales & Ops".customers'


def named(name: str):
    return lambda text: text.removeprefix("[ ] ").removeprefix("[x] ").removeprefix("[-] ").split()[0] == name


async def dump_shop(sandbox, **options):
    target = target_from_dsn(sandbox.dsn("postgres"), label="sandbox")
    result = await DumpJob(DumpPlan(target=target, dbname="shop", **options)).run()
    assert result.state == JobState.SUCCEEDED, result.message
    return result.output_path


@contextlib.asynccontextmanager
async def backups_tab_of_a_dump(sandbox) -> AsyncIterator[tuple[Path, PgBackupApp, Pilot, BackupsPane]]:
    """The app at 80x24 on the Backups tab of shop, which a schema-only dump of it lists."""
    archive = await dump_shop(sandbox, schema_only=True)
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = await open_backups_of(pilot, app)
        yield archive, app, pilot, pane


async def open_backups_of(pilot, app: PgBackupApp, database: str | None = "shop") -> BackupsPane:
    """Cursor on the database (or the server), Backups tab shown, its table focused."""
    tree = app.query_one(ServerTree)
    await open_line(pilot, tree, named("sandbox"))
    if database is not None:
        await move_to(pilot, tree, named(database))
    else:
        await move_to(pilot, tree, named("sandbox"))
    await pilot.press("3")
    await settle(pilot)
    pane = app.query_one(BackupsPane)
    pane.query_one(DataTable).focus()
    await pilot.pause()
    return pane


def status_of(pane: BackupsPane, path) -> str:
    return next(row.status for row in pane.rows if row.path == path)


async def test_list_show_verify_and_delete_at_80x24(sandbox, home):
    older = await dump_shop(sandbox)
    newer = await dump_shop(sandbox)
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = await open_backups_of(pilot, app)
        assert [row.path for row in pane.rows] == [newer, older]
        screen = app.export_screenshot()
        assert newer.name in screen and "complete" in screen  # badge and file name fit 80 columns

        # enter: the details with the TOC's counts and the tables with their rows
        await pilot.press("enter")
        details = app.screen
        assert isinstance(details, BackupDetails)
        await settle(pilot)
        counts = str(details.query_one("#details-counts").content)
        assert "table" in counts and "index" in counts, counts
        table = details.query_one(DataTable)
        names = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert CUSTOMERS in names
        assert str(table.get_row_at(names.index(CUSTOMERS))[1]) == "500"
        await pilot.press("escape")
        assert not isinstance(app.screen, BackupDetails)

        # v verifies the highlighted (newest) backup, in a worker; the badge follows
        await pilot.press("v")
        await settle(pilot)
        await wait_until(lambda: status_of(pane, newer) == "verified")
        assert catalog.entry_for(newer).status == "verified"

        # Delete on the newest verified backup: the dialog says it is refused unless forced
        await pilot.press("delete")
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        assert "newest verified" in confirm.question and confirm.require_text == "force"
        await pilot.press("y")
        assert app.screen is confirm  # y alone does not do it
        await pilot.press(*"orce", "enter")  # mistyped: said, not silently ignored
        hint = confirm.query_one("#confirm-hint", Static)
        assert app.screen is confirm and "'yorce' is not force" in str(hint.render()), hint.render()
        await pilot.press("backspace")
        assert "Type force to confirm" in str(hint.render())  # typing again: the plain hint back
        await pilot.press("escape")
        assert newer.exists()

        # x on the older, unverified one: a plain y deletes it, and only it
        await pilot.press("down")
        assert pane.selected_row().path == older
        await pilot.press("x")
        plain = app.screen
        assert isinstance(plain, ConfirmScreen)
        assert plain.require_text is None
        await pilot.press("y")
        await settle(pilot)
        await wait_until(lambda: [row.path for row in pane.rows] == [newer])
        assert not older.exists() and newer.exists()
        assert app.profiles.profile("sandbox") is not None  # Delete here never touches the server


async def test_forced_delete_of_the_newest_verified_backup(sandbox, home):
    archive = await dump_shop(sandbox, schema_only=True)
    entry = catalog.entry_for(archive)
    catalog.record_check(entry, verify_backup(entry))
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = await open_backups_of(pilot, app)
        assert status_of(pane, archive) == "verified"
        await pilot.press("x")
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        await pilot.press(*"force")
        await pilot.press("enter")
        await settle(pilot)
        await wait_until(lambda: pane.rows == [])
    assert not archive.exists()


async def test_an_archive_cut_or_grown_on_disk_lists_as_changed_on_f5_and_when_the_tab_shows(sandbox, home):
    """The tab kept each backup's summary while its manifest stayed the same, so an archive cut
    short behind its back went on reading "complete" where `backups list` said changed; and it
    listed again on showing only after a change this app had seen. f5 and the tab shown again
    check the archives' sizes as the CLI does."""
    older = await dump_shop(sandbox, schema_only=True)
    newer = await dump_shop(sandbox, schema_only=True)
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = await open_backups_of(pilot, app)
        assert [status_of(pane, newer), status_of(pane, older)] == ["complete", "complete"]

        with newer.open("r+b") as handle:
            handle.truncate(newer.stat().st_size // 2)
        await pilot.press("f5")
        await settle(pilot)
        await wait_until(lambda: status_of(pane, newer) == "changed", timeout=10)

        with older.open("ab") as handle:
            handle.write(b"\0" * 100)
        await pilot.press("1")
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        await wait_until(lambda: status_of(pane, older) == "changed", timeout=10)
        screen = app.export_screenshot()
        assert "CHANGED" in screen and "complete" not in screen
    listed = run_cli("backups", "list", "--json")
    assert {item["path"]: item["status"] for item in json.loads(listed.stdout)} == {
        str(newer): "changed", str(older): "changed"}  # what the CLI says


async def test_a_backup_the_cli_wrote_while_the_app_is_open_is_listed_when_the_tab_shows(sandbox, home, tmp_path):
    async with backups_tab_of_a_dump(sandbox) as (first, app, pilot, pane):
        await pilot.press("1")
        await settle(pilot)
        # run_cli holds the app's loop: its store scan finds the CLI's job ended, never running.
        await app.workers.wait_for_complete()
        dumped = run_cli("dump", "--server", "sandbox", "--db", "shop", "--schema-only", "--progress", "none")
        assert dumped.returncode == 0, dumped.stderr
        made = Path(dumped.stdout.strip().splitlines()[-1])
        assert made != first and made.exists()
        # QA: an archive made elsewhere (by hand: no server known) and adopted was in `backups list`
        # ("?/shop") and nowhere in the Backups tab: it is listed with every server, marked.
        by_hand = tmp_path / "from-elsewhere.dump"
        tools = find_client_tools(sandbox.major)
        subprocess.run([tools.pg_dump, "--dbname", sandbox.dsn("shop"), "--schema-only", "-Fc", "-f", str(by_hand)],
                       check=True, timeout=120)
        adopted = run_cli("backups", "adopt", str(by_hand))
        assert adopted.returncode == 0, adopted.stderr
        await pilot.press("3")
        await settle(pilot)
        await wait_until(lambda: {row.path for row in pane.rows} == {by_hand, made, first}, timeout=10)
        assert [row.path for row in pane.rows if row.path != by_hand] == [made, first]
        assert status_of(pane, made) == "complete"
        elsewhere = next(row for row in pane.rows if row.path == by_hand)
        assert elsewhere.other_server == "" and elsewhere.holds.endswith(", from an unknown server"), elsewhere
        heading = str(pane.query_one("#backups-heading", Static).render())
        assert heading.startswith("2 backups of shop on sandbox + 1 from elsewhere"), heading
        await open_backups_of(pilot, app, None)  # the server's list has it too
        # QA: a server's list holds dumps of all its databases; each read "whole database" or
        # "schema only", never which database: it is said first.
        holds = {row.path: row.holds for row in pane.rows}
        assert holds[by_hand] == "shop: schema only, from an unknown server" and holds[made] == "shop: schema only"


async def test_drill_asks_the_server_and_records_the_result(sandbox, home):
    async with backups_tab_of_a_dump(sandbox) as (archive, app, pilot, pane):
        await pilot.press("d")
        pick = app.screen
        assert isinstance(pick, ServerPick)
        assert pick.chosen == "sandbox"  # the backup's own server by default
        await pilot.press("enter")
        await settle(pilot)
        await wait_until(lambda: status_of(pane, archive) == "drilled", timeout=120)
    manifest = catalog.entry_for(archive).manifest
    assert manifest.verifications[-1].kind == "drill" and manifest.verifications[-1].ok
    assert manifest.verifications[-1].details["dropped"] is True


async def test_the_backups_tab_footer_shows_restore_at_80_columns(sandbox, home):
    # QA: on the Backups tab at 80x24 the footer ended "? Help  q Quit  a Add  b Bac": r, the app's
    # restore key that acts on the highlighted backup, was cut off. The pane shows it among its own keys.
    async with backups_tab_of_a_dump(sandbox) as (archive, app, pilot, _pane):
        footer = app.screen.query_one(LeanFooter)
        restore = [key for key in footer.query(FooterKey) if key.description == "Restore"]
        assert restore and restore[0].region.right <= SIZE[0], [key.description for key in footer.query(FooterKey)]
        assert restore[0].key == "r" and not restore[0]._disabled
        await pilot.press("r")
        dialog = app.screen
        assert isinstance(dialog, RestoreDialog)
        assert dialog.query_one("#archive", Input).value == str(archive)
        # QA: under the dialog the footer still read "v Verify  d Drill  x Delete  r Restore  i Import",
        # keys the dialog takes for itself (v typed into a field): the list's keys go, as the app's do.
        await settle(pilot)
        shown = {key.description for key in footer.query(FooterKey)}
        assert not shown & {"Verify", "Drill", "Delete", "Restore", "Import", "Select", "Backup"}, shown
        await pilot.press("escape")
        await settle(pilot)
        assert {"Verify", "Restore"} <= {key.description for key in footer.query(FooterKey)}


async def test_restore_picks_tables_from_the_toc(sandbox, home, fresh_db_name):
    archive = await dump_shop(sandbox)
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_backups_of(pilot, app)
        await pilot.press("r")
        dialog = app.screen
        assert isinstance(dialog, RestoreDialog)
        await settle(pilot)
        picker = dialog.query_one("#toc-tables-list", SelectionList)
        options = [str(picker.get_option_at_index(i).prompt) for i in range(picker.option_count)]
        assert CUSTOMERS in options and "public.events" in options
        label = dialog.query_one("#toc-tables-label", Label)
        assert "none checked: the whole archive" in str(label.content)
        picker.select(CUSTOMERS)
        dialog.query_one("#target-db", Input).value = fresh_db_name
        await pilot.pause()
        assert "1 checked: only this one" in str(label.content)  # the label follows the checks
        plan = dialog.build_plan()
        assert plan is not None and [str(t) for t in plan.tables] == [CUSTOMERS]
        assert f"only 1 table(s) of the archive: {CUSTOMERS}" in str(dialog.query_one("#restore-summary").content)
        dialog.query_one("#target-db", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        await wait_until(lambda: bool(app.jobs) and app.jobs[-1].state.is_final, timeout=120)
        assert app.jobs[-1].state == JobState.SUCCEEDED, app.jobs[-1].result
    assert archive.exists()
    assert sandbox.psql('SELECT count(*) FROM "Sales & Ops".customers', fresh_db_name).strip() == "500"
    assert sandbox.psql("SELECT to_regclass('public.events') IS NULL", fresh_db_name).strip() == "t"


async def test_server_node_backs_up_roles_then_the_backups_tab_offers_a_cluster_restore(sandbox, home):
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tree = app.query_one(ServerTree)
        await open_line(pilot, tree, named("sandbox"))
        await move_to(pilot, tree, named("sandbox"))
        assert app.check_action("dumpall", ("globals",)) is True
        await pilot.press("g")
        dialog = app.screen
        assert isinstance(dialog, DumpallDialog)
        plan = dialog.build_plan()
        assert plan.globals_only and not plan.with_role_passwords
        await pilot.press("enter")
        await settle(pilot)
        await wait_until(lambda: bool(app.jobs) and app.jobs[-1].state.is_final, timeout=120)
        job = app.jobs[-1]
        assert job.kind == "dumpall" and job.state == JobState.SUCCEEDED, job.result
        written = job.result.output_path

        # the finished dumpall refreshed the Backups tab (server scope)
        await pilot.press("3")
        pane = app.query_one(BackupsPane)
        await wait_until(lambda: any(row.path == written for row in pane.rows))
        row = next(row for row in pane.rows if row.path == written)
        assert row.is_cluster_file and "roles and tablespaces" in row.holds
        pane.query_one(DataTable).focus()
        assert pane.select_path(str(written))
        await pilot.pause()
        await pilot.press("r")
        restore = app.screen
        assert isinstance(restore, ClusterRestoreDialog) and restore.members is None
        await pilot.press("escape")

        # on a database, the whole-server keys are hidden
        await move_to(pilot, tree, named("shop"))
        assert app.check_action("dumpall", ("whole",)) is False


async def test_a_cluster_set_is_one_row_with_its_members_under_it(sandbox, home):
    target = target_from_dsn(sandbox.dsn("postgres"), label="sandbox")
    result = await DumpallJob(DumpallPlan(target=target, set_format="custom", databases=("shop",))).run()
    assert result.state == JobState.SUCCEEDED, result.message
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = await open_backups_of(pilot, app, database=None)
        rows = pane.rows
        set_index = next(i for i, row in enumerate(rows) if row.is_set)
        member = rows[set_index + 1]
        assert member.member and member.entry.database == "shop"
        assert member.path.parent == rows[set_index].path
        # One backup of the set: its member row is not counted as a backup of its own.
        heading = str(pane.query_one("#backups-heading", Static).render())
        assert heading.startswith(f"{sum(not row.member for row in rows)} backup"), heading
        assert str(pane.query_one(DataTable).get_row_at(set_index + 1)[1]).startswith("  └ ")
        pane.select_path(str(rows[set_index].path))
        await pilot.press("r")
        dialog = app.screen
        assert isinstance(dialog, ClusterRestoreDialog) and dialog.members == ["shop"]
        await pilot.press("escape")
        await pilot.press("enter")
        details = app.screen
        assert isinstance(details, BackupDetails)
        await settle(pilot)
        table = details.query_one(DataTable)
        assert str(table.get_row_at(0)[0]) == "shop"
        # x on a member's row took it out of its set, which then listed "changed" (QA): refused, with no question.
        await pilot.press("escape")
        pane.select_path(str(member.path))
        await pilot.press("x")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen) and member.path.exists()
        assert any("is a member archive of cluster set" in str(n.message) for n in app._notifications)
    with pytest.raises(UsageError, match="a member archive of cluster set"):
        delete(member.entry, catalog.scan(), force=True)
    assert member.path.exists()


async def test_a_database_s_backups_include_the_pg_dumpall_files_that_hold_it(sandbox, home):
    """As `backups list --db shop`: a whole-cluster file holds shop too (it was listed on the server only)."""
    target = target_from_dsn(sandbox.dsn("postgres"), label="sandbox")
    result = await DumpallJob(DumpallPlan(target=target)).run()
    assert result.state == JobState.SUCCEEDED, result.message
    roles = await DumpallJob(DumpallPlan(target=target, roles_only=True)).run()
    assert roles.state == JobState.SUCCEEDED, roles.message
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = await open_backups_of(pilot, app, database="shop")
        paths = [row.path for row in pane.rows]
        assert result.output_path in paths and roles.output_path not in paths, paths
        row = next(row for row in pane.rows if row.path == result.output_path)
        assert row.is_cluster_file and "whole cluster" in row.holds


class CsvImportHost(App[None]):
    """The CSV import dialog alone; keeps what it was dismissed with."""

    def __init__(self, dialog: CsvImportDialog) -> None:
        super().__init__()
        self.dialog = dialog
        self.results: list[object] = []

    def on_mount(self) -> None:
        self.push_screen(self.dialog, callback=self.results.append)


async def test_csv_import_into_a_new_database_whose_name_exists_is_said_and_starts_nothing(sandbox, home, tmp_path,
                                                                                            fresh_db_name):
    # QA: "create the database" with a name that exists started a job, which failed with the CLI's
    # words ("drop --create to import into it"). The dialog says it now, as the restore dialog does.
    target = target_from_dsn(sandbox.dsn("postgres"), label="sandbox")
    copy = tmp_path / "copy.csv"  # what the dialog reads of a CSV copy: a folder with its manifest
    copy.mkdir()
    (copy / CSV_MANIFEST).write_text("{}")
    dialog = CsvImportDialog(copy, [CUSTOMERS], {"sandbox": target}, "sandbox", "shop")
    app = CsvImportHost(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        name = dialog.query_one("#csv-db", Input)
        assert app.focused is name
        name.value = "shop"
        await pilot.press("enter")  # before the look at the server has answered: nothing starts
        await settle(pilot)
        assert app.screen is dialog and not app.results
        error = dialog.query_one("#csv-import-error", Static)
        await wait_until(lambda: "already exists" in str(error.content), timeout=30)
        assert "database 'shop' already exists on sandbox" in str(error.content) and error.display
        assert dialog.query_one("#csv-import-start", Button).disabled
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is dialog and not app.results

        dialog.query_one("#csv-create", Checkbox).value = False  # into the existing database: allowed
        await settle(pilot)
        assert dialog.can_start and not error.display

        dialog.query_one("#csv-create", Checkbox).value = True
        name.value = fresh_db_name  # free: Enter at once starts once the server has said so
        await pilot.press("enter")
        await settle(pilot)
        await wait_until(lambda: bool(app.results), timeout=30)
        plan = app.results[0]
        assert plan is not None and plan.dbname == fresh_db_name and plan.create


async def test_csv_export_of_checked_tables_then_import_from_the_backups_tab(sandbox, home, fresh_db_name):
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tree = app.query_one(ServerTree)
        await open_line(pilot, tree, named("sandbox"))
        await open_line(pilot, tree, named("shop"))
        await open_line(pilot, tree, named("Sales"))  # "Sales & Ops"
        # QA: C with the whole database checked said "check the tables to export first (space)".
        await move_to(pilot, tree, named("shop"))
        await pilot.press("space", "C")
        await pilot.pause()
        assert not isinstance(app.screen, CsvExportDialog)
        said = str(list(app._notifications)[-1].message) if app._notifications else ""
        assert "not a whole database: open shop and check its tables or schemas" in said, said
        await pilot.press("space")  # unchecked
        await move_to(pilot, tree, named("customers"))
        await pilot.press("space")
        await pilot.press("C")
        export = app.screen
        assert isinstance(export, CsvExportDialog)
        assert [str(t) for t in export.tables] == [CUSTOMERS]
        await pilot.press("enter")
        await settle(pilot)
        await wait_until(lambda: bool(app.jobs) and app.jobs[-1].state.is_final, timeout=120)
        assert app.jobs[-1].kind == "csv-export" and app.jobs[-1].state == JobState.SUCCEEDED, app.jobs[-1].result

        # the finished export refreshed the Backups tab: the copy is listed, i imports it
        await move_to(pilot, tree, named("shop"))
        await pilot.press("3")
        pane = app.query_one(BackupsPane)
        await wait_until(lambda: any(row.csv is not None for row in pane.rows))
        pane.query_one(DataTable).focus()
        copy = next(row for row in pane.rows if row.csv is not None)
        assert pane.select_path(copy.key)
        await pilot.pause()
        # QA: r on the copy opened the restore dialog with no archive in it; it says what i does now.
        await pilot.press("r")
        await pilot.pause()
        assert not isinstance(app.screen, RestoreDialog)
        assert any("is a CSV copy: i imports it" in str(n.message) for n in app._notifications)
        await pilot.press("i")
        dialog = app.screen
        assert isinstance(dialog, CsvImportDialog)
        dialog.query_one("#csv-db", Input).value = fresh_db_name
        await pilot.pause()
        plan = dialog.build_plan()
        assert plan is not None and plan.create and plan.tables == ()
        await pilot.press("enter")
        await settle(pilot)
        await wait_until(lambda: app.jobs[-1].kind == "csv-import" and app.jobs[-1].state.is_final, timeout=120)
        assert app.jobs[-1].state == JobState.SUCCEEDED, app.jobs[-1].result
    assert sandbox.psql('SELECT count(*) FROM "Sales & Ops".customers', fresh_db_name).strip() == "500"


async def test_a_data_only_backup_restores_its_rows_into_a_database_that_has_the_tables(sandbox, home, fresh_db_name):
    schema = await dump_shop(sandbox, schema_only=True)
    made = run_cli("restore", str(schema), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    assert made.returncode == 0, made.stderr
    archive = await dump_shop(sandbox, data_only=True)
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_backups_of(pilot, app)
        await pilot.press("r")  # the newest backup is the first row
        dialog = app.screen
        assert isinstance(dialog, RestoreDialog)
        await settle(pilot)
        assert dialog.query_one("#archive", Input).value == str(archive)
        # It cannot make a database: "create" is unticked, and the words say what it does instead.
        assert dialog.query_one("#create", Checkbox).value is False
        assert "data only" in str(dialog.query_one("#archive-status").content)
        dialog.query_one("#target-db", Input).value = fresh_db_name
        await pilot.pause()
        summary = str(dialog.query_one("#restore-summary").content)
        assert summary.startswith(f"loading the rows of the archive's tables in the existing database {fresh_db_name}")
        assert "in one transaction" in summary
        dialog.query_one("#target-db", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        await wait_until(lambda: bool(app.jobs) and app.jobs[-1].state.is_final, timeout=120)
        assert app.jobs[-1].state == JobState.SUCCEEDED, app.jobs[-1].result
    assert sandbox.psql('SELECT count(*) FROM "Sales & Ops".customers', fresh_db_name).strip() == "500"
