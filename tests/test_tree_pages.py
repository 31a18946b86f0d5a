"""A schema of many tables shows them a page at a time in the server tree (issue 15, point 3:
no frame over 100 ms when a schema of 10,000 tables opens); checking it still checks them all.

A real database of 1,200 tables, the tree's page made 400: the schema shows 400 tables and a
"… 800 more" line; enter on that line shows the next 400.
"""

from __future__ import annotations

import pytest

from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.screens.backup_dialog import BackupDialog
from pgbackup_tui.ui.tree_entries import MoreEntry, TableEntry
from pgbackup_tui.ui.widgets.selection_summary import SelectionSummary
from pgbackup_tui.ui.widgets.server_tree import ServerTree

from uiutil import move_to, node_text, open_line, settle, socket_profile, write_config

SIZE = (80, 24)
TABLES = 1_200
PAGE = 400
BUILD_SQL = f"""
CREATE SCHEMA wide;
DO $$ BEGIN FOR i IN 1..{TABLES} LOOP
  EXECUTE format('CREATE TABLE wide.w_%s (id int)', lpad(i::text, 4, '0'));
END LOOP; END $$;
"""


@pytest.fixture
def wide_db(sandbox, empty_db) -> str:
    sandbox.psql(BUILD_SQL, empty_db, timeout=300)
    return empty_db


def is_line(name: str):
    def wanted(text: str) -> bool:
        return text.removeprefix("[ ] ").removeprefix("[x] ").removeprefix("[-] ").split("  ")[0] == name
    return wanted


def shown(tree: ServerTree) -> list[str]:
    """The names of the table lines the tree shows, in order."""
    return [node.data.info.name for line in range(tree.last_line + 1)
            if (node := tree.get_node_at_line(line)) is not None and isinstance(node.data, TableEntry)]


def more_line(tree: ServerTree):
    return next((node for line in range(tree.last_line + 1)
                 if (node := tree.get_node_at_line(line)) is not None and isinstance(node.data, MoreEntry)), None)


def every_name() -> list[str]:
    return [f"wide.w_{n:04}" for n in range(1, TABLES + 1)]


async def test_a_big_schema_shows_a_page_and_checking_it_checks_every_table(sandbox, home, wide_db):
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ServerTree)
        tree.page_size = PAGE
        await open_line(pilot, tree, is_line("sandbox"))
        await open_line(pilot, tree, is_line(wide_db))
        await open_line(pilot, tree, is_line("wide"))
        assert shown(tree) == [f"w_{n:04}" for n in range(1, PAGE + 1)]
        more = more_line(tree)
        assert more is not None and node_text(tree, more) == "… 800 more tables  enter: next 400"
        assert node_text(tree, tree.cursor_node).startswith(f"[ ] wide  {TABLES} tables")

        # space on the schema checks all 1,200, shown or not: the summary and the backup's tables say so
        await pilot.press("space")
        await pilot.pause()
        assert str(app.query_one(SelectionSummary).render()).startswith(f"{TABLES} tables in {wide_db} — ")
        assert [str(name) for name in tree.selection.qualified_names] == every_name()
        await pilot.press("b")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, BackupDialog)
        assert [str(name) for name in dialog.tables] == every_name()
        await pilot.press("escape")
        await pilot.pause()

        # enter on the "more" line shows the next page, checked like the rest, the cursor on its first table
        tree.move_cursor(more)
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert shown(tree) == [f"w_{n:04}" for n in range(1, 2 * PAGE + 1)]
        assert node_text(tree, tree.cursor_node).startswith("[x] w_0401")
        assert node_text(tree, more_line(tree)) == "… 400 more tables  enter: next 400"
        await pilot.press("end", "enter")  # the last page: no "more" line after it
        await pilot.pause()
        assert shown(tree) == [f"w_{n:04}" for n in range(1, TABLES + 1)]
        assert more_line(tree) is None
        assert node_text(tree, tree.cursor_node).startswith("[x] w_0801")

        # a table of the last page unchecked: the selection is every table but that one
        await move_to(pilot, tree, is_line("w_0803"))
        await pilot.press("space")
        await pilot.pause()
        assert [str(name) for name in tree.selection.qualified_names] == [
            name for name in every_name() if name != "wide.w_0803"]
        assert node_text(tree, tree.get_node_at_line(tree.cursor_line - 803)).startswith(f"[-] wide  {TABLES} tables")

        # F5 on the database: the pages shown come back, with the cursor and the checks
        await pilot.press("f5")
        await settle(pilot)
        assert shown(tree) == [f"w_{n:04}" for n in range(1, TABLES + 1)]
        assert node_text(tree, tree.cursor_node).startswith("[ ] w_0803")
        assert len(tree.selection.qualified_names) == TABLES - 1
