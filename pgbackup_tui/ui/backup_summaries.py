"""The Backups tab keeps a summary of each backup, not its whole manifest.

A manifest lists every table of the backup (the TOC's tables with their rows, the dump's own
per-table totals) and, for a directory archive, a checksum per file: about 15 MB in memory for
a backup of a 10,000-table database. The tab lists every backup of a server, and lists them
again after each job; kept whole, ten such backups held 150 MB. A summary keeps what the rows,
the keys (verify, drill, delete, restore) and the details' first lines read; the details screen
reads the whole manifest again when it opens (screens/backup_details.py). A summary is never
saved: verify, drill and delete read the manifest again from disk.

Summaries are kept between listings, by the manifest's mtime and size: listing again after a
dump reads the new manifest, not every one again (each one of a 10,000-table backup takes a
quarter of a second to parse, holding the GIL). Their rows are kept too: listing 5,000 backups
again makes no new objects that live on, and so no cause for a full garbage collection (which
walks every object of the app, 0.1 s and more, holding the GIL). A kept summary's status is
still checked at every listing against the archive's size, as `backups list` checks it (a stat):
an archive cut short or grown behind our back lists as changed, though its manifest is the same.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from ..core import catalog
from ..core.catalog import CatalogEntry, entry_for, entry_with_manifest
from ..core.server_profile import ServerProfile
from ..core.csv_copies import find_csv_copies
from ..core.manifest import TocSummary, manifest_path
from .backups_view import BackupRow, entry_row, rows_in_scope

ManifestKey = tuple[int, int, bool, bool]  # manifest mtime (ns), its size, archive exists, indexed


def summary(entry: CatalogEntry) -> CatalogEntry:
    """The entry with its manifest's lists that grow with the tables left out (counts kept)."""
    manifest = entry.manifest
    if manifest is None:
        return entry
    slim = replace(manifest, tables=[], restore_list=None, checksums={}, added=[], left_out=[],
                   toc=TocSummary(dict(manifest.toc.counts)),
                   selection={key: value for key, value in manifest.selection.items() if key != "exclude_tables"})
    return replace(entry, manifest=slim)


class SummaryReader:
    """Lists the Backups tab's rows from summaries kept between listings (one reader per app).

    Runs in the tab's thread worker; a lock keeps two listings (a new one while the last one
    still reads) from sharing the cache at once."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[ManifestKey, CatalogEntry]] = {}
        # (path, member, of no profile, database named): a kept summary's row
        self._rows: dict[tuple[Path, bool, bool, bool], BackupRow] = {}
        self._seen: set[Path] = set()
        self._lock = threading.Lock()

    def rows(self, profile: ServerProfile, dbname: str | None, root: Path,
             profiles: list[ServerProfile] | None = None) -> list[BackupRow]:
        """The rows of `profile` (and `dbname`) under `root`, as rows_in_scope gives them (with
        the backups of none of `profiles`)."""
        with self._lock:
            self._seen = set()
            entries = catalog.scan(root, read=self.read)
            rows = rows_in_scope(entries, find_csv_copies(root), profile, dbname, root, read=self.read,
                                 make_row=self.row, profiles=profiles)
            for gone in self._cache.keys() - self._seen:  # deleted backups: their summaries go too
                del self._cache[gone]
            for key in [key for key in self._rows if key[0] not in self._cache]:
                del self._rows[key]
            return rows

    def row(self, entry: CatalogEntry, *, member: bool = False, of_no_profile: bool = False,
            database_named: bool = False) -> BackupRow:
        """entry_row(entry), the same row again while `entry` is the summary kept."""
        key = (entry.path, member, of_no_profile, database_named)
        kept = self._rows.get(key)
        if kept is not None and kept.entry is entry:
            return kept
        made = entry_row(entry, member=member, of_no_profile=of_no_profile, database_named=database_named)
        if self._cache.get(entry.path, (None, None))[1] is entry:
            self._rows[key] = made
        return made

    def read(self, path: Path, *, indexed: bool = False) -> CatalogEntry | None:
        """entry_for(path), as a summary; the one kept when its manifest has not changed."""
        path = path.absolute()
        try:
            stat = manifest_path(path).stat()
        except OSError:
            return entry_for(path, indexed=indexed)  # no manifest: the file's head is sniffed (cheap)
        key = (stat.st_mtime_ns, stat.st_size, path.exists(), indexed)
        self._seen.add(path)
        kept = self._cache.get(path)
        if kept is not None and kept[0] == key:
            return self._restat(path, key, kept[1])
        entry = entry_for(path, indexed=indexed)
        if entry is not None:
            entry = summary(entry)
            self._cache[path] = (key, entry)
        return entry

    def _restat(self, path: Path, key: ManifestKey, kept: CatalogEntry) -> CatalogEntry:
        """The summary kept for `path`, unless its archive changed size since: the manifest being
        the same says nothing of the archive, cut short or grown behind our back, which `backups
        list` calls changed (a stat, as it checks: catalog.entry_with_manifest). The same object
        while its status holds, so that its row is kept too."""
        if kept.manifest is None:
            return kept  # a manifest that does not read: sniffed when it changes, as before
        now = entry_with_manifest(path, kept.manifest, indexed=kept.indexed)
        if (now.status, now.problem) == (kept.status, kept.problem):
            return kept
        self._cache[path] = (key, now)
        return now
