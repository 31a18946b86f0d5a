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
import re
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import platformdirs

from .sandbox_sweep import process_alive

APP_NAME = "pgbackup-tui"
HOME_ENV = "PGBACKUP_TUI_HOME"
# A temp file whose writer still runs but does not hold its lock is an older one's (its pid reused
# since), once it is older than this: a live writer takes the lock microseconds after creating it.
TEMP_GRACE_S = 60.0


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


@contextlib.contextmanager
def locked_then_removed(lock: Path) -> Iterator[None]:
    """locked(), for a lock file that must not stay (one beside a user's backup): removed at the end.

    Removing a lock file others wait on lets two writers in at once, unless, as here, the holder
    removes it before letting go, and whoever gets the lock next checks that its file is still the
    one at `lock` (else it holds a lock nobody else will ever take, and opens `lock` anew). A holder
    killed (SIGKILL) leaves the file: the next one to lock it uses it, or remove_unheld_lock does."""
    ensure_private_dir(lock.parent)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        if _still_at(fd, lock):
            break
        os.close(fd)  # removed by the holder before us: its file is nobody's lock any more
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # already gone, or the storage turned read-only: nothing to undo
            lock.unlink()
        os.close(fd)


def _still_at(fd: int, path: Path) -> bool:
    """Whether the open file `fd` is the file at `path` now (not one removed from it)."""
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (here.st_dev, here.st_ino)


def remove_unheld_lock(lock: Path) -> bool:
    """Remove a lock file of locked_then_removed that nobody holds (its holder was killed, or an
    older pgbackup-tui left it); one held or waited on is left. Whether it was removed."""
    return _remove_if_unheld(lock, lambda _fd: True)


def _remove_if_unheld(path: Path, abandoned: Callable[[int], bool]) -> bool:
    """Remove `path` if nobody holds its flock and `abandoned(fd)` says so, as a holder would: under
    the lock, and only while it is still the file at `path` (one who opened it meanwhile finds it
    gone and opens anew). Whether it was removed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO someone put there must not hang us
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # held: its holder removes it, or its writer is writing it
        if not abandoned(fd) or not _still_at(fd, path):
            return False
        path.unlink()
        return True
    except OSError:
        return False  # read-only storage, or not ours to remove
    finally:
        os.close(fd)


def named_error(exc: BaseException, path: Path) -> BaseException:
    """`exc`, or, for an OSError raised through a file handle (a write or fsync that found the disk
    full says no file), the same error naming `path`: the line the user reads then says which disk."""
    if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
        return type(exc)(exc.errno, exc.strerror, str(path))
    return exc


def temp_path(path: Path, pid: int) -> Path:
    """The temp file process `pid` writes `path` through (write_private_file): hidden, beside it."""
    return path.with_name(f".{path.name}.{pid}.tmp")


def write_private_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temp file + os.replace), mode 0600. A writer killed
    before the rename leaves its temp file: remove_abandoned_temp_files removes it."""
    ensure_private_dir(path.parent)
    tmp = temp_path(path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            # Held until it is renamed (or the writer dies): remove_abandoned_temp_files leaves it alone.
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
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


def written_through(path: Path) -> Path:
    """The file a write of `path` changes: the one a symlink points to (to a managed copy, a secrets
    mount), the link kept."""
    return path.resolve() if path.is_symlink() else path


def rewrite_toml_file(real: Path, before: bytes, after: bytes) -> Path | None:
    """Write `after` over `real` (0600, atomically): a TOML file we write from what we read, so a
    DBA's comments in `before` would be lost (tomli_w keeps none). Where `before` has one (or a # in
    a value: a copy too many, never one too few), it is kept first as REAL.bak (0600): its path."""
    kept = None
    if b"#" in before:
        kept = real.with_name(real.name + ".bak")
        write_private_file(kept, before)
    write_private_file(real, after)
    return kept


def remove_abandoned_temp_files(path: Path, names: Iterable[str] | None = None) -> list[Path]:
    """Remove the temp files of `path` (temp_path) whose writer is gone: killed before its rename.
    One whose lock is held is being written; one of a live process is left for TEMP_GRACE_S (it
    may be between creating the file and locking it). `names`: the folder's listing, when the
    caller has read it. Returns the files removed."""
    pattern = re.compile(re.escape(f".{path.name}.") + r"(\d+)" + re.escape(".tmp"))
    if names is None:
        try:
            names = os.listdir(path.parent)
        except OSError:
            return []
    removed = []
    for name in names:
        match = pattern.fullmatch(name)
        if match and _remove_if_abandoned(path.with_name(name), int(match.group(1))):
            removed.append(path.with_name(name))
    return removed


def _remove_if_abandoned(tmp: Path, pid: int) -> bool:
    # A live writer takes the lock microseconds after creating its file: unlocked, a file of a live
    # pid is an older writer's only once TEMP_GRACE_S old (its pid reused since).
    return _remove_if_unheld(tmp, lambda fd: not process_alive(pid) or time.time() - os.fstat(fd).st_mtime
                             >= TEMP_GRACE_S)


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
