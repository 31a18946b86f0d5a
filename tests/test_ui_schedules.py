"""The Schedules tab: an SVG snapshot at 80×24 with a fixed clock and zone (no wall clock in the
picture), and Pilot tests in the real app on the sandbox: add through the form (a bad cron is
refused in the form, by field), Run now (the run's job appears in the Jobs tab and the row gets
its result badge), install into a throwaway user's crontab only after the exact lines were shown,
and a server added in the tree keeps the schedules the tab wrote."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from textual.app import App, ComposeResult
from textual.command import CommandPalette
from textual.widgets import Button, Checkbox, DataTable, Input, Select, Static, TabbedContent
from textual.widgets._footer import FooterKey

from pgbackup_tui.core import crontab
from pgbackup_tui.core.config import load_config, save_config
from pgbackup_tui.core.server_profile import ServerProfile
from pgbackup_tui.core.schedules import WHATS, Schedule
from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.commands import build_commands
from pgbackup_tui.ui.screens.crontab_confirm import CrontabConfirm
from pgbackup_tui.ui.screens.schedule_form import ScheduleForm
from pgbackup_tui.ui.widgets.lean_footer import LeanFooter
from pgbackup_tui.ui.widgets.backups_pane import BackupsPane
from pgbackup_tui.ui.widgets.schedules_pane import SchedulesPane
from pgbackup_tui.ui.widgets.server_tree import ServerTree
from test_schedule_compress import tools_with_and_without
from test_schedules import _crontab, cron_user  # noqa: F401 - cron_user is a fixture
from uiutil import move_to, open_line, socket_profile, wait_until

SIZE = (80, 24)
FIXED_NOW = datetime(2026, 3, 28, 22, 15, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")


def _last_run(home: Path, name: str, status: str, finished: str) -> None:
    folder = home / "state" / "schedules"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps({"schedule": name, "status": status, "finished_at": finished,
                                                     "started_at": finished}))


class PaneApp(App[None]):
    def compose(self) -> ComposeResult:
        yield SchedulesPane(clock=lambda: FIXED_NOW, zone=PARIS, refresh_s=None, id="schedules-pane")


def test_schedules_tab_snapshot(snap_compare, monkeypatch):
    monkeypatch.setenv("PGBACKUP_TUI_CRONTAB", "/bin/true")  # the status line names crontab, on any machine
    home = Path("/tmp/pgbackup-tui-snapshot-schedules")  # fixed: the line of a broken schedule names the file
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(mode=0o700, exist_ok=True)
    monkeypatch.setenv("PGBACKUP_TUI_HOME", str(home))
    config = load_config()
    config.servers["prod"] = ServerProfile(name="prod", host="db.example.com")
    config.schedules = {
        "nightly": Schedule(name="nightly", server="prod", cron="30 2 * * *", database="shop", keep_last=7,
                            verify=True),
        "weekly-all": Schedule(name="weekly-all", server="prod", cron="0 4 * * sun", what="cluster", keep_days=60),
        "roles": Schedule(name="roles", server="prod", cron="0 * * * *", what="globals"),
    }
    save_config(config)
    with (home / "config.toml").open("a") as file:  # a schedule that does not load: its own line, said why
        file.write('\n[schedules.hourly-bad]\nserver = "prod"\ncron = "61 * * * *"\ndatabase = "shop"\n')
    _last_run(home, "nightly", "succeeded", "2026-03-28T00:31:12+00:00")
    _last_run(home, "weekly-all", "failed", "2026-03-22T02:00:40+00:00")
    # The night of 28 to 29 March: Paris moves to summer time at 02:00, so 02:30 does not exist that
    # night and cron (and cronsim) run the job at 03:00 CEST.
    try:
        assert snap_compare(PaneApp(), terminal_size=SIZE)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def app_with_the_sandbox(sandbox) -> PgBackupApp:
    config = load_config()
    config.servers["sandbox"] = socket_profile(sandbox)
    save_config(config)
    return PgBackupApp()


async def open_the_form(app: PgBackupApp, pilot) -> None:
    """The Schedules tab, then `a`: the form to add one."""
    await pilot.press("4")
    app.query_one(SchedulesPane).query_one(DataTable).focus()
    await pilot.press("a")
    await wait_until(lambda: isinstance(app.screen, ScheduleForm))


async def test_add_run_now_and_install_from_the_tab(sandbox, home, cron_user, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PGBACKUP_TUI_CRONTAB", f"crontab -u {cron_user}")
    sandbox.psql("DROP DATABASE IF EXISTS tui_sched; CREATE DATABASE tui_sched;")
    sandbox.psql("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 100) g;", "tui_sched")
    config = load_config()
    config.servers["sandbox"] = socket_profile(sandbox)
    save_config(config)
    app = PgBackupApp()
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("4")
            pane = app.query_one(SchedulesPane)
            table = pane.query_one(DataTable)
            table.focus()
            await pilot.pause()
            assert table.row_count == 0
            await pilot.press("a")
            await wait_until(lambda: isinstance(app.screen, ScheduleForm))
            # The footer left in view under the form showed the list's keys (a Add, n Run now...),
            # which the form takes for itself (typed into its fields).
            footer = app.screen_stack[0].query_one(LeanFooter)
            await pilot.pause()
            assert not {key.description for key in footer.query(FooterKey)} & {"Add", "Edit", "Run now", "Install"}
            form = app.screen
            form.query_one("#schedule-name", Input).value = "tui"
            form.query_one("#schedule-database", Input).value = "tui_sched"
            form.query_one("#schedule-cron", Input).value = "61 2 * * *"
            await pilot.pause()
            assert "minute" in str(form.query_one("#schedule-next", Static).render())
            await pilot.click("#schedule-form-save")
            await pilot.pause()
            assert isinstance(app.screen, ScheduleForm)  # refused, the reason shown in the form
            assert "minute" in str(form.query_one("#schedule-form-result", Static).render())
            form.query_one("#schedule-cron", Input).value = "0 3 1 1 *"
            # A Button ignores clicks during its press animation (class -active, 0.2 s): a second
            # click sooner is lost (the test then timed out, depending on the machine's speed).
            save = form.query_one("#schedule-form-save", Button)
            await wait_until(lambda: not save.has_class("-active"))
            await pilot.click("#schedule-form-save")
            await wait_until(lambda: not isinstance(app.screen, ScheduleForm))
            saved = load_config().schedules["tui"]
            assert (saved.database, saved.cron, saved.keep_last, saved.verify) == ("tui_sched", "0 3 1 1 *", 7, True)
            assert table.row_count == 1

            # Run now: `pgbackup-tui run tui` on its own; its job shows up in the Jobs tab.
            await pilot.press("n")
            await wait_until(lambda: any("schedule tui" in job.title for job in app.jobs), timeout=30)
            job = next(job for job in app.jobs if "schedule tui" in job.title)
            await wait_until(lambda: job.state.is_final, timeout=60)
            await wait_until(lambda: not pane.run_now_processes() or all(
                p.poll() is not None for p in pane.run_now_processes()), timeout=60)
            pane.reload()
            await pilot.pause()
            assert str(table.get_cell("tui", "result")) == "✔ ok"

            # Install: the exact lines first; No writes nothing, Yes writes them.
            await pilot.press("i")
            await wait_until(lambda: isinstance(app.screen, CrontabConfirm))
            shown = app.screen.lines
            assert "# >>> pgbackup-tui schedules >>>" in shown and "0 3 1 1 * " in shown and " run tui " in shown
            await pilot.press("n")
            await pilot.pause()
            assert _crontab(cron_user) == ""
            await pilot.press("i")
            await wait_until(lambda: isinstance(app.screen, CrontabConfirm))
            await pilot.press("y")
            await wait_until(lambda: _crontab(cron_user) != "", timeout=10)
            assert _crontab(cron_user) == shown + "\n"
            # That user cannot read this test's config (root's 0700 folder): said, as the CLI says it.
            await wait_until(lambda: any(f"user {cron_user} cannot run these lines" in str(n.message)
                                         for n in app._notifications), timeout=30)
            assert any(f"into {cron_user}'s crontab" in str(n.message) for n in app._notifications)

            # A server added through the tree's profiles keeps the schedules the tab wrote.
            app.profiles.save(ServerProfile(name="other", host="127.0.0.1", port=1), None)
            assert "tui" in load_config().schedules
    finally:
        sandbox.psql("DROP DATABASE IF EXISTS tui_sched;")


async def test_a_schedule_of_a_database_that_is_not_there_is_saved_with_a_warning(sandbox, home):
    """A typo in the form's database would fail every night's run: said when it is saved, from a
    worker (the server may take seconds to answer), and saved all the same."""
    app = app_with_the_sandbox(sandbox)
    async with app.run_test(size=SIZE) as pilot:
        await open_the_form(app, pilot)
        form = app.screen
        form.query_one("#schedule-name", Input).value = "typo"
        form.query_one("#schedule-database", Input).value = "shpo"
        await pilot.pause()
        await pilot.click("#schedule-form-save")
        await wait_until(lambda: not isinstance(app.screen, ScheduleForm))
        assert load_config().schedules["typo"].database == "shpo"
        await wait_until(lambda: any("database 'shpo' does not exist on server 'sandbox'" in str(n.message)
                                     for n in app._notifications), timeout=30)


def one_nightly_schedule(monkeypatch) -> None:
    """config.toml with server prod and its schedule nightly; crontab a program that takes anything."""
    monkeypatch.setenv("PGBACKUP_TUI_CRONTAB", "/bin/true")
    config = load_config()
    config.servers["prod"] = ServerProfile(name="prod", host="db.example.com")
    config.schedules = {"nightly": Schedule(name="nightly", server="prod", cron="30 2 * * *", database="shop")}
    save_config(config)


async def test_removing_a_schedule_forgets_its_last_run_and_i_takes_the_last_one_out_of_crontab(
        home, monkeypatch, cron_user):  # noqa: F811
    one_nightly_schedule(monkeypatch)
    monkeypatch.setenv("PGBACKUP_TUI_CRONTAB", f"crontab -u {cron_user}")
    subprocess.run(["crontab", "-u", cron_user, "-"], input="0 1 * * * /bin/mine\n", text=True, check=True)
    crontab.install(load_config())
    assert " run nightly " in _crontab(cron_user)
    _last_run(home, "nightly", "failed", "2026-03-28T00:31:12+00:00")
    app = PaneApp()
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(SchedulesPane)
        await wait_until(lambda: app.query_one(DataTable).row_count == 1)
        app.query_one(DataTable).focus()
        # QA: at 80 columns the lines were cut before what they run, and no key scrolled them (the
        # No button had the focus): the lines have it, → scrolls them, and Enter writes nothing.
        await pilot.press("i")
        await wait_until(lambda: isinstance(app.screen, CrontabConfirm))
        lines = app.screen.query_one("#crontab-lines")
        assert app.focused is lines and lines.max_scroll_x > 0, (app.focused, lines.max_scroll_x)
        await pilot.press("right", "enter")
        await pilot.pause()
        assert lines.scroll_x > 0 and isinstance(app.screen, CrontabConfirm)
        await pilot.press("n")
        await wait_until(lambda: not isinstance(app.screen, CrontabConfirm))
        await pilot.press("delete")
        await pilot.pause()
        await pilot.press("y")
        await wait_until(lambda: "nightly" not in load_config().schedules)
        await pilot.pause()
        # QA: "removed; i updates your crontab", and i did nothing with no schedule left: its line
        # stayed, and cron ran `run nightly` every night to fail ("no schedule named 'nightly'").
        assert pane.check_action("install", ()) is True
        await pilot.press("i")
        await wait_until(lambda: isinstance(app.screen, CrontabConfirm))
        assert "No schedules left" in app.screen.question
        await pilot.press("y")
        await wait_until(lambda: " run nightly " not in _crontab(cron_user), timeout=10)
        await wait_until(lambda: pane.check_action("install", ()) is None)
    assert _crontab(cron_user) == "0 1 * * * /bin/mine\n"
    # A schedule added later under that name must not show this one's failed run as its own.
    assert not (home / "state" / "schedules" / "nightly.json").exists()


async def test_a_new_schedule_starts_from_the_database_under_the_tree_s_cursor(sandbox, home):
    """Added after browsing to a database, the form named the first server and no database (QA)."""
    config = load_config()
    config.servers["another"] = ServerProfile(name="another", host="db.example.invalid")  # listed first
    config.servers["sandbox"] = socket_profile(sandbox)
    save_config(config)
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ServerTree)
        await open_line(pilot, tree, lambda text: text.startswith("sandbox"))
        await move_to(pilot, tree, lambda text: text.removeprefix("[ ] ").startswith("shop "))
        await pilot.press("4")
        app.query_one(SchedulesPane).query_one(DataTable).focus()
        await pilot.press("a")
        await wait_until(lambda: isinstance(app.screen, ScheduleForm))
        form = app.screen
        assert form.query_one("#schedule-server", Select).value == "sandbox"
        assert form.query_one("#schedule-database", Input).value == "shop"


async def test_the_form_s_unchecked_box_is_drawn_empty(sandbox, home):
    # QA: "drill" (off) drew "▐X▌" as "verify" (on) did, in the box's colour only: the form's boxes
    # were Textual's Checkbox, not the OptionBox of the other dialogs.
    app = app_with_the_sandbox(sandbox)
    async with app.run_test(size=SIZE) as pilot:
        await open_the_form(app, pilot)
        await pilot.pause()
        boxes = {box.id: str(box.render())[:3] for box in app.screen.query("#schedule-form-checks > *")}
        assert boxes == {"schedule-keep-verified": "▐X▌", "schedule-verify": "▐X▌", "schedule-drill": "▐ ▌"}


async def test_the_form_shows_and_checks_a_compression_as_dump_takes_it(sandbox, home):
    """The form had no compression at all (a schedule's took a gzip level, in config.toml only): it
    shows the schedule's as `schedule list` does, and refuses one the server's pg_dump lacks."""
    having, lacking = tools_with_and_without(sandbox, "zstd:3")
    config = load_config()
    for name, tools in (("with", having), ("without", lacking)):
        config.servers[name] = ServerProfile(name=name, dsn=sandbox.dsn(), bin_dir=str(tools.bin_dir))
    config.schedules = {"z": Schedule(name="z", server="with", cron="30 2 * * *", database="shop", compress="zstd:3")}
    save_config(config)
    app = PaneApp()
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(DataTable)
        await wait_until(lambda: table.row_count == 1)
        assert str(table.get_cell("z", "what")) == "shop (custom, compress zstd:3)"
        table.focus()
        await pilot.press("e")
        await wait_until(lambda: isinstance(app.screen, ScheduleForm))
        form = app.screen
        assert form.query_one("#schedule-compress", Input).value == "zstd:3"
        form.query_one("#schedule-server", Select).value = "without"
        await pilot.pause()
        form.action_save()
        result = form.query_one("#schedule-form-result", Static)
        await wait_until(lambda: "cannot compress" in str(result.render()), timeout=30)
        assert f"Compression zstd:3: pg_dump {lacking.version}" in str(result.render())
        assert app.screen is form and load_config().schedules["z"].server == "with"
        form.query_one("#schedule-compress", Input).value = "6"
        form.action_save()
        await wait_until(lambda: not isinstance(app.screen, ScheduleForm))
        await wait_until(lambda: load_config().schedules["z"].server == "without")
        assert load_config().schedules["z"].compress == 6  # a level, as config files had it
        await wait_until(lambda: str(table.get_cell("z", "what")) == "shop (custom, compress 6)")


async def test_the_form_offers_no_format_for_pg_dumpall_s_script_and_drops_one_saved_before(sandbox, home):
    """Editing a whole-cluster schedule offered pg_dump's formats and saved the one picked, never
    used (pg_dumpall writes one SQL script); a set's showed `format`, not its archives' set_format.
    Both left the Database field open, as if it were read (QA: a set of "shop")."""
    config = load_config()
    config.servers["sandbox"] = ServerProfile(name="sandbox", dsn=sandbox.dsn())
    save_config(config)
    with (home / "config.toml").open("a") as file:  # as that form saved them: they still load
        file.write('\n[schedules.all]\nserver = "sandbox"\ncron = "0 4 * * *"\nwhat = "cluster"\nformat = "plain"\n'
                   '\n[schedules.some]\nserver = "sandbox"\ncron = "0 5 * * *"\nwhat = "set"\nformat = "tar"\n'
                   'set_format = "directory"\ndatabases = ["shop"]\n')
    assert {"all", "some"} <= set(load_config().schedules)
    app = PaneApp()
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(DataTable)
        await wait_until(lambda: table.row_count == 2)
        table.focus()
        for name, shown, disabled in (("all", "sql", True), ("some", "directory", False)):
            table.move_cursor(row=table.get_row_index(name))
            await pilot.press("e")
            await wait_until(lambda: isinstance(app.screen, ScheduleForm))
            form = app.screen
            field = form.query_one("#schedule-format", Select)
            assert (field.value, field.disabled) == (shown, disabled), name
            assert form.query_one("#schedule-compress", Input).disabled == disabled
            assert form.query_one("#schedule-database", Input).disabled  # pg_dumpall, a set: no database field
            form.action_save()
            await wait_until(lambda: not isinstance(app.screen, ScheduleForm))
            await pilot.pause()
    text = (home / "config.toml").read_text()
    assert "format = \"plain\"" not in text and "format = \"tar\"" not in text, text
    saved = load_config().schedules
    assert (saved["all"].what, saved["some"].set_format, saved["some"].databases) == ("cluster", "directory", ("shop",))

    # Switched from a database to a set, the field offers a set's formats only (and back, pg_dump's).
    app = PaneApp()
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(DataTable).focus()
        await pilot.press("a")
        await wait_until(lambda: isinstance(app.screen, ScheduleForm))
        form = app.screen
        field = form.query_one("#schedule-format", Select)
        for what, formats in (("set", ["custom", "directory"]), ("roles", ["sql"]),
                              ("database", ["custom", "directory", "tar", "plain"])):
            form.query_one("#schedule-what", Select).value = what
            await pilot.pause()
            assert [value for _, value in field._options if value != Select.BLANK] == formats, what
            assert form.query_one("#schedule-database", Input).disabled == (what != "database"), what


async def test_the_status_lines_under_the_schedules_are_whole_at_80x24(home, monkeypatch):
    # QA: beside the tree at 80x24 the lines under the list (the highlighted schedule, then "1
    # schedule(s); times in this machine's zone, as cron runs them. i installs them into your
    # crontab.") took 6 lines at 40 columns and were cut at 4: where times are read and what i does.
    monkeypatch.setenv("PGBACKUP_TUI_CRONTAB", "/bin/true")
    config = load_config()
    config.servers["prod"] = ServerProfile(name="prod", host="127.0.0.1", port=1)
    # QA: a name of 63 characters (the most) made the Schedule column as wide: the result and the
    # next run were out of sight, at 40 columns and at 80. Cut in the middle; said whole below.
    long_name = "nightly-orders-eu-west-primary-cluster-full-with-verify-drill-" + "x"
    config.schedules = {"nightly": Schedule(name="nightly", server="prod", cron="30 2 * * *", database="shop",
                                            keep_last=7, verify=True),
                        long_name: Schedule(name=long_name, server="prod", cron="0 4 * * *", database="shop")}
    save_config(config)
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        pane = app.query_one(SchedulesPane)
        table = pane.query_one(DataTable)
        table.focus()
        await pilot.pause()
        status = pane.query_one("#schedules-status", Static)
        assert "i installs them into your crontab" in str(status.content)
        needed = status.get_content_height(status.size, status.size, status.content_size.width)
        assert needed > 4 and status.content_size.height >= needed, (needed, status.content_size)
        name_column, result_column = table.ordered_columns[:2]
        next_at = name_column.get_render_width(table) + result_column.get_render_width(table)
        assert next_at + len("12-06 02:30") <= table.scrollable_content_region.width, (next_at, table.size)
        assert str(table.get_cell(long_name, "name")) == "nightly-…drill-x"
        await pilot.press("down")
        await pilot.pause()
        assert f"{long_name}: 0 4 * * *" in str(status.content)


async def test_run_now_of_a_schedule_that_is_running_says_so_and_starts_nothing(sandbox, home, empty_db):
    """Run now while cron's run of the schedule went on: the tab said "started", and the run it
    started exited at once (another run holds the lock), its line unseen (QA)."""
    import subprocess
    import sys
    import time

    import psycopg

    sandbox.psql("CREATE TABLE items (id int)", empty_db)
    config = load_config()
    config.servers["sand"] = ServerProfile(name="sand", dsn=sandbox.dsn())
    config.schedules = {"nightly": Schedule(name="nightly", server="sand", cron="30 2 * * *", database=empty_db)}
    save_config(config)
    with psycopg.connect(sandbox.dsn(empty_db)) as holder:
        holder.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")  # the first run's pg_dump waits on it
        first = subprocess.Popen([sys.executable, "-m", "pgbackup_tui", "run", "nightly"], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        state = home / "state" / "schedules" / "nightly.json"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (state.exists() and json.loads(state.read_text()).get("job_id")):
            time.sleep(0.1)
        app = PaneApp()
        async with app.run_test(size=SIZE) as pilot:
            pane = app.query_one(SchedulesPane)
            await wait_until(lambda: app.query_one(DataTable).row_count == 1)
            app.query_one(DataTable).focus()
            await pilot.press("n")
            await pilot.pause()
            assert not pane.run_now_processes()
            said = [str(n.message) for n in app._notifications]
            assert any("schedule 'nightly' is already running: job" in line for line in said), said
            assert not any("started" in line and "already" not in line for line in said), said
        holder.rollback()
    assert first.wait(timeout=60) == 0


async def test_a_compression_with_a_format_that_has_none_is_said_in_the_form_s_words(sandbox, home):
    # QA: a tar or plain schedule with a compression said "--compress with --format plain is not
    # supported", flags the form has not; it names its own fields now, as the backup dialog does.
    config = load_config()
    config.servers["sandbox"] = socket_profile(sandbox)
    config.schedules = {"z": Schedule(name="z", server="sandbox", cron="30 2 * * *", database="shop")}
    save_config(config)
    app = PaneApp()
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(DataTable)
        await wait_until(lambda: table.row_count == 1)
        table.focus()
        await pilot.press("e")
        await wait_until(lambda: isinstance(app.screen, ScheduleForm))
        form = app.screen
        result = form.query_one("#schedule-form-result", Static)
        for fmt in ("plain", "tar"):
            form.query_one("#schedule-format", Select).value = fmt
            form.query_one("#schedule-compress", Input).value = "6"
            await pilot.pause()
            form.action_save()
            await pilot.pause()
            said = str(result.render())
            assert said.startswith(f"Compression: a {fmt} dump is not compressed") and "--" not in said, said
            assert app.screen is form


async def test_retention_and_drill_are_refused_in_the_form_s_words(sandbox, home):
    # QA: "schedule 'z': keep_last = 0: keep at least 1 …" and "drill = true restores one database …
    # (use verify = true)": config.toml's keys, in a form whose fields are "Keep last" and "drill".
    config = load_config()
    config.servers["sandbox"] = socket_profile(sandbox)
    config.schedules = {"z": Schedule(name="z", server="sandbox", cron="30 2 * * *", database="shop")}
    save_config(config)
    app = PaneApp()
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(DataTable)
        await wait_until(lambda: table.row_count == 1)
        table.focus()
        await pilot.press("e")
        await wait_until(lambda: isinstance(app.screen, ScheduleForm))
        form = app.screen
        result = form.query_one("#schedule-form-result", Static)
        cases = (("#schedule-keep-last", "0", "Keep last: keep at least 1"),
                 ("#schedule-keep-days", "0", "Keep days: keep at least 1"),
                 ("#schedule-keep-days", "99999", "Keep days: at most 36500"))
        for field, typed, said in cases:
            form.query_one(field, Input).value = typed
            form.action_save()
            await pilot.pause()
            assert str(result.render()).startswith(said) and "_" not in str(result.render()), str(result.render())
            form.query_one(field, Input).value = "7"
        form.query_one("#schedule-drill", Checkbox).value = True
        form.query_one("#schedule-what", Select).value = next(what for what in WHATS if what != "database")
        await pilot.pause()
        form.action_save()
        await pilot.pause()
        said = str(result.render())
        assert said.startswith("drill restores one database") and "=" not in said, said
        assert app.screen is form


async def test_an_edit_renamed_to_another_schedule_s_name_is_refused(home, monkeypatch):
    # QA: editing schedule `weekly` and naming it `nightly` saved it over `nightly` (its database,
    # retention and hooks gone), without a word. The form refuses a name it knows to be taken; one
    # taken while the form was open is refused when saved, and nothing is changed.
    monkeypatch.setenv("PGBACKUP_TUI_CRONTAB", "/bin/true")
    config = load_config()
    config.servers["prod"] = ServerProfile(name="prod", host="db.example.com")
    config.schedules = {"nightly": Schedule(name="nightly", server="prod", cron="30 2 * * *", database="shop",
                                            keep_last=7, on_success="true"),
                        "weekly": Schedule(name="weekly", server="prod", cron="0 4 * * sun", database="crm")}
    save_config(config)
    with (home / "config.toml").open("a") as file:
        file.write('\n[schedules.broken]\nserver = "prod"\ncron = "61 * * * *"\ndatabase = "shop"\n')
    before = (home / "config.toml").read_bytes()
    app = PaneApp()
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(DataTable)
        await wait_until(lambda: table.row_count == 2)
        table.focus()
        table.move_cursor(row=table.get_row_index("weekly"))
        await pilot.press("e")
        await wait_until(lambda: isinstance(app.screen, ScheduleForm))
        form = app.screen
        form.query_one("#schedule-name", Input).value = "nightly"
        form.action_save()
        await pilot.pause()
        assert app.screen is form
        said = str(form.query_one("#schedule-form-result", Static).render())
        assert said.startswith("Name: schedule 'nightly' exists already"), said
        # A schedule that does not load is no name to take either, and `e` cannot edit it: not offered.
        form.query_one("#schedule-name", Input).value = "broken"
        form.action_save()
        await pilot.pause()
        said = str(form.query_one("#schedule-form-result", Static).render())
        assert said == "Name: schedule 'broken' exists already; give another name", said
        # Another front adds `hourly` while the form is open; the form is told nothing of it.
        config = load_config()
        config.schedules["hourly"] = Schedule(name="hourly", server="prod", cron="0 * * * *", database="shop")
        save_config(config)
        with_hourly = (home / "config.toml").read_bytes()
        form.query_one("#schedule-name", Input).value = "hourly"
        form.action_save()
        await wait_until(lambda: app.screen is not form)
        await pilot.pause()
        assert any("already exists" in str(n.message) for n in app._notifications)
    assert (home / "config.toml").read_bytes() == with_hourly != before


async def test_e_and_delete_on_an_empty_list_of_a_tab_leave_the_server_alone(home, monkeypatch):
    # QA: on an empty Schedules list, `e` (the footer's "e Edit") opened "Edit server prod", and
    # `delete` there or on an empty Backups list asked to remove the server under the tree's cursor:
    # the tab's own key did not apply, so the app's server key took it. Server keys act from the tree.
    monkeypatch.setenv("PGBACKUP_TUI_CRONTAB", "/bin/true")
    config = load_config()
    config.servers["prod"] = ServerProfile(name="prod", host="127.0.0.1", port=1)
    save_config(config)
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("home")  # the tree's cursor on the server
        main = app.screen
        for tab, table_in in (("4", SchedulesPane), ("3", BackupsPane)):
            await pilot.press(tab)
            table = app.query_one(table_in).query_one(DataTable)
            table.focus()
            await pilot.pause()
            assert table.row_count == 0
            for key in ("e", "delete"):
                await pilot.press(key)
                await pilot.pause()
                assert app.screen is main, (tab, key, app.screen)
        app.server_tree.focus()  # from the tree they still do what they say
        await pilot.press("e")
        await wait_until(lambda: app.screen is not main)
    assert "prod" in load_config().servers


async def test_the_palette_shows_the_schedules_tab_as_it_shows_the_others(home):
    # QA: ctrl+p offered "Show the Details / Jobs / Backups tab", not the Schedules tab (README:
    # every action in the command palette).
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        show = {title: run for title, run, _ in build_commands(app) if title.startswith("Show the")}
        assert "Show the Schedules tab" in show, sorted(show)
        show["Show the Schedules tab"]()
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "schedules"
        assert app.focused is app.query_one(SchedulesPane).query_one(DataTable)
        # Nor any of its actions: none with no server and no schedule, as the keys do nothing then.
        assert not [title for title, _, _ in build_commands(app) if "chedule" in title and "tab" not in title]


async def test_the_palette_has_the_schedules_tab_s_actions(home, monkeypatch):
    one_nightly_schedule(monkeypatch)
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        app.action_show_tab("schedules")
        await pilot.pause()
        # Asked as the palette asks: while it is on top (the keys' own check hides them under a dialog).
        await pilot.press("ctrl+p")
        await wait_until(lambda: isinstance(app.screen, CommandPalette))
        titles = [title for title, _, _ in build_commands(app)]
        for title in ("Add a schedule", "Edit schedule nightly", "Remove schedule nightly", "Run schedule nightly now",
                      "Install the schedules into crontab"):
            assert title in titles, titles
        await pilot.press("escape")
        await wait_until(lambda: not isinstance(app.screen, CommandPalette))
        run = {title: callback for title, callback, _ in build_commands(app)}
        run["Edit schedule nightly"]()
        await pilot.pause()
        assert isinstance(app.screen, ScheduleForm)
