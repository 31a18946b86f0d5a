"""Pilot tests: the TUI says what it will do and shows what is there (issue 11, "The TUI tells the truth").

Each test runs the real app at 80×24 on an isolated PGBACKUP_TUI_HOME pointing at the session's
sandbox, and drives it with keys.
"""

from __future__ import annotations

import re
import uuid

from textual.app import App
from textual.widgets import Input, Static

from pgbackup_tui.cli import main as cli_main
from pgbackup_tui.core.config import load_config
from pgbackup_tui.core.server_profile import ServerProfile

from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.ui.screens.backup_dialog import BackupDialog
from pgbackup_tui.ui.widgets.option_box import OptionBox
from pgbackup_tui.ui.widgets.server_tree import ServerTree

from uiutil import move_to, node_text, open_line, settle, socket_profile, write_config

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


async def test_a_server_with_no_database_connects_to_postgres_not_to_the_users_name(sandbox, home, monkeypatch, capsys):
    """libpq's default database is the user's name: for role dba_x that is 'database "dba_x" does
    not exist'. The form's "postgres" is what is used when the field is left empty, and the same
    for `servers add`."""
    monkeypatch.delenv("PGDATABASE", raising=False)
    role = "dba_" + uuid.uuid4().hex[:8]
    sandbox.create_role(role, superuser=True)
    try:
        app = PgBackupApp()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("a")
            form = app.screen
            assert form.query_one("#server-dbname", Input).placeholder.startswith("postgres")
            for field, value in (("name", "form"), ("host", str(sandbox.socket_dir)), ("port", str(sandbox.port)),
                                 ("user", role)):
                form.query_one(f"#server-{field}", Input).value = value
            await pilot.press("ctrl+s")
            await settle(pilot)
            tree = app.query_one(ServerTree)
            server = await open_line(pilot, tree, is_line("form"))
            assert f"PostgreSQL {sandbox.major}" in node_text(tree, server), node_text(tree, server)

        assert load_config().servers["form"].dbname is None  # nothing typed, nothing saved
        assert cli_main(["servers", "add", "cli", "--host", str(sandbox.socket_dir), "--port", str(sandbox.port),
                         "--user", role]) == 0
        assert cli_main(["servers", "test", "cli"]) == 0
        assert "does not exist" not in capsys.readouterr().err
        # A database named in the DSN is still the one used.
        profile = ServerProfile(name="d", dsn=f"host={sandbox.socket_dir} dbname=shop")
        assert profile.connection_params()["dbname"] == "shop"
    finally:
        sandbox.psql(f'DROP ROLE "{role}";')


class DialogHost(App[None]):
    def __init__(self, dialog) -> None:
        super().__init__()
        self.dialog = dialog

    def on_mount(self) -> None:
        self.push_screen(self.dialog)


async def test_unchecked_boxes_are_empty_and_checked_ones_hold_an_x(home):
    dialog = BackupDialog(target_from_dsn("host=db1.example user=app", label="prod"), 15, "shop")
    app = DialogHost(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        boxes = list(dialog.query(OptionBox))
        assert len(boxes) == 4
        for box in boxes:
            assert "X" not in str(box.render()), box.id
        dialog.query_one("#no-owner", OptionBox).focus()
        await pilot.press("space")
        await pilot.pause()
        marks = {box.id: "X" in str(box.render()) for box in boxes}
        assert marks == {"schema-only": False, "data-only": False, "no-owner": True, "no-privileges": False}


def screen_lines(app: App) -> list[str]:
    """The terminal's lines as text, as the user reads them."""
    from rich.console import Console

    console = Console(width=SIZE[0], record=True, file=open("/dev/null", "w"), color_system=None)  # noqa: SIM115
    console.print(app.screen._compositor.render_full_update())
    return console.export_text().splitlines()


async def open_shop_public(pilot, tree: ServerTree) -> None:
    await open_line(pilot, tree, is_line("sandbox"))
    await open_line(pilot, tree, is_line("shop"))
    await open_line(pilot, tree, is_line("public"))


async def test_tree_lines_keep_names_apart_from_figures_and_names_win_at_80x24(sandbox, home):
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ServerTree)
        await open_shop_public(pilot, tree)
        await open_line(pilot, tree, is_line("Sales & Ops"))
        lines = [line.split("▕")[0] for line in screen_lines(app)]
        tree_text = "\n".join(lines)
        assert f"PostgreSQL {sandbox.major}" in tree_text
        for name in ("sandbox", "shop", "Order Items", "measurements_2024_q1", "public"):
            line = next(line for line in lines if f" {name}" in line or line.startswith(name))
            after = line.split(name, 1)[1]
            # The name is whole, and what follows it is either nothing or two spaces and more.
            assert after.strip() == "" or after.startswith("  "), line
        order_items = next(line for line in lines if "Order Items" in line)
        assert "~5,000 rows" in order_items  # rows are the last figure to give way
        # A figure is shown whole or not at all (it used to be cut: "4 tables · 1.1 M").
        sales = next(line for line in lines if "Sales & Ops" in line).split("Sales & Ops", 1)[1]
        assert re.fullmatch(r"\s*(\d+ tables?)?(\s+\d+(\.\d)? [kMG]?B)?\s*", sales), sales


