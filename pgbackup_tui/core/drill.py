"""`backups drill`: prove a backup restores, by restoring it.

The backup is restored with the restore job itself (RestoreJob, `--create`) into a scratch
database `pgbackup_drill_<host>_<pid>_<hex>` (drill_names.py: what a killed drill left behind is
dropped by the next) on the server given, every table's rows are counted there and
compared with the rows counted in the archive at dump time (manifest `toc.tables`; a manifest
without them gets them counted from the archive first), and the scratch database is dropped,
whatever happened (failure, Ctrl-C, SIGTERM, a hang-up). The result goes into the manifest's verifications.

Per-table checksums are not compared: taking them at dump time would read every table on the
server a second time (or hash COPY text whose form depends on the session's settings), which is
not affordable by default; the archive's own checksum (verify) and the row counts here cover a
damaged file and a restore that loses rows.
"""

from __future__ import annotations

import asyncio
import re
import signal
import threading
import time
from collections.abc import Callable

import psycopg
from psycopg import sql

from .archive import identify_archive
from .catalog import CatalogEntry
from .connect import Target, answered_note, answering, connect
from .errors import (
    ConfigError,
    ConnectError,
    PgBackupError,
    ServerLost,
    TargetError,
    ToolNotFoundError,
    UsageError,
)
from .identifiers import parse_qualified_name, quote_ident
from .jobs import JobEvent, JobResult, JobState, LogLine
from .manifest import Verification, now_iso
from .plans import RestorePlan
from .restore import RestoreJob
from .drill_names import drill_database_name, drop_abandoned_drills, drop_scratch_database
from .restore_output import ANY_ERROR, FAILED_STATEMENT
from .verify import compare_rows, count_archive_rows, tables_text

DRILLABLE = ("custom", "directory", "tar", "plain")
# Failures of a drill's restore that are about where it ran, not about the backup.
NOT_THE_ARCHIVE = (ConnectError, ServerLost, TargetError, ToolNotFoundError, UsageError, ConfigError)
CANCEL_POLL_S = 0.2  # how soon a drill notices its cancel event
STOPPING = (signal.SIGTERM, signal.SIGHUP)  # besides SIGINT: a drill stopped so drops its scratch database


NOT_DROPPED = "not_dropped"  # Verification.details key: why the scratch database is still there
# The server's message quotes the name as it is (a quote inside it not doubled): up to the last `" does`.
ROLE_MISSING = re.compile(r'role "(.+)" does not exist')
# A role there that the drill's role (CREATEDB, not a superuser) may not give objects to: `ALTER …
# OWNER TO` it fails (16+ says "SET ROLE", before 16 "member of role"); the object stays the drill role's.
ROLE_BARRED = re.compile(r'must be (?:able to SET ROLE|member of role) "(.+)"')
# An extension only a superuser may create (not trusted): the drill's role (CREATEDB, not a superuser)
# cannot restore it, nor what is built on it; what it proves then is not about the backup.
EXTENSION_BARRED = re.compile(r'permission denied to create extension "(.+?)"')
# pg_restore's line for a tablespace the server lacks (its objects are then made in the default one).
TABLESPACE_MISSING = re.compile(r'error: could not set default_tablespace to (.+?): ERROR:\s+invalid value for '
                                r'parameter "default_tablespace"')
# psql's, for the same `SET default_tablespace` in a plain dump, which stops it.
PLAIN_TABLESPACE_MISSING = re.compile(r'invalid value for parameter "default_tablespace": "((?:[^"]|"")*)"')


