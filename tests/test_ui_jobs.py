"""Pilot tests of the job pieces of the TUI (dialogs, confirmation, jobs pane) on the real sandbox.

Each piece is mounted alone in a tiny host app; the jobs run for real (pg_dump on `shop`).
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import psycopg
from textual.app import App, ComposeResult
from textual.dom import DOMNode
from textual.geometry import Region
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Button, Checkbox, DataTable, Input, Log, Select, Static, TextArea

from pgbackup_tui.core.cluster_plans import DumpallPlan
from pgbackup_tui.core.connect import Target, connect, target_from_dsn
from pgbackup_tui.core.defaults import fast_compression
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.dumpall import DumpallJob
from pgbackup_tui.core.identifiers import parse_qualified_name
from pgbackup_tui.core.jobs import JobEvent, JobState, LogLine
from pgbackup_tui.core.pgtools import find_client_tools
from pgbackup_tui.core.plans import DumpPlan, RestorePlan
from pgbackup_tui.core.selection import resolve_selection
from pgbackup_tui.ui.screens.backup_dialog import BackupDialog
from pgbackup_tui.ui.screens.confirm import ConfirmScreen
from pgbackup_tui.ui.screens.quit_confirm import QuitScreen
from pgbackup_tui.ui.screens.restore_dialog import RestoreDialog
from pgbackup_tui.ui.widgets.job_log import JobLog
from pgbackup_tui.ui.widgets.jobs_pane import JobsPane

SIZE = (100, 30)
SELECTED = ('"Sales & Ops"."Order Items"', 'public."star*name"')
# Relations a naive pattern for the selected ones would also match: they must be left out.
DECOYS = ('"Sales & Ops"."order items"', "public.starxname", "public.star_name", "public.starname")


class DialogHost(App):
    """Pushes one modal screen and keeps what it was dismissed with."""

    def __init__(self, dialog: Screen) -> None:
        super().__init__()
        self.dialog = dialog
        self.results: list[object] = []

    def on_mount(self) -> None:
        self.push_screen(self.dialog, callback=self.results.append)


class PaneHost(App):
    """A JobsPane alone; records the messages that bubble out of it."""

    def __init__(self) -> None:
        super().__init__()
        self.finished: list[str] = []
        self.selected: list[str] = []

    def compose(self) -> ComposeResult:
        yield JobsPane()

    def on_jobs_pane_job_finished(self, message: JobsPane.JobFinished) -> None:
        self.finished.append(message.job.id)

    def on_jobs_pane_job_selected(self, message: JobsPane.JobSelected) -> None:
        self.selected.append(message.job.id)


def socket_target(sandbox) -> Target:
    return target_from_dsn(sandbox.dsn("postgres"), label="sandbox")


def text_of(static: Static) -> str:
    return str(static.content)


async def settle(app: App, pilot: Pilot) -> None:
    """Wait for every worker (dialog lookups, jobs) and for the messages they posted. A pause first:
    a value set just before posts its Changed message, whose handler starts the worker (waiting
    before it ran found no worker, and the test went on before the lookup on a loaded machine)."""
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


# -- BackupDialog ------------------------------------------------------------------------------
async def test_backup_preview_excludes_the_decoys_not_the_selection_and_hides_the_password(sandbox, home):
    # Over TCP with a password, so that there is a password that must not show.
    target = target_from_dsn(sandbox.dsn("postgres", tcp=True), label="sandbox").with_password(sandbox.password)
    tables = tuple(parse_qualified_name(name) for name in SELECTED)
    dialog = BackupDialog(target, sandbox.major, "shop", tables, stamp="20260101T000000Z")
    app = DialogHost(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        preview = dialog.query_one("#command-preview", TextArea).text
        assert preview.startswith(find_client_tools(sandbox.major).pg_dump)
        # The decoys are left out by the patterns the job itself runs with (core/exclusion.py covers
        # them with a few patterns; tests/test_exclusion.py proves what pg_dump makes of them).
        with connect(target, "shop") as conn:
            resolved = resolve_selection(conn, list(tables), "shop")
        assert {parse_qualified_name(decoy) for decoy in DECOYS} <= set(resolved.left_out)
        for pattern in resolved.exclude:
            assert shlex.quote(f"--exclude-table={pattern}") in preview
        for selected in tables:
            assert selected.pattern not in preview
        assert sandbox.password not in preview
        # The job writes NAME.partial in the default folder and renames it once it reads back.
        assert f"--file={home}/backups/sandbox/shop/20260101T000000Z.dump.partial" in preview
        assert "--format=c" in preview
        assert text_of(dialog.query_one("#backup-selection", Static)).startswith("2 tables selected in shop")
        assert dialog.query_one("#backup-start", Button).disabled is False


async def test_backup_dialog_refuses_tar_with_compression_then_returns_the_chosen_plan(sandbox, home):
    dialog = BackupDialog(socket_target(sandbox), sandbox.major, "shop")
    app = DialogHost(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        start = dialog.query_one("#backup-start", Button)
        error = dialog.query_one("#backup-error", Static)
        assert text_of(dialog.query_one("#backup-selection", Static)) == "whole database shop"
        assert not start.disabled and text_of(error) == ""

        dialog.query_one("#compress", Input).focus()
        await pilot.press("6")
        dialog.query_one("#format", Select).value = "tar"
        await pilot.pause()
        assert "Compression: a tar dump is not compressed" in text_of(error)
        assert start.disabled
        assert "--format=t" not in dialog.query_one("#command-preview", TextArea).text
        await pilot.press("enter")
        assert app.results == []

        await pilot.press("backspace")  # the compression field stayed editable to fix this
        assert text_of(error) == "" and not start.disabled
        assert "--format=t" in dialog.query_one("#command-preview", TextArea).text

        jobs = dialog.query_one("#jobs", Input)
        assert jobs.disabled  # parallel dumps need the directory format
        dialog.query_one("#format", Select).value = "directory"
        await pilot.pause()
        assert not jobs.disabled
        jobs.focus()
        await pilot.press("backspace", "3")
        schema_only, data_only = dialog.query_one("#schema-only", Checkbox), dialog.query_one("#data-only", Checkbox)
        schema_only.value = True
        data_only.value = True
        await pilot.pause()
        assert schema_only.value is False  # they exclude each other
        data_only.value = False
        dialog.query_one("#no-owner", Checkbox).focus()
        await pilot.press("space", "enter")
        await pilot.pause()

    assert len(app.results) == 1
    plan = app.results[0]
    assert isinstance(plan, DumpPlan)
    # An empty compression field: the measured default, as the preview showed it (core/defaults.py).
    fast = fast_compression(find_client_tools(sandbox.major))
    assert (plan.dbname, plan.format, plan.jobs, plan.compress, plan.tables) == ("shop", "directory", 3, fast, ())
    assert plan.no_owner and not plan.no_privileges and not plan.schema_only and not plan.data_only
    assert plan.output is None  # the default folder: the job picks a unique name in it
    plan.validate()


async def test_backup_dialog_escape_dismisses_with_none(sandbox, home):
    dialog = BackupDialog(socket_target(sandbox), sandbox.major, "shop")
    app = DialogHost(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [None]


# -- RestoreDialog -----------------------------------------------------------------------------
async def test_restore_dialog_defaults_to_a_new_database_and_guards_clean(sandbox, home, tmp_path):
    target = socket_target(sandbox)
    dumped = await DumpJob(DumpPlan(target=target, dbname="shop", schema_only=True)).run()
    assert dumped.state == JobState.SUCCEEDED, dumped.message
    not_an_archive = tmp_path / "notes.txt"
    not_an_archive.write_text("hello\n")
    with_create = tmp_path / "with-create.sql"
    subprocess.run([find_client_tools(sandbox.major).pg_dump, "--create", "--schema-only", "--file", str(with_create),
                    "--dbname", sandbox.dsn("shop")], check=True)

    sandbox.drop_database("shop_restored")
    dialog = RestoreDialog(dumped.output_path, {"sandbox": target}, "sandbox", "other")
    app = DialogHost(dialog)
    try:
        await _defaults_and_clean(sandbox, dialog, app, dumped.output_path, not_an_archive, with_create)
    finally:  # a failure above must not leave it to the next test, whose new database it would be
        sandbox.drop_database("shop_restored")
    assert len(app.results) == 1
    plan = app.results[0]
    assert isinstance(plan, RestorePlan)
    assert (plan.archive, plan.dbname, plan.create, plan.clean) == (dumped.output_path, "shop_restored", False, True)
    assert plan.target is target


async def _defaults_and_clean(sandbox, dialog, app, archive_path, not_an_archive, with_create):
    """The dialog's steps, in the app: its defaults, archives it refuses, then a confirmed --clean."""
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        start = dialog.query_one("#restore-start", Button)
        database = dialog.query_one("#target-db", Input)
        status = dialog.query_one("#archive-status", Static)
        assert database.value == "shop_restored"  # from the manifest, not the caller's "other"
        assert text_of(status).startswith("custom archive")
        assert not start.disabled

        archive = dialog.query_one("#archive", Input)
        archive.value = str(not_an_archive)
        await settle(app, pilot)
        assert "not a pg_dump archive" in text_of(status) and start.disabled
        # pg_dump --create's script makes its own database, whatever the target: Start stays off.
        archive.value = str(with_create)
        await settle(app, pilot)
        assert "makes and fills database 'shop' itself" in text_of(dialog.query_one("#restore-error", Static))
        assert start.disabled
        archive.value = str(archive_path)
        await settle(app, pilot)
        assert not start.disabled

        # Made only now: while "create new database" is checked, the look-up of its name (after a
        # pause in the typing) finds it and holds Start, as soon as it answers (on a loaded machine,
        # before the asserts above).
        sandbox.create_database("shop_restored")  # --clean replaces an existing database
        create, clean = dialog.query_one("#create", Checkbox), dialog.query_one("#clean", Checkbox)
        assert clean.disabled  # a new database has nothing to clean
        create.value = False
        await pilot.pause()
        clean.value = True
        await pilot.pause()
        assert dialog.query_one("#confirm-row").display
        assert start.disabled

        dialog.query_one("#confirm-db", Input).focus()
        await pilot.press(*"shop_restore")
        await pilot.press("enter")
        assert start.disabled and app.results == []
        await pilot.press("d")
        # The name is confirmed: the dialog works out what --clean will do (a dry run of the real
        # job) and allows Start only once it has shown that.
        await settle(app, pilot)
        summary = text_of(dialog.query_one("#restore-summary", Static))
        assert "restore into a new database beside 'shop_restored'" in summary, summary
        assert "swap names" in summary
        assert not start.disabled
        await pilot.press("enter")
        await pilot.pause()


