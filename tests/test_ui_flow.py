"""Pilot tests of whole sessions: add a server, pick tables, back them up, restore, cancel, quit.

Everything is real: the sandbox cluster, the job runners, pg_dump and pg_restore. To have a job
that is still running when we cancel it (or quit), the test holds an ACCESS EXCLUSIVE lock on a
table: pg_dump waits for its ACCESS SHARE lock until it is stopped or the lock goes. Our own
connections get a short lock_timeout (PGOPTIONS) so that only pg_dump waits: it sets
lock_timeout = 0 for itself.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import psycopg
from textual import events
from textual.widgets import Input, Static, TabbedContent

from pgbackup_tui.core import job_store
from pgbackup_tui.core.jobs import JobState
from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.screens.backup_dialog import BackupDialog
from pgbackup_tui.ui.screens.confirm import ConfirmScreen
from pgbackup_tui.ui.screens.quit_confirm import QuitScreen
from pgbackup_tui.ui.screens.restore_dialog import RestoreDialog
from pgbackup_tui.ui.screens.server_form import ServerForm
from pgbackup_tui.ui.widgets.backups_pane import BackupsPane
from pgbackup_tui.ui.widgets.server_tree import ServerTree

from uiutil import move_to, node_text, open_line, settle, socket_profile, wait_until, write_config

SIZE = (120, 40)


def named(name: str):
    return lambda text: text.removeprefix("[ ] ").removeprefix("[x] ").removeprefix("[-] ").split("  ")[0] == name


@contextmanager
def table_locked(sandbox, table: str, monkeypatch):
    """Hold an ACCESS EXCLUSIVE lock on `table` in shop until the block ends; only pg_dump waits."""
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=200")
    with psycopg.connect(sandbox.dsn("shop"), options="-c lock_timeout=0") as conn:
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
        conn.rollback()


async def start_whole_database_dump(pilot, app: PgBackupApp) -> None:
    tree = app.query_one(ServerTree)
    await open_line(pilot, tree, named("sandbox"))
    await move_to(pilot, tree, named("shop"))
    await pilot.press("b")
    assert isinstance(app.screen, BackupDialog)
    await settle(pilot)
    await pilot.press("enter")
    await wait_until(lambda: bool(app.jobs) and app.jobs[0].state == JobState.RUNNING)
    # pg_dump has started (and is waiting for the lock): the cancel has a child to stop.
    await wait_until(lambda: any("pg_dump:" in text for text, _ in app.jobs_pane.log_lines(app.jobs[0])))


def leftovers(home: Path) -> list[Path]:
    return [path for path in (home / "backups").rglob("*") if path.is_file() or path.name.endswith(".partial")]


async def test_add_server_select_two_tables_back_up_and_restore_into_a_new_database(sandbox, home, fresh_db_name):
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        form = app.screen
        assert isinstance(form, ServerForm)
        form.query_one("#server-name", Input).value = "sandbox"
        form.query_one("#server-host", Input).value = str(sandbox.socket_dir)
        form.query_one("#server-port", Input).value = str(sandbox.port)
        form.query_one("#server-user", Input).value = sandbox.superuser
        await pilot.click("#server-form-save")
        await pilot.pause()

        tree = app.query_one(ServerTree)
        await open_line(pilot, tree, named("sandbox"))
        await open_line(pilot, tree, named("shop"))
        await open_line(pilot, tree, named("Sales & Ops"))
        for table in ("customers", "orders"):
            await move_to(pilot, tree, named(table))
            await pilot.press("space")

        await pilot.press("b")
        dialog = app.screen
        assert isinstance(dialog, BackupDialog)
        assert [str(name) for name in dialog.tables] == ['"Sales & Ops".customers', '"Sales & Ops".orders']
        await settle(pilot)
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "jobs"
        await settle(pilot)
        dump = app.jobs[0]
        assert dump.state == JobState.SUCCEEDED, dump.result
        archive = dump.result.output_path

        await move_to(pilot, tree, named("shop"))
        await pilot.press("3")
        await settle(pilot)
        backups = app.query_one(BackupsPane)
        entry = backups.selected_entry()
        assert entry is not None and entry.path == archive

        await pilot.press("r")
        restore = app.screen
        assert isinstance(restore, RestoreDialog)
        assert restore.query_one("#archive", Input).value == str(archive)
        await settle(pilot)
        assert restore.query_one("#target-db", Input).value == "shop_restored"
        restore.query_one("#target-db", Input).value = fresh_db_name
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        await settle(pilot)
        restored = app.jobs[1]
        assert restored.state == JobState.SUCCEEDED, restored.result
        # The new database shows in the tree, under its open server (it did only after f5).
        await wait_until(lambda: any(named(fresh_db_name)(node_text(tree, node)) for node in
                                     filter(None, map(tree.get_node_at_line, range(tree.last_line + 1)))))
        assert tree.cursor_node is not None and named("shop")(node_text(tree, tree.cursor_node))

    counts = sandbox.psql('SELECT (SELECT count(*) FROM "Sales & Ops".customers), '
                          '(SELECT count(*) FROM "Sales & Ops".orders)', fresh_db_name)
    assert counts.strip() == "500|2000"
    assert sandbox.psql("SELECT to_regclass('inventory.stock') IS NULL", fresh_db_name).strip() == "t"


async def test_c_cancels_the_selected_job_after_asking(sandbox, home, monkeypatch):
    write_config(socket_profile(sandbox))
    with table_locked(sandbox, "inventory.stock", monkeypatch):
        app = PgBackupApp()
        async with app.run_test(size=SIZE) as pilot:
            await start_whole_database_dump(pilot, app)
            job = app.jobs[0]
            await pilot.press("c")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")
            await pilot.pause()
            assert job.state == JobState.RUNNING
            await pilot.press("c", "y")
            await wait_until(lambda: job.state.is_final)
            assert job.state == JobState.CANCELLED
            await pilot.pause()
            assert app.check_action("cancel_job", ()) is None  # greyed out: nothing left to cancel
            # Said in the Jobs tab, which shows it: no toast over it (test_ui_toasts.py has one out of view).
            assert str(app.jobs_pane.query_one("#job-result", Static).content).endswith(": cancelled")
            assert list(app._notifications) == []
    assert leftovers(home) == []


async def test_a_cancel_confirmed_after_the_job_ended_says_so(sandbox, home, monkeypatch):
    """The job ended while "Cancel …?" was up: the "yes" did nothing, and said nothing (QA)."""
    write_config(socket_profile(sandbox))
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=200")
    with psycopg.connect(sandbox.dsn("shop"), options="-c lock_timeout=0") as conn:
        conn.execute("LOCK TABLE inventory.stock IN ACCESS EXCLUSIVE MODE")
        app = PgBackupApp()
        async with app.run_test(size=SIZE) as pilot:
            await start_whole_database_dump(pilot, app)
            job = app.jobs[0]
            await pilot.press("c")
            assert isinstance(app.screen, ConfirmScreen)
            conn.rollback()  # the lock goes: the dump runs to its end while the question is up
            await wait_until(lambda: job.state.is_final)
            await pilot.press("y")
            await pilot.pause()
            assert job.state == JobState.SUCCEEDED
            assert any("had succeeded already: nothing to cancel" in str(n.message) for n in app._notifications)


async def test_quit_with_a_running_job_asks_and_leaves_it_running_in_the_background(sandbox, home, monkeypatch):
    write_config(socket_profile(sandbox))
    with table_locked(sandbox, "inventory.stock", monkeypatch):
        app = PgBackupApp()
        async with app.run_test(size=SIZE) as pilot:
            await start_whole_database_dump(pilot, app)
            job = app.jobs[0]
            await pilot.press("q")
            assert isinstance(app.screen, QuitScreen)
            question = str(app.screen.query_one("#quit-question", Static).content)
            assert question == "1 job still running: it goes on in the background (pgbackup-tui jobs list). Quit?"
            await pilot.press("n")
            await pilot.pause()
            assert job.state == JobState.RUNNING and app.is_running
            await pilot.press("q", "y")
            await wait_until(lambda: not app.is_running)
        assert app.return_code == 0
        record = job_store.load(job.id)
        assert record is not None and record.status == "running" and job_store.runner_alive(record.folder)
    # The lock is gone: the dump goes on to its end with no front at all.
    await wait_until(lambda: (job_store.load(job.id) or record).status in job_store.FINAL_STATES, timeout=60)
    state = job_store.load(job.id).state
    assert state["state"] == "succeeded", state
    assert Path(state["output_path"]).is_file()
    assert list((home / "backups").rglob("*.partial")) == []
    job.runner.wait(timeout=10)  # this test process started it: reap it


async def test_quit_can_cancel_the_running_jobs_and_waits_for_their_cleanup(sandbox, home, monkeypatch):
    write_config(socket_profile(sandbox))
    with table_locked(sandbox, "inventory.stock", monkeypatch):
        app = PgBackupApp()
        async with app.run_test(size=SIZE) as pilot:
            await start_whole_database_dump(pilot, app)
            job = app.jobs[0]
            await pilot.press("q")
            assert isinstance(app.screen, QuitScreen)
            await pilot.press("c")
            await wait_until(lambda: not app.is_running)
        assert job.state == JobState.CANCELLED
        assert app.return_code == 0
        assert job_store.load(job.id).status == "cancelled"
    assert leftovers(home) == []


async def test_keys_typed_after_q_run_nothing_and_the_app_exits_cleanly(home):
    # QA: "qa" typed on the tree (a path pasted into the wrong pane) pushed the server form while
    # the app was exiting: mounted without its widgets, a traceback and exit 1. Likewise "q?".
    for keys in (("q", "a"), ("q", "question_mark"), ("q", "b", "a")):
        app = PgBackupApp()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            for key in keys:  # in the queue together, as a terminal delivers them (Pilot.press waits between)
                app.post_message(events.Key(key, "?" if key == "question_mark" else key))
            await pilot.pause(0.3)
        assert app.return_code == 0, keys
        assert len(app.screen_stack) <= 1, (keys, app.screen_stack)
