"""Pilot tests: server profiles in the TUI — the form, passwords, unreachable servers, bad config.

Real sandbox cluster throughout; passwords go to the sandbox's TCP listener (scram-sha-256).
"""

from __future__ import annotations

import stat
import tomllib

import pytest
from textual.widgets import Button, Input

from pgbackup_tui.core.config import load_config, save_config
from pgbackup_tui.core.server_profile import ServerProfile
from pgbackup_tui.core.errors import ConfigError
from pgbackup_tui.core.jobs import JobState
from pgbackup_tui.core.sandbox import free_port
from pgbackup_tui.core.schedules import Schedule
from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.profiles import ServerProfiles
from pgbackup_tui.ui.screens.confirm import ConfirmScreen
from pgbackup_tui.ui.screens.password_prompt import PasswordPrompt
from pgbackup_tui.ui.screens.restore_dialog import RestoreDialog
from pgbackup_tui.ui.screens.server_form import ServerForm
from pgbackup_tui.ui.tree_entries import FAILED, READY
from pgbackup_tui.ui.widgets.details_pane import DetailsPane
from pgbackup_tui.ui.widgets.server_tree import ServerTree

from cliutil import run_cli
from uiutil import move_to, node_text, open_line, settle, socket_profile, wait_until, write_config

SIZE = (120, 40)


def starts_with(name: str):
    return lambda text: text.split("  ")[0] == name


def tcp_profile(sandbox, name: str = "tcp") -> ServerProfile:
    return ServerProfile(name=name, host="127.0.0.1", port=sandbox.port, user=sandbox.superuser, dbname="postgres")


