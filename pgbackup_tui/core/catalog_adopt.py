"""Adopting an archive we did not write into the catalog.

adopt: a manifest is written for a foreign archive from what it says about itself (format,
versions, database, its TOC), with the checksum of its files and each table's rows counted in it;
its id stays the one it was listed under; a path outside the backup dir goes into the index. An
archive moved without its manifest, whose size and checksums are a missing backup's, takes a copy
of that backup's manifest instead (its id, server and checks). A backup the catalog lists already
is left as it is (adopting it again is harmless), once its bytes are found to be the ones its
manifest describes: another archive put in its place is refused.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
from datetime import UTC, datetime
from pathlib import Path

from .archive import path_size
from .checksums import checkable, checksum_archive, compare_checksums
from .archive_sniff import closing_line, gzip_tail_has, sniff
from .backup_record import toc_counts, toc_summary
from . import paths
from .catalog import CatalogEntry, entry_for, scan
from .catalog_index import IndexNotWritable, check_index_writable, indexed_paths, remember_backup
from .errors import ArchiveError, UsageError
from .manifest import (Manifest, Verification, load_manifest, manifest_locked, manifest_path, new_backup_id, now_iso,
                       save_manifest)
from .catalog_ops import set_holding
from .plans import PARTIAL_SUFFIX
from .verify import PG_DUMP_FORMATS, PLAIN_FORMATS, count_archive_rows, read_archive_toc, read_plain_script


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
        in_set = set_holding(path)
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
