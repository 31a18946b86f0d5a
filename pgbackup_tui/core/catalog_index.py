"""The catalog's index: the backups it lists outside the backup dir (`dump --output`, `backups
adopt`), as their paths in catalog-index.json in the data dir, changed atomically under a lock.
One that cannot be read is never taken for empty, nor written over (IndexDamaged)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path

from . import paths

INDEX_NAME = "catalog-index.json"


def index_path() -> Path:
    return paths.data_dir() / INDEX_NAME


@contextlib.contextmanager
def index_locked() -> Iterator[None]:
    with paths.locked(paths.data_dir() / (INDEX_NAME + ".lock")):
        yield


class IndexDamaged(OSError):
    """The index exists but cannot be read: it is never taken for empty, nor written over (the
    backups it lists would be lost from the catalog for good)."""


def indexed_paths() -> list[Path]:
    """The paths in the index (absolute), in the order they were added; IndexDamaged if it is
    there but cannot be read."""
    return read_index()[0]


def read_index() -> tuple[list[Path], dict[str, str]]:
    """The indexed paths (absolute, in the order they were added) and the backup id each had when
    it was added, where its manifest gave one (a path gone since, whose backup is now listed at
    another path, is then named as moved there); IndexDamaged if it is there but cannot be read."""
    path = index_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], {}
    except OSError as exc:
        raise IndexDamaged(exc.errno, f"{path}: cannot be read ({exc.strerror})") from None
    try:
        data = json.loads(text)
        items = data["paths"]
        if not isinstance(items, list) or not all(isinstance(p, str) for p in items):
            raise ValueError("'paths' is not a list of paths")
        ids = data.get("ids") or {}  # added after "paths": an index without it is read as before
        if not isinstance(ids, dict) or not all(isinstance(v, str) for v in ids.values()):
            raise ValueError("'ids' is not a map of paths to backup ids")
    except (ValueError, TypeError, KeyError) as exc:
        raise IndexDamaged(errno.EINVAL, f"{path}: damaged ({exc}); the backups it lists outside the backup dir "
                           "are not shown; restore it from a copy, or move it aside to start a new one") from None
    return [Path(p) for p in items], ids


class IndexNotWritable(OSError):
    """The index cannot be changed: the data dir takes no files (read-only, another's). Said as that
    folder's state, not as the lock file's or the temp file's path that the OSError names."""


def _not_writable(exc: OSError) -> IndexNotWritable:
    folder = paths.data_dir()
    return IndexNotWritable(exc.errno, f"the catalog's folder {folder} cannot be written ({exc.strerror}), and its "
                            f"index ({INDEX_NAME}) lists the backups kept outside the backup dir")


def check_index_writable() -> None:
    """IndexNotWritable now, before any work, when the index could not be changed: the data dir
    is read-only or not ours to write (root too is refused a read-only mount)."""
    folder = paths.data_dir()
    try:
        paths.ensure_private_dir(folder)
    except OSError as exc:
        raise _not_writable(exc) from None
    if not os.access(folder, os.W_OK):
        code = errno.EROFS if _read_only(folder) else errno.EACCES
        raise _not_writable(OSError(code, os.strerror(code)))


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _change_index(add: Path | None = None, remove: Path | None = None, add_id: str | None = None) -> None:
    try:
        _change_index_locked(add, remove, add_id)
    except IndexDamaged:
        raise
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise _not_writable(exc) from None
        raise


def _change_index_locked(add: Path | None, remove: Path | None, add_id: str | None) -> None:
    with index_locked():
        known, ids = read_index()
        if add is not None and add not in known:
            known.append(add)
        if add is not None and add_id:
            ids[str(add)] = add_id
        if remove is not None:
            known = [p for p in known if p != remove]
            ids.pop(str(remove), None)
        body = json.dumps({"paths": [str(p) for p in known], "ids": ids}, indent=2).encode("utf-8")
        paths.write_private_file(index_path(), body)


def remember_backup(archive: Path, root: Path | None = None) -> None:
    """Put `archive` in the index unless it lies under the backup dir (found there anyway), with
    its backup id (its manifest's) for the day it is moved."""
    from .manifest import load_manifest

    archive = archive.absolute()
    root = (root or paths.backups_dir()).absolute()
    if not archive.is_relative_to(root):
        manifest = load_manifest(archive)
        _change_index(add=archive, add_id=manifest.id if manifest is not None else None)


def forget_backup(archive: Path) -> None:
    _change_index(remove=archive.absolute())