def no_password_sources(monkeypatch, tmp_path) -> None:
    """Keep libpq from finding a password anywhere but where the test puts one."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-such-pgpass"))


async def test_add_server_through_the_form_saves_it_0600_without_password(sandbox, home):
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        form = app.screen
        assert isinstance(form, ServerForm)
        await pilot.press(*"local")
        form.query_one("#server-host", Input).value = str(sandbox.socket_dir)
        form.query_one("#server-port", Input).value = str(sandbox.port)
        form.query_one("#server-user", Input).value = sandbox.superuser
        form.query_one("#server-password", Input).value = "typed-secret"

        await pilot.click("#server-form-test")
        await settle(pilot)
        result = str(form.query_one("#server-form-result").render())
        assert result.startswith(f"OK: PostgreSQL {sandbox.major}")

        await pilot.click("#server-form-save")
        await pilot.pause()
        assert app.screen is not form

        config_file = home / "config.toml"
        assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
        text = config_file.read_text()
        assert "typed-secret" not in text and "password" not in text
        saved = tomllib.loads(text)["servers"]["local"]
        assert saved == {"host": str(sandbox.socket_dir), "port": sandbox.port, "user": sandbox.superuser}
        assert app.profiles.passwords == {"local": "typed-secret"}  # in memory only

        tree = app.query_one(ServerTree)
        server = await open_line(pilot, tree, starts_with("local"))
        assert server.data.status == READY


async def test_form_refuses_an_invalid_profile_and_test_shows_the_error(sandbox, home):
    write_config(socket_profile(sandbox, "taken"))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        form = app.screen
        assert isinstance(form, ServerForm)
        form.query_one("#server-name", Input).value = "taken"
        form.query_one("#server-port", Input).value = str(free_port())
        form.query_one("#server-host", Input).value = "127.0.0.1"
        await pilot.click("#server-form-save")
        await pilot.pause()
        assert app.screen is form
        assert "already exists" in str(form.query_one("#server-form-result").render())

        form.query_one("#server-name", Input).value = "other"
        await pilot.click("#server-form-test")
        await settle(pilot)
        assert "Connection refused" in str(form.query_one("#server-form-result").render())

        await pilot.press("escape")
        await pilot.pause()
    assert set(tomllib.loads((home / "config.toml").read_text())["servers"]) == {"taken"}


async def test_edit_and_remove_a_server(sandbox, home):
    write_config(socket_profile(sandbox, "one"), socket_profile(sandbox, "two"))
    config_file = home / "config.toml"
    config_file.write_text("# the DBA's note\n" + config_file.read_text())
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ServerTree)
        await move_to(pilot, tree, starts_with("one"))
        await pilot.press("e")
        form = app.screen
        assert isinstance(form, ServerForm)
        assert form.query_one("#server-name", Input).value == "one"
        form.query_one("#server-name", Input).value = "renamed"
        form.query_one("#server-dbname", Input).value = "shop"
        await pilot.click("#server-form-save")
        await pilot.pause()
        servers = tomllib.loads((home / "config.toml").read_text())["servers"]
        assert list(servers) == ["renamed", "two"]  # an edited server keeps its place
        assert servers["renamed"]["dbname"] == "shop"
        # The file had a comment: it is kept aside, and the notice says where.
        assert "# the DBA's note" in (home / "config.toml.bak").read_text()
        assert any("config.toml.bak" in n.message for n in app._notifications)

        await move_to(pilot, tree, starts_with("two"))
        await pilot.press("delete")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        assert list(tomllib.loads((home / "config.toml").read_text())["servers"]) == ["renamed"]
        assert [node.data.name for node in tree.root.children] == ["renamed"]



async def test_the_details_pane_does_not_go_on_showing_a_removed_server(sandbox, home):
    # QA: del, y on the only server: the tree said "no servers yet" while the Details pane went on
    # showing "server two", its host and its state; with another server left, the pane showed the
    # removed one under the cursor that was on the other.
    write_config(socket_profile(sandbox, "one"), socket_profile(sandbox, "two"))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ServerTree)
        details = app.query_one(DetailsPane)
        for name, left in (("two", "one"), ("one", None)):
            await move_to(pilot, tree, starts_with(name))
            await settle(pilot)
            assert details.focus_info is not None and details.focus_info.server is not None
            assert details.focus_info.server.name == name
            await pilot.press("delete", "y")
            await settle(pilot)
            shown = details.focus_info.server.name if details.focus_info and details.focus_info.server else None
            assert shown == left, name


async def test_a_server_a_schedule_uses_is_not_offered_for_removal(sandbox, home):
    """Refused before the question (it was refused only after its Yes), saying which schedule."""
    write_config(socket_profile(sandbox, "one"))
    config = load_config()
    config.schedules["nightly"] = Schedule(name="nightly", server="one", cron="30 2 * * *", database="shop")
    save_config(config)
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ServerTree)
        await move_to(pilot, tree, starts_with("one"))
        await pilot.press("delete")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("schedule 'nightly'" in str(n.message) for n in app._notifications)
    assert "one" in tomllib.loads((home / "config.toml").read_text())["servers"]


async def test_wrong_password_shows_on_the_node_then_the_prompt_loads_it(sandbox, home, monkeypatch, tmp_path):
    no_password_sources(monkeypatch, tmp_path)
    monkeypatch.setenv("PGPASSWORD", "definitely-wrong")
    write_config(tcp_profile(sandbox, "tcp"), socket_profile(sandbox, "local"))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ServerTree)
        server = await open_line(pilot, tree, starts_with("tcp"))
        assert server.data.status == FAILED
        assert "password authentication failed" in node_text(tree, server)
        assert isinstance(app.screen, PasswordPrompt)

        # Declining leaves the error in place, and the rest of the app keeps working.
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, PasswordPrompt)
        other = await open_line(pilot, tree, starts_with("local"))
        assert other.data.status == READY and "password authentication failed" in node_text(tree, server)

        # Opening it again asks again; the right password loads it.
        await move_to(pilot, tree, starts_with("tcp"))
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, PasswordPrompt)
        await pilot.press(*sandbox.password, "enter")
        await settle(pilot)
        assert server.data.status == READY
        assert "shop" in [child.data.info.name for child in server.children]
        assert app.profiles.passwords == {"tcp": sandbox.password}
    assert sandbox.password not in (home / "config.toml").read_text()


async def test_no_password_anywhere_prompts_and_a_wrong_answer_prompts_again(sandbox, home, monkeypatch, tmp_path):
    no_password_sources(monkeypatch, tmp_path)
    write_config(tcp_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ServerTree)
        server = await open_line(pilot, tree, starts_with("tcp"))
        assert isinstance(app.screen, PasswordPrompt)
        await pilot.press(*"nope", "enter")
        await settle(pilot)
        assert isinstance(app.screen, PasswordPrompt)  # the typed password failed: asked again
        assert "tcp" not in app.profiles.passwords
        await pilot.press(*sandbox.password, "enter")
        await settle(pilot)
        assert server.data.status == READY


async def test_a_restore_to_a_server_not_opened_yet_asks_for_its_password(sandbox, home, monkeypatch, tmp_path,
                                                                          fresh_db_name):
    """Restoring to a server whose node was never opened (no password typed this session) started
    a job that failed with 'no password supplied' (QA): the password is asked first, then it runs."""
    archive = tmp_path / "shop.dump"
    assert run_cli("dump", "--dsn", sandbox.dsn(), "--db", "shop", "--schema-only", "--output",
                   str(archive)).returncode == 0
    no_password_sources(monkeypatch, tmp_path)
    write_config(tcp_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        app.restore(archive, "tcp", None)
        await wait_until(lambda: isinstance(app.screen, RestoreDialog))
        await settle(pilot)
        app.screen.query_one("#target-db", Input).value = fresh_db_name
        await settle(pilot)
        app.screen.query_one("#restore-start", Button).press()
        await wait_until(lambda: isinstance(app.screen, PasswordPrompt))
        assert not any(job.kind == "restore" for job in app.jobs)  # nothing started without it
        await pilot.press(*sandbox.password, "enter")
        await wait_until(lambda: any(job.kind == "restore" and job.state.is_final for job in app.jobs))
        restored = next(job for job in app.jobs if job.kind == "restore")
        assert restored.state == JobState.SUCCEEDED, restored.result
    assert sandbox.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{fresh_db_name}'").strip() == "1"


async def test_unreachable_server_shows_refused_and_the_app_keeps_working(sandbox, home):
    write_config(ServerProfile(name="down", host="127.0.0.1", port=free_port(), user="postgres"),
                 socket_profile(sandbox, "up"))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ServerTree)
        down = await open_line(pilot, tree, starts_with("down"))
        assert down.data.status == FAILED
        assert "Connection refused" in node_text(tree, down)
        assert not isinstance(app.screen, PasswordPrompt)
        up = await open_line(pilot, tree, starts_with("up"))
        assert up.data.status == READY


async def test_start_up_shows_every_server_state_without_opening_or_prompting(sandbox, home, monkeypatch, tmp_path):
    no_password_sources(monkeypatch, tmp_path)
    write_config(socket_profile(sandbox, "up"), tcp_profile(sandbox, "locked"),
                 ServerProfile(name="down", host="127.0.0.1", port=free_port(), user="postgres"))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tree = app.query_one(ServerTree)
        up, locked, down = tree.root.children
        assert node_text(tree, up).startswith(f"up  PostgreSQL {sandbox.major}.")
        assert "no password supplied" in node_text(tree, locked)
        assert "Connection refused" in node_text(tree, down)
        assert not any(node.is_expanded for node in (up, locked, down))
        assert not isinstance(app.screen, PasswordPrompt)  # nobody asked to open "locked" yet
        # Opening the loaded server shows its databases at once, without another round trip.
        await move_to(pilot, tree, starts_with("up"))
        await pilot.press("enter")
        assert "shop" in [child.data.info.name for child in up.children]


async def test_malformed_config_is_reported_and_left_byte_for_byte(sandbox, home):
    config_file = home / "config.toml"
    original = b'[servers.prod]\nhost = "db1"\nport = "not a number\n'
    config_file.write_bytes(original)
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ServerTree)
        lines = [node_text(tree, node) for node in tree.root.children]
        assert str(config_file) in lines[0]
        assert any(str(config_file) in n.message for n in app._notifications)
        await pilot.press("a")  # adding would save the config: it must not be possible
        await pilot.pause()
        assert not isinstance(app.screen, ServerForm)
        await pilot.press("q")
    assert config_file.read_bytes() == original


def test_profiles_refuse_to_save_over_a_config_that_did_not_load(home):
    config_file = home / "config.toml"
    config_file.write_text("[servers\n")
    profiles = ServerProfiles()
    profiles.load()
    assert profiles.error is not None and str(config_file) in profiles.error and not profiles.writable
    with pytest.raises(ConfigError):
        profiles.save(ServerProfile(name="x", host="h"), None)
    assert config_file.read_text() == "[servers\n"


def test_profiles_keep_order_on_rename_and_passwords_in_memory(home):
    profiles = ServerProfiles()
    profiles.load()
    profiles.save(ServerProfile(name="a", host="h1"), "pw-a")
    profiles.save(ServerProfile(name="b", host="h2"), None)
    profiles.save(ServerProfile(name="a2", host="h1", port=6432), None, replacing="a")
    assert profiles.names == ["a2", "b"] and profiles.passwords == {}  # a's password went with its name
    assert profiles.target("a2").params["port"] == "6432"
    profiles.remove("b")
    assert list(tomllib.loads((home / "config.toml").read_text())["servers"]) == ["a2"]



def test_a_server_another_command_added_while_the_tui_ran_is_kept_when_the_tui_saves(home):
    """The TUI wrote the servers it had loaded at its start: a server that `servers add` wrote meanwhile
    was dropped by the TUI's next save, and once a schedule used it, every save of the TUI was refused
    ("schedule 'nightly' backs up server 'fromcli'; remove the schedule first") (QA)."""
    from cliutil import run_cli

    profiles = ServerProfiles()
    profiles.load()
    profiles.save(ServerProfile(name="a", host="h1"), None)
    added = run_cli("servers", "add", "fromcli", "--dsn", "host=h9 dbname=postgres")
    assert added.returncode == 0, added.stderr
    scheduled = run_cli("schedule", "add", "nightly", "--server", "fromcli", "--db", "postgres", "--cron", "0 1 * * *")
    assert scheduled.returncode == 0, scheduled.stderr
    profiles.save(ServerProfile(name="b", host="h2"), None)
    profiles.save(ServerProfile(name="a2", host="h1"), None, replacing="a")
    profiles.remove("b")
    on_disk = tomllib.loads((home / "config.toml").read_text())
    assert list(on_disk["servers"]) == ["a2", "fromcli"] and list(on_disk["schedules"]) == ["nightly"], on_disk
    assert profiles.names == ["a2", "fromcli"]

async def test_keymap_from_the_config_remaps_a_key(sandbox, home) -> None:
    """`[keymap] "app.help" = "f1"` in config.toml: f1 opens the help, `?` no longer does."""
    from pgbackup_tui.ui.app import PgBackupApp
    from pgbackup_tui.ui.screens.help import HelpScreen

    (home / "config.toml").write_text('[keymap]\n"app.help" = "f1"\n')
    app = PgBackupApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
