"""Config and paths: profiles round-trip through TOML, files are private, a broken file is never
overwritten, passwords are never stored, and PGBACKUP_TUI_HOME moves everything."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import platformdirs
import psycopg
import pytest

from pgbackup_tui.core import paths
from pgbackup_tui.core.config import Config, load_config, save_config
from pgbackup_tui.core.server_profile import ServerProfile
from pgbackup_tui.core.errors import ConfigError

CONSOLE_SCRIPT = Path(sys.executable).parent / "pgbackup-tui"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real console script, with our PGBACKUP_TUI_HOME and no libpq variables."""
    command = [str(CONSOLE_SCRIPT)] if CONSOLE_SCRIPT.exists() else [sys.executable, "-m", "pgbackup_tui"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") or k == paths.HOME_ENV}
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=60,
                          stdin=subprocess.DEVNULL)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sample_config() -> Config:
    config = Config()
    config.add_server(ServerProfile(name="prod", dsn="postgresql://app@db1:5432/postgres?sslmode=require"))
    config.add_server(ServerProfile(name="local-15", host="/var/run/postgresql", port=5433, user="postgres",
                                    dbname="shop", sslmode="disable", bin_dir="/opt/pg/bin"))
    config.add_server(ServerProfile(name="svc.x", service="reporting"))
    return config


# -- round trip and file modes --------------------------------------------------------------------

def test_round_trip_keeps_every_field_and_the_order(home: Path) -> None:
    original = sample_config()
    written = save_config(original)
    assert written == home / "config.toml"
    loaded = load_config()
    assert list(loaded.servers) == ["prod", "local-15", "svc.x"]
    assert loaded.servers == original.servers
    assert loaded.servers["local-15"].port == 5433  # an int, not "5433"
    assert loaded.path == written