# -- ConfirmScreen -----------------------------------------------------------------------------
async def test_confirm_answers_y_n_and_escape():
    for key, expected in (("y", True), ("n", False), ("escape", False)):
        app = DialogHost(ConfirmScreen("Cancel the job?"))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press(key)
            await pilot.pause()
        assert app.results == [expected], key


async def test_quit_screen_answers_leave_cancel_or_stay():
    for key, expected in (("y", "leave"), ("c", "cancel"), ("n", None), ("escape", None), ("enter", None)):
        app = DialogHost(QuitScreen(2))
        async with app.run_test(size=SIZE) as pilot:
            question = text_of(app.screen.query_one("#quit-question", Static))
            assert question == "2 jobs still running: they go on in the background (pgbackup-tui jobs list). Quit?"
            await pilot.press(key)  # enter: the focused button is Stay, so a reflexive enter changes nothing
            await pilot.pause()
        assert app.results == [expected], key


async def test_quitting_the_demo_says_its_server_stops_and_the_jobs_on_it_fail():
    """The dialog said a running job goes on; under `demo` the sandbox stops with the app, and the
    job failed ("terminating connection due to administrator command")."""
    app = DialogHost(QuitScreen(1, "demo"))
    async with app.run_test(size=SIZE):
        question = text_of(app.screen.query_one("#quit-question", Static))
    assert "server 'demo' stops when you quit" in question and "fails" in question, question
    assert "goes on in the background" not in question


