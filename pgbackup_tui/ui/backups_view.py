"""What the Backups tab lists for the focused server or database, as plain rows (no Textual).

Read in a thread worker: the catalog's scan (core/catalog.py) reads every manifest and sniffs
files without one. A server's backups are `catalog_servers.belongs_to` (its name, its host:port,
its cluster's system identifier: a renamed profile keeps its backups), plus files without a
manifest (foreign, incomplete) in its own folder under the backup dir, plus the backups of no
server in the config (adopted from elsewhere, or a removed profile's: catalog_servers.of_no_profile),
marked with the server they were written on, or "an unknown server". A cluster set is one row
and its members follow it, indented. CSV copies (`csv export` folders) are listed too, for
`csv import`; the files inside them are not backups and are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.catalog import CatalogEntry, entry_for
from ..core.catalog_servers import belongs_to, in_own_folder, of_no_profile
from ..core.server_profile import ServerProfile
from ..core.csv_copies import CsvCopy, is_csv_copy

# status -> (badge text, theme variable of its colour); the text is short so that it and the
# file name fit the tab's 40 columns at 80×24.
BADGES: dict[str, tuple[str, str]] = {
    "complete": ("complete", "text"),
    "verified": ("verified", "success"),
    "drilled": ("drilled", "success"),
    "foreign": ("foreign", "warning"),
    "incomplete": ("incomplete", "error"),
    "failed verification": ("FAILED", "error"),
    "changed": ("CHANGED", "error"),
    "being written": ("writing", "warning"),
    "missing": ("missing", "error"),
    "csv": ("csv copy", "accent"),
}


@dataclass(frozen=True)
class BackupRow:
    """One line of the Backups tab: a catalog entry (a backup, a set, a set's member) or a CSV copy."""

    key: str
    name: str
    status: str
    created_at: str
    size_bytes: int | None
    holds: str
    entry: CatalogEntry | None = None
    csv: CsvCopy | None = None
    member: bool = False  # a database's archive inside a cluster set (shown under it)
    # A backup of no server in the config: the server it was written on ("" when unknown), else None.
    other_server: str | None = None

    @property
    def path(self) -> Path:
        if self.entry is not None:
            return self.entry.path
        assert self.csv is not None
        return self.csv.path

    @property
    def is_set(self) -> bool:
        return self.entry is not None and self.entry.manifest is not None and self.entry.manifest.kind == "cluster-set"

    @property
    def is_cluster_file(self) -> bool:
        """A pg_dumpall file (whole cluster or globals): restored by psql onto a server, not into a database."""
        if self.entry is None:
            return False
        manifest = self.entry.manifest
        if manifest is not None:
            return manifest.kind == "dumpall"
        return self.entry.format.startswith("dumpall")


def entry_row(entry: CatalogEntry, *, member: bool = False, of_no_profile: bool = False,
              database_named: bool = False) -> BackupRow:
    """The row of a backup; `of_no_profile`: written on no server in the config, said in what it holds;
    `database_named`: a dump's database said first ("shop: whole database"), in a server's list."""
    holds = entry.holds
    manifest = entry.manifest
    if database_named and manifest is not None and manifest.kind == "dump" and not member and entry.database:
        holds = f"{entry.database}: {holds}"
    if manifest is not None and manifest.kind == "cluster-set":
        members = manifest.extra.get("members")
        holds = f"cluster set of {len(members) if isinstance(members, list) else '?'} databases"
    elif manifest is not None and manifest.kind == "dumpall":
        what = manifest.extra.get("what")
        holds = f"pg_dumpall: {what}" if isinstance(what, str) else "pg_dumpall"
    elif member:
        holds = f"{entry.database} (in set {entry.path.parent.name})"
    other_server = entry.server if of_no_profile else None
    if other_server is not None:
        holds += f", from {other_server or 'an unknown server'}"
    return BackupRow(str(entry.path), entry.path.name, entry.status, entry.created_at, entry.size_bytes, holds,
                     entry=entry, member=member, other_server=other_server)


def csv_row(copy: CsvCopy) -> BackupRow:
    tables = copy.tables
    holds = ", ".join(tables) if len(tables) <= 2 else f"{len(tables)} tables"
    return BackupRow(str(copy.path), copy.path.name, "csv", copy.created_at, copy.size_bytes, f"CSV: {holds}",
                     csv=copy)


def set_members(entry: CatalogEntry, read: Callable[..., CatalogEntry | None] = entry_for) -> list[CatalogEntry]:
    """The member archives of a cluster set, from its manifest (the catalog lists the set alone), by
    database; `read(path, indexed=True)` makes each entry (entry_for, or a summary's reader)."""
    manifest = entry.manifest
    listed = manifest.extra.get("members") if manifest is not None else None
    members = []
    for item in listed if isinstance(listed, list) else []:
        name = item.get("file") if isinstance(item, dict) else None
        found = read(entry.path / name, indexed=True) if isinstance(name, str) and "/" not in name else None
        if found is not None:
            members.append(found)
    return sorted(members, key=lambda e: e.database)


def rows_in_scope(entries: list[CatalogEntry], copies: list[CsvCopy], profile: ServerProfile, dbname: str | None,
                  backups_root: Path, read: Callable[..., CatalogEntry | None] = entry_for,
                  make_row: Callable[..., BackupRow] = entry_row,
                  profiles: list[ServerProfile] | None = None) -> list[BackupRow]:
    """The rows for server `profile` (and database `dbname`), newest first, members under their set.

    With a database, a set that holds it is not listed but its member archive of that database is;
    a pg_dumpall file that holds it is too, as `backups list --db` lists it (it restores whole).
    `profiles`, the config's: the backups of none of them are listed too, marked (of_no_profile);
    adopted from a server not in the config, they were in `backups list` and nowhere in the TUI."""
    mine = {e.path for e in belongs_to(entries, profile)}
    homeless = {e.path for e in of_no_profile(entries, profiles)} if profiles is not None else set()
    sets = {e.path for e in entries if e.manifest is not None and e.manifest.kind == "cluster-set"}
    rows: list[BackupRow] = []
    for entry in entries:
        if entry.manifest is None:
            if entry.path.parent in sets or is_csv_copy(entry.path.parent):
                continue  # a set's globals.sql, a CSV copy's schema.sql: parts of those, not backups of their own
            if in_own_folder(entry, profile, backups_root, dbname):
                rows.append(make_row(entry))
        elif entry.path in mine or entry.path in homeless:
            marked = {"of_no_profile": True} if entry.path in homeless else {}
            # A server's list holds dumps of all its databases: "whole database" said not which.
            named = {"database_named": True} if dbname is None and entry.path not in sets else {}
            if entry.path in sets:
                members = set_members(entry, read)
                if dbname is None:
                    rows.append(make_row(entry, **marked))
                    rows.extend(make_row(member, member=True, **marked) for member in members)
                else:
                    rows.extend(make_row(member, member=True, **marked) for member in members
                                if member.database == dbname)
            elif dbname is None or dbname in entry.databases:  # a pg_dumpall file that holds it too (list --db)
                rows.append(make_row(entry, **marked, **named))
    for copy in copies:
        if copy.server == profile.name and (dbname is None or copy.database == dbname):
            rows.append(csv_row(copy))
    # Newest first; a set's members keep their place right under it (they sort with their set).
    order = {row.key: (row.created_at if not (row.member and dbname is None) else "") for row in rows}
    groups: list[list[BackupRow]] = []
    for row in rows:
        if row.member and dbname is None and groups:
            groups[-1].append(row)
        else:
            groups.append([row])
    groups.sort(key=lambda group: order[group[0].key], reverse=True)
    return [row for group in groups for row in group]
