"""Pilot tests: browse a real sandbox cluster in the TUI and check tables off.

Each test starts the real app on an isolated PGBACKUP_TUI_HOME with a config pointing at the
session's sandbox, and drives it with keys.
"""

from __future__ import annotations

import pgbackup_tui.ui.app as app_module
from rich.style import Style
from textual.widgets import Static

from pgbackup_tui.core.inspect import DatabaseInfo, SchemaInfo, TableInfo
from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.commands import build_commands
from pgbackup_tui.ui.screens.backup_dialog import BackupDialog
from pgbackup_tui.ui.screens.help import HelpScreen
from pgbackup_tui.ui.selection import Checks
from pgbackup_tui.core.server_profile import ServerProfile
from pgbackup_tui.ui.tree_entries import DatabaseEntry, SchemaEntry, ServerEntry, TableEntry, TreeFocus
from pgbackup_tui.ui.tree_labels import describe_entry
from pgbackup_tui.ui.widgets.details_pane import DetailsPane, describe_focus
from pgbackup_tui.ui.widgets.selection_summary import SelectionSummary
from pgbackup_tui.ui.widgets.server_tree import ServerTree

from uiutil import move_to, node_text, open_line, settle, socket_profile, write_config

SIZE = (120, 40)


def is_line(name: str):
    """Matches a tree line whose name part (after any check mark) is exactly `name`."""
    def wanted(text: str) -> bool:
        return text.removeprefix("[ ] ").removeprefix("[x] ").removeprefix("[-] ").split("  ")[0] == name
    return wanted


async def test_open_server_database_and_schema_shows_tables_with_rows(sandbox, home):
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ServerTree)
        server = await open_line(pilot, tree, is_line("sandbox"))
        assert f"PostgreSQL {sandbox.major}" in node_text(tree, server)
        database_names = [child.data.info.name for child in server.children]
        assert "shop" in database_names and "template0" not in database_names

        shop = await open_line(pilot, tree, is_line("shop"))
        schema_names = [child.data.info.name for child in shop.children]
        assert {"Sales & Ops", "inventory", "public"} <= set(schema_names)

        await open_line(pilot, tree, is_line("Sales & Ops"))
        orders = await move_to(pilot, tree, is_line("orders"))
        assert "~2,000 rows" in node_text(tree, orders)
        items = await move_to(pilot, tree, is_line("Order Items"))
        assert "~5,000 rows" in node_text(tree, items)

        details = app.query_one(DetailsPane)
        assert details.focus_info is not None and details.focus_info.table is not None
        assert str(details.focus_info.table.info.qualified) == '"Sales & Ops"."Order Items"'
        title = details.query_one("#details-title", Static)
        assert str(title.render()) == 'table "Sales & Ops"."Order Items"'
        # Each kind of relation is called what it is.
        await open_line(pilot, tree, is_line("public"))
        await move_to(pilot, tree, is_line("daily_totals"))
        await pilot.pause()
        assert str(title.render()) == "materialized view public.daily_totals"


async def test_space_checks_two_tables_and_the_summary_says_so(sandbox, home):
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ServerTree)
        summary = app.query_one(SelectionSummary)
        await open_line(pilot, tree, is_line("sandbox"))
        await open_line(pilot, tree, is_line("shop"))
        await open_line(pilot, tree, is_line("Sales & Ops"))

        await move_to(pilot, tree, is_line("customers"))
        await pilot.press("space")
        await move_to(pilot, tree, is_line("orders"))
        await pilot.press("space")
        await pilot.pause()

        assert str(summary.render()).startswith("2 tables in shop — ")
        selection = tree.selection
        assert selection is not None and selection.dbname == "shop"
        assert [str(name) for name in selection.qualified_names] == ['"Sales & Ops".customers', '"Sales & Ops".orders']
        assert node_text(tree, tree.cursor_node).startswith("[x] orders")

        # space again unchecks
        await pilot.press("space")
        await pilot.pause()
        assert str(summary.render()).startswith("1 table in shop — ")


async def test_schema_and_database_checks_and_selection_is_per_database(sandbox, home, empty_db):
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ServerTree)
        summary = app.query_one(SelectionSummary)
        await open_line(pilot, tree, is_line("sandbox"))
        await open_line(pilot, tree, is_line("shop"))

        inventory = await move_to(pilot, tree, is_line("inventory"))
        await pilot.press("space")
        await pilot.pause()
        assert str(summary.render()).startswith("2 tables in shop")
        assert node_text(tree, inventory).startswith("[x] inventory")

        # Checking another database replaces the selection, and says so.
        await move_to(pilot, tree, is_line(empty_db))
        await pilot.press("space")
        await pilot.pause()
        assert str(summary.render()).startswith(f"database {empty_db} — ")
        assert tree.selection is not None and tree.selection.whole_database
        assert node_text(tree, inventory).startswith("[ ] inventory")
        assert any("Selection is per database" in n.message for n in app._notifications)

        # A whole database, then one table unchecked: every other table stays selected.
        shop = await move_to(pilot, tree, is_line("shop"))
        await pilot.press("space")
        await pilot.pause()
        assert node_text(tree, shop).startswith("[x] shop")
        await open_line(pilot, tree, is_line("inventory"))
        await move_to(pilot, tree, is_line("stock"))
        await pilot.press("space")
        await pilot.pause()
        selection = tree.selection
        assert selection is not None and not selection.whole_database
        names = {str(name) for name in selection.qualified_names}
        assert "inventory.warehouses" in names and "inventory.stock" not in names
        assert node_text(tree, shop).startswith("[-] shop")


