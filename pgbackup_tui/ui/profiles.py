"""The app's server profiles: config.toml as loaded, and the passwords typed this session.

A config that did not load is never written: `save` and `remove` refuse until a restart with a
fixed file. Passwords live here in memory only; they never reach a Config.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..core.config import Config, config_lock, load_config, save_config
from ..core.server_profile import ServerProfile, validate_profile
from ..core.connect import Target, target_from_profile
from ..core.errors import ConfigError
from ..core.schedules import schedules_for_servers


class ServerProfiles:
    """What the TUI knows about the user's servers."""

    def __init__(self) -> None:
        self.config: Config | None = None
        self.error: str | None = None  # the one-line reason the config did not load
        self.passwords: dict[str, str] = {}

    def load(self) -> None:
        """Read config.toml; on failure keep the reason in `error` and stay read-only."""
        try:
            self.config, self.error = load_config(), None
        except ConfigError as exc:
            self.config, self.error = None, str(exc)

    @property
    def writable(self) -> bool:
        return self.config is not None

    @property
    def path(self) -> Path | None:
        return self.config.path if self.config is not None else None

    @property
    def profiles(self) -> list[ServerProfile]:
        return list(self.config.servers.values()) if self.config is not None else []

    @property
    def names(self) -> list[str]:
        return list(self.config.servers) if self.config is not None else []

    def profile(self, name: str) -> ServerProfile | None:
        return self.config.servers.get(name) if self.config is not None else None

    def target(self, name: str) -> Target | None:
        """The server's connection target, with the password typed this session if any."""
        profile = self.profile(name)
        return target_from_profile(profile, self.passwords.get(name)) if profile is not None else None

    def targets(self) -> dict[str, Target]:
        """Every server's target, by name, in config order."""
        return {name: target for name in self.names if (target := self.target(name)) is not None}

    def save(self, profile: ServerProfile, password: str | None, *, replacing: str | None = None) -> Path:
        """Add `profile` (or put it in place of `replacing`, keeping its position) and write the file.

        Raises ConfigError (not writable, invalid) or OSError; then nothing has changed.
        """
        def change(on_disk: dict[str, ServerProfile]) -> dict[str, ServerProfile]:
            servers: dict[str, ServerProfile] = {}
            for name, existing in on_disk.items():
                if name == replacing:
                    servers[profile.name] = profile
                elif name != profile.name:
                    servers[name] = existing
                else:
                    raise ConfigError(f"server '{profile.name}' already exists; pick another name")
            servers.setdefault(profile.name, profile)
            return servers

        renamed = (replacing, profile.name) if replacing is not None and replacing != profile.name else None
        path = self._write(change, renamed)
        if replacing is not None and replacing != profile.name:
            self.passwords.pop(replacing, None)
        if password:
            self.passwords[profile.name] = password
        return path

    def remove(self, name: str) -> Path:
        """Drop a server (and its in-memory password) and write the file."""
        path = self._write(lambda on_disk: {k: v for k, v in on_disk.items() if k != name})
        self.passwords.pop(name, None)
        return path

    def _require_config(self) -> Config:
        if self.config is None:
            raise ConfigError(f"{self.error}; not saving over it")
        return self.config

    def _write(self, change: Callable[[dict[str, ServerProfile]], dict[str, ServerProfile]],
               renamed: tuple[str, str] | None = None) -> Path:
        """Apply `change` to the servers as on disk now, under the config's lock, and write the file.
        Not to the servers loaded at the start: a server that `pgbackup-tui servers add` (or another
        TUI) wrote since was dropped by this write, and its schedules refused it (QA)."""
        path = self._require_config().path
        with config_lock(path):  # no other writer between the read and the write
            on_disk = load_config(path)  # one that does not load now (edited meanwhile) is not saved over
            config = Config(servers=change(dict(on_disk.servers)), path=on_disk.path)
            for profile in config.servers.values():
                validate_profile(profile)  # the rules load_config applies: never write what cannot be read
            # The keymap, the tables that did not load (written back as they were), and the schedules: kept.
            config.keymap, config.broken_keymap = dict(on_disk.keymap), on_disk.broken_keymap
            config.broken_servers = {name: table for name, table in on_disk.broken_servers.items()
                                     if name not in config.servers}
            config.schedules, config.broken_schedules = schedules_for_servers(
                path, set(config.servers) | set(config.broken_servers), renamed)
            path = save_config(config)
        self.config = config  # adopted only once it is on disk
        return path
