"""Changing the catalog: adopt an archive we did not write, delete a backup.

adopt: a manifest is written for a foreign archive from what it says about itself (format,
versions, database, its TOC), with the checksum of its files and each table's rows counted in it;
its id stays the one it was listed under; a path outside the backup dir goes into the index. An
archive moved without its manifest, whose size and checksums are a missing backup's, takes a copy
of that backup's manifest instead (its id, server and checks). A backup the catalog lists already
is left as it is (adopting it again is harmless), once its bytes are found to be the ones its
manifest describes: another archive put in its place is refused.
delete: the archive (file or folder), its manifest and its index entry; the newest verified (or
drilled) backup of a database is kept unless forced: it is the one a DBA would restore from.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from .archive import path_size
from .checksums import checkable, checksum_archive, compare_checksums
from .archive_sniff import closing_line, gzip_tail_has, sniff
from .backup_record import toc_counts, toc_summary
from . import paths
from .catalog import CatalogEntry, entry_for, scan
from .catalog_index import (IndexNotWritable, check_index_writable, forget_backup, index_path, indexed_paths,
                            remember_backup)
from .errors import ArchiveError, UsageError
from .open_files import command_of, readers_of
from .manifest import (DELETING_KEY, Manifest, Verification, clear_manifest_litter, load_manifest, manifest_locked,
                       manifest_path, new_backup_id, now_iso, save_manifest)
from .plans import PARTIAL_SUFFIX
from .verify import PG_DUMP_FORMATS, PLAIN_FORMATS, count_archive_rows, read_archive_toc, read_plain_script


class NotDeletable(UsageError):
    """A backup whose files the filesystem will not let go (read-only, another user's): for the
    DBA to mend, where a refusal of ours (the newest verified, a restore reading it) is not."""



def _set_holding(path: Path) -> CatalogEntry | None:
    """The cluster set whose folder holds `path` as one of its members, if any."""
    parent = entry_for(path.parent, indexed=True) if path.parent.is_dir() else None
    if parent is None or parent.manifest is None or parent.manifest.kind != "cluster-set":
        return None
    return parent


def adopt(path: Path, bin_dir: str | None = None) -> tuple[CatalogEntry, bool]:
    """Write the manifest of a foreign archive and add it to the catalog. Returns its entry, and
    whether the catalog listed it already (then nothing was changed; the entry is the one listed,
    which for the same archive by another path is at that path). UsageError for what cannot be
    adopted, among them an archive that is not the backup its manifest (listed) describes."""
    path = path.expanduser().absolute()
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    if not (path.is_file() or path.is_dir()):  # a pipe (<(…)) or a device: it cannot be read twice, or kept
        raise UsageError(f"{path}: not a regular file or a directory (an archive is one of those)")
    if path.name.endswith(PARTIAL_SUFFIX):  # adopted as it is being written, it went missing at the rename
        raise UsageError(f"{path}: a dump's work file (.partial), being written or left by a dump that did not "
                         "finish; not adopted")
    if load_manifest(path) is not None:
        in_set = _set_holding(path)
        if in_set is not None:  # a member is listed with its set, under the set's id
            raise UsageError(f"{path}: a member of cluster set {in_set.id} ({in_set.path}), listed with it; "
                             "restore it from there (pgbackup-tui restore SET --only-db NAME)")
        if path.is_relative_to(paths.backups_dir().absolute()) or path in indexed_paths():
            return _listed_already(path), True
        _index_writable_or_refuse(path)
        elsewhere = _take_in_with_manifest(path)
        if elsewhere is not None:
            return elsewhere, True
        listed = entry_for(path, indexed=True)
        assert listed is not None  # it has a manifest
        return listed, False
    if manifest_path(path).exists():
        raise UsageError(f"{path}: its manifest {manifest_path(path).name} cannot be read; it is not written over "
                         "(it holds the backup's id and checks): mend it, or move it aside to adopt the archive anew")
    _index_writable_or_refuse(path)  # before an archive of gigabytes is read through
    try:
        found = sniff(path)
    except ArchiveError as exc:
        raise UsageError(f"{exc}; only pg_dump / pg_dumpall output can be adopted") from None
    if found.complete is False:
        raise UsageError(f"{path}: truncated (no closing line); it would not restore, so it is not adopted")
    tail = closing_line(found.format)
    if found.format.endswith(".gz") and tail is not None and not gzip_tail_has(path, tail):
        # A sniff does not read a gzip to its end: a `pg_dumpall | gzip` cut before its closing line (the
        # stream whole) was adopted as a complete whole cluster, and one cut in the stream was a traceback.
        raise UsageError(f"{path}: truncated or damaged gzip (it does not decompress to its closing line); it "
                         "would not restore, so it is not adopted")
    listed_before = _missing_backup_of(path)
    if listed_before is not None:
        assert listed_before.manifest is not None
        # A copy: the old path stays listed as missing, saying where the backup is now.
        _record_adopted(path, listed_before.manifest)
        entry = entry_for(path, indexed=True)
        assert entry is not None  # it has a manifest now
        return entry, False
    before = entry_for(path, indexed=True)
    kind = "dumpall" if found.format.startswith("dumpall") else "dump"
    manifest = Manifest(id=before.id if before else "", kind=kind,
                        format=found.format, pg_dump_version=found.dump_version, server_version=found.server_version,
                        adopted=True)
    manifest.finished_at = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    counts: dict[str, int] = {}
    if found.format in PG_DUMP_FORMATS:
        listing = read_archive_toc(path, bin_dir)
        counts = toc_counts(listing.toc)
        manifest.database = listing.toc.header.get("dbname", "").strip()
        # Reads it through: a cut archive is refused here.
        rows = count_archive_rows(path, found.format, bin_dir, listing=listing)
    elif found.format in PLAIN_FORMATS:
        script = read_plain_script(path, found.format)  # the same, and its entries' comments give the kinds
        rows, counts = script.rows, dict(script.kinds)
    else:
        rows = count_archive_rows(path, found.format, bin_dir)
    # pg_dump records none of its options in the archive; its TOC (a script's entry comments) tells
    # these two apart. Both listed "whole database": a schema-only archive restored empty tables,
    # and it could stand in as the newest verified whole backup (delete's protection); a data-only
    # one was drilled. A plain script too (review).
    if counts.get("TABLE") and not counts.get("TABLE DATA"):
        manifest.options["schema_only"] = True
    elif counts.get("TABLE DATA") and not counts.get("TABLE"):
        manifest.options["data_only"] = True
    manifest.checksums = checksum_archive(path)
    manifest.bytes = path_size(path)
    manifest.toc = toc_summary(counts, rows, [])
    if kind == "dumpall" and path.is_file():
        databases = _databases_in(path, found.format)  # recorded as our own pg_dumpall files' are: `list --db`
        manifest.extra["what"] = "whole cluster" if databases else "roles and tablespaces"
        manifest.extra["databases"] = databases
    _record_adopted(path, manifest)
    entry = entry_for(path, indexed=True)
    assert entry is not None  # it has a manifest now
    return entry, False


def _index_writable_or_refuse(path: Path) -> None:
    """UsageError, before anything is written, when `path` (outside the backup dir) could not be
    put in the catalog's index: a read-only home said "error: …/catalog-index.json.lock: Read-only
    file system", a lock file's name for the cause, and left a manifest beside the archive."""
    if path.is_relative_to(paths.backups_dir().absolute()):
        return  # found by its folder: no index to write
    try:
        check_index_writable()
    except IndexNotWritable as exc:
        raise _not_adopted(path, exc) from None


def _record_adopted(path: Path, manifest: Manifest) -> None:
    """Write the manifest beside the archive, then put it in the index; an index that cannot be
    written after all (it turned read-only meanwhile) takes the manifest back: nothing adopted."""
    _save_adopted(path, manifest)
    try:
        remember_backup(path)
    except IndexNotWritable as exc:
        with contextlib.suppress(OSError):
            manifest_path(path).unlink()
        raise _not_adopted(path, exc) from None


def _not_adopted(path: Path, exc: IndexNotWritable) -> UsageError:
    return UsageError(f"{path}: not adopted: {exc.strerror}; make that folder writable, or set "
                      "PGBACKUP_TUI_HOME to one you may write to")


def _save_adopted(path: Path, manifest: Manifest) -> None:
    """Write an adopted archive's manifest beside it; UsageError when that folder takes no files (a
    read-only mount, another's folder): it said "error: …/.NAME.manifest.json.PID.tmp: Read-only file
    system", a temp file's name, exit 1 as if a job had failed."""
    try:
        save_manifest(path, manifest)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        raise UsageError(f"{path}: not adopted: its manifest {manifest_path(path).name} cannot be written beside it "
                         f"({exc.strerror}), and the catalog keeps a backup's id and checks there; adopt a copy "
                         "in a folder you may write to, or make this one writable") from None


def _listed_already(path: Path) -> CatalogEntry:
    """The catalog's entry of `path`, which it lists already with its manifest: adopting it again
    changes nothing, as long as the archive there is still the backup the manifest describes. One
    that is not (another dump written over it, its manifest left beside it: its size or its
    checksums are not the manifest's) is refused, and its manifest (its id, its checks) kept."""
    known = entry_for(path, indexed=True)
    assert known is not None and known.manifest is not None  # the caller saw its manifest
    why = known.problem if known.status in ("changed", "incomplete") else None
    if why is None and checkable(known.manifest.checksums):  # read once, as a first adopt does
        problems = _differs(path, known.manifest)
        why = "; ".join(problems) if problems else None
    if why is not None:
        raise UsageError(f"{path}: not adopted: listed as backup {known.id}, but the archive there now is not the "
                         f"one its manifest describes: {why}; to adopt it as a new backup, move "
                         f"{manifest_path(path).name} aside (it holds backup {known.id}'s id and checks)")
    return known


def _missing_backup_of(path: Path) -> CatalogEntry | None:
    """The backup listed as missing whose archive `path` is, moved without its manifest (`mv
    backup.dump /mnt/offsite/`): the same size (a stat), then the same checksums (one read). Adopted,
    it keeps that backup's id, server and checks, as one moved with its manifest does, instead of
    becoming a foreign archive of an unknown server beside its own backup listed as missing."""
    try:
        size = path_size(path)
    except OSError:
        return None
    for entry in scan():
        recorded = entry.manifest
        if (entry.status == "missing" and recorded is not None and recorded.kind in ("dump", "dumpall")
                and recorded.bytes == size and checkable(recorded.checksums)
                and not compare_checksums(path, recorded.checksums)):
            return entry
    return None


def _take_in_with_manifest(path: Path) -> CatalogEntry | None:
    """An archive that comes with its manifest: moved here, copied, or from another home. Its
    manifest (id, checks) stands, except that a copy of a backup still listed under the same id
    gets an id of its own (`copy_of` names the original): `find` could not tell the two apart.
    Its checks stay once its bytes match its checksums (read once); else a failed verification is added.
    The same archive by another path (a symlink, a bind mount) is no copy: its entry is returned
    (listed already, nothing changed); None once `path` is taken in."""
    manifest = load_manifest(path)
    assert manifest is not None  # the caller saw it
    others = [e for e in scan() if e.id == manifest.id and e.path != path and e.status != "missing"]
    for other in others:
        with contextlib.suppress(OSError):
            if os.path.samefile(other.path, path):
                return other
    # Its checks were of the bytes its checksums describe: these bytes must be those (a copy can be
    # damaged on its way; it listed "verified" on the original's word). Read once; a mismatch is
    # recorded as a failed verification, so it lists as what it is.
    problems = _differs(path, manifest) if checkable(manifest.checksums) else []
    if others or problems:
        try:
            with manifest_locked(path):  # the lock file is written only when the manifest is
                manifest = load_manifest(path)
                assert manifest is not None
                if others:
                    manifest.extra.setdefault("copy_of", manifest.id)
                    manifest.id = new_backup_id()
                if problems:
                    manifest.verifications.append(Verification(kind="verify", at=now_iso(), ok=False,
                                                               problems=[f"when adopted: {line}" for line in problems]))
                save_manifest(path, manifest)
        except OSError as exc:
            # A read-only mount, another's folder: it said "error: …/.NAME.manifest.json.lock: Read-only
            # file system", exit 1. Taken in without its new id (two backups under one id) or without its
            # failed check (damaged bytes listed "verified" on the original's word), it would lie.
            if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise
            why = (f"a copy of backup {others[0].id} ({others[0].path}), it needs an id of its own" if others
                   else f"its bytes are not its manifest's ({problems[0]}), which must be recorded")
            raise UsageError(f"{path}: not adopted: {why}, and its manifest {manifest_path(path).name} cannot be "
                             f"written beside it ({exc.strerror}); adopt a copy in a folder you may write to, or "
                             "make this one writable") from None
    remember_backup(path)
    return None


def _differs(path: Path, manifest: Manifest) -> list[str]:
    """What differs from the manifest's checksums. A cluster set's cover its globals.sql alone (each
    member archive has a manifest of its own): each recorded file on its own, not the folder."""
    if manifest.kind == "cluster-set":
        return [line for name, recorded in manifest.checksums.items()
                for line in compare_checksums(path / name, {"": recorded})]
    return compare_checksums(path, manifest.checksums)


def _databases_in(path: Path, fmt: str) -> list[str]:
    """The databases of a pg_dumpall file (it connects to each); none for its globals alone
    (--globals-only, --roles-only). A gzipped one (`pg_dumpall | gzip`) is read through gzip: its
    raw bytes never hold the line, and a whole cluster listed as its roles alone would not be kept
    as the newest verified backup of the cluster by `backups delete`."""
    from .cluster_file import connected_databases  # only here: it brings the dumpall job's module

    with (gzip.open(path, "rb") if fmt.endswith(".gz") else path.open("rb")) as script:
        return connected_databases(script.read)


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
    in_set = _set_holding(entry.path) if entry.manifest is not None else None
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
