"""Leftovers of issue 11's TUI, tested at 80x24 on the real sandbox: `3` gives the Backups list
the focus (its keys work with no Tab first) and `1` or `2` after it gives it back to the tree, the
main screen's keys are off while a dialog is on top, and a drill can be cancelled
(core.drill_backup's cancel event; d again in the Backups tab).
"""

from __future__ import annotations

import threading

import pytest
from test_ui_backups import SIZE, backups_tab_of_a_dump, dump_shop, named
from textual.widgets import DataTable
from uiutil import move_to, open_line, settle, socket_profile, wait_until, write_config

from pgbackup_tui.core import catalog
from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.drill import DrillCancelled, drill_backup
from pgbackup_tui.core.drill_names import DRILL_PREFIX
from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.screens.confirm import ConfirmScreen
from pgbackup_tui.ui.screens.server_pick import ServerPick
from pgbackup_tui.ui.widgets.backups_pane import BackupsPane
from pgbackup_tui.ui.widgets.server_tree import ServerTree


async def test_three_focuses_the_backups_list_and_dialogs_hide_the_main_keys(sandbox, home):
    await dump_shop(sandbox, schema_only=True)
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tree = app.query_one(ServerTree)
        await open_line(pilot, tree, named("sandbox"))
        await move_to(pilot, tree, named("shop"))
        assert app.check_action("backup", ()) is True
        await pilot.press("3")
        await settle(pilot)
        backups_list = app.query_one(BackupsPane).query_one(DataTable)
        assert app.focused is backups_list
        await pilot.press("d")  # the list's own key, with no Tab first
        await pilot.pause()
        assert isinstance(app.screen, ServerPick)
        # A dialog on top: the main screen's keys are neither active nor shown in its footer.
        for action in ("backup", "restore", "show_tab", "cancel_job", "add_server", "zoom"):
            assert app.check_action(action, ()) is False, action
        assert app.check_action("quit", ()) is True and app.check_action("help", ()) is True
        footer_actions = {active.binding.action for active in app.screen.active_bindings.values()}
        assert not any(action.startswith(("backup", "show_tab", "restore", "zoom")) for action in footer_actions)
        await pilot.press("escape")
        await pilot.pause()
        assert app.check_action("backup", ()) is not False  # back on the main screen



async def test_one_or_two_after_three_gives_the_focus_back_to_the_tree(sandbox, home):
    # QA: 3 then 1 (or 2) left the focus on the hidden Backups list, that is on nothing: ↓ and
    # enter did nothing in the tree until a Tab or a click.
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tree = app.query_one(ServerTree)
        for tab in ("1", "2"):
            await pilot.press("home", "3")
            await settle(pilot)
            assert app.focused is app.query_one(BackupsPane).query_one(DataTable)
            await pilot.press(tab)
            await settle(pilot)
            assert app.focused is tree, tab
            await pilot.press("enter")  # opens the server: the key reached the tree
            await settle(pilot)
            assert tree.cursor_node is not None and tree.cursor_node.is_expanded, tab
            await pilot.press("left")
            await settle(pilot)
        await pilot.press("z", "3", "1")  # zoomed: the tree is hidden, the tabs take the keys
        await settle(pilot)
        assert app.focused is not None and app.focused is not tree


def test_a_drill_is_cancelled_by_its_event_and_drops_its_scratch_database(sandbox, home):
    import asyncio

    archive = asyncio.run(dump_shop(sandbox, schema_only=True))
    entry = catalog.entry_for(archive)
    assert entry is not None
    cancel = threading.Event()
    cancel.set()  # watched from the drill's own loop: the restore is cancelled as it starts
    target = target_from_dsn(sandbox.dsn("postgres"), label="sandbox")
    with pytest.raises(DrillCancelled, match="cancelled"):
        drill_backup(entry, target, cancel=cancel)
    left = sandbox.psql(f"SELECT count(*) FROM pg_database WHERE datname LIKE '{DRILL_PREFIX}%'").strip()
    assert left == "0"


async def test_d_again_on_a_backup_being_drilled_offers_to_cancel_it(sandbox, home):
    async with backups_tab_of_a_dump(sandbox) as (archive, app, pilot, _pane):
        cancel = threading.Event()
        app._drills[str(archive)] = cancel  # as while a drill of it runs (the worker removes it at its end)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        assert cancel.is_set()

        # The drill ends while the question is up: the answer says so instead of doing nothing.
        ended = threading.Event()
        app._drills[str(archive)] = ended
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        app._drills.pop(str(archive))  # as the worker does at the drill's end
        await pilot.press("y")
        await pilot.pause()
        assert not ended.is_set()
        assert any("has ended already" in str(n.message) for n in app._notifications)


async def test_a_backup_being_drilled_or_verified_is_not_deleted_under_its_check(sandbox, home):
    async with backups_tab_of_a_dump(sandbox) as (archive, app, pilot, _pane):

        def refused(doing: str) -> bool:
            return any(f"is being {doing}" in str(n.message) for n in app._notifications)

        app._drills[str(archive)] = threading.Event()  # as while a drill of it runs
        await pilot.press("x")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen) and refused("drilled")
        app._drills.clear()  # as the worker does at the drill's end
        app._verifying.add(str(archive))  # as while a verify of it runs
        await pilot.press("x")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen) and refused("verified")
        # Nor verified twice at once, nor checked while it is being deleted.
        await pilot.press("v")
        await pilot.pause()
        assert any("it can be verified once that has ended" in str(n.message) for n in app._notifications)
        app._verifying.clear()
        app._deleting.add(str(archive))  # as while a delete of it runs
        await pilot.press("d")
        await pilot.pause()
        assert not isinstance(app.screen, ServerPick) and refused("deleted")
        app._deleting.clear()

        # A drill started while the question was up: the answer does not delete under it.
        app.clear_notifications()
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        app._drills[str(archive)] = threading.Event()
        await pilot.press("y")
        await settle(pilot)
        assert refused("drilled") and archive.exists()
        app._drills.clear()
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        await wait_until(lambda: not archive.exists())