class _MissingRoles:
    """The statements pg_restore went past because the drill's server lacks a role the archive names
    (an owner, a grantee), or a tablespace (pg_restore then makes the objects in the default one).
    Drills are run on another server than the backup's (a staging one, where a restore can do no
    harm), which seldom has every role or tablespace of production: those statements say nothing of
    the backup, and counted as its failure they marked every good backup "failed verification",
    leaving it without delete's protection and outside a schedule's keep_last."""

    def __init__(self) -> None:
        self.failed = 0  # errors pg_restore said (a statement it could not execute, a tablespace it could not set...)
        self.role_errors = 0  # those of them that failed for a missing role
        self.roles: list[str] = []  # the missing roles those named, each once, for the ones that were that
        self.barred_errors = 0  # those that failed for a role the drill's role may not act as (ROLE_BARRED)
        self.barred: list[str] = []  # those roles, each once
        self.extensions: list[str] = []  # extensions the drill's role may not create (EXTENSION_BARRED)
        self.tablespace_errors = 0  # those that failed for a missing tablespace
        self.tablespaces: list[str] = []  # the missing tablespaces, each once, as pg_restore quotes them

    def watch(self, event: JobEvent) -> None:
        if not isinstance(event, LogLine):
            return
        if ANY_ERROR.match(event.text) is None:
            return
        self.failed += 1
        extension = EXTENSION_BARRED.search(event.text)
        if extension is not None and extension.group(1) not in self.extensions:
            self.extensions.append(extension.group(1))
        tablespace = TABLESPACE_MISSING.search(event.text)
        if tablespace is not None:
            self.tablespace_errors += 1
            if tablespace.group(1) not in self.tablespaces:
                self.tablespaces.append(tablespace.group(1))
            return
        failed = FAILED_STATEMENT.search(event.text)
        role = ROLE_MISSING.match(failed.group(1).strip()) if failed is not None else None
        if role is not None:
            self.role_errors += 1
            if role.group(1) not in self.roles:
                self.roles.append(role.group(1))
            return
        barred = ROLE_BARRED.match(failed.group(1).strip()) if failed is not None else None
        if barred is not None:
            self.barred_errors += 1
            if barred.group(1) not in self.barred:
                self.barred.append(barred.group(1))

    def explain(self, errors_ignored: int) -> str | None:
        """Why every error pg_restore went past is not the backup's, or None if some may be. Every
        error it printed must be one of those; its count may be higher than the lines: a parallel
        pg_restore's worker that went past one error counts it again with each item it restores after."""
        explained = self.role_errors + self.barred_errors + self.tablespace_errors
        if not errors_ignored or not self.failed or explained != self.failed or errors_ignored < self.failed:
            return None
        said = []
        if self.role_errors:
            said.append(f"{self.role_errors} owner or grant statement(s) skipped: this server lacks the role(s) "
                        f"{', '.join(self.roles)} (not the backup's fault; create the role(s) here to restore them "
                        "too)")
        if self.barred_errors:
            said.append(f"{self.barred_errors} owner statement(s) skipped: the drill's role may not give objects to "
                        f"the role(s) {', '.join(self.barred)} (not the backup's fault; drill as a superuser, or as a "
                        "member of those roles, to restore them too)")
        if self.tablespace_errors:
            said.append(f"{self.tablespace_errors} object(s) made in the default tablespace: this server lacks the "
                        f"tablespace(s) {', '.join(self.tablespaces)} (not the backup's fault)")
        return "; ".join(said)


def count_table_rows(target: Target, dbname: str, names: list[str]) -> dict[str, int]:
    """count(*) of each table in `dbname` (ONLY the table itself, except a partitioned one, whose
    rows a dump may load through the root); tables that do not exist are left out."""
    found: dict[str, int] = {}
    # connect() lifts the restored database's timeouts (the backup's ALTER DATABASE / ROLE … SET: a
    # statement_timeout of 1 ms there ended the drill in a traceback, after a restore that had gone well).
    with connect(target, dbname) as conn:
        # No row security policy may hide rows from the count: with it off, a table a policy would
        # filter fails its count instead (as it fails pg_dump), and _count lifts the policies.
        conn.execute("SET row_security = off")
        for name in names:
            qname = parse_qualified_name(name)
            row = conn.execute("SELECT c.relkind::text, c.relrowsecurity FROM pg_class c "
                               "JOIN pg_namespace n ON n.oid = c.relnamespace "
                               "WHERE n.nspname = %s AND c.relname = %s", (qname.schema, qname.name)).fetchone()
            if row is None:
                continue
            found[name] = _count(conn, sql.Identifier(qname.schema, qname.name), only=row[0] != "p", policies=row[1])
    return found