async def test_palette_offers_actions_from_the_current_state_and_runs_them(sandbox, home, fresh_db_name):
    # QA: a database named "[/]x" ended the app with a MarkupError as ctrl+p opened (its entry's
    # title read as markup), and again as one typed; its entry is now shown as it is.
    odd = f"[/]{fresh_db_name}"
    sandbox.create_database(odd)
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            titles = [title for title, _, _ in build_commands(app)]
            assert "Back up database shop on sandbox" in titles and "Edit server sandbox" in titles
            assert f"Back up database {odd} on sandbox" in titles
            assert not any(title.startswith("Cancel job") for title in titles)  # nothing is running

            await pilot.press("ctrl+p")
            await pilot.pause(0.3)
            await pilot.press(*"back up database [/]")
            await pilot.pause(0.3)
            assert app.return_code is None and app.is_running
            await pilot.press(*[("backspace")] * len("[/]"), *"shop on sandbox")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, BackupDialog)
            assert app.screen.dbname == "shop" and app.screen.tables == ()
            await pilot.press("escape")
    finally:
        sandbox.drop_database(odd)


async def test_help_lists_the_keys_and_greyed_out_actions_do_nothing(sandbox, home):
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tree = app.query_one(ServerTree)
        await move_to(pilot, tree, is_line("sandbox"))
        assert app.check_action("backup", ()) is None  # a server, no database: nothing to back up
        assert app.check_action("cancel_job", ()) is False
        await pilot.press("b", "space")
        await pilot.pause()
        assert not isinstance(app.screen, BackupDialog) and tree.selection is None

        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        keys = dict(app.screen.keys)
        assert {"a", "b", "r", "c", "q", "space", "del"} <= set(keys)
        described = [text for _, text in app.screen.keys]  # the tabs' own keys too, named by tab
        assert any(text.endswith("(Backups tab)") and "Verify" in text for text in described)
        assert any(text.endswith("(Schedules tab)") and "crontab" in text for text in described)
        assert keys.get("enter", "").startswith("Details") and keys["enter"].endswith("(Backups tab)")  # QA: missing
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)

        # z hides the tree so jobs and logs get the whole width; z again brings it back.
        tree.focus()
        await pilot.press("z")
        await pilot.pause()
        assert not app.query_one("#left").display and not tree.has_focus
        assert app.query_one("#tabs").size.width == SIZE[0]
        for _ in range(6):  # Tab and shift+Tab never land on the hidden tree (QA)
            await pilot.press("tab")
            assert not tree.has_focus and app.focused is not None
        for _ in range(6):
            await pilot.press("shift+tab")
            assert not tree.has_focus and app.focused is not None
        await pilot.press("z")
        await pilot.pause()
        assert app.query_one("#left").display
        assert tree.has_focus  # back where it was before the zoom, not left on the tabs (QA)


def test_checks_toggle_tables_schemas_and_whole_databases():
    def table(name: str, size: int, parent: str | None = None) -> TableInfo:
        return TableInfo("s", name, "partition" if parent else "table", 10, size, size, "o", parent=parent)

    a, b, c = table("a", 100), table("b", 200), table("c", 300)
    shop, other = ("srv", "shop"), ("srv", "other")
    checks = Checks().toggle_tables(shop, (a, b), (a, b, c))
    assert checks.tables_mark(shop, (a, b, c)) == "-" and checks.tables_mark(shop, (a, b)) == "x"
    assert checks.selection(None).describe() == "2 tables in shop — 300 B"
    assert checks.toggle_tables(shop, (a, b), (a, b, c)) == Checks()  # all checked: unchecks them

    whole = checks.toggle_database(shop)
    assert whole.whole and whole.database_mark(shop) == "x" and whole.tables_mark(shop, (c,)) == "x"
    assert whole.selection(4096).describe() == "database shop — 4.0 kB"
    # QA at 80x24: the summary under the tree (one line high) read "1 table in two".
    broken = ("srv", "two\nlines")
    assert Checks().toggle_tables(broken, (a,), (a,)).selection(None).describe() == "1 table in two\\nlines — 100 B"
    assert Checks().toggle_database(broken).selection(8192).describe() == "database two\\nlines — 8.0 kB"
    all_but_b = whole.toggle_tables(shop, (b,), (a, b, c))
    assert not all_but_b.whole and set(all_but_b.tables) == {a.qualified, c.qualified}
    assert all_but_b.database_mark(shop) == "-"

    moved = all_but_b.toggle_tables(other, (a,), (a,))
    assert moved.database == other and moved.database_mark(shop) == " "

    # A partition whose partitioned parent is also checked is not counted twice.
    parent = TableInfo("s", "p", "partitioned", 10, 500, 500, "o")
    part = table("p1", 500, parent="s.p")
    both = Checks().toggle_tables(shop, (parent, part), (parent, part))
    assert both.selection(None).total_bytes == 500


