"""TimescaleDB: what a dump records and the procedure a restore follows (Timescale's documented one).

Dump: the extension's version and its hypertables (time column, chunk interval), read from the
2.x views `timescaledb_information.hypertables` / `.dimensions`, go into the manifest. A selection
cannot recreate a hypertable (`pg_dump -t` takes its root table, not its chunks nor the
extension's catalog rows): the dump says so and points to `csv export` / `csv import`.

Restore, when the entries to restore hold the `timescaledb` EXTENSION entry: before anything is
created, the target server must offer the recorded version (pg_available_extension_versions).
Then, in the new (or empty) database: `CREATE EXTENSION timescaledb VERSION '…'`,
`SELECT timescaledb_pre_restore()`, pg_restore without --jobs and without the archive's own
CREATE EXTENSION, `SELECT timescaledb_post_restore()` (also after a failure half way), and a new
session must see `timescaledb.restoring` off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from .catalog import read_manifest
from .connect import Target, connect
from .errors import JobFailed, PgBackupError, TargetError
from .identifiers import QualifiedName
from .inspect import database_exists
from .job_store import TIMESCALE_RESTORING
from .jobs import Job
from .plans import RestorePlan
from .toc import Toc, TocEntry

EXTENSION = "timescaledb"
# Why --jobs becomes 1: pg_restore -j loads the extension's catalog tables in parallel, out of the
# order their foreign keys need, and Timescale documents that the catalog is then broken.
JOBS_NOTE = ("TimescaleDB is restored with one pg_restore job: Timescale documents that a parallel pg_restore "
             "(--jobs) breaks its catalog (its tables' foreign keys are loaded out of order)")
CSV_HINT = "copy hypertables table by table with `pgbackup-tui csv export` / `csv import` instead"

_HYPERTABLES = """
SELECT h.hypertable_schema::text, h.hypertable_name::text, d.column_name::text, d.column_type::text,
       coalesce(d.time_interval::text, d.integer_interval::text),
       format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass::oid::int8
FROM timescaledb_information.hypertables h
LEFT JOIN timescaledb_information.dimensions d
  ON d.hypertable_schema = h.hypertable_schema AND d.hypertable_name = h.hypertable_name AND d.dimension_number = 1
ORDER BY 1, 2
"""

Log = Callable[..., None]


def read_timescale(conn: psycopg.Connection) -> tuple[dict[str, Any] | None, dict[int, str]]:
    """For the manifest: {"version", "hypertables": [{schema, table, time_column, time_type,
    chunk_interval}]} when the connected database has the extension (else None), and the
    hypertables' relation OIDs -> schema.table (to tell whether a selection holds one)."""
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = %s", (EXTENSION,)).fetchone()
    if row is None:
        return None, {}
    hypertables, oids = [], {}
    try:
        rows = conn.execute(_HYPERTABLES).fetchall()
    except psycopg.Error as exc:  # a 1.x TimescaleDB has other views: the version is still worth keeping
        return {"version": row[0], "hypertables": [], "unreadable": _first_line(exc)}, {}
    for schema, table, column, column_type, interval, oid in rows:
        hypertables.append({"schema": schema, "table": table, "time_column": column, "time_type": column_type,
                            "chunk_interval": interval})
        oids[oid] = str(QualifiedName(schema, table))
    return {"version": row[0], "hypertables": hypertables}, oids


def selection_warning(info: dict[str, Any] | None, hypertable_oids: dict[int, str],
                      selected: frozenset[int] | set[int]) -> str | None:
    """One line for a --table/--schema dump of a database that has hypertables (None otherwise)."""
    if not info or not info["hypertables"]:
        return None
    chosen = sorted(name for oid, name in hypertable_oids.items() if oid in selected)
    what = (f"it includes the hypertable(s) {', '.join(chosen)}, which would restore as plain tables without their "
            "chunks" if chosen else "hypertables are left out")
    return (f"this database uses TimescaleDB ({len(info['hypertables'])} hypertable(s)): a selection cannot "
            f"recreate a hypertable (pg_dump -t takes the root table only) and {what}; {CSV_HINT}")