def _count(conn: psycopg.Connection, table: sql.Identifier, *, only: bool, policies: bool) -> int:
    """count(*) of every row of `table`. A drill's role with CREATEDB (not a superuser) owns what it
    restored, and a table with FORCE ROW LEVEL SECURITY applies its policies to its owner: the count
    saw the rows they let through ("1 rows in the restored database, 3 in the manifest") and a good
    backup was recorded failed. The owner switches them off for the count alone, rolled back: the
    scratch database stays as restored. A role that may not (not the owner) fails the count: the
    drill says it could not count, and records nothing."""
    query = sql.SQL("SELECT count(*) FROM {}{}").format(sql.SQL("ONLY ") if only else sql.SQL(""), table)
    try:
        with conn.transaction():
            counted = conn.execute(query).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        if not policies:  # no SELECT on it at all: said as it is
            raise
        with conn.transaction(force_rollback=True):
            conn.execute(sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(table))
            counted = conn.execute(query).fetchone()
    return int(counted[0]) if counted else 0


class DrillCancelled(PgBackupError):
    """The drill was cancelled through its `cancel` event (the scratch database was dropped)."""


def drill_backup(entry: CatalogEntry, target: Target, *, on_event: Callable[[JobEvent], None] | None = None,
                 bin_dir: str | None = None, cancel: threading.Event | None = None) -> Verification:
    """Restore `entry` into a scratch database on `target`, compare rows, drop it; the result (not recorded here).
    `cancel`, set from another thread (the TUI drills in a worker), cancels the restore: DrillCancelled."""
    manifest = entry.manifest
    if manifest is None:
        raise UsageError(entry.no_manifest_reason())
    if manifest.kind != "dump" or manifest.format not in DRILLABLE:
        what = f"a {manifest.format} file" if manifest.kind == "dump" else f"a pg_dumpall backup ({entry.holds})"
        member = ""
        if manifest.kind == "cluster-set":  # each member archive is one database's pg_dump: that drills
            files = [m.get("file") for m in manifest.extra.get("members") or [] if isinstance(m, dict)]
            member = f"; drill a member archive of it by its path: {entry.path / str(files[0])}" if files else ""
        raise UsageError(f"backup {entry.id}: {what} cannot be drilled (only a pg_dump of one database, custom, "
                         f"directory, tar or plain, restores into one scratch database){member}")
    if (manifest.options or {}).get("data_only"):
        raise UsageError(f"backup {entry.id}: a data-only backup cannot be drilled on its own (it holds no table "
                         "definitions to restore into a scratch database); `backups verify` reads it whole")
    if not entry.path.exists():
        raise UsageError(f"backup {entry.id}: {entry.path} is missing")
    if manifest.format == "plain" and identify_archive(entry.path).creates_database is not None:
        raise UsageError(f"backup {entry.id}: a pg_dump --create script makes and fills its own database, not a "
                         "scratch one, so it cannot be drilled; `backups verify` reads it whole")
    name = drill_database_name()
    asked = target
    # Of several hosts (`host=a,b`), the one that answered, for all the drill does: the restore, the
    # count and the drop. The list again after the restore (a first host come back) dropped nothing
    # on that one, said it had, and left the scratch database where it was restored.
    target = _refuse_without_createdb(target, target.maintenance_db(name), entry.id)
    expected = manifest.toc.table_rows()
    check = Verification(kind="drill", at=now_iso(), ok=False)
    if not expected:
        expected = count_archive_rows(entry.path, manifest.format, bin_dir)
        check.checks.append(f"rows counted in the archive first ({tables_text(len(expected))}; the manifest had none)")
    started = time.monotonic()
    check.details = {"server": target.label, "database": name}
    try:
        for left in drop_abandoned_drills(target, target.maintenance_db(name)):
            check.checks.append(f"dropped {left}, left behind by a drill of this machine that was killed")
    except (PgBackupError, psycopg.Error) as exc:  # not this drill's to fail on: the next one tries again
        check.details["abandoned_drills"] = f"not dropped: {(str(exc).strip().splitlines() or ['?'])[0]}"
    job = RestoreJob(RestorePlan(archive=entry.path, target=target, dbname=name, create=True, drill=True))
    missing_roles = _MissingRoles()
    job.subscribe(missing_roles.watch)
    if on_event is not None:
        job.subscribe(on_event)
    main = threading.current_thread() is threading.main_thread()  # the TUI drills from a worker thread
    # SIGTERM and SIGHUP (an SSH drop: the drill runs in the foreground) act like Ctrl-C: the
    # scratch database is dropped. A hang-up left it behind until the next drill on that server.
    previous = {sig: signal.signal(sig, _interrupt) for sig in _stopping()} if main else {}
    could_not_run: PgBackupError | None = None
    try:
        result = asyncio.run(_run(job, main, cancel))
        target = job.plan.target  # the same, or the host the restore pinned when none answered the look above
        for sig in previous:
            signal.signal(sig, _interrupt)  # asyncio reset it to the default when the job ended
        # What became of the scratch database is the drill's to say (_drop, below): the restore's own note is
        # a job's with a record, dropped "on a later start of pgbackup-tui", which a drill's is not (it has none).
        said = result.message
        if job.made_database and job.cleanup_note:
            said = said.removesuffix(f"; {job.cleanup_note}")
        check.details["restore"] = said
        if job.plan.target.bin_dir or bin_dir:
            check.details["bin_dir"] = job.plan.target.bin_dir or bin_dir
        if result.state == JobState.CANCELLED and cancel is not None and cancel.is_set():
            raise DrillCancelled(f"the drill of {entry.path.name} was cancelled; its scratch database is dropped")
        if result.state == JobState.CANCELLED:
            raise KeyboardInterrupt
        if result.state == JobState.FAILED and result.error is not None and issubclass(result.error, NOT_THE_ARCHIVE):
            # The drill could not run (no server, a lost one, no tools...): it says nothing of the
            # backup, so nothing is recorded (a "failed" drill would lift delete's protection of it).
            could_not_run = (ServerLost if issubclass(result.error, ServerLost) else PgBackupError)(
                f"the drill of backup {entry.id} could not run: {said}; nothing was recorded")
        elif result.state == JobState.FAILED and (space := PLAIN_TABLESPACE_MISSING.search(result.message)):
            could_not_run = PgBackupError(
                f"the drill of backup {entry.id} could not run on {target.label}: tablespace \"{space.group(1)}\" "
                "does not exist there (a plain dump sets the tablespace of its objects: create it there, or drill "
                "on a server that has the backup's tablespaces); nothing was recorded")
        elif result.state == JobState.FAILED and (role := ROLE_MISSING.search(result.message)) is not None:
            # psql (a plain dump) stops at the first statement that fails: one naming a role this
            # server lacks says nothing of the backup either (_MissingRoles), only that it cannot be drilled here.
            could_not_run = PgBackupError(
                f"the drill of backup {entry.id} could not run on {target.label}: role \"{role.group(1)}\" does "
                "not exist there (a plain dump names its owners and grantees: create the role there, or drill on "
                "a server that has the backup's roles); nothing was recorded")
        elif (extension := _extension_barred(result, missing_roles)) is not None:
            could_not_run = PgBackupError(
                f"the drill of backup {entry.id} could not run on {target.label}: the role it connects as may not "
                f"create extension \"{extension}\" (only a superuser may: drill as one); nothing was recorded")
        elif result.state == JobState.FAILED and (barred := ROLE_BARRED.search(result.message)) is not None:
            could_not_run = PgBackupError(
                f"the drill of backup {entry.id} could not run on {target.label}: the role it connects as may not "
                f"give objects to role \"{barred.group(1)}\" (a plain dump names its owners: drill as a superuser, "
                "or as a member of that role); nothing was recorded")
        elif result.state == JobState.FAILED:
            check.problems.append(f"the restore failed: {said}")
        else:
            roles_only = missing_roles.explain(result.errors_ignored) if result.state == JobState.PARTIAL else None
            if result.state == JobState.PARTIAL and roles_only is None:
                check.problems.append(f"the restore ignored {result.errors_ignored} error(s): see {result.log_path}")
            else:
                check.checks.append(f"restored into {name} on {target.label}{answered_note(asked, target)}")
                if roles_only is not None:
                    check.checks.append(roles_only)
            try:
                found: dict[str, int] | None = count_table_rows(target, name, sorted(expected))
            except (PgBackupError, psycopg.Error) as exc:  # the server gone or stopped: not the backup's
                found = None
                could_not_run = PgBackupError(
                    f"the drill of backup {entry.id} could not count the rows of {name} on {target.label}: "
                    f"{(str(exc).strip().splitlines() or ['?'])[0]}; nothing was recorded")
            if found is not None:
                differ = compare_rows(expected, found, "the restored database")
                check.problems.extend(differ)
                if not differ:
                    check.checks.append(f"rows of {tables_text(len(expected))} match the manifest")
    finally:
        if job.made_database or could_not_run is None:
            _drop(job.plan.target, name, check)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        check.details["duration_s"] = round(time.monotonic() - started, 3)
    if could_not_run is not None:
        if check.details.get(NOT_DROPPED):  # the scratch database could not be dropped either
            could_not_run.args = (f"{could_not_run}; {check.details[NOT_DROPPED]}",)
        elif check.details.get("dropped"):
            could_not_run.args = (f"{could_not_run}; its scratch database {name} was dropped",)
        raise could_not_run
    check.ok = not check.problems
    return check


