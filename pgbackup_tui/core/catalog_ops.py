"""Changing the catalog: delete a backup (adopting an archive we did not write: catalog_adopt.py).

delete: the archive (file or folder), its manifest and its index entry; the newest verified (or
drilled) backup of a database is kept unless forced: it is the one a DBA would restore from.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

from .catalog import CatalogEntry, entry_for
from .catalog_index import IndexNotWritable, check_index_writable, forget_backup, index_path
from .errors import UsageError
from .open_files import command_of, readers_of
from .manifest import (DELETING_KEY, clear_manifest_litter, load_manifest, manifest_locked, manifest_path, now_iso,
                       save_manifest)


class NotDeletable(UsageError):
    """A backup whose files the filesystem will not let go (read-only, another user's): for the
    DBA to mend, where a refusal of ours (the newest verified, a restore reading it) is not."""



def set_holding(path: Path) -> CatalogEntry | None:
    """The cluster set whose folder holds `path` as one of its members, if any."""
    parent = entry_for(path.parent, indexed=True) if path.parent.is_dir() else None
    if parent is None or parent.manifest is None or parent.manifest.kind != "cluster-set":
        return None
    return parent


def newest_verified(entry: CatalogEntry, entries: list[CatalogEntry]) -> bool:
    """Whether `entry` is the newest verified or drilled backup of what it holds (a database's whole
    contents, some tables, its schema only; a cluster, its roles), on its server."""
    if entry.manifest is None or entry.status not in ("verified", "drilled"):
        return False
    key = entry.manifest.server_key

    def same_source(other: CatalogEntry) -> bool:
        theirs = other.manifest
        if theirs is None or theirs.database != entry.manifest.database:  # type: ignore[union-attr]
            return False
        # What it holds too: a newer verified backup of one table (or of the schema only, or of a
        # cluster's roles) does not stand in for the only verified whole one.
        if other.holds != entry.holds:
            return False
        if key.system_identifier and theirs.server_key.system_identifier:
            return key.system_identifier == theirs.server_key.system_identifier
        return theirs.server == entry.server or (key.host_port() is not None
                                                  and theirs.server_key.host_port() == key.host_port())

    trusted = [e for e in entries if same_source(e) and e.manifest is not None
               and e.status in ("verified", "drilled")]  # not one changed since (catalog_entry._size_changed)
    newest = max(trusted, key=lambda e: e.created_at, default=None)
    return newest is not None and newest.path == entry.path


def _live_reader(backup: Path) -> str | None:
    """The id of a running job that reads `backup` (or a file inside it: a set's member), if any."""
    from .job_owned import archives_of_live_jobs

    real = Path(os.path.realpath(backup))
    for path, job_id in archives_of_live_jobs().items():
        read = Path(os.path.realpath(path))
        if read == real or real in read.parents:
            return job_id
    return None


def _mark_deleting(archive: Path) -> bool:
    """Say in the manifest that the backup is being deleted, before anything is removed: the archive
    goes first and its manifest after, and a delete killed between the two (or within a folder's
    removal) left a manifest that listed as *missing* for good. Marked, the catalog finishes it
    (catalog_entry._half_deleted). A manifest that does not read is left as it is; one that cannot be
    written (the disk is full: the very day backups are deleted to make room) does not stop the delete.
    True when this call placed the mark (not when an earlier delete, stopped half way, had: that one
    stays, whatever this one removes)."""
    manifest = load_manifest(archive)
    if manifest is None or manifest.extra.get(DELETING_KEY):  # an earlier delete's, stopped half way: kept
        return False
    manifest.extra[DELETING_KEY] = now_iso()
    try:
        save_manifest(archive, manifest)
    except OSError:
        return False
    return True


def _unmark_deleting(archive: Path) -> None:
    """Take _mark_deleting's mark back from a backup of which nothing was removed: left, it listed
    the whole backup as a delete "stopped half way" (a read-only directory archive, its folder
    writable: the first file refused)."""
    manifest = load_manifest(archive)
    if manifest is not None and manifest.extra.pop(DELETING_KEY, None) is not None:
        with contextlib.suppress(OSError):
            save_manifest(archive, manifest)


def _files_in(folder: Path) -> int:
    """The files under a directory archive (0 once it is gone)."""
    return sum(len(files) for _, _, files in os.walk(folder))


def delete(entry: CatalogEntry, entries: list[CatalogEntry], *, force: bool = False) -> list[str]:
    """Remove the backup (archive, manifest, index entry, and the temp and lock files of its
    manifest's killed writers); returns what was removed, one line each (the archive, the manifest)."""
    if entry.path == index_path():
        raise UsageError(f"{entry.path} is the catalog's own index ({entry.problem}); mend it or move it aside "
                         "by hand")
    if entry.status == "being written":
        raise UsageError(f"backup {entry.id}: {entry.path} is a running job's output ({entry.problem}); "
                         "cancel the job instead (pgbackup-tui jobs cancel)")
    in_set = set_holding(entry.path) if entry.manifest is not None else None
    if in_set is not None:  # the Backups tab's x on a member's row took it out, and the set then listed "changed"
        raise UsageError(f"{entry.path}: a member archive of cluster set {in_set.id} ({in_set.path}), deleted with "
                         f"it (a set is restored whole or a database at a time): pgbackup-tui backups delete "
                         f"{in_set.id}")
    reader = _live_reader(entry.path)
    if reader is not None:  # --force or not: a running restore would lose its files half way into its target
        raise UsageError(f"backup {entry.id}: {entry.path} is being read by job {reader} (a restore or a CSV import); "
                         f"let it finish, or cancel it first (pgbackup-tui jobs cancel {reader})")
    # A reader that is no job: a drill or a verify (they run in the process that asked), a DBA's own
    # pg_restore. A directory archive deleted under it failed it half way, its target half restored.
    outside = readers_of([entry.path]).get(entry.path)
    if outside is not None:
        raise UsageError(f"backup {entry.id}: {entry.path} is being read by process {outside} ({command_of(outside)}); "
                         "let it finish, or stop it first")
    if not force and newest_verified(entry, entries):
        of = f"database '{entry.database}' ({entry.holds})" if entry.database else f"the server's {entry.holds}"
        raise UsageError(f"backup {entry.id} is the newest verified backup of {of} ({entry.path}); add --force to "
                         "delete it anyway")
    if entry.indexed:
        # Its index entry goes last: a home that takes no changes (read-only) let the archive and its
        # manifest go, then failed, exit 1, naming the index's lock file, and left it listed as missing.
        try:
            check_index_writable()
        except IndexNotWritable as exc:
            raise NotDeletable(f"backup {entry.id}: {entry.path} not deleted: {exc.strerror}; make that folder "
                               "writable first (nothing was deleted)") from None
    removed: list[str] = []
    sidecar = manifest_path(entry.path)
    files_before: int | None = None  # a directory archive's, once its removal has begun
    try:
        # Under the lock a check takes to record its result (catalog.record_check): one that ends after
        # this finds the manifest gone and records nothing, instead of writing it back beside no archive.
        with manifest_locked(entry.path) if sidecar.exists() else contextlib.nullcontext():
            marked = _mark_deleting(entry.path)
            try:
                if entry.path.is_dir() and not entry.path.is_symlink():
                    files_before = _files_in(entry.path)
                    shutil.rmtree(entry.path)
                    removed.append(str(entry.path))
                elif entry.path.exists() or entry.path.is_symlink():
                    entry.path.unlink()
                    removed.append(str(entry.path))
                if sidecar.exists():
                    sidecar.unlink()
                    removed.append(str(sidecar))
            except OSError:
                if marked and not removed and (files_before is None or _files_in(entry.path) == files_before):
                    _unmark_deleting(entry.path)
                raise
    except OSError as exc:
        # A read-only mount, another's folder: said as such (it was "error: …/.NAME.manifest.json.lock:
        # Read-only file system", the lock's name, exit 1 as if a job had failed).
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        done = f"; removed before that: {', '.join(removed)}" if removed else "; nothing was deleted"
        # What refused (rmtree names a folder's files by their own names, relative to it).
        refused = entry.path / exc.filename if isinstance(exc.filename, str) else entry.path
        left = _files_in(entry.path) if files_before is not None else None
        if files_before is not None and left is not None and left < files_before:
            # A directory archive that rmtree removed in part (a file in it that may not be removed: an
            # immutable one, another's): it said "nothing was deleted" of an archive no longer whole.
            raise NotDeletable(f"backup {entry.id}: {entry.path} could not be deleted whole: {refused} cannot be "
                               f"removed ({exc.strerror}); {files_before - left} of its {files_before} files were "
                               f"removed before that, and it lists as incomplete until `pgbackup-tui backups delete "
                               f"{entry.id}` finishes it") from None
        # The folder that refused: the backup's (its file, the manifest's lock), or a directory archive's own.
        place = f"its folder {refused.parent}" if refused.parent == entry.path.parent else str(refused.parent)
        raise NotDeletable(f"backup {entry.id}: {entry.path} cannot be deleted: {place} takes no changes "
                           f"({exc.strerror}){done}") from None
    clear_manifest_litter(entry.path)  # what killed writers left beside it would outlive the backup
    if entry.indexed:  # one under the backup dir was never in the index (which may be damaged: IndexDamaged)
        forget_backup(entry.path)
    return removed
