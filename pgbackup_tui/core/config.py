"""Settings and server profiles, kept in TOML.

Read with tomllib, written with tomli_w atomically at mode 0600. A file that does not parse or
validate raises ConfigError naming the path (and line, for syntax errors); we never write over a
file we could not read, so a typo never costs the user their profiles.
"""

from __future__ import annotations

import contextlib
import stat
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w

from . import paths
from .errors import ConfigError
from .server_profile import ServerProfile, check_field_types, validate_profile

if TYPE_CHECKING:
    from .schedules import Schedule

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
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
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
    real = paths.written_through(path)
    try:
        before = real.read_bytes()
    except OSError:
        before = b""
    kept = paths.rewrite_toml_file(real, before, tomli_w.dumps(document).encode("utf-8"))
    if kept is not None:
        config.comments_kept_in = kept
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