def _extension_barred(result: JobResult, seen: _MissingRoles) -> str | None:
    """An extension the backup needs that the drill's role was refused (not a superuser): the restore
    could not be whole, and that says nothing of the backup (recorded, a good backup lost delete's
    protection). pg_restore went past it (its lines), or psql or our own CREATE EXTENSION (a
    TimescaleDB restore's) stopped at it (the job's message)."""
    if result.state == JobState.PARTIAL and seen.extensions:
        return seen.extensions[0]
    if result.state == JobState.FAILED and (found := EXTENSION_BARRED.search(result.message)) is not None:
        return found.group(1)
    return None


def _refuse_without_createdb(target: Target, dbname: str, backup_id: str) -> Target:
    """A drill restores into a scratch database it creates. A role that may not create one made
    the restore fail with its CREATE DATABASE statement quoted: said now, before anything runs, as
    where the drill runs and not the backup's fault (nothing recorded). A server that cannot be
    asked now is left to the restore, which says why in its own words. `target` pinned to the host
    that answered (connect.answering), or as it is when none did."""
    try:
        with connect(target, dbname) as conn:
            row = conn.execute("SELECT current_user, rolcreatedb OR rolsuper FROM pg_roles "
                               "WHERE rolname = current_user").fetchone()
            answered = answering(target, conn)
    except (PgBackupError, psycopg.Error):
        return target
    if row is not None and not row[1]:
        raise UsageError(f"the drill of backup {backup_id} needs a role that may create databases (it restores into "
                         f"a scratch database): role '{row[0]}' on {target.label} has neither CREATEDB nor "
                         f"superuser; ALTER ROLE {quote_ident(row[0])} CREATEDB, or drill as another role; nothing "
                         "was recorded")
    return answered


