"""The app's server profiles: config.toml as loaded, and the passwords typed this session.

A config that did not load is never written: `save` and `remove` refuse until a restart with a
fixed file. Passwords live here in memory only; they never reach a Config.
"""

from __future__ import annotations

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
        config = self._require_config()
        servers: dict[str, ServerProfile] = {}
        for name, existing in config.servers.items():
            if name == replacing:
                servers[profile.name] = profile
            elif name != profile.name:
                servers[name] = existing
            else:
                raise ConfigError(f"server '{profile.name}' already exists; pick another name")
        servers.setdefault(profile.name, profile)
        renamed = (replacing, profile.name) if replacing is not None and replacing != profile.name else None
        path = self._write(Config(servers=servers, path=config.path), renamed)
        if replacing is not None and replacing != profile.name:
            self.passwords.pop(replacing, None)
        if password:
            self.passwords[profile.name] = password
        return path

    def remove(self, name: str) -> Path:
        """Drop a server (and its in-memory password) and write the file."""
        config = self._require_config()
        path = self._write(Config(servers={k: v for k, v in config.servers.items() if k != name}, path=config.path))
        self.passwords.pop(name, None)
        return path

    def _require_config(self) -> Config:
        if self.config is None:
            raise ConfigError(f"{self.error}; not saving over it")
        return self.config

    def _write(self, config: Config, renamed: tuple[str, str] | None = None) -> Path:
        for profile in config.servers.values():
            validate_profile(profile)  # the rules load_config applies: never write what cannot be read
        # The keymap, the tables that did not load (written back as they were), and the schedules as
        # on disk now (the Schedules tab writes them): kept, not dropped.
        if self.config is not None:
            config.keymap, config.broken_keymap = dict(self.config.keymap), self.config.broken_keymap
            config.broken_servers = {name: table for name, table in self.config.broken_servers.items()
                                     if name not in config.servers}
        with config_lock(config.path):  # the schedules as on disk until written: no other writer between
            config.schedules, config.broken_schedules = schedules_for_servers(
                config.path, set(config.servers) | set(config.broken_servers), renamed)
            path = save_config(config)
        self.config = config  # adopted only once it is on disk
        return path
