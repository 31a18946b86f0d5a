"""The restore job: an archive into a new or existing database, checked before anything is touched.

Before the target is touched: the archive is identified (format, archive version), listed with
a pg_restore that can read it, and read through once (`pg_restore -f /dev/null`) so that a
truncated or damaged archive fails here rather than half-way through a restore. The target must
not exist (--create) or must exist and be empty (unless --clean). A database we created is
dropped again if the restore fails or is cancelled. pg_restore's "errors ignored on restore: N"
becomes the `partial` state and exit code 3.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .archive import ArchiveInfo, check_plain_complete, check_tar_complete, identify_archive
from .catalog import read_manifest
from .connect import connect
from .errors import ArchiveError, JobFailed, SelectionError, TargetError, ToolNotFoundError
from .identifiers import always_quote
from .inspect import database_exists, database_is_empty
from .jobs import Job, JobState, Outcome
from .pgtools import ClientTools, tools_for_archive
from .plans import RestorePlan, restore_command
from .progress_restore import RestoreProgress
from .toc import Toc, compute_closure, parse_toc, seeds_by_name, write_list

ERRORS_IGNORED = re.compile(r"errors ignored on restore: (\d+)")
# The first index or constraint a restore builds on a table it has just loaded often finds an
# autovacuum worker on that table. The server cancels the worker only once the waiting session's
# deadlock_timeout (1 s by default) has passed. The restore's sessions use 100 ms instead when the
# role may set it (a superuser, or GRANT SET ON PARAMETER on 15+): the wait is ten times shorter,
# a real deadlock is still found (sooner), and the database restored is the same.
RESTORE_DEADLOCK_TIMEOUT_S = 0.1


def restore_lock_check(conn) -> tuple[float, float] | None:
    """(deadlock_timeout for the restore's sessions, the server's) in seconds, or None to keep the
    server's."""
    current = conn.execute(
        "SELECT extract(epoch FROM current_setting('deadlock_timeout')::interval)::float8").fetchone()[0]
    if current <= RESTORE_DEADLOCK_TIMEOUT_S:
        return None
    if conn.info.server_version >= 150000:
        allowed = conn.execute("SELECT has_parameter_privilege('deadlock_timeout', 'SET')").fetchone()[0]
    else:
        allowed = conn.execute("SELECT current_setting('is_superuser') = 'on'").fetchone()[0]
    return (RESTORE_DEADLOCK_TIMEOUT_S, current) if allowed else None


@dataclass
class ArchiveCheck:
    info: ArchiveInfo
    tools: ClientTools
    toc: Toc | None


