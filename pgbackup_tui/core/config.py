"""Settings and server profiles, kept in TOML.

Read with tomllib, written with tomli_w atomically at mode 0600. A file that does not parse or
validate raises ConfigError naming the path (and line, for syntax errors); we never write over a
file we could not read, so a typo never costs the user their profiles.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w
from psycopg.conninfo import conninfo_to_dict

from . import paths
from .errors import ConfigError

if TYPE_CHECKING:
    from .schedules import Schedule

# Profile keys that map 1:1 onto libpq connection keywords.
CONNECTION_KEYS = ("host", "port", "user", "dbname", "sslmode", "service")
# The database a profile connects to when nothing names one. libpq's own default is the user's
# name, which rarely exists ('database "dba" does not exist'); every cluster has `postgres`.
DEFAULT_DBNAME = "postgres"
PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class ServerProfile:
    """One server the user works with. Never holds a password."""

    name: str
    dsn: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    dbname: str | None = None
    sslmode: str | None = None
    service: str | None = None
    bin_dir: str | None = None

    def connection_params(self) -> dict[str, str]:
        """libpq keywords for this profile (DSN first, explicit fields on top)."""
        params: dict[str, str] = {}
        if self.dsn:
            params.update({k: str(v) for k, v in conninfo_to_dict(self.dsn).items()})
        for key in CONNECTION_KEYS:
            value = getattr(self, key)
            if value is not None:
                params[key] = str(value)
        # A service file or PGDATABASE may name the database: libpq reads them, we do not guess.
        if "dbname" not in params and "service" not in params and not os.environ.get("PGDATABASE"):
            params["dbname"] = DEFAULT_DBNAME
        return params

    def to_toml(self) -> dict:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "name" and getattr(self, f.name) is not None
        }


# A conninfo can hide in any of these: libpq expands a dbname that is a URI or holds '=', and
# what a field holds is shown by `servers list`, the tree and the logs.
CONNINFO_FIELDS = ("host", "user", "dbname", "sslmode", "service")
TEXT_FIELDS = ("dsn", *CONNINFO_FIELDS, "bin_dir")
_URI_WITH_PASSWORD = re.compile(r"^postgres(?:ql)?://[^/?#@]*:[^/?#@]*@", re.IGNORECASE)
_PASSWORD_KEYWORD = re.compile(r"(?:^|[\s'\"])(sslpassword|password)\s*=", re.IGNORECASE)
NO_PASSWORDS = ("remove it and use ~/.pgpass, PGPASSWORD or the TUI's prompt "
                "(passwords are never stored in the config)")


def hidden_password(value: str) -> str | None:
    """'password' or 'sslpassword' if `value`, read as a libpq conninfo (URI or key=value), carries
    one; else None. A value that is no conninfo carries none."""
    if "=" not in value and "://" not in value:
        return None
    try:
        params = conninfo_to_dict(value)
    except Exception:  # psycopg.ProgrammingError: not a conninfo after all; what looks like a password still counts
        keyword = _PASSWORD_KEYWORD.search(value)
        if keyword:
            return keyword.group(1).lower()
        return "password" if _URI_WITH_PASSWORD.match(value.strip()) else None
    for key in ("sslpassword", "password"):
        if key in params:
            return key
    return None


def check_field_types(body: dict, where: str) -> None:
    """Raise ConfigError naming `where` and the key unless each value has the type its key takes
    (TOML gives `port = true` a bool, `port = 1.5` a float, `host = 5` an int)."""
    for key in TEXT_FIELDS:
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{where}: {key} = {_toml_value(value)} is not text; write it in quotes, "
                              f'e.g. {key} = "..."')
    port = body.get("port")
    if port is None:
        return
    if isinstance(port, str) and port.strip().isdigit():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int):
        raise ConfigError(f"{where}: port = {_toml_value(body['port'])} is not a port number; "
                          "write a whole number from 1 to 65535, e.g. port = 5432")


def _toml_value(value: object) -> str:
    try:
        return tomli_w.dumps({"v": value})[4:].strip()
    except Exception:  # not something TOML writes (only reached for values built in code)
        return repr(value)


SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _check_libpq_values(whose: str, params: dict[str, str]) -> None:
    """Values libpq would refuse only at the first connection (or take for another meaning), said
    when the server is added: sslmode, connect_timeout and port (one per host, comma-separated)."""
    sslmode = params.get("sslmode")
    if sslmode is not None and sslmode not in SSLMODES:
        raise ConfigError(f"{whose} sslmode {sslmode!r} is not one of {', '.join(SSLMODES)}")
    timeout = params.get("connect_timeout")
    if timeout is not None and not timeout.strip().lstrip("-").isdigit():
        raise ConfigError(f"{whose} connect_timeout {timeout!r} is not a number of seconds")
    for host in (params.get("host") or "").split(","):
        # 'db1:5432' is a host name to libpq, looked up as such ("could not translate host name"):
        # the usual way to write a server elsewhere, said here with what to write instead.
        written = re.fullmatch(r"([^:/\[\]@]+):(\d+)", host.strip())
        if written:
            name, port = written[1], written[2]
            raise ConfigError(f"{whose} host {host.strip()!r} holds a port: give the host alone and the port "
                              f"apart (--host {name} --port {port}, or host={name} port={port})")
    for port in (params.get("port") or "").split(",") if params.get("port") else ():
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ConfigError(f"{whose} port {port!r} is not between 1 and 65535")


def conninfo_error(exc: Exception) -> str:
    """libpq's first line on a conninfo that does not parse, without the text it quotes: the piece
    around the fault, up to the whole URI, may hold a password (the line reaches the terminal, logs,
    hooks and notifications). A quoted single character ("]", "=") is syntax, and stays; so does the
    name of an option libpq does not know (a keyword, what the user must fix: QA saw it blanked)."""
    line = _first_line(exc)
    unknown = re.match(r'invalid (?:connection option|URI query parameter:) "([a-z_][a-z0-9_]{0,39})"', line)
    if unknown:
        return line[:unknown.end()] + re.sub(r'"([^"]*)"', lambda q: q[0] if len(q[1]) <= 1 else '"…"',
                                             line[unknown.end():])
    return re.sub(r'"([^"]*)"', lambda quoted: quoted[0] if len(quoted[1]) <= 1 else '"…"', line)


def validate_profile(profile: ServerProfile, *, new: bool = False) -> ServerProfile:
    """Raise ConfigError unless `profile` is usable and password-free. `new` (being added): a port
    or sslmode given both in the DSN and apart is refused too; one saved so before, which worked
    (the field wins), still loads."""
    where = f"server '{profile.name}'"
    if not PROFILE_NAME.match(profile.name):
        raise ConfigError(
            f"{where}: a server name is letters, digits, '_', '-', '.' (up to 63), starting with a letter or digit"
        )
    check_field_types({f.name: getattr(profile, f.name) for f in fields(profile) if f.name != "name"}, where)
    for key in CONNINFO_FIELDS:
        hidden = hidden_password(getattr(profile, key) or "")
        if hidden:
            raise ConfigError(f"{where}: {key} contains a {hidden}; {NO_PASSWORDS}")
    if profile.dsn:
        try:
            params = conninfo_to_dict(profile.dsn)
        except Exception as exc:  # psycopg.ProgrammingError: the DSN does not parse
            raise ConfigError(f"{where}: the DSN does not parse: {conninfo_error(exc)}") from None
        if "sslpassword" in params:
            raise ConfigError(
                f"{where}: the DSN contains sslpassword (the client key's passphrase); passwords are never stored "
                "in the config: use a key without a passphrase or a pg_service.conf entry"
            )
        if "password" in params:
            raise ConfigError(f"{where}: the DSN contains a password; {NO_PASSWORDS}")
        for key, value in params.items():  # a conninfo inside a field (dbname='postgresql://u:pw@h/db')
            if hidden_password(str(value)):
                raise ConfigError(f"{where}: the DSN's {key} contains a password; {NO_PASSWORDS}")
        _check_libpq_values(where + ": the DSN's", {k: str(v) for k, v in params.items()})
        if new and profile.port is not None and "port" in params:
            raise ConfigError(f"{where}: the port is given twice (port {profile.port}, and port={params['port']} in "
                              "the DSN); give it once")
        if new and profile.sslmode is not None and "sslmode" in params and params["sslmode"] != profile.sslmode:
            raise ConfigError(f"{where}: sslmode is given twice ({profile.sslmode}, and sslmode={params['sslmode']} "
                              "in the DSN); give it once")
    if profile.sslmode is not None or profile.host is not None:
        _check_libpq_values(where + ":", {k: v for k, v in (("sslmode", profile.sslmode), ("host", profile.host))
                                          if v is not None})
    if profile.port is not None and not (0 < int(profile.port) < 65536):
        raise ConfigError(f"{where}: port {profile.port} is not between 1 and 65535")
    if not profile.dsn and not any(getattr(profile, k) for k in ("host", "service", "port", "user")):
        raise ConfigError(f"{where}: give a DSN, or at least a host, port, user or service")
    return profile


@dataclass
class Config:
    """Everything in config.toml. `servers` keeps the file's order."""

    servers: dict[str, ServerProfile] = field(default_factory=dict)
    path: Path | None = None
    # Binding id -> keys, e.g. {"app.backup": "B"}: remaps the TUI's keys (App.set_keymap).
    keymap: dict[str, str] = field(default_factory=dict)
    # [schedules.NAME]: scheduled backups (schedules.py), in the file's order.
    schedules: dict[str, Schedule] = field(default_factory=dict)
    # [schedules.NAME] tables that do not load: {name: (the table as written, why)}; written back as
    # they are, failing only what uses them (schedules.schedules_from_toml).
    broken_schedules: dict[str, tuple[Any, str]] = field(default_factory=dict, compare=False, repr=False)
    # The same for [servers.NAME] tables (a key added by hand, a password in a DSN): failing only
    # what uses that server; and a [keymap] that does not load (the TUI's keys only), kept as written.
    broken_servers: dict[str, tuple[Any, str]] = field(default_factory=dict, compare=False, repr=False)
    broken_keymap: tuple[Any, str] | None = field(default=None, compare=False, repr=False)
    # Set by save_config when the file it replaced had comments: where that file was kept.
    comments_kept_in: Path | None = field(default=None, compare=False, repr=False)

    def comments_note(self) -> str | None:
        """What to tell the DBA after save_config kept a file with comments aside, else None."""
        if self.comments_kept_in is None:
            return None
        return (f"{self.path} is written from its settings, without comments; the file as it was, comments and "
                f"all, is kept in {self.comments_kept_in}")

    def add_server(self, profile: ServerProfile, *, replace_existing: bool = False) -> None:
        validate_profile(profile, new=True)
        if (profile.name in self.servers or profile.name in self.broken_servers) and not replace_existing:
            raise ConfigError(f"server '{profile.name}' already exists; remove it first or pick another name")
        self.broken_servers.pop(profile.name, None)  # a good profile in place of one that did not load
        self.servers[profile.name] = profile

    def remove_server(self, name: str) -> ServerProfile:
        users = [s for s, schedule in self.schedules.items() if schedule.server == name]
        if users:
            raise ConfigError(f"server '{name}' is backed up by schedule '{users[0]}'; remove the schedule first "
                              f"(pgbackup-tui schedule remove {users[0]})")
        if name in self.broken_servers and name not in self.servers:
            self.broken_servers.pop(name)
            return ServerProfile(name=name)  # gone with its table as written; nothing of it was usable
        try:
            return self.servers.pop(name)
        except KeyError:
            raise ConfigError(f"no server named '{name}' in {self.path or paths.config_file()}") from None

    def server(self, name: str) -> ServerProfile:
        if name in self.broken_servers and name not in self.servers:
            raise ConfigError(self.broken_servers[name][1])
        try:
            return self.servers[name]
        except KeyError:
            known = ", ".join(self.servers) or "none yet; add one with `pgbackup-tui servers add`"
            raise ConfigError(f"no server named '{name}' (known: {known})") from None