def test_saved_file_is_0600_and_created_folders_0700(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app_home = tmp_path / "not" / "yet"
    monkeypatch.setenv(paths.HOME_ENV, str(app_home))
    old_umask = os.umask(0)  # the modes must not depend on a permissive umask
    try:
        path = save_config(sample_config())
    finally:
        os.umask(old_umask)
    assert path == app_home / "config.toml"
    assert mode_of(path) == 0o600
    assert mode_of(app_home) == 0o700
    assert mode_of(tmp_path / "not") == 0o700
    # Atomic write: no temp file left next to it.
    assert sorted(p.name for p in app_home.iterdir()) == ["config.toml"]


def test_saving_over_a_world_readable_file_makes_it_private(home: Path) -> None:
    path = home / "config.toml"
    path.write_text('[servers.old]\nhost = "h"\n')
    path.chmod(0o644)
    config = load_config()
    config.add_server(ServerProfile(name="new", host="h2"))
    save_config(config)
    assert mode_of(path) == 0o600
    assert set(load_config().servers) == {"old", "new"}


def test_missing_file_is_an_empty_config_and_nothing_is_created(home: Path) -> None:
    config = load_config()
    assert config.servers == {}
    assert config.path == home / "config.toml"
    assert not (home / "config.toml").exists()


def test_connection_params_put_explicit_fields_over_the_dsn() -> None:
    profile = ServerProfile(name="p", dsn="host=a port=1 user=u dbname=d", port=5555, sslmode="require")
    assert profile.connection_params() == {"host": "a", "port": "5555", "user": "u", "dbname": "d",
                                           "sslmode": "require"}


# -- broken files ---------------------------------------------------------------------------------

MALFORMED = b'[servers.prod]\nhost = "db1"\nport = 5432\n\n[servers.broken\nhost = "x"\n'


def test_malformed_toml_names_the_path_and_the_line(home: Path) -> None:
    path = home / "config.toml"
    path.write_bytes(MALFORMED)
    with pytest.raises(ConfigError) as caught:
        load_config()
    message = str(caught.value)
    assert str(path) in message
    assert "line 5" in message
    assert "\n" not in message


@pytest.mark.parametrize("command", [
    ["servers", "add", "new", "--host", "db2"],
    ["servers", "remove", "prod"],
    ["servers", "list"],
])
def test_cli_never_overwrites_a_config_it_could_not_read(home: Path, command: list[str]) -> None:
    path = home / "config.toml"
    path.write_bytes(MALFORMED)
    before = path.stat()
    result = run_cli(*command)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and "line 5" in lines[0]
    assert path.read_bytes() == MALFORMED
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    assert sorted(p.name for p in home.iterdir()) == ["config.toml"]


def _problem(name: str = "prod") -> str:
    """What loading config.toml says: its own error, or (loaded) that of the server it names."""
    try:
        config = load_config()
    except ConfigError as exc:
        return str(exc)
    with pytest.raises(ConfigError) as caught:
        config.server(name)
    return str(caught.value)


def test_unknown_keys_are_named(home: Path) -> None:
    """Said when the server is used: a key added by hand to one profile no longer stops every other
    command (and every scheduled backup) at the load (QA)."""
    (home / "config.toml").write_text('[servers.prod]\nhost = "db1"\nhots = "typo"\npassword = "x"\n'
                                      '[servers.ok]\nhost = "db2"\n')
    config = load_config()
    assert config.server("ok").host == "db2" and list(config.broken_servers) == ["prod"]
    message = _problem()
    assert "servers.prod" in message
    assert "hots" in message and "password" in message


def test_unknown_top_level_keys_are_named(home: Path) -> None:
    (home / "config.toml").write_text('[server.prod]\nhost = "db1"\n')
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert "server" in str(caught.value)


def test_cli_add_keeps_what_it_did_not_understand(home: Path) -> None:
    path = home / "config.toml"
    path.write_bytes(b'[server.prod]\nhost = "db1"\n')
    run_cli("servers", "add", "new", "--host", "db2")
    assert b"db1" in path.read_bytes()


@pytest.mark.parametrize(("body", "fragment"), [
    ("servers = 3\n", "[servers] must be a table"),
    ("[servers]\nprod = 1\n", "[servers.prod] must be a table"),
    ('[servers.prod]\nhost = "h"\nport = "abc"\n', "servers.prod"),
    ('[servers.prod]\nhost = "h"\nport = 99999\n', "port 99999"),
    ('[servers.prod]\ndsn = "host=h password=secret"\n', "password"),
    ('[servers."bad name"]\nhost = "h"\n', "bad name"),
    ("[servers.prod]\n", "give a DSN"),
])
def test_invalid_profiles_in_the_file_name_the_path(home: Path, body: str, fragment: str) -> None:
    path = home / "config.toml"
    path.write_text(body)
    message = _problem("bad name" if "bad name" in body else "prod")
    assert str(path) in message
    assert fragment in message
    assert "secret" not in message


# -- validation on add ----------------------------------------------------------------------------

@pytest.mark.parametrize("dsn", [
    "host=db1 user=app password=secret",
    "postgresql://app:secret@db1/postgres",
    "postgresql://app@db1/postgres?password=secret",
])
def test_password_in_dsn_is_refused_on_add(dsn: str) -> None:
    config = Config()
    with pytest.raises(ConfigError) as caught:
        config.add_server(ServerProfile(name="prod", dsn=dsn))
    assert "password" in str(caught.value)
    assert "secret" not in str(caught.value)
    assert config.servers == {}


def test_cli_refuses_a_password_and_writes_nothing(home: Path) -> None:
    result = run_cli("servers", "add", "prod", "--dsn", "postgresql://app:secret@db1/postgres")
    assert result.returncode == 2
    assert "password" in result.stderr and "secret" not in result.stderr
    assert not (home / "config.toml").exists()


def test_ssl_key_password_in_dsn_is_refused_on_add() -> None:
    with pytest.raises(ConfigError):
        Config().add_server(ServerProfile(name="prod", dsn="host=db1 sslcert=c sslkey=k sslpassword=secret"))


def test_unparsable_dsn_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        Config().add_server(ServerProfile(name="prod", dsn="host=db1 nonsense_keyword=1"))
    assert "server 'prod'" in str(caught.value) and "DSN" in str(caught.value)


@pytest.mark.parametrize("name", ["bad name", "-leading-dash", ".hidden", "a/b", "", "x" * 64, "ünïcode"])
def test_invalid_server_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config().add_server(ServerProfile(name=name, host="h"))
    assert "server name" in str(caught.value)


@pytest.mark.parametrize("name", ["prod", "db1.example-2_x", "X", "9lives", "x" * 63])
def test_valid_server_names_are_accepted(name: str) -> None:
    config = Config()
    config.add_server(ServerProfile(name=name, host="h"))
    assert name in config.servers


@pytest.mark.parametrize("port", [0, -1, 65536, 70000])
def test_port_out_of_range_is_refused(port: int) -> None:
    with pytest.raises(ConfigError) as caught:
        Config().add_server(ServerProfile(name="p", host="h", port=port))
    assert str(port) in str(caught.value) and "65535" in str(caught.value)


@pytest.mark.parametrize("port", [1, 5432, 65535])
def test_port_in_range_is_accepted(port: int) -> None:
    config = Config()
    config.add_server(ServerProfile(name="p", host="h", port=port))
    assert config.servers["p"].port == port


def test_cli_port_out_of_range_exits_2(home: Path) -> None:
    result = run_cli("servers", "add", "p", "--host", "h", "--port", "70000")
    assert result.returncode == 2
    assert "70000" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (home / "config.toml").exists()


def test_duplicate_and_unknown_names(home: Path) -> None:
    config = sample_config()
    with pytest.raises(ConfigError, match="already exists"):
        config.add_server(ServerProfile(name="prod", host="other"))
    assert config.servers["prod"].dsn is not None  # the original is kept
    with pytest.raises(ConfigError, match="no server named 'nope'"):
        config.remove_server("nope")
    with pytest.raises(ConfigError) as caught:
        config.server("nope")
    assert "prod" in str(caught.value)  # lists the known ones
    config.add_server(ServerProfile(name="prod", host="other"), replace_existing=True)
    assert config.servers["prod"].host == "other"


def test_profile_needs_somewhere_to_connect() -> None:
    with pytest.raises(ConfigError, match="give a DSN"):
        Config().add_server(ServerProfile(name="p", dbname="shop"))


# -- paths ----------------------------------------------------------------------------------------

def test_home_env_puts_everything_under_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "h"))
    assert paths.config_file() == tmp_path / "h" / "config.toml"
    assert paths.data_dir() == tmp_path / "h"
    assert paths.backups_dir() == tmp_path / "h" / "backups"
    assert paths.logs_dir() == tmp_path / "h" / "logs"