def _stopping() -> tuple[signal.Signals, ...]:
    """STOPPING, but for a SIGHUP the process ignores: `run` (a schedule's drill) and nohup ignore it
    on purpose, so that a hang-up does not stop what follows."""
    return tuple(sig for sig in STOPPING if signal.getsignal(sig) is not signal.SIG_IGN)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


async def _run(job: RestoreJob, main: bool, cancel: threading.Event | None = None) -> JobResult:
    """The restore job in this process; Ctrl-C / SIGTERM / SIGHUP cancel it (it drops what it created), and
    so does `cancel` once another thread sets it (watched from this loop: job.cancel() is not thread-safe)."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, *_stopping()) if main else ()
    for sig in signals:
        loop.add_signal_handler(sig, job.cancel)
    watcher = asyncio.create_task(_watch(cancel, job)) if cancel is not None else None
    try:
        return await job.run()
    finally:
        if watcher is not None:
            watcher.cancel()
        for sig in signals:
            loop.remove_signal_handler(sig)


async def _watch(cancel: threading.Event, job: RestoreJob) -> None:
    while not cancel.is_set():
        await asyncio.sleep(CANCEL_POLL_S)
    job.cancel()


def _drop(target: Target, name: str, check: Verification) -> None:
    maintenance = target.maintenance_db(name)
    try:
        drop_scratch_database(target, maintenance, name)
        check.details["dropped"] = True
    except (PgBackupError, psycopg.Error) as exc:
        cause = (str(exc).strip().splitlines() or ["?"])[0]
        check.details["dropped"] = False
        # Said (NOT_DROPPED: `backups drill` warns of it), not a problem of the backup's: the restore
        # and the rows are what the drill proves, and a drill failed by a server gone (or full) just
        # after would lift delete's protection of a good backup.
        check.details[NOT_DROPPED] = (f"could not drop the scratch database {name} on {target.label} ({cause}): "
                                      "the next drill from this machine drops it (or drop it by hand)")