async def test_an_unexpected_worker_failure_becomes_an_error_on_the_node_and_a_notification(sandbox, home, monkeypatch):
    def broken(target, dbname):
        raise RuntimeError("boom")

    monkeypatch.setattr(app_module, "inspect_database", broken)
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ServerTree)
        await open_line(pilot, tree, is_line("sandbox"))
        shop = await open_line(pilot, tree, is_line("shop"))
        assert "internal error: RuntimeError('boom')" in node_text(tree, shop)
        assert any("boom" in n.message and n.severity == "error" for n in app._notifications)
        postgres = await open_line(pilot, tree, is_line("postgres"))  # the rest keeps working
        assert "internal error" in node_text(tree, postgres)  # same broken loader, same handling
        assert app.is_running


def test_a_name_with_a_line_break_stays_on_its_tree_line():
    """QA at 80x24: a table named "line<LF>break" (legal SQL) broke its tree line in two, the second
    half drawn over the next line with its figures twice; a database or schema of such a name too.
    Control characters are shown escaped, as the CLI shows a SQL_ASCII name's bytes (\\xNN)."""
    def style(part: str) -> Style:
        return Style()

    table = TableEntry("srv", "db", TableInfo("public", "line\nbreak", "table", 0, 0, 0, "o", rows_known=False))
    database = DatabaseEntry("srv", DatabaseInfo("two\nlines", 8192, "o", "UTF8", True, False))
    schema = SchemaEntry("srv", "db", SchemaInfo("tab\there", "o", 1), (table.info,))
    for entry, shown in ((table, "line\\nbreak"), (database, "two\\nlines"), (schema, "tab\\there")):
        line = describe_entry(entry, Checks(), style)
        for width in (30, 60):
            fitted = line.fit(width).plain
            assert "\n" not in fitted and "\t" not in fitted and shown in fitted, fitted
            assert fitted.startswith("[ ] " + shown) and len(fitted) == width, fitted


def test_the_details_of_a_name_with_a_line_break_keep_each_line_whole():
    """QA at 80x24: a database "two<LF>lines" was titled "database two" with "lines" under it."""
    server = ServerEntry(ServerProfile(name="srv"))
    table = TableEntry("srv", "two\nlines", TableInfo("public", "t\nx", "table", 0, 0, 0, "o\nwner"))
    database = DatabaseEntry("srv", DatabaseInfo("two\nlines", 8192, "o", "UTF8", False, False))
    schema = SchemaEntry("srv", "two\nlines", SchemaInfo("s\nx", "o", 1), (table.info,))
    for focus, title in ((TreeFocus(server=server, table=table), 'table public."t\\nx"'),
                         (TreeFocus(server=server, database=database), "database two\\nlines"),
                         (TreeFocus(server=server, schema=schema), "schema s\\nx")):
        shown, rows = describe_focus(focus)
        assert shown == title, shown
        assert not [value for _label, value in rows if "\n" in value], rows
    assert dict(describe_focus(TreeFocus(server=server, table=table))[1])["database"] == "two\\nlines on srv"


def test_the_details_of_a_table_never_analyzed_say_its_rows_are_a_floor():
    """QA: a table never analyzed read "rows (estimated)  0 (never analyzed: at least)", and its
    schema a bare "0" though its tables held rows; the tree says "≥0 rows"."""
    server = ServerEntry(ServerProfile(name="srv"))
    fresh = TableInfo("public", "t", "table", 0, 8192, 16384, "o", rows_known=False)
    analyzed = TableInfo("public", "u", "table", 42, 8192, 16384, "o")
    _title, rows = describe_focus(TreeFocus(server=server, table=TableEntry("srv", "db", fresh)))
    assert dict(rows)["rows (estimated)"] == "at least 0 (never analyzed)"
    schema = SchemaEntry("srv", "db", SchemaInfo("public", "o", 2), (fresh, analyzed))
    _title, rows = describe_focus(TreeFocus(server=server, schema=schema))
    assert dict(rows)["rows (estimated)"] == "at least 42 (never analyzed)"
    _title, rows = describe_focus(TreeFocus(server=server, table=TableEntry("srv", "db", analyzed)))
    assert dict(rows)["rows (estimated)"] == "42"