def test_home_env_expands_the_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(paths.HOME_ENV, "~/pgb")
    assert paths.config_file() == tmp_path / "pgb" / "config.toml"


def test_without_home_env_platformdirs_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.HOME_ENV, raising=False)
    assert paths.config_file() == Path(platformdirs.user_config_dir("pgbackup-tui")) / "config.toml"
    assert paths.backups_dir() == Path(platformdirs.user_data_dir("pgbackup-tui")) / "backups"
    assert paths.logs_dir() == Path(platformdirs.user_log_dir("pgbackup-tui"))


def test_cli_writes_under_home_env(home: Path) -> None:
    result = run_cli("servers", "add", "prod", "--host", "db1", "--port", "5432")
    assert result.returncode == 0, result.stderr
    assert str(home / "config.toml") in result.stdout
    assert load_config(home / "config.toml").servers["prod"] == ServerProfile(name="prod", host="db1", port=5432)
    assert mode_of(home / "config.toml") == 0o600


def test_ensure_private_dir_leaves_existing_folders_alone(tmp_path: Path) -> None:
    existing = tmp_path / "shared"
    existing.mkdir()
    existing.chmod(0o755)
    made = paths.ensure_private_dir(existing / "a" / "b")
    assert made.is_dir()
    assert mode_of(existing) == 0o755
    assert mode_of(existing / "a") == 0o700 and mode_of(existing / "a" / "b") == 0o700


def test_keymap_round_trips_and_is_validated(home: Path) -> None:
    path = home / "config.toml"
    path.write_text('[keymap]\n"app.backup" = "B"\n\n[servers.prod]\nhost = "db1"\n')
    config = load_config()
    assert config.keymap == {"app.backup": "B"}
    save_config(config)
    assert load_config().keymap == {"app.backup": "B"}
    # A keymap that does not load is the TUI's to say (default keys then); written back as it was.
    path.write_text('[keymap]\n"app.backup" = 3\n')
    config = load_config()
    assert config.keymap == {} and config.broken_keymap is not None and "[keymap]" in config.broken_keymap[1]
    save_config(config)
    assert '"app.backup" = 3' in path.read_text()


def test_a_dsn_that_does_not_parse_is_said_without_the_text_around_the_fault(home: Path) -> None:
    """libpq quotes the word before a missing '=', which may be a password; the line now reaches a
    schedule's logs, hooks and notifications when its run uses that server (review)."""
    (home / "config.toml").write_text('[servers.prod]\ndsn = "host=db1 password s3cret"\n')
    message = _problem()
    assert "the DSN does not parse" in message and 'missing "="' in message and "s3cret" not in message


def test_an_unknown_option_of_a_dsn_is_named(home: Path) -> None:
    """An option libpq does not know is a keyword, what the user must fix: QA saw it blanked to "…"
    with the quoted text the line leaves out. Quoted text that is no option name still goes."""
    from pgbackup_tui.core.server_profile import conninfo_error
    from psycopg.conninfo import conninfo_to_dict

    def said(dsn: str) -> str:
        with pytest.raises(psycopg.ProgrammingError) as caught:
            conninfo_to_dict(dsn)
        return conninfo_error(caught.value)

    assert said("host=db1 user=app badopt=1") == 'invalid connection option "badopt"'
    assert said("postgresql://u@db1/db?badq=1") == 'invalid URI query parameter: "badq"'
    assert "s3cret" not in said("host=db1 s3cret") and "Secret_PW" not in said("host=db1 Secret_PW=1")
