"""The restore job: an archive into a new or existing database, checked before anything is touched.

Before the target is touched: the archive is identified (format, archive version), listed with
a pg_restore that can read it, and read through once (`pg_restore -f /dev/null`) so that a
truncated or damaged archive fails here rather than half-way through a restore. The target must
not exist (--create) or must exist and be empty (unless --clean). A database we created is
dropped again if the restore fails or is cancelled. pg_restore's "errors ignored on restore: N"
becomes the `partial` state and exit code 3. What the restore would do (--dry-run) and the
description of the database it makes are worked out in restore_preview.py.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import psycopg

from .archive import ArchiveInfo, check_plain_complete, check_tar_complete, identify_archive
from .catalog import read_manifest
from .connect import connect
from .archive_scan import compare_checksums
from .database_props import DatabaseMaker
from .defaults import free_connections, parallel_jobs, serial_restore_reason, usable_cores
from .errors import ArchiveError, JobFailed, PgBackupError, SelectionError, TargetError, ToolNotFoundError
from .inspect import database_exists, database_is_empty
from .jobs import Job, JobState, Outcome
from .pgtools import ClientTools, psql_for_plain, tools_for_archive
from .plans import RestorePlan, psql_files_argv, restore_command, restore_script_argv
from .progress.restore import RestoreProgress
from .restore_clean import TableClean, plan_table_clean, provided_entries, require_no_sessions
from .restore_preview import ArchiveCheck, database_script, dry_run_outcome
from .restore_target import (
    create_database,
    drop_database,
    finish_database,
    scratch_database_name,
    swap_databases,
)
from .server_text import archive_encoding, decode_listing
from .timescale import TimescaleRestore, extension_entry, plan_for_restore
from .toc import SELECTABLE_DESCS, Toc, compute_closure, parse_toc, seeds_by_name, with_descendants, write_list

ERRORS_IGNORED = re.compile(r"errors ignored on restore: (\d+)")
CONNECTION_LOST = re.compile(r"no connection to the server|server closed the connection unexpectedly|"
                             r"connection to server .* (?:lost|failed)|terminating connection due to administrator")
class RestoreJob(Job):
    kind = "restore"

    def __init__(self, plan: RestorePlan) -> None:
        super().__init__(f"restore {plan.archive.name} into {plan.dbname} on {plan.target.label}",
                         database=plan.dbname, server=plan.target.label)
        self.plan = plan
        self._created_database: str | None = None  # a database this job created: dropped if it fails
        self._maker: DatabaseMaker | None = None
        self._table_clean: TableClean | None = None
        self._came_along: list[str] = []
        self._kept_as: str | None = None
        self._connection_lost = False  # --keep-old: the replaced database's new name
        self._workdir: Path | None = None
        self._errors_ignored = 0
        self._timescale: TimescaleRestore | None = None  # TimescaleDB's pre/post_restore procedure (timescale.py)
        self._warnings: list[str] = []

    async def _execute(self) -> Outcome:
        plan = self.plan
        plan.validate()
        self._workdir = workdir = Path(tempfile.mkdtemp(prefix="pgbackup-restore-"))
        self.own("path", workdir)
        check = await self._check_archive()
        plan = self.plan  # --jobs is chosen now when it was not given (_choose_jobs)
        plan.validate(check.info.format)
        mode = self._mode(check)
        await self.in_thread(self._check_target, mode)
        included = await self._selected_entries(check, mode)
        self._timescale, included, self._warnings = await self.in_thread(
            plan_for_restore, plan, check.toc, included, mode, self._maintenance_db(), self.log)
        script = (await database_script(self, plan, check, workdir, self._maintenance_db())
                  if mode in ("create", "replace") else None)
        if plan.dry_run:
            outcome = dry_run_outcome(plan, check, mode, included, script, self._table_clean, self._came_along)
            outcome.details["dry_run"] += [f"TimescaleDB: {line}" for line in
                                           (self._timescale.describe() if self._timescale else [])] + self._warnings
            return outcome
        list_file = self._write_list(check, included)
        self.log(f"archive {plan.archive} ({check.info.format}) is complete; restoring with {check.tools.bin_dir}")

        into = plan.dbname
        if mode in ("create", "replace"):
            into = plan.dbname if mode == "create" else scratch_database_name("new")
            self._created_database = into  # before CREATE: a cancel from here on drops it
            self.own("database", into)  # on record before it exists: a runner that dies leaves no database
            self._maker = await self.in_thread(create_database, plan.target, self._maintenance_db(), into, script,
                                               self.log)
        if self._timescale is None:
            await self._run_restore(check, replace(plan, dbname=into), list_file)
        else:  # pre_restore, one pg_restore job, post_restore (also after a failure)
            await self._timescale.around(self, plan.target, into, lambda: self._run_restore(
                check, replace(plan, dbname=into, jobs=1), list_file))
        try:
            not_kept = await self.in_thread(finish_database, plan.target, self._maker, into, self.log)
        except (PgBackupError, psycopg.Error) as exc:  # restored, but the server is gone now
            raise JobFailed(f"could not apply the database's own settings: {exc}{self._undo_note()}") from None
        if mode == "replace":
            await self._swap(into)
        self._created_database = None  # done: the database is the user's now
        self.release("database", into)
        details = {"format": check.info.format, "database": plan.dbname, "not_kept": not_kept,
                   "came_along": self._came_along, "warnings": self._warnings}
        if self._errors_ignored:
            message = (f"restored into '{plan.dbname}' on {plan.target.label} with {self._errors_ignored} error(s) "
                       f"ignored by pg_restore; see {self.log_path}")
        else:
            message = (f"restored {plan.archive.name} into '{plan.dbname}' on {plan.target.label} "
                       f"in {self.elapsed_s:.1f}s")
        if self._kept_as:
            message += f"; the previous '{plan.dbname}' is kept as '{self._kept_as}'"
        return Outcome(message=message, errors_ignored=self._errors_ignored, details=details)

    def _mode(self, check: ArchiveCheck) -> str:
        """create: a new database; replace: a whole-database --clean (restore beside, then swap);
        tables: a table-level --clean in one transaction; into: an existing empty database."""
        plan = self.plan
        if plan.create:
            return "create"
        if not plan.clean:
            return "into"
        selection_archive = bool((read_manifest(plan.archive) or {}).get("restore_list"))
        return "tables" if (plan.tables or selection_archive) and check.toc is not None else "replace"

    async def _run_restore(self, check: ArchiveCheck, plan: RestorePlan, list_file: Path | None) -> None:
        """pg_restore (psql for plain SQL; psql in one transaction for a table-level --clean) into plan.dbname."""
        progress = self._progress()
        # The target exists now: the monitor can connect to it and watch our backends there.
        progress.watch_server(plan.target, plan.dbname, indexes=True)
        progress.enter_phase("schema" if check.toc is not None else "data")
        env = plan.target.child_env(self.application_name)
        if self._table_clean is not None:
            assert list_file is not None and self._workdir is not None
            tool = "psql"
            drops, sql = self._workdir / "drops.sql", self._workdir / "restore.sql"
            drops.write_bytes(self._table_clean.drop_sql().encode("utf-8", errors="surrogateescape"))
            for line in self._table_clean.describe():
                self.log(line)
            code = await self.run_process(restore_script_argv(plan, check.tools, list_file, sql), env)
            if code != 0:
                raise JobFailed(f"pg_restore could not write the tables' SQL: {self.last_error()}; nothing was changed")
            argv = psql_files_argv(plan, check.tools, [drops, sql])
        else:
            tool = "psql" if check.info.format == "plain" else "pg_restore"
            argv = restore_command(plan, check.info.format, check.tools, list_file=list_file)
            if tool == "pg_restore" and self._created_database and self.plan.clean:
                # What replaces the user's database must be complete: any error stops it here,
                # the new database is dropped and the target stays as it was.
                argv.insert(1, "--exit-on-error")

        def on_line(line: str) -> None:
            self._watch(line)
            progress.on_line(line)

        code = await self.run_process(argv, env, on_line=on_line)
        progress.enter_phase("finishing")
        if self._connection_lost:
            # pg_restore counts every statement after a lost connection as an "ignored" error: it is a failure.
            raise JobFailed(f"{tool} lost its connection to server '{plan.target.label}' half way (the server "
                            f"stopped or the network failed){self._undo_note()}; log: {self.log_path}")
        if code != 0 and not self._errors_ignored:
            raise JobFailed(f"{tool} failed (exit {code}): {self.last_error()}{self._undo_note()}; "
                            f"log: {self.log_path}")

    def _undo_note(self) -> str:
        """What a failure leaves, said truthfully (the cleanup runs right after)."""
        plan = self.plan
        if self._created_database and plan.clean:
            return f"; '{plan.dbname}' is unchanged (the restore went into a new database)"
        if self._created_database:
            return ""  # what became of the new database: the cleanup says (Job.cleanup_note)
        if self._table_clean is not None or plan.single_transaction:
            return f"; '{plan.dbname}' is unchanged (one transaction, rolled back)"
        return "; the target may be partly restored (use --single-transaction for all-or-nothing)"

    async def _swap(self, restored: str) -> None:
        plan = self.plan
        await self._progress().stop()  # its connection to the restored database would block the rename
        old = scratch_database_name("old")
        if not plan.keep_old:
            self.own("database", old)  # a runner that dies right after the swap still drops it later
        await self.in_thread(swap_databases, plan.target, self._maintenance_db(), restored, plan.dbname, old)
        self._created_database = None
        self.release("database", restored)
        self.log(f"'{plan.dbname}' is now the restored database; the previous one is '{old}'")
        if plan.keep_old:
            self._kept_as = old
            self.log(f"kept the previous database as '{old}' (--keep-old): drop it when you no longer need it")
            return
        try:
            await asyncio.to_thread(drop_database, plan.target, self._maintenance_db(), old)
            self.log(f"dropped the previous database ('{old}')")
            self.release("database", old)
        except (PgBackupError, psycopg.Error) as exc:
            cause = (str(exc).strip().splitlines() or ["?"])[0]
            self.log(f"could not drop the previous database '{old}' ({cause}); it is dropped on a later start of "
                     "pgbackup-tui", level="warning")

    # -- the archive ---------------------------------------------------------------------------
    async def _check_archive(self) -> ArchiveCheck:
        plan = self.plan
        info = await self.in_thread(identify_archive, plan.archive)
        label = f"archive {plan.archive}"
        if info.format == "plain":
            await self.in_thread(check_plain_complete, plan.archive)
            tools = await self.in_thread(lambda: psql_for_plain(
                info.dump_major, plan.target.bin_dir, label=label, written_by=info.writer_text,
                needs_restrict=info.uses_restrict))
            if plan.target.bin_dir and tools.bin_dir != Path(plan.target.bin_dir).expanduser():
                self.log(f"psql in {plan.target.bin_dir} cannot run this file (it uses \\restrict, which that "
                         f"minor does not know): using psql {tools.version} from {tools.bin_dir}")
            await self.in_thread(self._check_fits_server, info)
            self.plan = replace(plan, jobs=plan.jobs or 1)
            self._start_progress(info, None)
            return ArchiveCheck(info, tools, None)

        try:
            tools = tools_for_archive(info.min_reader_major, plan.target.bin_dir, label=label,
                                      written_by=info.writer_text)
        except ToolNotFoundError as exc:
            raise ArchiveError(f"{exc} (archive format {info.version_text}); nothing was restored") from None
        # The manifest's sha256 (taken once the new archive had read back to its end) proves the
        # archive whole for the price of one plain read, which runs beside the listing below.
        checksums = (read_manifest(plan.archive) or {}).get("checksums") or {}
        compared = asyncio.ensure_future(self.in_thread(compare_checksums, plan.archive, checksums)) \
            if checksums else None
        try:
            await self.in_thread(self._check_fits_server, info)
            if info.format == "tar":
                await self.in_thread(check_tar_complete, plan.archive)
            toc = await self._list(tools)
            if toc.dumped_by_major and toc.dumped_by_major > tools.major:
                tools = tools_for_archive(toc.dumped_by_major, plan.target.bin_dir, label=label)
                toc = await self._list(tools)
            if self.plan.jobs is None:
                self.plan = replace(self.plan, jobs=await self.in_thread(self._choose_jobs, info, toc))
            progress = self._start_progress(info, toc)
        except BaseException:
            if compared is not None:
                compared.cancel()
            raise
        if compared is not None:
            problems = await compared
            if problems:
                raise ArchiveError(f"{problems[0]}; nothing was restored")
            self.log("the archive is whole: its sha256 matches the manifest's (the archive read back to its end "
                     "when it was made), so it is not read through again")
        else:  # Read every byte once, writing the script nowhere: a truncated archive fails here.
            self.log("verifying the archive (reading it through once)")
            code = await self.run_process([tools.pg_restore, "--file=/dev/null", str(plan.archive)],
                                          plan.target.child_env())
            if code != 0:
                raise ArchiveError(f"{plan.archive}: truncated or damaged ({self.last_error()}); nothing was restored")
        progress.finish_step("verify")
        return ArchiveCheck(info, tools, toc)

    def _choose_jobs(self, info: ArchiveInfo, toc: Toc) -> int:
        """Parallel pg_restore jobs where the archive and the target allow it (defaults.py), else 1."""
        plan = self.plan
        table_clean = plan.clean and bool(plan.tables or (read_manifest(plan.archive) or {}).get("restore_list"))
        if serial_restore_reason(info.format, plan.single_transaction, extension_entry(toc) is not None, table_clean):
            return 1
        with connect(plan.target, self._maintenance_db()) as conn:
            free = free_connections(conn)
        jobs = parallel_jobs(usable_cores(), free)
        self.log(f"restoring with {jobs} parallel job(s): {usable_cores()} core(s) here, "
                 f"{'?' if free is None else free} free connection(s) on the server (--jobs N to choose)")
        return jobs

    def _check_fits_server(self, info: ArchiveInfo) -> None:
        """An archive from a newer pg_dump into an older server fails half way: a plain file's SQL
        and pg_restore's own session settings (17+ send SET transaction_timeout, which 16 and older
        do not know; newer syntax likewise), after the target was created. PostgreSQL supports
        restoring into the same or a newer major: refuse before anything, unless the user says the
        archive was made to fit (--allow-older-server)."""
        plan = self.plan
        if info.dump_major is None or plan.allow_older_server:
            return
        with connect(plan.target, self._maintenance_db()) as conn:
            server_major = conn.info.server_version // 10000  # 9 for 9.6, as pgtools counts majors
        if info.dump_major > server_major:
            raise ArchiveError(
                f"{plan.archive} was written by pg_dump {info.dump_version} but server '{plan.target.label}' runs "
                f"PostgreSQL {server_major}, which cannot run a newer pg_dump's SQL (e.g. SET transaction_timeout); "
                f"dump again with pg_dump {server_major}, or add --allow-older-server if the file was made to fit; "
                "nothing was restored")

    def _progress(self) -> RestoreProgress:
        """The tracker _start_progress made (a RestoreJob's is always a RestoreProgress)."""
        assert isinstance(self.progress_tracker, RestoreProgress)
        return self.progress_tracker

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
                                   f"can read ({cause}); install postgresql-client-{tools.major + 1} or newer, "
                                   "or point --bin-dir at one; nothing was restored")
            raise ArchiveError(f"{self.plan.archive}: not a readable pg_dump archive ({cause}); nothing was restored")
        # Names are written in the archive's encoding (LATIN1, EUC_JP, SQL_ASCII bytes...): read them as
        # the catalog's names read, so that --table finds them.
        encoding = await self.in_thread(archive_encoding, tools.pg_restore, self.plan.archive)
        return parse_toc(decode_listing(listing.read_bytes(), encoding))

    async def _selected_entries(self, check: ArchiveCheck, mode: str) -> set[int] | None:
        """The archive entries to restore (None: all). A --table selection brings its partitions
        and what it needs; a table-level --clean recreates dependent views too (restore_clean.py)."""
        plan, toc = self.plan, check.toc
        if toc is None:
            return None
        seeds: set[int] | None = None
        if plan.tables:
            named, missing = seeds_by_name(toc, list(plan.tables))
            if missing:
                raise SelectionError(f"--table {missing[0]}: not in archive {plan.archive}")
            seeds, came_along = with_descendants(toc, named)
            for child, parent in came_along:
                self._came_along.append(f"came along: {child.label} (partition or child of {parent.label})")
        else:
            manifest = read_manifest(plan.archive) or {}
            if manifest.get("restore_list"):
                listed = {int(x) for x in manifest["restore_list"]}
                self.log(f"archive holds a table selection: restoring the {len(listed)} entries its manifest lists")
                if mode != "tables":
                    return self._selecting(listed)
                seeds = {e.dump_id for e in toc.entries if e.dump_id in listed and e.desc in SELECTABLE_DESCS}
        if seeds is None:
            return None
        if mode == "tables":
            self._table_clean = await self.in_thread(self._plan_table_clean, toc, seeds)
            closure = compute_closure(toc, self._table_clean.recreate,
                                      provided=provided_entries(toc, self._table_clean.recreate))
            included = closure.included | self._table_clean.extra_entries
        else:
            closure = compute_closure(toc, seeds)
            included = closure.included
        for entry, needed_by in closure.added:
            self._came_along.append(f"added {entry.label}: needed by {needed_by.label}")
        for line in self._came_along:
            self.log(line)
        return self._selecting(included)

    def _selecting(self, included: set[int]) -> set[int]:
        self._progress().select(included)
        return included

    def _plan_table_clean(self, toc: Toc, seeds: set[int]) -> TableClean:
        with connect(self.plan.target, self.plan.dbname) as conn:
            return plan_table_clean(conn, toc, seeds, self.plan.dbname)

    def _write_list(self, check: ArchiveCheck, included: set[int] | None) -> Path | None:
        if check.toc is None or included is None:
            return None
        assert self._workdir is not None
        list_file = self._workdir / "restore.list"
        write_list(check.toc, included, list_file)
        return list_file

    # -- the target ----------------------------------------------------------------------------
    def _maintenance_db(self) -> str:
        default = self.plan.target.default_dbname
        return default if default != self.plan.dbname else "postgres"

    def _check_target(self, mode: str) -> None:
        plan = self.plan
        where = f"server '{plan.target.label}'"
        with connect(plan.target, self._maintenance_db()) as conn:
            exists = database_exists(conn, plan.dbname)
            if mode == "create":
                if exists:
                    raise TargetError(f"database '{plan.dbname}' already exists on {where}; pick a new name for "
                                      "--create, or restore into it without --create")
                return
            if not exists:
                raise TargetError(f"database '{plan.dbname}' does not exist on {where}; add --create to create it")
            if mode == "replace":
                require_no_sessions(conn, plan.dbname)
        if mode == "into":
            with connect(plan.target, plan.dbname) as conn:
                if not database_is_empty(conn):
                    raise TargetError(f"database '{plan.dbname}' on {where} is not empty; add --clean to replace "
                                      "it (or, with --table, those tables), "
                                      "or restore into a new database with --create")

    # -- output --------------------------------------------------------------------------------
    def _watch(self, line: str) -> None:
        match = ERRORS_IGNORED.search(line)
        if match:
            self._errors_ignored = int(match.group(1))
        if CONNECTION_LOST.search(line):
            self._connection_lost = True

    async def _cleanup(self, state: JobState) -> None:
        if self._created_database and state in (JobState.FAILED, JobState.CANCELLED):
            name = self._created_database
            try:
                if await asyncio.to_thread(drop_database, self.plan.target, self._maintenance_db(), name):
                    self.log(f"dropped database '{name}' (created by this restore, which did not finish)")
                self.release("database", name)
                self.cleanup_note = f"the new database '{name}' was dropped"
            except (PgBackupError, psycopg.Error) as exc:
                cause = (str(exc).strip().splitlines() or ["?"])[0]
                # Still on record (owned): the next start of pgbackup-tui drops it once the server is back.
                self.cleanup_note = (f"the new database '{name}' could NOT be dropped ({cause}); it is dropped on a "
                                     "later start of pgbackup-tui, when the server answers")
                self.log(self.cleanup_note, level="error")
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self.release("path", self._workdir)
