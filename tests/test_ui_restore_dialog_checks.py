"""Pilot tests at 80×24 on the real sandbox: what the restore dialog checks before Start.

- "create new database" with the name of a database that exists on the target: the dialog said
  nothing and started a job, which then failed (the CLI refuses it up front). The name is looked
  up in a worker; the dialog says it in one line and starts no job, also when Enter comes before
  the look has answered.
- Neither "create new database" nor --clean: the dialog said "into the existing, empty database"
  of one that was not empty (or not there) and started a job that failed at once. The database is
  looked up and into now; one missing or not empty is said, and no job starts.
- A backup whose last verification failed (made with the CLI, a byte flipped, `backups verify`)
  was restored with no word of it; it is warned of now, and the job it starts creates nothing
  before its check fails. One changed on disk (cut short) is refused, as `restore` refuses it.
- The list of the archive's tables drew an X in every box (Textual's SelectionList, dimmer when
  off) under "none checked: the whole archive"; an unchecked box is empty now. Focused, it
  highlighted no line: space did nothing until an arrow key was pressed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import Button, Input, Select, Static, TabbedContent

from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.identifiers import parse_qualified_name
from pgbackup_tui.core.jobs import JobState
from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.screens.backup_dialog import BackupDialog
from pgbackup_tui.ui.screens.csv_export_dialog import CsvExportDialog
from pgbackup_tui.ui.screens.csv_import_dialog import CsvImportDialog
from pgbackup_tui.ui.screens.restore_dialog import RestoreDialog
from pgbackup_tui.ui.widgets.check_list import CheckList
from pgbackup_tui.ui.widgets.option_box import OptionBox
from pgbackup_tui.ui.widgets.server_tree import ServerTree
from pgbackup_tui.ui.widgets.toc_tables import TocTables

from cliutil import run_cli
from test_ui_backups import SIZE, open_backups_of, status_of
from test_ui_jobs import DialogHost
from uiutil import settle, socket_profile, wait_until, write_config

SCREENSHOTS = os.environ.get("PGBACKUP_TUI_TEST_SCREENSHOTS")  # a folder: the dialogs are saved there as SVG


def dump_with_cli(*options: str) -> Path:
    """A backup of shop written by `pgbackup-tui dump`, listed in the catalog with its manifest."""
    dumped = run_cli("dump", "--server", "sandbox", "--db", "shop", "--progress", "none", *options)
    assert dumped.returncode == 0, dumped.stderr
    return Path(dumped.stdout.strip().splitlines()[-1])


def backup_id(archive: Path) -> str:
    return next(e["id"] for e in json.loads(run_cli("backups", "list", "--json").stdout) if e["path"] == str(archive))


def databases(sandbox) -> set[str]:
    return set(sandbox.psql("SELECT datname FROM pg_database").split())


def restores(app: PgBackupApp) -> list:
    """The restore jobs the app shows (the CLI's dump is listed too)."""
    return [job for job in app.jobs if job.kind == "restore"]


def line_of(dialog: RestoreDialog, widget_id: str) -> str:
    line = dialog.query_one(widget_id, Static)
    return str(line.content) if line.display else ""


def screen_text(app: PgBackupApp) -> str:
    """What the 80x24 terminal shows, its lines joined with spaces (a line said wraps)."""
    strips = app.screen._compositor.render_strips()
    return " ".join(" ".join("".join(segment.text for segment in line).split()) for line in strips)


def save(app: PgBackupApp, name: str) -> None:
    if SCREENSHOTS:
        app.save_screenshot(filename=f"{name}.svg", path=SCREENSHOTS)


async def open_restore_dialog(app: PgBackupApp, pilot) -> RestoreDialog:
    """The Backups tab of shop, its newest backup restored with r."""
    await settle(pilot)
    await open_backups_of(pilot, app)
    await pilot.press("r")
    dialog = app.screen
    assert isinstance(dialog, RestoreDialog)
    await settle(pilot)
    return dialog


async def test_create_with_the_name_of_a_database_that_exists_is_said_and_starts_no_job(sandbox, home,
                                                                                         fresh_db_name):
    write_config(socket_profile(sandbox))
    dump_with_cli("--schema-only")
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_restore_dialog(app, pilot)
        name = dialog.query_one("#target-db", Input)
        name.focus()
        # Enter at once, before the look at the server has answered: no job, the line once it has.
        name.value = "shop"
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is dialog and not restores(app)
        await wait_until(lambda: "already exists" in line_of(dialog, "#restore-error"), timeout=30)
        error = line_of(dialog, "#restore-error")
        assert "database 'shop' already exists on sandbox" in error and "--clean" in error, error
        assert dialog.query_one("#restore-start", Button).disabled
        save(app, "restore-name-exists")
        assert "already exists on sandbox" in screen_text(app)  # on the screen, at 80x24

        await pilot.press("enter")  # once known, Enter does nothing either
        await settle(pilot)
        assert app.screen is dialog and not restores(app)

        # A free name typed and Enter pressed at once: it starts once the server has said so.
        name.value = fresh_db_name
        await pilot.press("enter")
        await settle(pilot)
        await wait_until(lambda: app.screen is not dialog, timeout=30)
        await pilot.pause()
        # The Jobs tab shows the job; the focus left the Backups list with it (QA: it stayed on the
        # list, hidden behind the Jobs tab, and ↓ or space did nothing one could see).
        assert app.query_one(TabbedContent).active == "jobs"
        assert app.focused is app.query_one(ServerTree)
        await wait_until(lambda: bool(restores(app)) and restores(app)[-1].state.is_final, timeout=120)
        assert restores(app)[-1].state == JobState.SUCCEEDED, restores(app)[-1].result

    assert fresh_db_name in databases(sandbox)


async def test_into_an_existing_database_one_missing_or_not_empty_is_said_and_starts_no_job(sandbox, home, empty_db):
    # Neither "create new database" nor --clean: the database named must be there and empty, as the
    # job checks. The dialog said "into the existing, empty database" of a full one (shop), and
    # started a job that failed at once ("is not empty"); now it says so and starts none.
    write_config(socket_profile(sandbox))
    dump_with_cli("--schema-only")
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_restore_dialog(app, pilot)
        dialog.query_one("#create", OptionBox).value = False
        name = dialog.query_one("#target-db", Input)
        name.focus()
        name.value = "shop"
        await pilot.press("enter")  # before the look has answered: no job
        await settle(pilot)
        assert app.screen is dialog and not restores(app)
        await wait_until(lambda: "is not empty" in line_of(dialog, "#restore-error"), timeout=30)
        error = line_of(dialog, "#restore-error")
        assert "database 'shop' on sandbox is not empty (" in error and "--clean" in error, error
        assert "is not empty" in screen_text(app)  # on the screen, at 80x24
        assert dialog.query_one("#restore-start", Button).disabled
        name.value = "no_such_database"
        await wait_until(lambda: "does not exist" in line_of(dialog, "#restore-error"), timeout=30)
        assert "create new database" in line_of(dialog, "#restore-error")
        name.value = empty_db  # there and empty: Start is on
        await wait_until(lambda: not dialog.query_one("#restore-start", Button).disabled, timeout=30)
        assert line_of(dialog, "#restore-error") == ""
        await pilot.press("escape")
        await settle(pilot)
        assert not restores(app)


async def test_a_backup_that_failed_verification_is_warned_of_and_its_job_creates_nothing(sandbox, home,
                                                                                          fresh_db_name):
    write_config(socket_profile(sandbox))
    archive = dump_with_cli()
    data = bytearray(archive.read_bytes())
    data[len(data) * 3 // 4] ^= 0xFF  # in a table's compressed rows: the archive still lists
    archive.write_bytes(bytes(data))
    verified = run_cli("backups", "verify", backup_id(archive))
    assert verified.returncode == 1, verified.stdout + verified.stderr
    before = databases(sandbox)
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_restore_dialog(app, pilot)
        save(app, "restore-failed-verification")
        assert "this backup FAILED its last verification" in screen_text(app)  # in view, above Start
        warning = line_of(dialog, "#restore-doubt")
        assert "checksum differs from the manifest" in warning and "before it creates anything" in warning, warning

        # Still the user's choice (a failure other than the checksum's may not matter to them).
        dialog.query_one("#target-db", Input).value = fresh_db_name
        await settle(pilot)
        assert dialog.can_start
        dialog.query_one("#target-db", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        await wait_until(lambda: bool(restores(app)) and restores(app)[-1].state.is_final, timeout=120)
        job = restores(app)[-1]
        assert job.state == JobState.FAILED, job.result
        lines = [text for text, _ in app.jobs_pane.log_lines(job)]
    # The check stops it before anything is made: at once here (a small archive), or before CREATE
    # DATABASE when it takes longer (test_restore_check.py holds it back to prove that order).
    assert "checksum differs from the manifest" in str(job.result.message), job.result
    assert not any(line.startswith("created database") for line in lines), lines
    assert databases(sandbox) == before


async def test_a_backup_changed_on_disk_is_refused_by_the_dialog(sandbox, home):
    write_config(socket_profile(sandbox))
    archive = dump_with_cli("--schema-only")
    with archive.open("r+b") as handle:
        handle.truncate(archive.stat().st_size - 100)
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = await open_backups_of(pilot, app)
        assert status_of(pane, archive) == "changed"
        await pilot.press("r")
        dialog = app.screen
        assert isinstance(dialog, RestoreDialog)
        await settle(pilot)
        error = line_of(dialog, "#restore-error")
        assert "this backup CHANGED on disk since it was made" in error and "would refuse it" in error, error
        assert dialog.query_one("#restore-start", Button).disabled
        save(app, "restore-changed")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is dialog and not restores(app)
    refused = run_cli("restore", str(archive), "--server", "sandbox", "--db", "t3_never", "--create",
                      "--progress", "none")
    assert refused.returncode == 2, refused.stderr  # as the CLI refuses it


async def test_at_80x24_the_confirmation_and_the_plan_of_a_clean_are_on_screen(sandbox, home):
    # QA: at 80x24 the name typed to confirm a --clean was under the dialog's docked buttons
    # (typed blind), and what the restore would drop never showed before Start.
    write_config(socket_profile(sandbox))
    dump_with_cli("--schema-only")
    app = PgBackupApp()
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await open_restore_dialog(app, pilot)
        dialog.query_one("#target-db", Input).value = "shop"
        dialog.query_one("#create", OptionBox).value = False
        await settle(pilot)
        dialog.query_one("#clean", OptionBox).value = True
        await settle(pilot)
        dialog.query_one("#confirm-db", Input).focus()
        await pilot.press("s", "h", "o")
        await settle(pilot)
        assert "Type shop to confirm: sho" in screen_text(app)
        await pilot.press("p")
        await wait_until(lambda: "then swap names" in screen_text(app), timeout=30)
        assert "the current one is" in screen_text(app)  # the plan: what is dropped, before Start
        assert "Type shop to confirm: shop" in screen_text(app)
        save(app, "restore-clean-80x24")



def boxes(picker: CheckList) -> list[str]:
    """The boxes of the list's visible lines, as drawn ("▐X▌" checked, "▐ ▌" not)."""
    return [picker.render_line(y).text[:3] for y in range(min(picker.option_count, picker.size.height))]


def app_with_an_archive(sandbox) -> PgBackupApp:
    """The app on the sandbox, with a dump of it to restore."""
    write_config(socket_profile(sandbox))
    dump_with_cli()
    return PgBackupApp()


async def test_the_tables_list_draws_an_x_in_checked_boxes_only(sandbox, home):
    # QA: every table read "▐X▌" (the X only dimmer when off) under "none checked: the whole archive".
    app = app_with_an_archive(sandbox)
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await open_restore_dialog(app, pilot)
        picker = dialog.query_one("#toc-tables-list", CheckList)
        await wait_until(lambda: picker.option_count > 1 and picker.size.height > 1, timeout=30)
        assert "none checked: the whole archive" in screen_text(app)
        assert set(boxes(picker)) == {"▐ ▌"}
        picker.focus()
        await pilot.press("space")  # checks the first table
        await settle(pilot)
        assert boxes(picker)[0] == "▐X▌"
        assert set(boxes(picker)[1:]) == {"▐ ▌"}


async def test_space_on_the_focused_tables_list_checks_its_first_table(sandbox, home):
    # QA: shift+tab to the list, space: nothing happened (no line highlighted) until an arrow key.
    app = app_with_an_archive(sandbox)
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await open_restore_dialog(app, pilot)
        picker = dialog.query_one("#toc-tables-list", CheckList)
        await wait_until(lambda: picker.option_count > 1, timeout=30)
        while app.focused is not picker:
            await pilot.press("shift+tab")
        await pilot.press("space")
        await settle(pilot)
        assert picker.selected == [picker.get_option_at_index(0).value]
        assert "Tables (1 checked: only this one)" in screen_text(app)


async def test_an_archive_from_a_newer_pg_dump_offers_allow_older_server(sandbox, other_sandbox, home):
    # QA: restoring a newer pg_dump's archive onto an older server, the job failed saying "add
    # --allow-older-server", which the dialog did not offer. It says so before Start now, and offers it.
    older, newer = sorted((sandbox, other_sandbox), key=lambda cluster: cluster.major)
    dumped = run_cli("dump", "--dsn", newer.dsn("shop"), "--db", "shop", "--table", "public.invoices",
                     "--progress", "none")
    assert dumped.returncode == 0, dumped.stderr
    archive = Path(dumped.stdout.strip().splitlines()[-1])
    targets = {name: target_from_dsn(cluster.dsn(), label=name)
               for name, cluster in (("older", older), ("newer", newer))}
    dialog = RestoreDialog(archive, targets, "older", "shop")
    app = DialogHost(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        allow, row = dialog.query_one("#allow-older", OptionBox), dialog.query_one("#allow-older-row")
        start = dialog.query_one("#restore-start", Button)
        await wait_until(lambda: row.has_class("-offered"), timeout=30)
        problem = line_of(dialog, "#restore-error")
        assert f"runs {older.major}:" in problem and "“allow older server”" in problem, problem
        assert start.disabled
        for size in (SIZE, (60, 20)):  # beside the other options it was out of sight in a narrow dialog
            await pilot.resize_terminal(*size)
            await settle(pilot)
            shown = screen_text(app)
            assert "made to fit" in shown, size  # the error's last words: the line is not cut
            assert allow.region.height == 1 and allow.region.right <= size[0] - 2, (size, allow.region)
            assert "▐ ▌ allow older server" in shown, size
        allow.value = True
        await settle(pilot)
        plan = dialog.build_plan()
        assert not start.disabled and plan is not None and plan.allow_older_server
        dialog.query_one("#target-server", Select).value = "newer"  # a server new enough: nothing to allow
        await wait_until(lambda: not row.has_class("-offered"), timeout=30)
        plan = dialog.build_plan()
        assert plan is not None and not plan.allow_older_server


class PickerHost(App):
    def compose(self) -> ComposeResult:
        yield TocTables()


async def test_table_names_in_the_pickers_are_never_markup_and_stay_on_one_line(sandbox):
    # QA: a table named "[/]x" raised MarkupError as the restore dialog listed its archive (the app
    # froze, its terminal left as it was); "[red]t[/red]" was listed as "t", "line<LF>break" as "line".
    names = ['public."[/]x"', 'public."[red]t[/red]"', 'public."line\nbreak"']
    shown = ['public."[/]x"', 'public."[red]t[/red]"', 'public."line\\nbreak"']
    app = PickerHost()
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one(TocTables).set_tables(names)
        await pilot.pause()
        picker = app.query_one(CheckList)
        assert [str(picker.get_option_at_index(i).prompt) for i in range(3)] == shown
        assert picker.size.height == 3  # one line each
        picker.focus()
        await pilot.press("down", "space")
        await pilot.pause()
        assert app.query_one(TocTables).chosen == (parse_qualified_name(names[1]),)  # the exact name
    # The CSV import dialog lists a copy's tables the same way (and the cluster restore dialog a set's databases).
    dialog = CsvImportDialog(Path("/nonexistent"), names, {"sandbox": target_from_dsn(sandbox.dsn())}, "sandbox", "db")
    async with DialogHost(dialog).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        picker = dialog.query_one(CheckList)
        assert [str(picker.get_option_at_index(i).prompt) for i in range(3)] == shown
        assert picker.selected == names


async def test_a_database_named_like_markup_opens_every_dialog_with_its_name_as_it_is(sandbox):
    # QA: `b` on a database named "[/]x" ended the app with a traceback (MarkupError: the dialog's
    # border title is read as markup); one named "[red]d[/red]" was titled "d". The restore dialog's
    # "Type NAME to confirm" label, the CSV export's and the whole-server dialog's titles: the same.
    target = target_from_dsn(sandbox.dsn())
    for name, dialog, title in (
        ("[/]x", BackupDialog(target, sandbox.major, "[/]x"), "Back up [/]x on"),
        ("[red]d[/red]", BackupDialog(target, sandbox.major, "[red]d[/red]"), "Back up [red]d[/red] on"),
        ("[/]x", CsvExportDialog(target, "[/]x", (parse_qualified_name("public.t"),)), "CSV export from [/]x on"),
        ("[/]x", RestoreDialog(None, {"sandbox": target}, "sandbox", "[/]x"), "Restore a backup"),
    ):
        app = DialogHost(dialog)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert app.screen is dialog
            assert title in screen_text(app), screen_text(app)
            if isinstance(dialog, RestoreDialog):
                dialog.query_one("#create", OptionBox).value = False
                dialog.query_one("#clean", OptionBox).value = True
                await pilot.pause()
                assert f"Type {name}_restored to confirm:" in screen_text(app)
        assert app.return_code in (None, 0), name


async def test_in_a_narrow_terminal_the_target_database_s_name_shows_whole():
    # QA: at 60x20 (a tmux pane) the server drop-down kept its 30 cells and the restore dialog's
    # Database field was 6 wide: "shop_restored" read "estore", as if that were the name; the CSV
    # import dialog's the same. Under 69 columns the drop-down shares the row with the name.
    target = target_from_dsn("host=127.0.0.1 port=1 dbname=shop connect_timeout=1")
    for dialog, field, name in (
        (RestoreDialog(None, {"prod": target}, "prod", "shop"), "#target-db", "shop_restored"),
        (CsvImportDialog(Path("/nonexistent"), ["public.t"], {"prod": target}, "prod", "shop"), "#csv-db", "shop_csv"),
    ):
        app = DialogHost(dialog)
        async with app.run_test(size=(60, 20)) as pilot:
            await pilot.pause()
            database = dialog.query_one(field, Input)
            assert database.value == name
            assert database.content_size.width > len(name), (field, database.content_size)


async def test_enter_while_start_is_off_changes_no_box_and_no_table():
    # QA: --clean ticked, its name not typed yet (Start off), Enter on the focused --clean box
    # unticked it: the dialog then said "tick --clean to replace it". Enter starts or does nothing;
    # it never toggles a box or a table of the list (space does).
    target = target_from_dsn("host=127.0.0.1 port=1 dbname=shop connect_timeout=1")
    dialog = RestoreDialog(None, {"prod": target}, "prod", "shop")  # no archive yet: Start is off
    app = DialogHost(dialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        dialog.query_one(TocTables).set_tables(['public.a', 'public.b'])
        await pilot.pause()
        assert not dialog.can_start
        box = dialog.query_one("#create", OptionBox)
        box.focus()
        await pilot.pause()
        # QA: the footer (and the keys panel) showed Start lit on a box or the list, where Enter
        # did nothing: greyed out, as on any other field while Start is off.
        assert start_key_lit(dialog) is False
        await pilot.press("enter")
        await pilot.pause()
        assert box.value is True
        dialog.query_one(CheckList).focus()
        await pilot.pause()
        assert start_key_lit(dialog) is False
        await pilot.press("down", "enter")
        await pilot.pause()
        assert dialog.query_one(TocTables).chosen == ()
        assert app.screen is dialog and app.results == []
        dialog.query_one("#target-db", Input).focus()
        await pilot.pause()
        assert start_key_lit(dialog) is False


def start_key_lit(dialog: RestoreDialog) -> bool | None:
    """Whether the dialog's Enter is shown as a lit Start key (None: not shown at all)."""
    active = dialog.active_bindings.get("enter")
    return None if active is None or active.binding.action != "start" else active.enabled
