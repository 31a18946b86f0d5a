"""Where pgbackup-tui keeps its files.

PGBACKUP_TUI_HOME=DIR puts everything under DIR (config.toml, backups/, logs/, state/): tests and
scripts use it to stay isolated. Otherwise platformdirs' user dirs for the app name.
Folders we create are 0700: backups and logs can hold data and server names.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import platformdirs

APP_NAME = "pgbackup-tui"
HOME_ENV = "PGBACKUP_TUI_HOME"


def _home_override() -> Path | None:
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    home = _home_override()
    return home if home else Path(platformdirs.user_config_dir(APP_NAME))


def config_file() -> Path:
    return config_dir() / "config.toml"


def data_dir() -> Path:
    home = _home_override()
    return home if home else Path(platformdirs.user_data_dir(APP_NAME))


def backups_dir() -> Path:
    return data_dir() / "backups"


def logs_dir() -> Path:
    home = _home_override()
    return home / "logs" if home else Path(platformdirs.user_log_dir(APP_NAME))


def state_dir() -> Path:
    """Where jobs keep their state (one folder per job, see job_store.py)."""
    home = _home_override()
    return home / "state" if home else Path(platformdirs.user_state_dir(APP_NAME))


def cache_dir() -> Path:
    """Where answers that can be asked again are kept (tool_cache.py): safe to delete."""
    home = _home_override()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME))


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) so that the folders we create are 0700."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
    return path


@contextlib.contextmanager
def locked(lock: Path) -> Iterator[None]:
    """An exclusive flock on the file `lock` (made 0600 in a private folder if need be) for the
    block: the writers of one file take turns. The lock file stays (removing it would let two
    writers hold two locks)."""
    ensure_private_dir(lock.parent)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def named_error(exc: BaseException, path: Path) -> BaseException:
    """`exc`, or, for an OSError raised through a file handle (a write or fsync that found the disk
    full says no file), the same error naming `path`: the line the user reads then says which disk."""
    if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
        return type(exc)(exc.errno, exc.strerror, str(path))
    return exc


def write_private_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temp file + os.replace), mode 0600."""
    ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        named = named_error(exc, path)
        if named is exc:
            raise
        raise named from exc


def sync_folder(folder: Path) -> None:
    """fsync a folder. Some file systems cannot (EINVAL, EBADF: what PostgreSQL's fsync_fname lets
    pass for a directory too); there the rename is as durable as they make it."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)
