"""Retention for scheduled backups: which of a schedule's backups to keep, and deleting the rest.

Only backups the schedule made of what it backs up now are considered: their manifest records the
schedule's name (`"schedule": NAME`, written after the run, see schedule_run.py), and their
server, database, kind, selection (tables, schemas, exclusions) and schema-only / data-only are
the schedule's (a schedule changed to another database or to some tables, or a name used again
for another server, leaves the backups it made before alone). And only where the run wrote them:
the manifest records that path too (`"schedule_path"`, relative to the backup dir, which may
move), so a copy kept elsewhere (copied with its manifest, or adopted: `copy_of`) is never the
schedule's to delete; those left alone are counted in a note. A backup is kept
when any rule keeps it:
  - `keep_last` N: the N newest that have not failed verification (a backup known to be damaged
    holds none of the N places: it would push out a good one);
  - `keep_days` D: made in the last D days (failed verification or not: it is the DBA's to look at);
  - `keep_verified` (default on): the newest verified (or drilled) one, so that the backup a DBA
    would restore from is never the one deleted (catalog_ops.delete refuses it too, across every
    backup of the database, not only the schedule's).
No rule at all keeps everything. Retention runs only after a run that succeeded: a failed run
deletes nothing. Missing and incomplete entries are neither counted nor touched, and neither is
one a process has open now (a drill, a verify, a DBA's own pg_restore: open_files.py) until a
later run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from . import catalog, paths
from .catalog import CatalogEntry
from .catalog_servers import belongs_to
from .server_profile import ServerProfile
from .catalog_ops import NotDeletable, delete
from .cluster_plans import set_what
from .errors import UsageError
from .identifiers import parse_qualified_name, parse_schema_name
from .manifest import DELETING_KEY, Manifest
from .open_files import command_of, readers_of
from .schedules import Schedule

SCHEDULE_KEY = "schedule"
SCHEDULE_PATH_KEY = "schedule_path"  # where the run wrote the backup (a copy elsewhere is not the schedule's)
TRUSTED = ("verified", "drilled")


@dataclass
class RetentionResult:
    kept: list[CatalogEntry] = field(default_factory=list)
    deleted: list[CatalogEntry] = field(default_factory=list)
    finished: list[CatalogEntry] = field(default_factory=list)  # of `deleted`: half-done deletes finished (a note each)
    notes: list[str] = field(default_factory=list)
    # Of `notes`: deletes the filesystem refused (a read-only or another user's folder), for the DBA
    # to mend. Said on stdout only, which cron drops, such a backup was kept night after night unheard of.
    problems: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return f"retention kept {len(self.kept)}, deleted {len(self.deleted)}"


def made_by(schedule: Schedule, entries: list[CatalogEntry],
            profile: ServerProfile | None = None) -> list[CatalogEntry]:
    """The schedule's backups of what it backs up now that are there (newest first). The server is
    matched as the catalog does (`profile`: by name, host:port or cluster, so a renamed profile
    keeps its backups), else by the name the backup was written under."""
    of_server = {id(e) for e in belongs_to(entries, profile)} if profile is not None else None
    mine = [e for e in entries if e.manifest is not None and e.manifest.extra.get(SCHEDULE_KEY) == schedule.name
            and e.status not in ("missing", "incomplete") and _of_what(schedule, e) and _where_written(e)
            and (id(e) in of_server if of_server is not None else e.manifest.server == schedule.server)]
    return sorted(mine, key=lambda e: e.created_at, reverse=True)


def _of_what(schedule: Schedule, entry: CatalogEntry) -> bool:
    """The backup is of the schedule's database, or of its kind of cluster backup."""
    manifest = entry.manifest
    if manifest is None:
        return False
    if schedule.what == "database":
        return (manifest.kind == "dump" and manifest.database == schedule.database
                and _same_content(schedule, manifest))
    if schedule.what == "set":  # the same databases too: a set of some of them is not the whole set
        written = manifest.extra.get("what") or "cluster set"
        return manifest.kind == "cluster-set" and written == set_what(schedule.databases)
    extra = manifest.extra
    scope = "roles" if extra.get("roles_only") else "globals" if extra.get("globals_only") else "cluster"
    return manifest.kind == "dumpall" and scope == schedule.what


def _same_content(schedule: Schedule, manifest: Manifest) -> bool:
    """The backup holds what the schedule backs up now: the same selection, the same rows or none.
    A schedule narrowed to some tables (or to the schema) deleted its whole-database backups."""
    selection, options = manifest.selection, manifest.options
    try:
        wanted = (sorted(str(parse_qualified_name(t)) for t in schedule.tables),
                  sorted(parse_schema_name(s) for s in schedule.schemas),
                  sorted(str(parse_qualified_name(t)) for t in schedule.exclude_tables))
    except UsageError:  # validated when saved: a name that no longer parses matches nothing
        return False
    found = tuple(sorted(str(item) for item in selection.get(key) or []) for key in ("tables", "schemas",
                                                                                     "exclude_tables"))
    return (wanted == found and bool(options.get("schema_only")) == schedule.schema_only
            and bool(options.get("data_only")) == schedule.data_only)