def recorded_hypertables(manifest: dict[str, Any] | None) -> set[tuple[str, str]]:
    """(schema, table) of the hypertables a manifest records."""
    info = (manifest or {}).get(EXTENSION) or {}
    return {(h["schema"], h["table"]) for h in info.get("hypertables") or []}


def extension_entry(toc: Toc | None) -> TocEntry | None:
    """The archive's `EXTENSION - timescaledb` entry, if it has one."""
    if toc is None:
        return None
    for entry in toc.entries:
        # "EXTENSION - timescaledb": no namespace, the extension's name, no owner
        if entry.desc == "EXTENSION" and entry.rest.split()[1:2] == [EXTENSION]:
            return entry
    return None


def recorded_version(manifest: dict[str, Any] | None) -> str | None:
    """The extension's version at dump time: the manifest's timescaledb section, or its extension list."""
    manifest = manifest or {}
    info = manifest.get(EXTENSION) or {}
    if info.get("version"):
        return str(info["version"])
    return next((str(e["version"]) for e in manifest.get("extensions") or [] if e.get("name") == EXTENSION), None)


POST_RESTORE_RAN = "timescaledb_post_restore() ran afterwards: timescaledb.restoring is off"


@dataclass
class TimescaleRestore:
    """The procedure for one restore: the version to create and the archive entry left to us."""

    version: str
    entry_id: int  # the archive's CREATE EXTENSION, which we run ourselves (at `version`)
    recorded: bool  # False: the archive has no manifest saying which version it was dumped with
    after_cancel: str | None = None  # what became of post_restore after a cancel half way (around)

    def describe(self) -> list[str]:
        """The steps, for --dry-run."""
        return [f"CREATE EXTENSION timescaledb VERSION '{self.version}', then SELECT timescaledb_pre_restore()",
                "restore with one pg_restore job (TimescaleDB's catalog needs it)",
                "then SELECT timescaledb_post_restore() (also if the restore fails) and check timescaledb.restoring "
                "is off"]

    def prepare(self, target: Target, dbname: str, log: Log) -> None:
        """In the new database: the extension at the dump's version, then pre_restore."""
        with connect(target, dbname) as conn:
            row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = %s", (EXTENSION,)).fetchone()
            if row is not None and row[0] != self.version:  # an existing database: nothing done in it yet
                raise TargetError(f"'{dbname}' has TimescaleDB {row[0]} but the archive was dumped with "
                                  f"{self.version}: TimescaleDB restores only into the version it was dumped with; "
                                  f"restore with --clean or --create (which create {self.version}); nothing was "
                                  "restored")
            if row is not None:  # Timescale's own procedure creates it first (and a template1 may have it)
                log(f"timescaledb {self.version} is in '{dbname}' already")
            else:
                try:
                    conn.execute(f"CREATE EXTENSION {EXTENSION} VERSION {_literal(self.version)}")
                except psycopg.Error as exc:
                    raise JobFailed(f"CREATE EXTENSION timescaledb VERSION '{self.version}' failed in '{dbname}': "
                                    f"{_first_line(exc)}") from None
                log(f"created extension timescaledb {self.version} in '{dbname}'")
            try:
                conn.execute("SELECT timescaledb_pre_restore()")
            except psycopg.Error as exc:
                raise JobFailed(f"SELECT timescaledb_pre_restore() failed in '{dbname}': {_first_line(exc)}") from None
        log("SELECT timescaledb_pre_restore(): timescaledb.restoring is on for the restore's sessions")

    async def around(self, job: Job, target: Target, dbname: str, restore: Callable[[], Awaitable[None]]) -> None:
        """pre_restore, `restore` (with one job), post_restore. After a failure or a cancel half way,
        post_restore runs too, and the error says what became of it. The database is on record as
        in restoring mode until post_restore has run (job_store.TIMESCALE_RESTORING): a runner
        killed half way leaves it to its recovery, and one whose post_restore failed to a later start."""
        job.own(TIMESCALE_RESTORING, dbname)
        try:
            await job.in_thread(self.prepare, target, dbname, job.log)
        except TargetError:  # refused before pre_restore: the database is as it was
            job.release(TIMESCALE_RESTORING, dbname)
            raise
        try:
            await restore()
        except BaseException as exc:
            note = await asyncio.to_thread(self.finish_after_failure, target, dbname, job.log)
            if note == POST_RESTORE_RAN:
                job.release(TIMESCALE_RESTORING, dbname)
            if isinstance(exc, PgBackupError):
                exc.args = (f"{exc}; {note}",)
            else:  # a cancel: said by the job's end (restore.py's cleanup); it did not say restoring mode stays on
                self.after_cancel = note
            raise
        await job.in_thread(post_restore, target, dbname, job.log)
        job.release(TIMESCALE_RESTORING, dbname)

    def finish_after_failure(self, target: Target, dbname: str, log: Log) -> str:
        """post_restore after the restore failed half way: what became of it, in a few words."""
        try:
            post_restore(target, dbname, log)
        except (JobFailed, psycopg.Error, TargetError) as exc:
            if isinstance(exc, PostRestoreNotRun):
                return self._not_run(dbname, exc, log)
            log(str(exc), level="error")
            return f"then {exc}"
        except Exception as exc:  # e.g. the server is gone: say it, keep the restore's own error first
            return self._not_run(dbname, exc, log)
        return POST_RESTORE_RAN

    @staticmethod
    def _not_run(dbname: str, exc: Exception, log: Log) -> str:
        cause = exc.cause if isinstance(exc, PostRestoreNotRun) else _first_line(exc)
        log(f"timescaledb_post_restore() could not run: {cause}", level="error")
        # Still on record (TIMESCALE_RESTORING): a later start runs it (job_recovery). Said, or the
        # DBA was left to guess whether the database stays in restoring mode.
        return f"then timescaledb_post_restore() could not run ({cause}): {_stays_on(dbname)}"