async def test_home_and_end_move_in_the_tree(sandbox, home):
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ServerTree)
        await open_shop_public(pilot, tree)
        await pilot.press("end")
        assert tree.cursor_line == tree.last_line > 5
        await pilot.press("home")
        assert tree.cursor_line == 0


async def test_f5_keeps_what_was_open_the_cursor_and_the_checks(sandbox, home):
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ServerTree)
        await open_shop_public(pilot, tree)
        await move_to(pilot, tree, is_line("invoices"))
        await pilot.press("space")
        await move_to(pilot, tree, is_line("documents"))
        await pilot.press("space")
        await settle(pilot)
        before = [node_text(tree, tree.get_node_at_line(i)) for i in range(tree.last_line + 1)]
        for place in ("documents", "shop", "sandbox"):  # F5 reloads the server or database of the cursor
            await move_to(pilot, tree, is_line(place))
            await pilot.press("f5")
            await settle(pilot)
            after = [node_text(tree, tree.get_node_at_line(i)) for i in range(tree.last_line + 1)]
            assert [line.split("  ")[0] for line in after] == [line.split("  ")[0] for line in before], place
            assert node_text(tree, tree.cursor_node).split("  ")[0].endswith(place)
            selection = tree.selection
            assert selection is not None and [str(t) for t in selection.qualified_names] == [
                "public.documents", "public.invoices"]


async def test_a_remapped_key_is_named_as_remapped_and_an_unknown_id_is_named(home):
    (home / "config.toml").write_text('[keymap]\n"app.add-server" = "A"\n"tree.toggle-check" = "x"\n'
                                      '"app.bakup" = "B"\n"app.backup" = "B"\n')
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        text = "\n".join(screen_lines(app))
        assert "press A to add one" in text  # the tree's hint with no servers
        assert "nothing selected (x checks" in text
        warnings = [n.message for n in app._notifications if n.severity == "warning"]
        assert warnings == ['config.toml [keymap]: no key has the id "app.bakup" (did you mean "app.backup"?); '
                            'ignored']
        await pilot.press("question_mark")
        await pilot.pause()
        about = str(app.screen.query_one("#help-about", Static).content)
        assert "x checks a table" in about and "B backs up the database" in about
        assert "space checks" not in about and "b backs up" not in about


async def test_a_keymap_or_a_profile_that_does_not_load_is_said_and_the_rest_works(home):
    """They stopped the whole config from loading (every command, every scheduled backup); now the
    TUI says each, keeps its default keys, and lists the servers that load (QA)."""
    (home / "config.toml").write_text('[keymap]\n"app.backup" = 5\n\n[servers.good]\nhost = "db1"\n\n'
                                      '[servers.handmade]\ndns = "host=x"\n')
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        warnings = [str(n.message) for n in app._notifications if n.severity == "warning"]
        assert any("[keymap] maps binding ids to keys" in w and "default keys" in w for w in warnings), warnings
        assert any("[servers.handmade] has unknown key(s) dns" in w for w in warnings), warnings
        assert app.profiles.names == ["good"]
        # A server saved from the TUI writes those tables back as they were (review: they were dropped).
        app.profiles.save(ServerProfile(name="more", host="db2"), None)
        text = (home / "config.toml").read_text()
        assert '[servers.handmade]\ndns = "host=x"' in text and '"app.backup" = 5' in text and "[servers.more]" in text
