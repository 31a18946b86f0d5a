"""Backups on disk: where they are, what they are, and how far they can be trusted.

Every backup we write has a sidecar `<archive>.manifest.json` (manifest.py), written just before
the archive is renamed from `.partial` to its final name. The catalog finds backups
  - under the backup dir (every archive with a manifest; a file or folder without one that reads
    as a dump is *foreign*; a `.partial` left behind is *incomplete*), and
  - wherever `dump --output` or `backups adopt` put them: their paths are kept in an index in the
    data dir (catalog-index.json: catalog_index.py); a path that is gone is
    listed as *missing*, never silently dropped (it says where its backup is listed now, if it is).
Status: foreign, incomplete, missing, being written (a running job's .partial), changed (its size
is not the manifest's), or from the manifest's verifications: complete (none yet), verified,
drilled, failed verification (the latest check failed).

Backups belong to servers by key, not by profile name alone: a profile matches a backup written
under its name, or from its host and port, or from a cluster (system identifier) that another of
its backups came from; so renaming a profile keeps its backups.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import paths
from .catalog_entry import CatalogEntry, entry_for, entry_with_manifest, foreign_id, status_of
from .catalog_index import IndexDamaged, index_path, read_index
from .errors import UsageError
from .manifest import (
    MANIFEST_SUFFIX,
    Manifest,
    clear_litter_in,
    clear_manifest_litter,
    load_manifest,
    manifest_locked,
    manifest_path,
    save_manifest,
)
from .csv_plans import MANIFEST_NAME as CSV_MANIFEST_NAME
from .plans import PARTIAL_SUFFIX

# What callers use of the entries through the catalog, as before they had a module of their own.
__all__ = ["MANIFEST_SUFFIX", "CatalogEntry", "entry_for", "entry_with_manifest", "foreign_id", "manifest_path",
           "status_of"]


def write_manifest(archive: Path, data: dict[str, Any]) -> Path:
    """Write the manifest of `archive` from a dict (the dump job's): typed and versioned on the way."""
    return save_manifest(archive, Manifest.from_json(data))


def read_manifest(archive: Path) -> dict[str, Any] | None:
    """The manifest next to `archive` as a dict (schema 2 keys), or None if there is none or it is unreadable."""
    manifest = load_manifest(archive)
    return manifest.to_json() if manifest is not None else None


def _candidates(root: Path) -> Iterator[Path]:
    """Archives under `root`: files and directory archives, not manifests or hidden work files.
    On the way, a manifest's temp or lock file that a killed writer left is removed (nothing
    else would ever remove it: the folder is the user's, not ours to leave litter in)."""
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        clear_litter_in(here, (name for name in files if name.startswith(".")))
        keep = []
        for name in dirs:
            if name.startswith("."):
                continue
            if (here / name / "toc.dat").exists() or name.endswith(PARTIAL_SUFFIX):
                yield here / name  # a directory archive: one backup, not walked into
                continue
            if manifest_path(here / name).exists():
                yield here / name  # a cluster set: one backup; its members are in its manifest
                continue
            if (here / name / CSV_MANIFEST_NAME).is_file():
                continue  # a CSV copy (csv export): no archive; listed by csv_copies.py, not here
            keep.append(name)
        dirs[:] = keep
        for name in files:
            if name.startswith(".") or name.endswith(".lock") or name.endswith(".tmp"):
                continue
            if name.endswith(MANIFEST_SUFFIX):
                archive = here / name[: -len(MANIFEST_SUFFIX)]
                if not archive.exists():
                    yield archive  # a manifest whose archive is gone: missing
                continue
            yield here / name


def scan(root: Path | None = None, *, read: Callable[..., CatalogEntry | None] = entry_for) -> list[CatalogEntry]:
    """Every backup: under the backup dir and in the index, newest first, each path once.

    `read(path, indexed=...)` makes each entry (entry_for; the TUI passes one that keeps a summary)."""
    root = (root or paths.backups_dir()).absolute()
    found: dict[Path, CatalogEntry] = {}
    if root.exists():
        for path in _candidates(root):
            entry = read(path)
            if entry is not None:
                found[entry.path] = entry
    try:
        indexed, ids = read_index()  # read once a scan, however many of its paths are gone
    except IndexDamaged as exc:  # said as an entry of its own: not silently left out
        indexed, ids = [], {}
        found[index_path()] = CatalogEntry("index", index_path(), "incomplete", problem=str(exc.strerror))
    # Backups written with --output or adopted live in folders _candidates did not go through.
    for folder in {path.parent.absolute() for path in indexed if not path.absolute().is_relative_to(root)}:
        with contextlib.suppress(OSError):  # a folder gone or unreadable: its backups list as missing
            clear_litter_in(folder, (name for name in os.listdir(folder) if name.startswith(".")))
    for path in indexed:
        if path.absolute() not in found:
            entry = read(path, indexed=True)
            if entry is not None:
                found[entry.path] = entry
    _say_where_moved(found, ids)
    return sorted(found.values(), key=lambda e: e.created_at, reverse=True)


def _say_where_moved(found: dict[Path, CatalogEntry], ids: dict[str, str]) -> None:
    """A missing entry whose backup (its manifest's id, or the one the index kept for its path) is
    listed at another path now (moved, then adopted there) says so, and how to forget the old path:
    never forgotten by itself (a drive only unmounted would lose its backups from the catalog)."""
    live = {entry.id: entry for entry in found.values() if entry.status != "missing"}
    for path, entry in list(found.items()):
        if entry.status != "missing" or entry.problem:
            continue
        moved_to = live.get(entry.id) or live.get(ids.get(str(entry.path), ""))
        if moved_to is not None and moved_to.path != entry.path:  # a copy: `read` may keep the entry it gave
            found[path] = replace(entry, problem=f"the same backup is listed at {moved_to.path} (moved, or a "
                                                 f"copy); if this path is gone for good, `pgbackup-tui backups "
                                                 f"delete {entry.path}` forgets it")


def find(backup_id: str, entries: list[CatalogEntry] | None = None, *, live_first: bool = True) -> CatalogEntry:
    """The backup with this id or unique id prefix, or at this path (as `list` shows it: two
    copies of one backup under the backup dir, copied by hand, share an id); UsageError naming it
    otherwise. An id shared by one backup that is there and old paths of it, missing (moved and
    adopted where it is now), names the one that is there, unless not `live_first` (delete: which
    of them is meant is for a path to say)."""
    if not backup_id.strip():  # `backups delete "$ID"` with ID unset: every id starts with ""
        raise UsageError("backup id is empty: give an id from `pgbackup-tui backups list`, or the backup's path")
    entries = scan() if entries is None else entries
    given = Path(backup_id).expanduser()
    at = given.resolve() if ("/" in backup_id or os.path.lexists(given)) else None
    by_path = [e for e in entries if at is not None and (e.path == at or e.path.resolve() == at)]
    if by_path:
        return by_path[0]
    matches = [e for e in entries if e.id == backup_id] or [e for e in entries if e.id.startswith(backup_id)]
    if backup_id and len(matches) == 1:
        return matches[0]
    live = [e for e in matches if e.status != "missing"]
    if live_first and len(matches) > 1 and len({e.id for e in matches}) == 1 and len(live) == 1:
        return live[0]  # moved, and adopted where it is now: the old path, missing, says where (_say_where_moved)
    if len(matches) > 1 and len({e.id for e in matches}) == 1:  # copies made by hand: only a path tells them apart
        raise UsageError(f"backup {backup_id}: {len(matches)} copies share this id: "
                         f"{', '.join(str(e.path) for e in matches[:5])}; give the path of the one you mean")
    if len(matches) > 1:
        # By id: copies and old paths of one backup share its id, and were counted and named once each
        # ("fits 6 backups (5f14, 515f, 5c3c, 5c8c, 515f)").
        ids = list(dict.fromkeys(e.id for e in matches))
        more = ", …" if len(ids) > 5 else ""
        raise UsageError(f"backup {backup_id}: the prefix fits {len(ids)} backups ({', '.join(ids[:5])}{more}); "
                         "give more of the id, or the backup's path")
    raise UsageError(f"backup {backup_id}: no such backup (pgbackup-tui backups list shows them)")


def find_set_member(given: str, entries: list[CatalogEntry]) -> CatalogEntry | None:
    """A member archive of a listed cluster set, by its path (`SET/shop.dump`): the catalog lists the
    set alone, so `find` said "no such backup" of it, though the Backups tab shows, verifies and drills
    its row. None when `given` is no such path."""
    if "/" not in given:
        return None
    at = Path(given).expanduser().resolve()
    for entry in entries:
        manifest = entry.manifest
        if manifest is None or manifest.kind != "cluster-set" or entry.path.resolve() != at.parent:
            continue
        members = manifest.extra.get("members")
        files = {m.get("file") for m in members if isinstance(m, dict)} if isinstance(members, list) else set()
        if at.name in files:
            return entry_for(entry.path / at.name, indexed=True)
    return None


def record_check_said(entry: CatalogEntry, check: Any) -> str | None:
    """record_check, except that a manifest on storage this user cannot write (a read-only mount,
    another's folder) does not lose the check: the line saying its result is not recorded, or None."""
    try:
        record_check(entry, check)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        return (f"the {check.kind}'s result could not be recorded beside {entry.path} ({exc.strerror}); "
                "the backup's status is as it was")
    return None


def record_member_checks(member_checks: dict[Path, Any]) -> list[str]:
    """Record a cluster set's verify on each member's own manifest too (verify_backup's `member_checks`),
    as the Backups tab's `v` does: a set verified from the CLI or a schedule left its members listed
    `complete` (a damaged one too) under a set listed `verified` or `failed verification`. Returns the
    lines saying which results could not be recorded (read-only storage)."""
    unrecorded = []
    for path, check in member_checks.items():
        member = entry_for(path, indexed=True)
        said = record_check_said(member, check) if member is not None and member.manifest is not None else None
        if said is not None:
            unrecorded.append(said)
    return unrecorded


def record_check(entry: CatalogEntry, check: Any) -> None:
    """Append a verification to the backup's manifest (re-read under a lock: two checks at once both land)."""
    clear_manifest_litter(entry.path)  # a check killed while it wrote left its temp file
    with manifest_locked(entry.path):
        if entry.manifest is not None and not manifest_path(entry.path).exists():
            # `backups delete` removed it while it was being checked: not to be brought back.
            raise UsageError(f"backup {entry.id} was deleted while it was being checked; nothing was recorded")
        manifest = load_manifest(entry.path) or entry.manifest
        if manifest is None:
            raise UsageError(f"{entry.path}: has no manifest; adopt it first (pgbackup-tui backups adopt)")
        manifest.add_verification(check)
        save_manifest(entry.path, manifest)
        entry.manifest = manifest
        entry.status = status_of(manifest)