async def test_confirm_with_required_text_needs_it_typed_exactly():
    app = DialogHost(ConfirmScreen("Drop the objects in shop_restored?", require_text="shop_restored"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("y", "enter")  # 'y' is typed into the field, it does not answer
        await pilot.pause()
        assert app.results == []
        await pilot.press("backspace", *"shop_restored", "enter")
        await pilot.pause()
    assert app.results == [True]


# -- JobsPane ----------------------------------------------------------------------------------
async def test_jobs_pane_follows_a_dump_to_success(sandbox, home):
    app = PaneHost()
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(JobsPane)
        job = DumpJob(DumpPlan(target=socket_target(sandbox), dbname="shop"))
        pane.add_job(job)
        assert pane.selected_job() is job and pane.jobs.running() == [job]
        app.run_worker(job.run())
        await settle(app, pilot)

        table = pane.query_one(DataTable)
        assert str(table.get_cell(job.id, "state")) == "succeeded"
        assert str(table.get_cell(job.id, "target")) == "shop@sandbox"
        assert "100%" in str(table.get_cell(job.id, "progress"))
        assert pane.jobs.running() == []
        log = pane.query_one(JobLog)
        assert any("pg_dump: dumping contents of table" in line for line in log.written_lines)
        assert [text for text, _ in pane.log_lines(job)] == log.written_lines
        assert text_of(pane.query_one("#job-result", Static)) == job.result.message
        shown = text_of(pane.query_one("#job-result", Static)) + text_of(pane.query_one("#job-paths", Static))
        assert str(job.result.output_path) in shown and f"log: {job.log_path}" in shown
        assert app.finished == [job.id] and app.selected == [job.id]


async def test_a_whole_server_job_s_target_is_its_server_not_the_database_it_connects_to(sandbox, home):
    # QA: a pg_dumpall (or a cluster set, or its restore) listed as "postgres@sandbox" in the target
    # column, the database it connects to, and at 80x24 (no kind column) read as a dump of postgres.
    app = PaneHost()
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(JobsPane)
        job = DumpallJob(DumpallPlan(target=socket_target(sandbox), roles_only=True))
        pane.add_job(job)
        app.run_worker(job.run())
        await settle(app, pilot)
        assert job.state == JobState.SUCCEEDED, job.result
        assert str(pane.query_one(DataTable).get_cell(job.id, "target")) == "sandbox (cluster)"


async def test_jobs_pane_says_which_lock_a_waiting_dump_is_behind(sandbox, home, fresh_db_name):
    sandbox.create_database(fresh_db_name)
    sandbox.psql("CREATE TABLE public.held (id int)", fresh_db_name)
    app = PaneHost()
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(JobsPane)
        job = DumpJob(DumpPlan(target=socket_target(sandbox), dbname=fresh_db_name))
        with psycopg.connect(sandbox.dsn(fresh_db_name), application_name="migration") as holder:
            holder.execute("LOCK TABLE public.held IN ACCESS EXCLUSIVE MODE")
            pane.add_job(job)
            app.run_worker(job.run())
            expected = f"waiting for a lock held by pid {holder.info.backend_pid} (migration)"
            title = ""
            for _ in range(200):  # what a DBA asking "is it hung?" reads above the log
                await pilot.pause(0.05)
                title = text_of(pane.query_one("#job-title", Static))
                if expected in title:
                    break
            holder.rollback()
        await settle(app, pilot)
        assert title.startswith(expected)  # first: the pane cuts the line at its width (40 columns at 80x24)
        assert "left" not in title  # blocked, nobody can say how long is left
        assert job.state == JobState.SUCCEEDED
        assert "waiting" not in text_of(pane.query_one("#job-title", Static))


async def test_a_cluster_set_whose_member_waits_for_a_lock_says_so(sandbox, home, fresh_db_name):
    # QA: a cluster set whose member dump waited for a lock showed "running 58%" and a time left
    # that stood still, and nothing about the lock (a whole-server pg_dumpall said it).
    sandbox.create_database(fresh_db_name)
    sandbox.psql("CREATE TABLE public.held (id int)", fresh_db_name)
    app = PaneHost()
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(JobsPane)
        job = DumpallJob(DumpallPlan(target=socket_target(sandbox), set_format="custom", databases=(fresh_db_name,)))
        with psycopg.connect(sandbox.dsn(fresh_db_name), application_name="migration") as holder:
            holder.execute("LOCK TABLE public.held IN ACCESS EXCLUSIVE MODE")
            pane.add_job(job)
            app.run_worker(job.run())
            expected = f"waiting for a lock held by pid {holder.info.backend_pid} (migration) in {fresh_db_name}"
            title = ""
            for _ in range(200):
                await pilot.pause(0.05)
                title = text_of(pane.query_one("#job-title", Static))
                if expected in title:
                    break
            left = str(pane.query_one(DataTable).get_cell(job.id, "left"))
            holder.rollback()
        await settle(app, pilot)
        assert title.startswith(expected), title
        assert left == ""  # blocked: nobody can say how long is left
        assert job.state == JobState.SUCCEEDED, job.result
        assert "waiting" not in text_of(pane.query_one("#job-title", Static))


async def test_jobs_pane_highlights_errors_of_a_failed_job(sandbox, home):
    app = PaneHost()
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(JobsPane)
        job = DumpJob(DumpPlan(target=socket_target(sandbox), dbname="no_such_db"))
        pane.add_job(job)
        app.run_worker(job.run())
        await settle(app, pilot)

        assert str(pane.query_one(DataTable).get_cell(job.id, "state")) == "failed"
        assert pane.query_one("#job-result", Static).has_class("-failed")
        log = pane.query_one(JobLog)
        await pilot.resize_terminal(400, SIZE[1])  # wide enough for every line to be one row (no wrapping)
        await pilot.pause()
        error_colour = log.get_component_rich_style("job-log--error", partial=True).color
        plain_colour = log.rich_style.color
        assert error_colour is not None and error_colour != plain_colour
        colours = {}
        for y, line in enumerate(log.lines):
            colours[line] = {segment.style.color for segment in log.render_line(y) if segment.text.strip()}
        failure = next(line for line in log.lines if 'database "no_such_db" does not exist' in line)
        assert colours[failure] == {error_colour}


async def test_jobs_pane_shows_a_cancelled_dump_and_no_partial_is_left(sandbox, home):
    app = PaneHost()
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(JobsPane)
        job = DumpJob(DumpPlan(target=socket_target(sandbox), dbname="shop"))

        def cancel_once_pg_dump_talks(event: JobEvent) -> None:
            # pg_dump is running when it prints: the cancel has a child to stop.
            if isinstance(event, LogLine) and event.text.startswith("pg_dump:"):
                job.cancel()

        pane.add_job(job)
        job.subscribe(cancel_once_pg_dump_talks)
        app.run_worker(job.run())
        await settle(app, pilot)

        assert job.state == JobState.CANCELLED
        assert str(pane.query_one(DataTable).get_cell(job.id, "state")) == "cancelled"
        assert "cancelled" in text_of(pane.query_one("#job-result", Static))
        assert pane.jobs.running() == []
    backups = Path(home) / "backups"
    assert list(backups.rglob("*.partial")) == []
    assert [p for p in backups.rglob("*") if p.is_file()] == []


class LogHost(App):
    def compose(self) -> ComposeResult:
        yield JobLog(max_lines=100)


async def test_job_log_keeps_the_last_lines_and_their_colours_aligned():
    app = LogHost()
    async with app.run_test(size=SIZE) as pilot:
        log = app.query_one(JobLog)
        # Empty lines and raw brackets included: neither may shift a level onto another line.
        log.write_levelled([(f"line {n} [bold]x[/bold]" if n % 7 else "", "error" if n % 10 == 0 else "info")
                            for n in range(250)])
        await pilot.pause()
        assert len(log.lines) == 100 and log.lines[-1] == "line 249 [bold]x[/bold]"
        error_colour = log.get_component_rich_style("job-log--error", partial=True).color
        log.scroll_home(animate=False)
        await pilot.pause()
        assert log.older_lines_hidden  # the first row says the file has the lines before
        assert "".join(segment.text for segment in log.render_line(0)).startswith("… earlier lines are in the log file")
        for y, line in enumerate(log.lines[: log.size.height]):
            if y == 0:
                continue
            colours = {segment.style.color for segment in log.render_line(y) if segment.text.strip()}
            number = int(line.split()[1]) if line.strip() else None
            if number is not None:
                assert (colours == {error_colour}) == (number % 10 == 0), line



async def test_job_log_paints_its_view_with_one_walk_of_its_ancestors_for_their_style(monkeypatch):
    """Log draws each line with the widget's rich_style, which Textual computes from the ancestors
    every time: the view is painted with it computed once, and the lines are the same."""
    app = LogHost()
    async with app.run_test(size=SIZE) as pilot:
        log = app.query_one(JobLog)
        log.write_levelled([(f"line {n}", "error" if n % 5 == 0 else "info") for n in range(60)])
        await pilot.pause()
        view = Region(0, 0, log.size.width, log.size.height)
        log._render_line_cache.clear()  # every line drawn again, as when a write scrolls the view
        log._styles_cache.clear()
        walks: list[object] = []
        walk = DOMNode.rich_style.fget
        assert walk is not None

        def counted(node: DOMNode) -> object:
            walks.append(node)
            return walk(node)

        monkeypatch.setattr(DOMNode, "rich_style", property(counted))
        lines = log.render_lines(view)
        assert len(lines) == log.size.height > 10
        assert [node for node in walks if node is log] == [log]
        monkeypatch.undo()
        log._render_line_cache.clear()
        log._styles_cache.clear()
        # Drawn as Log draws them, past the mixin's render_lines: a walk a line.
        assert Log.render_lines(log, view) == lines

async def test_a_job_that_comes_in_unselected_is_scrolled_into_view(sandbox, home):
    """A job started elsewhere (cron, another shell) is added and not selected: at 80x24 the table
    shows a few rows; its row, the first (newest first), is in view even once the cursor's job has
    moved down past them."""
    app = PaneHost()
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(JobsPane)
        table = pane.query_one("#jobs-table", DataTable)
        jobs = [DumpJob(DumpPlan(target=socket_target(sandbox), dbname=f"db{n}")) for n in range(15)]
        pane.add_job(jobs[0])  # selected: the cursor stays on it
        for job in jobs[1:]:
            pane.add_job(job, select=False)
        await pilot.pause()
        await pilot.pause()
        assert table.max_scroll_y > 0  # more rows than the table shows
        assert table.get_row_index(jobs[-1].id) == 0 and table.scroll_y == 0  # the newest row in view
        assert pane.selected_job() is jobs[0]
        assert table.cursor_row == table.get_row_index(jobs[0].id) == len(jobs) - 1
