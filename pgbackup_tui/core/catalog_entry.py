"""One backup as the catalog lists it (CatalogEntry), and its status.

The status comes from what is on disk, cheapest first: a manifest that says a delete was stopped
half way, an archive that is gone (missing) or whose size is not the manifest's (changed), a
`.partial` that a running job is writing (being written) or that a dead one left (incomplete),
a file without a manifest that reads as a dump (foreign); else the manifest's verifications
(complete, verified, drilled, failed verification). catalog.py finds the paths and lists them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .archive import path_size
from .archive_sniff import Sniffed, sniff
from .catalog_index import forget_backup
from .errors import ArchiveError
from .identifiers import quote_ident
from .manifest import DELETING_KEY, Manifest, load_manifest, manifest_locked, manifest_path
from .plans import PARTIAL_SUFFIX

WHOLE_CLUSTER = "whole cluster"  # what a pg_dumpall file of every database holds
# Its databases, where its manifest names none: one adopted before they were recorded.
UNRECORDED_DATABASES = "every database (not recorded)"


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
        if self.path.name.endswith(PARTIAL_SUFFIX):  # never "adopt it": it is no backup (yet)
            if self.status == "being written":
                return f"{self.path}: being written ({self.problem}); check it once its job has finished"
            return (f"{self.path}: incomplete (left by a dump that did not finish), not a backup; "
                    f"`pgbackup-tui backups delete {self.id}` removes it")
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
    def databases(self) -> list[str]:
        """The databases it holds, as its manifest records them: a dump's one; a cluster set's
        members; a pg_dumpall file's (none for its globals alone, nor for a file adopted before
        adopt recorded them). A file without a manifest: none known (it is not read for them)."""
        manifest = self.manifest
        if manifest is None:
            return []
        if manifest.kind == "dump":
            return [manifest.database] if manifest.database else []
        members = manifest.extra.get("members")
        if manifest.kind == "cluster-set" and isinstance(members, list):  # what `restore --only-db` can take
            return [str(m["database"]) for m in members if isinstance(m, dict) and m.get("database")]
        recorded = manifest.extra.get("databases")
        return [str(name) for name in recorded] if isinstance(recorded, list) else []

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
        return path_size(self.path) if self.path.exists() else None

    @property
    def holds(self) -> str:
        """What it holds, in a few words: "whole database", "2 tables", "schemas a, b", "foreign: ..."."""
        if self.manifest is None:
            return self.sniffed.describe if self.sniffed else (self.problem or "?")
        if self.manifest.kind in ("dumpall", "cluster-set"):  # pg_dumpall's: a cluster, or its globals
            what = self.manifest.extra.get("what")
            return what if isinstance(what, str) and what else WHOLE_CLUSTER
        selection = self.manifest.selection or {}
        # The tables are recorded as SQL writes them (public."Order Items"), the schemas by their bare
        # names: quoted here as SQL would, or `schema we.ird` reads as a table we of schema ird.
        tables, schemas = selection.get("tables") or [], [quote_ident(str(s)) for s in selection.get("schemas") or []]
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
    if not (path.is_file() or path.is_dir()):
        # A FIFO (`mkfifo` to stream a dump elsewhere), a socket or a device: sniffing opens it, and
        # opening a FIFO waits for a writer, so `backups list` (and a schedule's retention) hung for good.
        return CatalogEntry(foreign_id(path), path, "incomplete", problem="not a regular file or a directory",
                            indexed=True) if indexed else None
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
