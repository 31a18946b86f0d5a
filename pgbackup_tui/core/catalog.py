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
import hashlib
import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import paths
from .archive import path_size
from .catalog_index import IndexDamaged, forget_backup, index_path, read_index
from .archive_sniff import Sniffed, sniff
from .errors import ArchiveError, UsageError
from .manifest import (
    DELETING_KEY,
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

MANIFEST_VERSION = 1  # what write_manifest's callers wrote first; manifest.py reads every version
STATUSES = ("complete", "verified", "drilled", "foreign", "incomplete", "failed verification", "changed", "missing",
            "being written")

__all__ = ["MANIFEST_SUFFIX", "manifest_path"]


def write_manifest(archive: Path, data: dict[str, Any]) -> Path:
    """Write the manifest of `archive` from a dict (the dump job's): typed and versioned on the way."""
    return save_manifest(archive, Manifest.from_json(data))


def read_manifest(archive: Path) -> dict[str, Any] | None:
    """The manifest next to `archive` as a dict (schema 2 keys), or None if there is none or it is unreadable."""
    manifest = load_manifest(archive)
    return manifest.to_json() if manifest is not None else None


# -- entries -----------------------------------------------------------------------------------------
@dataclass
class CatalogEntry:
    """One backup as the catalog lists it."""

    id: str
    path: Path
    status: str
    manifest: Manifest | None = None
    sniffed: Sniffed | None = None
    problem: str | None = None  # why a file is incomplete or unreadable
    indexed: bool = False  # found through the index (written with --output, or adopted)

    def no_manifest_reason(self) -> str:
        """Why a check cannot run on this entry without a manifest, in one line that says what to do:
        it is gone (moved, deleted), its manifest does not read, or it is a foreign archive."""
        if not os.path.lexists(self.path):
            return (f"{self.path}: missing (moved or deleted); if it was moved, `pgbackup-tui backups adopt NEW_PATH` "
                    "lists it where it is")
        sidecar = manifest_path(self.path)
        if sidecar.exists():
            return (f"{self.path}: its manifest {sidecar} cannot be read (edited or damaged); restore it from a copy, "
                    "or move it aside and adopt the archive")
        return (f"{self.path}: has no manifest (a foreign archive); adopt it first: "
                f"pgbackup-tui backups adopt {self.path}")

    @property
    def server(self) -> str:
        return self.manifest.server if self.manifest else ""

    @property
    def database(self) -> str:
        return self.manifest.database if self.manifest else ""

    @property
    def format(self) -> str:
        if self.manifest:
            return self.manifest.format
        return self.sniffed.format if self.sniffed else "?"

    @property
    def created_at(self) -> str:
        """ISO time of the backup: the manifest's, else the file's modification time."""
        if self.manifest and self.manifest.created_at:
            return self.manifest.created_at
        with contextlib.suppress(OSError):
            return datetime.fromtimestamp(self.path.stat().st_mtime, UTC).isoformat(timespec="seconds")
        return ""

    @property
    def size_bytes(self) -> int | None:
        if not self.path.exists():
            return None
        if self.path.is_dir():
            return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
        return self.path.stat().st_size

    @property
    def holds(self) -> str:
        """What it holds, in a few words: "whole database", "2 tables", "schemas a, b", "foreign: ..."."""
        if self.manifest is None:
            return self.sniffed.describe if self.sniffed else (self.problem or "?")
        if self.manifest.kind in ("dumpall", "cluster-set"):  # pg_dumpall's: a cluster, or its globals
            what = self.manifest.extra.get("what")
            return what if isinstance(what, str) and what else "whole cluster"
        selection = self.manifest.selection or {}
        tables, schemas = selection.get("tables") or [], selection.get("schemas") or []
        excluded = selection.get("exclude_tables") or []
        but = ("" if not excluded else f" but {excluded[0]}" if len(excluded) == 1
               else f" but {len(excluded)} tables")  # an --exclude-table is said: it is not the whole of it
        options = self.manifest.options or {}
        only = " (schema only)" if options.get("schema_only") else " (data only)" if options.get("data_only") else ""
        if tables or schemas:  # both said: a backup of some tables and a schema holds the schema's too
            parts = ([", ".join(tables) if len(tables) <= 2 else f"{len(tables)} tables"] if tables else []) + (
                ["schema" + ("s " if len(schemas) > 1 else " ") + ", ".join(schemas)] if schemas else [])
            return " + ".join(parts) + (but if schemas else "") + only
        if options.get("schema_only"):
            return "schema only" + but
        return ("data only" if options.get("data_only") else "whole database") + but


def status_of(manifest: Manifest) -> str:
    """complete / verified / drilled / failed verification, from the manifest's checks."""
    checks = manifest.verifications
    if not checks:
        return "complete"
    if not checks[-1].ok:
        return "failed verification"
    last_failure = max((i for i, v in enumerate(checks) if not v.ok), default=-1)
    if any(v.ok and v.kind == "drill" for v in checks[last_failure + 1:]):
        return "drilled"
    return "verified"


def foreign_id(path: Path) -> str:
    """A stable id for an archive without a manifest: from its absolute path (adopt keeps it)."""
    return hashlib.sha256(str(path.absolute()).encode("utf-8", "surrogateescape")).hexdigest()[:8]


def entry_for(path: Path, *, indexed: bool = False) -> CatalogEntry | None:
    """The catalog's view of one path; None for a file that is no backup at all."""
    path = path.absolute()
    manifest = load_manifest(path)
    if manifest is not None and manifest.extra.get(DELETING_KEY):
        return _half_deleted(path, manifest, indexed=indexed)
    if manifest is not None:
        return entry_with_manifest(path, manifest, indexed=indexed)
    if not path.exists():
        return CatalogEntry(foreign_id(path), path, "missing", indexed=indexed) if indexed else None
    if path.name.endswith(PARTIAL_SUFFIX):
        writer = _live_job_writing(path)
        if writer is not None:
            return CatalogEntry(foreign_id(path), path, "being written", problem=f"job {writer} is writing it "
                                f"(pgbackup-tui jobs show {writer})", indexed=indexed)
        return CatalogEntry(foreign_id(path), path, "incomplete", problem="left by a dump that did not finish",
                            indexed=indexed)
    try:
        found = sniff(path)
    except (ArchiveError, OSError) as exc:
        if not indexed:
            return None  # under the backup dir, a file that is no dump is someone else's business
        return CatalogEntry(foreign_id(path), path, "incomplete", problem=str(exc), indexed=indexed)
    status = "incomplete" if found.complete is False else "foreign"
    damaged = f"its manifest {manifest_path(path).name} cannot be read" if manifest_path(path).exists() else None
    return CatalogEntry(foreign_id(path), path, status, sniffed=found, problem=damaged, indexed=indexed)


def entry_with_manifest(path: Path, manifest: Manifest, *, indexed: bool = False) -> CatalogEntry:
    """The entry of `path` (absolute), whose manifest is `manifest`: missing, changed, or the
    manifest's own status. Only stats the archive: the TUI asks it again at every listing with a
    manifest it read before, so that an archive cut or grown since says so as `backups list` does."""
    backup_id = manifest.id or foreign_id(path)
    if not path.exists():
        return CatalogEntry(backup_id, path, "missing", manifest, indexed=indexed)
    changed = _size_changed(path, manifest)
    if changed:
        return CatalogEntry(backup_id, path, "changed", manifest, problem=changed, indexed=indexed)
    return CatalogEntry(backup_id, path, status_of(manifest), manifest, indexed=indexed)


def _half_deleted(path: Path, manifest: Manifest, *, indexed: bool) -> CatalogEntry | None:
    """A backup whose delete was stopped half way (killed, a reboot): its manifest says `deleting`.
    Its archive gone, what is left of it (the manifest, its lock file, its index entry) is removed
    here and nothing is listed: kept, it read as *missing* for good, a backup that nobody can
    restore nor bring back by adopting it. Its archive still there (not yet removed, or a folder
    partly removed): listed as incomplete until the delete is finished (`backups delete`, or the
    next run's retention when a schedule's retention was deleting it)."""
    backup_id = manifest.id or foreign_id(path)
    if os.path.lexists(path):
        return CatalogEntry(backup_id, path, "incomplete", manifest, indexed=indexed,
                            problem=f"its delete (started {manifest.extra[DELETING_KEY]}) was stopped half way; "
                                    f"`pgbackup-tui backups delete {backup_id}` finishes it")
    with contextlib.suppress(OSError):  # read-only storage, say: it stays as it is, and is not listed
        with manifest_locked(path):  # a delete still going holds it: it finishes first (the lock file goes too)
            again = load_manifest(path)  # as it is now: one put back and adopted meanwhile is kept
            if again is not None and again.extra.get(DELETING_KEY) and not os.path.lexists(path):
                manifest_path(path).unlink(missing_ok=True)
        if indexed:
            forget_backup(path)
    return None


def _size_changed(path: Path, manifest: Manifest) -> str | None:
    """Why the archive is not what its manifest recorded, by its size alone (a stat: free to ask at
    every listing; `verify` reads every byte), or None. A backup cut short or emptied behind our
    back must not go on reading "verified", nor keep delete's protection from a good one."""
    if manifest.kind == "cluster-set":
        return _set_changed(path, manifest)
    if manifest.kind not in ("dump", "dumpall") or not manifest.bytes:
        return None
    try:
        size = path_size(path)
    except OSError:
        return None
    if size == manifest.bytes:
        return None
    return f"{size} bytes on disk, {manifest.bytes} when it was made: changed since (pgbackup-tui backups verify)"


def _set_changed(folder: Path, manifest: Manifest) -> str | None:
    """_size_changed for a cluster set: each member archive's size and globals.sql's against the set
    manifest (not the folder's: the members' own manifests grow with every check recorded)."""
    recorded: list[tuple[str, Any]] = [(str(m.get("file")), m.get("bytes")) for m in manifest.extra.get("members") or []
                                       if isinstance(m, dict)]
    recorded.append((str(manifest.extra.get("globals") or "globals.sql"), manifest.extra.get("globals_bytes")))
    for name, expected in recorded:
        if not isinstance(expected, int) or not expected:
            continue  # a set written before its globals' size was recorded
        if not (folder / name).exists():
            return f"{name} is missing from the set: changed since (pgbackup-tui backups verify)"
        try:
            size = path_size(folder / name)
        except OSError:
            return None  # unreadable now: verify says why
        if size != expected:
            return (f"{name}: {size} bytes on disk, {expected} when it was made: changed since "
                    "(pgbackup-tui backups verify)")
    return None


def _live_job_writing(path: Path) -> str | None:
    """The id of the running job whose output `path` is (a dump's .partial), or None."""
    from .job_owned import paths_of_live_jobs  # only for a .partial file: rare

    return paths_of_live_jobs().get(str(path))


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


def find(backup_id: str, entries: list[CatalogEntry] | None = None) -> CatalogEntry:
    """The backup with this id or unique id prefix, or at this path (as `list` shows it: two
    copies of one backup under the backup dir, copied by hand, share an id); UsageError naming it
    otherwise."""
    entries = scan() if entries is None else entries
    given = Path(backup_id).expanduser()
    at = given.resolve() if ("/" in backup_id or os.path.lexists(given)) else None
    by_path = [e for e in entries if at is not None and (e.path == at or e.path.resolve() == at)]
    if by_path:
        return by_path[0]
    matches = [e for e in entries if e.id == backup_id] or [e for e in entries if e.id.startswith(backup_id)]
    if backup_id and len(matches) == 1:
        return matches[0]
    if len(matches) > 1 and len({e.id for e in matches}) == 1:  # copies made by hand: only a path tells them apart
        raise UsageError(f"backup {backup_id}: {len(matches)} copies share this id: "
                         f"{', '.join(str(e.path) for e in matches[:5])}; give the path of the one you mean")
    if len(matches) > 1:
        raise UsageError(f"backup {backup_id}: the prefix fits {len(matches)} backups "
                         f"({', '.join(e.id for e in matches[:5])}); give more of the id, or the backup's path")
    raise UsageError(f"backup {backup_id}: no such backup (pgbackup-tui backups list shows them)")


# -- what the TUI used before the catalog (kept: the Backups tab reads it) ---------------------------
@dataclass(frozen=True)
class BackupEntry:
    path: Path
    manifest: dict[str, Any]

    @property
    def server(self) -> str:
        return str(self.manifest.get("server", ""))

    @property
    def database(self) -> str:
        return str(self.manifest.get("database", ""))

    @property
    def format(self) -> str:
        return str(self.manifest.get("format", ""))

    @property
    def created_at(self) -> str:
        return str(self.manifest.get("finished_at") or self.manifest.get("started_at") or "")

    @property
    def size_bytes(self) -> int:
        return int(self.manifest.get("bytes") or 0)


def list_backups(root: Path, *, server: str | None = None, database: str | None = None) -> list[BackupEntry]:
    """Backups with a manifest whose archive exists, under `root` (newest first), optionally for one server/database."""
    found = []
    for entry in scan(root):
        if entry.manifest is None or entry.status == "missing":
            continue
        if server is not None and entry.server != server:
            continue
        if database is not None and entry.database != database:
            continue
        found.append(BackupEntry(entry.path, entry.manifest.to_json()))
    return found


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