def _stays_on(dbname: str) -> str:
    return (f"timescaledb.restoring stays on in '{dbname}' until the next pgbackup-tui command runs it, once the "
            "server answers (or run SELECT timescaledb_post_restore() there by hand)")


class PostRestoreNotRun(JobFailed):
    """post_restore's session was lost before it ended: the database may still be in restoring mode."""

    def __init__(self, dbname: str, cause: str) -> None:
        super().__init__(f"timescaledb_post_restore() could not run ({cause}): {_stays_on(dbname)}")
        self.cause = cause


def post_restore(target: Target, dbname: str, log: Log) -> None:
    """post_restore, then a new session must see timescaledb.restoring off; JobFailed if not."""
    try:
        with connect(target, dbname) as conn:
            conn.execute("SELECT timescaledb_post_restore()")
    except psycopg.OperationalError as exc:
        # The session lost (a server shutting down ends it, as it refuses a new one): it could not run,
        # as when the connection was refused (finish_after_failure); still on record for a later start.
        raise PostRestoreNotRun(dbname, _first_line(exc)) from None
    except psycopg.Error as exc:
        raise JobFailed(f"SELECT timescaledb_post_restore() failed in '{dbname}': {_first_line(exc)}; run it "
                        "by hand before using the database") from None
    log("SELECT timescaledb_post_restore() done")
    # A new session: it sees the database's settings as any later session will.
    with connect(target, dbname) as conn:
        row = conn.execute("SELECT current_setting('timescaledb.restoring', true)").fetchone()
    restoring = row[0] if row else None
    if restoring not in (None, "", "off"):
        raise JobFailed(f"timescaledb.restoring is still '{restoring}' in '{dbname}' after "
                        "timescaledb_post_restore(); run SELECT timescaledb_post_restore() there by hand")
    log("timescaledb.restoring is off")