def load_config(path: Path | None = None) -> Config:
    """Read config.toml. A missing file is an empty config; a broken one is a ConfigError."""
    path = path or paths.config_file()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return Config(path=path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        # A FIFO would block the read for ever, a device could be anything: only a plain file is read.
        raise ConfigError(f"{path}: not a regular file ({_file_kind(mode)}); the config must be a plain file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}; fix the file (it was left untouched)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from None

    unknown_top = sorted(set(raw) - {"servers", "keymap", "schedules"})
    if unknown_top:
        raise ConfigError(
            f"{path}: unknown top-level key(s) {', '.join(unknown_top)}; server profiles go under [servers.NAME] "
            "(the file was left untouched)"
        )
    servers_raw = raw.get("servers", {})
    if not isinstance(servers_raw, dict):
        raise ConfigError(f"{path}: [servers] must be a table of server profiles")
    keymap = raw.get("keymap", {})
    config = Config(path=path)
    if isinstance(keymap, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in keymap.items()):
        config.keymap = dict(keymap)
    else:  # the TUI's keys only: said there, and no reason for a scheduled backup not to run
        config.broken_keymap = (keymap, f'{path}: [keymap] maps binding ids to keys, e.g. "app.backup" = "B"; '
                                        "the default keys are used")
    for name, body in servers_raw.items():
        try:
            config.servers[name] = _profile_from_toml(name, body, path)
        except ConfigError as exc:  # fails only what uses this server; written back as it is
            config.broken_servers[name] = (body, str(exc))
    if "schedules" in raw:
        from .schedules import schedules_from_toml  # here: schedules reads cron expressions (cronsim)

        config.schedules, config.broken_schedules = schedules_from_toml(
            raw["schedules"], path, set(config.servers) | set(config.broken_servers))
    return config


def _profile_from_toml(name: str, body: Any, path: Path) -> ServerProfile:
    """One [servers.NAME] table as a profile; ConfigError naming the file, the table and the key."""
    if not isinstance(body, dict):
        raise ConfigError(f"{path}: [servers.{name}] must be a table")
    allowed = {f.name for f in fields(ServerProfile)} - {"name"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ConfigError(
            f"{path}: [servers.{name}] has unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    check_field_types(body, f"{path}: [servers.{name}]")
    try:
        profile = ServerProfile(name=name, **body)
        if profile.port is not None:
            profile = replace(profile, port=int(profile.port))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: [servers.{name}]: {exc}") from None
    try:
        validate_profile(profile)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return profile


def save_config(config: Config, path: Path | None = None) -> Path:
    """Write the config atomically at mode 0600 and return its path.

    A config.toml that is a symlink (to a managed copy) is written through: the file it points to
    changes, the link stays. The file is written from the Config, so a DBA's comments in it would be
    lost: the file as it was is kept beside it first, as `config.toml.bak` (0600), and
    `config.comments_kept_in` names it."""
    path = path or config.path or paths.config_file()
    document: dict = {"servers": {name: profile.to_toml() for name, profile in config.servers.items()}}
    document["servers"].update({name: body for name, (body, _why) in config.broken_servers.items()
                                if name not in config.servers})
    if config.keymap:
        document["keymap"] = dict(config.keymap)
    elif config.broken_keymap is not None:
        document["keymap"] = config.broken_keymap[0]
    if config.schedules or config.broken_schedules:
        document["schedules"] = {name: schedule.to_toml() for name, schedule in config.schedules.items()}
        document["schedules"].update({name: body for name, (body, _why) in config.broken_schedules.items()
                                      if name not in config.schedules})
    real = path.resolve() if path.is_symlink() else path
    try:
        before = real.read_bytes()
    except OSError:
        before = b""
    if b"#" in before:  # a comment, inline or not (or a # in a value: a copy too many, never one too few)
        kept = real.with_name(real.name + ".bak")
        paths.write_private_file(kept, before)
        config.comments_kept_in = kept
    paths.write_private_file(real, tomli_w.dumps(document).encode("utf-8"))
    config.path = path
    return path



@contextlib.contextmanager
def config_lock(path: Path | None = None) -> Iterator[None]:
    """Held by whoever reads config.toml to change it, until it is written: two commands changing
    it at once (`schedule add` twice) both land, the second reading what the first wrote."""
    path = path or paths.config_file()
    with paths.locked(path.parent / f".{path.name}.lock"):
        yield


@contextlib.contextmanager
def editing_config(path: Path | None = None) -> Iterator[Config]:
    """The config as on disk now, to change; written back (save_config) when the block ends without
    an error, under config_lock all along."""
    with config_lock(path):
        config = load_config(path)
        yield config
        save_config(config, path)


def _file_kind(mode: int) -> str:
    kinds = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")]
    return next((text for test, text in kinds if test(mode)), "not a plain file")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
