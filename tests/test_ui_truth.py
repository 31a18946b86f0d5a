"""Pilot tests: the TUI says what it will do and shows what is there (issue 11, "The TUI tells the truth").

Each test runs the real app at 80×24 on an isolated PGBACKUP_TUI_HOME pointing at the session's
sandbox, and drives it with keys.
"""

from __future__ import annotations

from textual.widgets import Static

from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.screens.backup_dialog import BackupDialog
from pgbackup_tui.ui.widgets.server_tree import ServerTree

from uiutil import move_to, open_line, settle, socket_profile, write_config

SIZE = (80, 24)


def is_line(name: str):
    """Matches a tree line whose name part (after any check mark) is exactly `name`."""
    def wanted(text: str) -> bool:
        return text.removeprefix("[ ] ").removeprefix("[x] ").removeprefix("[-] ").split("  ")[0] == name
    return wanted


async def test_b_backs_up_the_database_under_the_cursor_and_says_the_checks_elsewhere_are_left_out(sandbox, home):
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ServerTree)
        await open_line(pilot, tree, is_line("sandbox"))
        await open_line(pilot, tree, is_line("shop"))
        await open_line(pilot, tree, is_line("Sales & Ops"))
        await move_to(pilot, tree, is_line("orders"))
        await pilot.press("space")

        # On another database: that database, whole; the dialog says the checks are not in it.
        await move_to(pilot, tree, is_line("postgres"))
        await pilot.press("b")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, BackupDialog)
        assert (dialog.dbname, dialog.tables) == ("postgres", ())
        line = str(dialog.query_one("#backup-selection", Static).content)
        assert line.startswith("whole database postgres (not the checked 1 table in shop")
        await pilot.press("escape")
        await pilot.pause()
        assert tree.selection is not None  # the checks stay

        # Anywhere in the checked database (here its schema line): the checked tables.
        await move_to(pilot, tree, is_line("Sales & Ops"))
        await pilot.press("b")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, BackupDialog)
        assert dialog.dbname == "shop" and [str(t) for t in dialog.tables] == ['"Sales & Ops".orders']
        assert str(dialog.query_one("#backup-selection", Static).content).startswith("1 table selected in shop")
        await pilot.press("escape")
        await pilot.pause()

        # On the server line (no database under the cursor): the checked tables.
        await move_to(pilot, tree, is_line("sandbox"))
        await pilot.press("b")
        await settle(pilot)
        assert isinstance(app.screen, BackupDialog) and app.screen.dbname == "shop"