def end_restoring(target: Target, maintenance_db: str, dbname: str) -> None:
    """After a dead runner: post_restore in `dbname` if it is in restoring mode (the runner may have
    died before pre_restore, or after post_restore); nothing if the database is gone. Raises if it cannot."""
    with connect(target, maintenance_db) as conn:
        if not database_exists(conn, dbname):
            return  # dropped since: nothing left in restoring mode
    with connect(target, dbname) as conn:
        row = conn.execute("SELECT current_setting('timescaledb.restoring', true)").fetchone()
    if row is None or row[0] in (None, "", "off"):
        return
    post_restore(target, dbname, lambda *_, **__: None)


def plan_timescale_restore(conn: psycopg.Connection, entry: TocEntry, manifest: dict[str, Any] | None,
                           server_label: str, log: Log) -> TimescaleRestore:
    """Check, on a connection to the target server, that it can take the archive's TimescaleDB:
    TargetError (nothing created yet) if it has none, or not the version the archive was dumped with."""
    available = [row[0] for row in conn.execute(
        "SELECT version FROM pg_available_extension_versions WHERE name = %s ORDER BY version", (EXTENSION,))]
    version = recorded_version(manifest)
    if not available:
        need = f" {version}" if version else ""
        raise TargetError(f"the archive holds TimescaleDB{need} but server '{server_label}' has no timescaledb "
                          f"extension to install; install TimescaleDB{need} there first; nothing was restored")
    if version is None:
        row = conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = %s",
                           (EXTENSION,)).fetchone()
        default = row[0] if row else available[-1]
        log(f"the archive does not record its TimescaleDB version (no manifest): creating the server's default "
            f"{default}; timescaledb_post_restore() fails if the dump was made with another", level="warning")
        return TimescaleRestore(default, entry.dump_id, recorded=False)
    if version not in available:
        raise TargetError(
            f"the archive was dumped with TimescaleDB {version} but server '{server_label}' offers only "
            f"{', '.join(available)}: TimescaleDB restores only into the version it was dumped with; install "
            f"{version} there (then ALTER EXTENSION timescaledb UPDATE after the restore); nothing was restored")
    return TimescaleRestore(version, entry.dump_id, recorded=True)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or ["?"])[0]


def plan_for_restore(plan: RestorePlan, toc: Toc | None, included: set[int] | None, mode: str,
                     maintenance_db: str, log: Log) -> tuple[TimescaleRestore | None, set[int] | None, list[str]]:
    """For RestoreJob, before anything is created: (the procedure, or None when the restore does not
    create the extension; the entries to restore, without the archive's CREATE EXTENSION then;
    warnings for the result). Raises TargetError when the target cannot take the archive's TimescaleDB."""
    manifest = read_manifest(plan.archive)
    warnings = []
    hypertables = sorted(f"{s}.{t}" for s, t in recorded_hypertables(manifest) & {(n.schema, n.name)
                                                                                  for n in plan.tables})
    if hypertables:
        warnings.append(f"--table {', '.join(hypertables)}: a TimescaleDB hypertable comes back as a plain table "
                        f"without its chunks (pg_restore --table cannot recreate a hypertable); {CSV_HINT}")
    entry = extension_entry(toc)
    wanted = toc is not None and entry is not None and (included is None or entry.dump_id in included)
    procedure = None
    if wanted and mode != "tables":
        assert toc is not None and entry is not None
        with connect(plan.target, maintenance_db) as conn:
            procedure = plan_timescale_restore(conn, entry, manifest, plan.target.label, log)
        if (plan.jobs or 1) > 1:
            warnings.append(f"--jobs {plan.jobs} is not used: {JOBS_NOTE}")
        included = (included if included is not None else {e.dump_id for e in toc.entries}) - {entry.dump_id}
    for line in warnings:
        log(line, level="warning")
    return procedure, included, warnings