class RestoreJob(Job):
    kind = "restore"

    def __init__(self, plan: RestorePlan) -> None:
        super().__init__(f"restore {plan.archive.name} into {plan.dbname} on {plan.target.label}",
                         database=plan.dbname, server=plan.target.label)
        self.plan = plan
        self._created_database = False
        self._workdir: Path | None = None
        self._errors_ignored = 0
        self._lock_check: tuple[float, float] | None = None  # deadlock_timeout for the restore's sessions, the server's

    async def _execute(self) -> Outcome:
        plan = self.plan
        plan.validate()
        self._workdir = Path(tempfile.mkdtemp(prefix="pgbackup-restore-"))
        check = await self._check_archive()
        plan.validate(check.info.format)
        list_file = self._restore_list(check)
        await self.in_thread(self._check_target)
        self.log(f"archive {plan.archive} ({check.info.format}) is complete; restoring with {check.tools.bin_dir}")

        if plan.create:
            await self.in_thread(self._create_database)
        argv = restore_command(plan, check.info.format, check.tools, list_file=list_file)
        progress = self.progress_tracker
        # The target exists now: the monitor can connect to it and watch our backends there.
        progress.watch_server(plan.target, plan.dbname, indexes=True)
        progress.enter_phase("schema" if check.toc is not None else "data")

        def on_line(line: str) -> None:
            self._watch(line)
            progress.on_line(line)

        tool = "psql" if check.info.format == "plain" else "pg_restore"
        env = plan.target.child_env(self.application_name)
        if self._lock_check is not None:
            ours, servers = self._lock_check
            env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} -c deadlock_timeout={round(ours * 1000)}ms".strip()
            progress.lock_check_s = ours
            self.log(f"{tool} runs with deadlock_timeout = {round(ours * 1000)}ms: an autovacuum worker in the way "
                     f"of an index build is cancelled after that, not after the server's {servers:g} s")
        code = await self.run_process(argv, env, on_line=on_line)
        progress.enter_phase("finishing")
        if code != 0 and not self._errors_ignored:
            undo = " (the new database was dropped)" if plan.create else (
                "" if plan.single_transaction else "; the target may be partly restored (use --single-transaction for all-or-nothing)")
            raise JobFailed(f"{tool} failed (exit {code}): {self.last_error()}{undo}; log: {self.log_path}")
        if self._errors_ignored:
            message = (f"restored into '{plan.dbname}' on {plan.target.label} with {self._errors_ignored} error(s) "
                       f"ignored by pg_restore; see {self.log_path}")
        else:
            message = f"restored {plan.archive.name} into '{plan.dbname}' on {plan.target.label} in {self.elapsed_s:.1f}s"
        return Outcome(message=message, errors_ignored=self._errors_ignored,
                       details={"format": check.info.format, "database": plan.dbname})

    # -- the archive ---------------------------------------------------------------------------
    async def _check_archive(self) -> ArchiveCheck:
        plan = self.plan
        info = await self.in_thread(identify_archive, plan.archive)
        try:
            tools = tools_for_archive(info.min_reader_major, plan.target.bin_dir, label=f"archive {plan.archive}")
        except ToolNotFoundError as exc:
            raise ArchiveError(f"{exc} (archive format {info.version_text}); nothing was restored") from None
        if info.format == "plain":
            await self.in_thread(check_plain_complete, plan.archive)
            self._start_progress(info, None)
            return ArchiveCheck(info, tools, None)

        if info.format == "tar":
            await self.in_thread(check_tar_complete, plan.archive)
        toc = await self._list(tools)
        if toc.dumped_by_major and toc.dumped_by_major > tools.major:
            tools = tools_for_archive(toc.dumped_by_major, plan.target.bin_dir, label=f"archive {plan.archive}")
            toc = await self._list(tools)
        progress = self._start_progress(info, toc)
        # Read every byte once, writing the script nowhere: a truncated archive fails here.
        self.log("verifying the archive (reading it through once)")
        code = await self.run_process([tools.pg_restore, "--file=/dev/null", str(plan.archive)],
                                      plan.target.child_env())
        if code != 0:
            raise ArchiveError(f"{plan.archive}: truncated or damaged ({self.last_error()}); nothing was restored")
        progress.finish_step("verify")
        return ArchiveCheck(info, tools, toc)

    def _start_progress(self, info: ArchiveInfo, toc: Toc | None) -> RestoreProgress:
        """Track the restore from the verification pass on; the TOC and manifest give the totals."""
        progress = RestoreProgress(self, self.plan, info, toc, read_manifest(self.plan.archive))
        progress.enter_phase("preparing")
        progress.start()
        self.progress_tracker = progress
        return progress

    async def _list(self, tools: ClientTools) -> Toc:
        assert self._workdir is not None
        listing = self._workdir / "toc.txt"
        code = await self.run_process([tools.pg_restore, "--list", "--verbose", str(self.plan.archive)],
                                      self.plan.target.child_env(), stdout_path=listing)
        if code != 0:
            cause = self.last_error()
            if "unsupported version" in cause:
                raise ArchiveError(f"{self.plan.archive}: written by a newer pg_dump than pg_restore {tools.version} "
                                   f"can read ({cause}); install a newer PostgreSQL client")
            raise ArchiveError(f"{self.plan.archive}: not a readable pg_dump archive ({cause}); nothing was restored")
        # A SQL_ASCII archive's names may not be UTF-8: keep their bytes, as --table names keep theirs.
        return parse_toc(listing.read_text(encoding="utf-8", errors="surrogateescape"))

    def _restore_list(self, check: ArchiveCheck) -> Path | None:
        """A --use-list file for a table selection, or for an archive made from one."""
        plan, toc = self.plan, check.toc
        if toc is None:
            return None
        included: set[int] | None = None
        if plan.tables:
            seeds, missing = seeds_by_name(toc, list(plan.tables))
            if missing:
                raise SelectionError(f"--table {missing[0]}: not in archive {plan.archive}")
            closure = compute_closure(toc, seeds)
            for entry, needed_by in closure.added:
                self.log(f"added {entry.label}: needed by {needed_by.label}")
            included = closure.included
        else:
            manifest = read_manifest(plan.archive) or {}
            if manifest.get("restore_list"):
                included = {int(x) for x in manifest["restore_list"]}
                self.log(f"archive holds a table selection: restoring the {len(included)} entries its manifest lists")
        if included is None:
            return None
        self.progress_tracker.select(included)
        assert self._workdir is not None
        list_file = self._workdir / "restore.list"
        write_list(toc, included, list_file)
        return list_file

    # -- the target ----------------------------------------------------------------------------
    def _maintenance_db(self) -> str:
        default = self.plan.target.default_dbname
        return default if default != self.plan.dbname else "postgres"

    def _check_target(self) -> None:
        plan = self.plan
        where = f"server '{plan.target.label}'"
        with connect(plan.target, self._maintenance_db()) as conn:
            exists = database_exists(conn, plan.dbname)
            self._lock_check = restore_lock_check(conn)
        if plan.create:
            if exists:
                raise TargetError(f"database '{plan.dbname}' already exists on {where}; pick a new name for --create, "
                                  "or restore into it without --create")
            return
        if not exists:
            raise TargetError(f"database '{plan.dbname}' does not exist on {where}; add --create to create it")
        if not plan.clean:
            with connect(plan.target, plan.dbname) as conn:
                if not database_is_empty(conn):
                    raise TargetError(f"database '{plan.dbname}' on {where} is not empty; add --clean to replace "
                                      "the objects in the archive, or restore into a new database with --create")

    def _create_database(self) -> None:
        with connect(self.plan.target, self._maintenance_db()) as conn:
            conn.execute(f"CREATE DATABASE {always_quote(self.plan.dbname)} TEMPLATE template0")
        self._created_database = True
        self.log(f"created database '{self.plan.dbname}'")

    def _drop_created_database(self) -> None:
        with connect(self.plan.target, self._maintenance_db()) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {always_quote(self.plan.dbname)} WITH (FORCE)")
        self.log(f"dropped database '{self.plan.dbname}' (created by this restore, which did not finish)")

    # -- output --------------------------------------------------------------------------------
    def _watch(self, line: str) -> None:
        match = ERRORS_IGNORED.search(line)
        if match:
            self._errors_ignored = int(match.group(1))

    async def _cleanup(self, state: JobState) -> None:
        if self._created_database and state in (JobState.FAILED, JobState.CANCELLED):
            await asyncio.to_thread(self._drop_created_database)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