def written_path(archive: Path) -> str:
    """How the manifest records where a run wrote `archive`: within the backup dir, relative to it
    (the dir may move to a bigger disk, PGBACKUP_TUI_HOME with it); elsewhere, absolute."""
    real, root = Path(os.path.realpath(archive)), Path(os.path.realpath(paths.backups_dir()))
    return str(real.relative_to(root)) if real.is_relative_to(root) else str(real)


def _where_written(entry: CatalogEntry) -> bool:
    """The backup is where the schedule's run wrote it, and not an adopted copy (a backup tagged
    before the path was recorded: wherever it is, unless it is a copy)."""
    extra = entry.manifest.extra if entry.manifest is not None else {}
    if extra.get("copy_of"):
        return False
    written = extra.get(SCHEDULE_PATH_KEY)
    return written is None or str(written) == written_path(entry.path)


def _created(entry: CatalogEntry) -> datetime | None:
    try:
        moment = datetime.fromisoformat(entry.created_at)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def choose(schedule: Schedule, mine: list[CatalogEntry], now: datetime) -> tuple[list[CatalogEntry], list[str]]:
    """The entries of `mine` (newest first) that retention would delete, and why others are kept."""
    if schedule.keep_last is None and schedule.keep_days is None:
        return [], []
    keep: set[int] = set()
    notes = []
    if schedule.keep_last is not None:
        sound = [i for i, e in enumerate(mine) if e.status not in ("failed verification", "changed")]
        keep.update(sound[:schedule.keep_last])
    if schedule.keep_days is not None:
        since = now - timedelta(days=schedule.keep_days)
        for index, entry in enumerate(mine):
            created = _created(entry)
            if created is None or created >= since:  # an unreadable time is never a reason to delete
                keep.add(index)
    if schedule.keep_verified:
        trusted = next((i for i, e in enumerate(mine) if e.status in TRUSTED), None)
        if trusted is not None and trusted not in keep:
            keep.add(trusted)
            notes.append(f"kept {mine[trusted].id}: the newest verified backup of this schedule")
    return [e for i, e in enumerate(mine) if i not in keep], notes


def apply_retention(schedule: Schedule, now: datetime | None = None,
                    profile: ServerProfile | None = None, made: Path | None = None) -> RetentionResult:
    """Delete what `choose` picks; a backup delete() refuses (the database's newest verified) is kept.
    `made`, the backup the run has just made, is the newest whatever the times say: backups made
    while the clock ran fast (set right since) look newer, and keep_last kept them and deleted it."""
    now = now or datetime.now(UTC)
    entries = catalog.scan()
    mine = made_by(schedule, entries, profile)
    if made is not None:  # first; the others as they were (a stable sort)
        newest = os.path.realpath(made)
        mine.sort(key=lambda e: os.path.realpath(e.path) != newest)
    doomed, notes = choose(schedule, mine, now)
    others = [e for e in entries if e.manifest is not None and e.manifest.extra.get(SCHEDULE_KEY) == schedule.name
              and e not in mine and e.status not in ("missing", "incomplete")]
    if others:  # said, not silent: kept whatever the rules say, they are the DBA's to delete
        notes.append(f"{len(others)} other backup(s) carry this schedule's name but are not where its runs wrote them "
                     "or not of what it backs up now (copies, moved, or of an earlier selection): left alone")
    result = RetentionResult(notes=notes)
    # A delete of this schedule's that a killed run left half done (its manifest says so; the archive
    # still there, or a folder partly removed): chosen then, finished now.
    stopped = [e for e in entries if e.manifest is not None and e.manifest.extra.get(SCHEDULE_KEY) == schedule.name
               and e.manifest.extra.get(DELETING_KEY) and e not in doomed]
    for entry in stopped:
        try:
            delete(entry, entries, force=True)
        except (UsageError, OSError) as exc:
            result.notes.append(f"{entry.id}: its delete, stopped half way, could not be finished: {exc}")
            result.problems.append(result.notes[-1])
            continue
        result.notes.append(f"finished deleting {entry.id}: a run was stopped while it deleted it")
        result.deleted.append(entry)
        result.finished.append(entry)
    readers = readers_of([entry.path for entry in doomed])
    for entry in doomed:
        if entry.path in readers:  # a drill, a verify or a DBA's own pg_restore: the next run's to delete
            pid = readers[entry.path]
            result.notes.append(f"kept {entry.id}: process {pid} ({command_of(pid)}) is reading it; a later run "
                                "deletes it")
            continue
        try:
            delete(entry, entries, force=not schedule.keep_verified)
        except (NotDeletable, OSError) as exc:
            result.notes.append(f"kept {entry.id}: {exc}")
            result.problems.append(result.notes[-1])
            continue
        except UsageError as exc:  # ours to refuse: the database's newest verified, a restore reading it
            result.notes.append(f"kept {entry.id}: {exc}")
            continue
        result.deleted.append(entry)
    result.kept = [e for e in mine if e not in result.deleted]
    return result
