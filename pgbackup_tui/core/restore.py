"""The restore job: an archive into a new, an existing empty, or a replaced database.

Before the target is touched, the archive is identified, listed and proven whole
(restore_archive.py, under RestoreJob's base); where the restore goes into a database this job creates
(--create, a whole-database --clean), its checksum check runs beside pg_restore instead, and must
pass before that database is kept or swapped in (an archive whose last verification failed, or
whose size changed, is checked before that database is created). The target must not exist (--create) or must
exist and be empty, unless --clean (restore_clean.py: a whole database is restored beside the target and
swapped in; some tables are replaced in one transaction). A database this job created is
dropped again if the restore fails or is cancelled, and recorded as owned before it is created,
so that a dead runner's is dropped too. pg_restore's "errors ignored on restore: N" becomes the
`partial` state and exit code 3. Its mode and the entries it restores are chosen in
restore_choice.py, RestoreJob's base (with restore_selection.py, or restore_data.py for a
data-only archive); what the restore would do (--dry-run) and the description of the database it
makes in restore_preview.py; the checks of its target and the
databases it makes and swaps in restore_target.py, drops in database_drops.py; TimescaleDB's procedure in timescale.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import psycopg

from .archive import read_skipping
from .connect import answered_note, connect, pinned, several_hosts
from .database_props import DatabaseMaker, parse_database_script
from .job_children import child_failed
from .errors import JobFailed, PgBackupError, ServerLost
from .job_temp import owned_temp_dir
from .job_store import COMMITS, FILLS, KEPT_MEMBER, SWAPPED_IN, WRITES_INTO
from .jobs import Cancelled, JobState, Outcome
from .plans import RestorePlan, fed_through_a_pipe, psql_files_argv, restore_command, restore_script_argv
from .restore_choice import RestoreChoiceJob
from .restore_clean import TableClean
from .plain_script import (ScriptContents, file_chunks, without_large_objects_transactions, without_settings,
                           without_transactions)
from .restore_data import DataLoad, materialized_views_note
from .restore_output import RestoreOutput
from .restore_settings import SettingsLeftOut, discounted_line, harmless_for, rewrite_without
from .database_drops import database_oid, drop_database, subscriptions_note
from .restore_preview import ArchiveCheck, database_script, dry_run_outcome
from .restore_transaction import MARK_SQL, transaction_mark
from .restore_target import (
    check_target,
    create_database,
    finish_database,
    own_database,
    require_free_name,
    scratch_database_name,
    StatementCanceller,
    SwapCancelled,
    SwapRefused,
    swap_databases,
)
from .timescale import TimescaleRestore, plan_for_restore

def _closed(future: asyncio.Future[psycopg.Connection]) -> None:
    """A look that ran beside a step that failed first: its outcome is not the one to report, and
    the connection it kept is closed."""
    if not future.cancelled() and future.exception() is None:
        future.result().close()


class RestoreJob(RestoreChoiceJob):
    kind = "restore"

    def __init__(self, plan: RestorePlan) -> None:
        super().__init__(f"restore {plan.archive.name} into {plan.dbname} on {plan.target.label}",
                         database=plan.dbname, server=plan.target.label)
        self.plan = plan
        self._created_database: str | None = None  # a database this job created: dropped if it fails
        self._maker: DatabaseMaker | None = None
        self._canceller = StatementCanceller()  # the database's settings wait on no lock past a cancel
        self._table_clean: TableClean | None = None
        self._data_load: DataLoad | None = None  # a data-only archive's tables (restore_data.py)
        self._restore_mode: str | None = None  # RestoreChoiceJob._mode's, once chosen
        self._plain_script: ScriptContents | None = None  # a plain data-only file, read once
        self._came_along: list[str] = []
        self._kept_as: str | None = None  # --keep-old: the replaced database's new name
        self._workdir: Path | None = None
        self._output = RestoreOutput()  # what pg_restore's (psql's) lines say (restore_output.py)
        self._timescale: TimescaleRestore | None = None  # TimescaleDB's pre/post_restore procedure (timescale.py)
        self._warnings: list[str] = []
        self._maintenance: psycopg.Connection | None = None  # --create: kept from the name's check for CREATE
        # An existing database pg_restore writes into outside one transaction: what a cancel, a
        # failure or a dead runner's recovery must say may be part-restored (WRITES_INTO).
        self._writing_into: str | None = None
        self._identity: str | None = None  # the OID of the database this job created (_record_identity)
        self._transaction: str | None = None  # the id of the one transaction psql restores in (restore_transaction)
        self._left_out = SettingsLeftOut(self.log)  # a 17+ tool's settings an older target lacks

    async def _execute(self) -> Outcome:
        plan = self.plan
        plan.validate()
        if several_hosts(plan.target):  # all its steps and pg_restore's workers on the host that answered
            asked = plan.target
            self.plan = plan = replace(plan, target=await self.in_thread(pinned, asked, self._maintenance_db()))
            self.log(f"restoring into server {plan.target.label}{answered_note(asked, plan.target)}")
        self._workdir = workdir = owned_temp_dir(self, "pgbackup-restore-")  # on record, then created
        # --create needs nothing from the archive to check its target (the name must be free): that
        # look runs beside the archive's, whose refusals still come first, as when it ran before it,
        # and its connection is kept for the CREATE DATABASE (one connection less before pg_restore).
        # Not for a dry run, which runs in the front: its asyncio.run would wait at its end for a
        # look still connecting (up to connect_timeout) before it could say the archive's refusal.
        beside = plan.create and not plan.dry_run
        name_checked = (asyncio.ensure_future(asyncio.to_thread(require_free_name, plan.target, self._maintenance_db(),
                                                                plan.dbname)) if beside else None)
        try:
            check = await self._check_archive()
            plan = self.plan  # --jobs is chosen now when it was not given (_choose_jobs)
            plan.validate(check.info.format)
            mode = self._restore_mode = self._mode(check)
            if name_checked is not None:
                self._maintenance = await name_checked
                self.check_cancelled()
        except BaseException:
            if name_checked is not None:
                name_checked.add_done_callback(_closed)
            raise
        if name_checked is None and (note := await self.in_thread(
                check_target, plan.target, self._maintenance_db(), plan.dbname, mode,
                unproven_whole=self._unproven_whole(check) if mode == "replace" else None)):
            self.log(note)
        included = await self._selected_entries(check, mode)
        self._timescale, included, self._warnings = await self.in_thread(
            plan_for_restore, plan, check.toc, included, mode, self._maintenance_db(), self.log)
        if self._jobs_not_used:
            self._warnings.insert(0, self._jobs_not_used)
        self._warnings += self._data_load.warnings if self._data_load else []
        restored = [e.desc for e in check.toc.entries if included is None or e.dump_id in included] if check.toc else []
        if mode == "replace" and "TABLE" in restored and "TABLE DATA" not in restored:
            # Asked for, and confirmed; said anyway, since the rows go with the database it replaces.
            warning = (f"the archive holds no rows (a schema-only dump): the database that replaces '{plan.dbname}' "
                       "has its tables empty")
            self._warnings.append(warning)
            self.log(warning, level="warning")
        # A set member restored into a database that exists (postgres) keeps the database's own
        # owner, settings, comment and grants too, as the cluster had them (RestorePlan.as_set_member).
        keeps_props = mode in ("create", "replace") or (mode == "into" and plan.as_set_member)
        script = await database_script(self, plan, check, workdir, self._maintenance_db()) if keeps_props else None
        doubt = self._catalog_doubt() if mode in ("create", "replace") and self._checksums is not None else None
        if doubt is not None:
            self.log(f"archive {plan.archive}: {doubt}; its checksum is checked before a database is created")
        if plan.dry_run or mode not in ("create", "replace") or doubt is not None:
            # The target is a database this job did not create, or an archive the catalog doubts: the
            # archive must be proven whole first.
            await self._archive_whole()
        if plan.dry_run:
            outcome = dry_run_outcome(plan, check, mode, included, script, self._table_clean, self._came_along,
                                      data_load=self._data_load)
            outcome.details["dry_run"] += [f"TimescaleDB: {line}" for line in
                                           (self._timescale.describe() if self._timescale else [])] + self._warnings
            return outcome
        list_file = self._write_list(check, included)
        if self._checksums is not None:
            self.log(f"archive {plan.archive} ({check.info.format}): its checksum is checked beside the restore, "
                     f"into a new database that is dropped if it differs; restoring with {check.tools.bin_dir}")
        else:
            self.log(f"archive {plan.archive} ({check.info.format}) is complete; restoring with {check.tools.bin_dir}")

        into = plan.dbname
        if mode in ("create", "replace"):
            into = plan.dbname if mode == "create" else scratch_database_name("new")
            self.own("database", into)  # on record before it exists: a runner that dies leaves no database
            conn, self._maintenance = self._maintenance, None  # create_database closes it
            try:
                self._maker = await asyncio.to_thread(create_database, plan.target, self._maintenance_db(), into,
                                                      script, self.log, conn=conn)
            except (PgBackupError, psycopg.Error):
                # No CREATE happened (the name may have been taken meanwhile): not ours to drop.
                self.release("database", into)
                raise
            self._created_database = into  # ours now: a failure or a cancel from here on drops it
            await self._record_identity(into)
            self.check_cancelled()
        if mode == "into" and self._undo_note().startswith("; the target may be partly restored"):
            self._writing_into = into
            self.own(WRITES_INTO, into)  # not undone: said by a dead runner's recovery (job_store.py)
        try:
            if self._timescale is None:
                await self._run_restore(check, replace(plan, dbname=into), list_file)
            else:  # pre_restore, one pg_restore job, post_restore (also after a failure)
                await self._timescale.around(self, plan.target, into, lambda: self._run_restore(
                    check, replace(plan, dbname=into, jobs=1), list_file))
        except PgBackupError:
            await self._archive_whole()  # a changed archive is the cause to name, not pg_restore's symptom of it
            raise
        await self._archive_whole()  # before the new database is kept or swapped in
        self._stop_writing_into()
        if self._data_load is not None:
            await self._say_materialized_views()
        maker = self._maker
        if mode == "into" and script is not None:
            maker = DatabaseMaker(parse_database_script(script, into))
        try:
            if maker is not None and maker is not self._maker:  # into an existing database: its owner too
                await self.in_thread(own_database, plan.target, self._maintenance_db(), maker)
            # Under the job's name: the progress says a lock its statements wait for ("98% finishing ETA 0s" did).
            not_kept = await self.in_thread(finish_database, plan.target, maker, into, self.log, self._canceller,
                                            self.application_name)
        except (PgBackupError, psycopg.Error) as exc:  # restored, but the server is gone now
            self.check_cancelled()  # or a statement the cancel interrupted: cancelled, not failed
            raise JobFailed(f"could not apply the database's own settings: {exc}{self._undo_note()}") from None
        if mode == "replace":
            await self._swap(into)
        self._created_database = None  # done: the database is the user's now
        if plan.as_set_member:
            # Forwarded to the set's record (synced) before the release below, so that a runner killed
            # between the two still names this member as kept. A record that cannot be written has
            # stopped the set already (abort), which says why; this member is restored all the same.
            with contextlib.suppress(JobFailed):
                self.own(KEPT_MEMBER, plan.dbname)
        self.release("database", into)
        details = {"format": check.info.format, "database": plan.dbname, "not_kept": not_kept,
                   "came_along": self._came_along, "warnings": self._warnings}
        errors_ignored = self._output.errors_that_count
        if self._output.discounted:
            self.log(discounted_line(check.tools.version, self._server_major, self._output.discounted))
        if errors_ignored:
            message = (f"restored into '{plan.dbname}' on {plan.target.label} with {errors_ignored} error(s) "
                       f"ignored by pg_restore{self._output.first_error_said()}; see {self.log_path}")
        else:
            message = (f"restored {plan.archive.name} into '{plan.dbname}' on {plan.target.label} "
                       f"in {self.elapsed_s:.1f}s")
        if self._kept_as:
            message += f"; the previous '{plan.dbname}' is kept as '{self._kept_as}'"
        return Outcome(message=message, errors_ignored=errors_ignored, details=details)

    @property
    def made_database(self) -> bool:
        """Whether this job got as far as creating its database (a drill drops it, or has none to drop)."""
        return self._maker is not None

    async def _run_restore(self, check: ArchiveCheck, plan: RestorePlan, list_file: Path | None) -> None:
        """pg_restore (psql for plain SQL; psql in one transaction for a table-level --clean) into plan.dbname."""
        progress = self._progress()
        # The target exists now: the monitor can connect to it and watch our backends there.
        progress.watch_server_beside("pg_restore" if check.toc is not None else "psql", plan.jobs or 1,
                                     self._free_connections, plan.target, plan.dbname, indexes=True)
        progress.enter_phase("schema" if check.toc is not None and self._data_load is None else "data")
        env = plan.target.child_env(self.application_name)
        data_stdin: Iterator[bytes] | None = None
        if self._data_load is not None:
            assert self._workdir is not None
            tool = "psql"
            rows = plan.archive
            if check.toc is not None:
                rows = self._workdir / "restore.sql"
                code = await self.run_process(restore_script_argv(plan, check.tools, list_file, rows), env)
                if code != 0:
                    raise JobFailed(f"pg_restore could not write the rows' SQL: {self._script_failure(code)}; "
                                    "nothing was changed")
            found = await self.in_thread(self._plan_large_objects, rows)
            first, last = self._workdir / "before.sql", self._workdir / "after.sql"
            first.write_bytes(self._data_load.before_sql().encode("utf-8", errors="surrogateescape"))
            last.write_bytes(self._data_load.after_sql().encode("utf-8", errors="surrogateescape"))
            for line in self._data_load.describe():
                self.log(line)
            mark = self._transaction_mark_file()
            unknown = self._left_out.in_script(rows, self._server_major)
            if found.has_transactions or unknown:  # its own COMMIT would end the one transaction half way
                argv = psql_files_argv(plan, check.tools, [mark, first, Path("-"), last])
                data_stdin = without_transactions(rows) if found.has_transactions else file_chunks(rows)
                if unknown:
                    data_stdin = without_settings(data_stdin, unknown, [0])
            else:
                argv = psql_files_argv(plan, check.tools, [mark, first, rows, last])
        elif self._table_clean is not None:
            assert list_file is not None and self._workdir is not None
            tool = "psql"
            drops, sql = self._workdir / "drops.sql", self._workdir / "restore.sql"
            drops.write_bytes(self._table_clean.drop_sql().encode("utf-8", errors="surrogateescape"))
            for line in self._table_clean.describe():
                self.log(line)
            files = [self._transaction_mark_file(), drops, sql]
            scripts = [(list_file, sql)]
            if not plan.no_privileges:
                # The archive's grants go in after the recreated relations' own are reset (grants_reset_sql).
                assert check.toc is not None
                grant_scripts, after = self._table_clean.grants_apart(check.toc, list_file, self._workdir)
                scripts += grant_scripts
                files += after
            sequences = self._table_clean.sequences
            values: tuple[Path, Path] | None = None  # their archive's values, read from pg_restore's SQL of them
            if sequences.entries:
                assert check.toc is not None
                scripts.append(values := sequences.list_apart(check.toc, self._workdir))
            for part, script in scripts:
                code = await self.run_process(restore_script_argv(plan, check.tools, part, script), env)
                if code != 0:
                    raise JobFailed(f"pg_restore could not write the tables' SQL: {self._script_failure(code)}; "
                                    "nothing was changed")
                if unknown := self._left_out.in_script(script, self._server_major):  # ours: written again
                    await self.in_thread(rewrite_without, script, unknown)
            if values is not None:
                # Last in the transaction: a setval it may hold (a sequence used up) is not undone by a rollback.
                files.append(set_values := self._workdir / "sequences.sql")
                set_values.write_bytes(sequences.sql(values[1].read_text(encoding="utf-8", errors="surrogateescape"))
                                       .encode("utf-8", errors="surrogateescape"))
            argv = psql_files_argv(plan, check.tools, files)
        else:
            tool = "psql" if check.info.format == "plain" else "pg_restore"
            argv = restore_command(plan, check.info.format, check.tools, list_file=list_file)
            if tool == "pg_restore" and self._created_database and self.plan.clean:
                # What replaces the user's database must be complete: any error stops it here,
                # the new database is dropped and the target stays as it was.
                argv.insert(1, "--exit-on-error")

        stdin = data_stdin
        if check.plain_drops is not None and self._data_load is None:  # fed without its DROP lines
            argv = fed_through_a_pipe(argv)
            stdin = read_skipping(plan.archive, check.plain_drops[0], check.plain_drops[1])
        if tool == "psql" and check.toc is None and self._data_load is None and \
                (unknown := self._left_out.in_script(plan.archive, self._server_major)):
            argv = fed_through_a_pipe(argv)
            stdin = without_settings(stdin if stdin is not None else file_chunks(plan.archive), unknown, [0])
        if tool == "psql" and check.toc is None and self._data_load is None and plan.single_transaction:
            # Its large objects' own COMMIT would end the one transaction half way (plain_script.py).
            argv = fed_through_a_pipe(argv)
            stdin = without_large_objects_transactions(stdin if stdin is not None else file_chunks(plan.archive))
            # Its transaction says its id first (on record: a dead runner's recovery asks whether it committed).
            stdin = itertools.chain([MARK_SQL.encode()], stdin)
        if tool == "pg_restore" and plan.single_transaction and self._restore_mode == "into" \
                and not plan.as_set_member:
            await self._on_record_as_filled(plan.dbname)

        if tool == "pg_restore":  # where no older pg_restore here reads the archive (_reader_the_server_knows)
            self._output.harmless = harmless_for(check.tools.major, self._server_major)

        def on_line(line: str) -> None:
            self._output.watch(line)
            progress.on_line(line)
            if tool == "psql" and self._transaction is None and (named := transaction_mark(line)):
                # On record while psql runs on: a runner killed after its COMMIT is said to have
                # finished (job_store), not to have been rolled back. A record that cannot be written
                # has stopped the job (abort) and psql with it, its transaction rolled back.
                self._transaction, session = named
                with contextlib.suppress(JobFailed):
                    self.own(COMMITS, self._transaction, identity=session)

        code = await self.run_process(argv, env, on_line=on_line, stdin_chunks=stdin)
        progress.enter_phase("finishing")
        if self._output.connection_lost:
            # pg_restore counts every statement after a lost connection as an "ignored" error: it is a failure.
            raise ServerLost(f"{tool} lost its connection to server '{plan.target.label}' half way (the server "
                            f"stopped or the network failed){self._undo_note()}; log: {self.log_path}")
        if code != 0 and not self._output.errors_ignored:
            # Stopped at its first error (--exit-on-error): what to do about it, as a partial restore says it.
            raise JobFailed(f"{child_failed(tool, code, self.last_error())}{self._output.failure_hint()}"
                            f"{self._undo_note()}; log: {self.log_path}")

    async def _on_record_as_filled(self, name: str) -> None:
        """pg_restore --single-transaction into the empty database `name`: on record (FILLS) while it
        runs, for a dead runner's recovery to tell by what it holds whether the transaction committed
        ("failed, undone" was said of a database restored and committed). Without its OID (the server
        not answering now), not on record: pg_restore's own connection fails, and says so."""
        try:
            oid = await self.in_thread(database_oid, self.plan.target, self._maintenance_db(), name)
        except (PgBackupError, psycopg.Error):
            return
        if oid is not None:
            self.own(FILLS, name, identity=oid)

    def _script_failure(self, code: int) -> str:
        """Why pg_restore could not write a script into the job's temporary folder. Its rows' SQL is as
        big as the tables: a full disk there said only "could not write to output file: No space left
        on device", not which disk (the system temp dir, not the backups' nor the server's)."""
        assert self._workdir is not None
        full = self.disk_full(self._workdir.parent)
        if full:
            return (f"the disk holding {self._workdir.parent} is full ({full}): the tables' rows are written "
                    "there as SQL first; set TMPDIR to a folder with room for them")
        return self.child_failure(code)

    def _transaction_mark_file(self) -> Path:
        """The file psql runs first in the restore's one transaction: it says the transaction's id."""
        assert self._workdir is not None
        mark = self._workdir / "transaction.sql"
        mark.write_text(MARK_SQL)
        return mark

    async def _say_materialized_views(self) -> None:
        """After a data-only load: the target's materialized views, which it did not fill (restore_data.py)."""
        def note() -> str | None:
            with connect(self.plan.target, self.plan.dbname) as conn:
                return materialized_views_note(conn, self.plan.dbname)
        try:
            warning = await asyncio.to_thread(note)
        except (PgBackupError, psycopg.Error):
            return  # the rows are in; a note the server cannot give now is not worth failing for
        if warning:
            self._warnings.append(warning)
            self.log(warning, level="warning")

    def _undo_note(self) -> str:
        """What a failure leaves, said truthfully (the cleanup runs right after)."""
        plan = self.plan
        if self._created_database and plan.clean:
            return f"; '{plan.dbname}' is unchanged (the restore went into a new database)"
        if self._created_database:
            return ""  # what became of the new database: the cleanup says (Job.cleanup_note)
        if self._table_clean is not None or self._data_load is not None or plan.single_transaction:
            return f"; '{plan.dbname}' is unchanged (one transaction, rolled back)"
        return "; the target may be partly restored (use --single-transaction for all-or-nothing)"

    async def _record_identity(self, name: str) -> None:
        """Put the new database's OID on the job's record: a recovery after a dead runner drops a
        database of that name only if it is still this one, not one a DBA made since. Nothing is
        restored into it before: a database on record without its OID is one the recovery drops
        only while it is empty (job_cleanup.drop_job_database), as the job's still is."""
        try:
            oid = await asyncio.to_thread(database_oid, self.plan.target, self._maintenance_db(), name)
        except (PgBackupError, psycopg.Error) as exc:
            cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ServerLost(f"server '{self.plan.target.label}' did not answer after it created database "
                             f"'{name}' ({cause}); nothing was restored{self._undo_note()}") from None
        if oid is None:  # dropped by another session in between: nothing of the job's is there to restore into
            raise JobFailed(f"database '{name}' was gone right after it was created (another session dropped it); "
                            "nothing was restored")
        self.own("database", name, identity=oid)
        self._identity = oid

    async def _swap(self, restored: str) -> None:
        plan = self.plan
        # Its connection to the restored database would block the rename: held, it says what the swap
        # waits for, in place of the load's last line.
        progress = self._progress()
        await progress.hold("finishing")
        old = scratch_database_name("old")
        if not plan.keep_old:
            # A runner that dies right after the swap still drops it later: the database that is
            # plan.dbname now (its OID) is the one that will be `old`.
            current = await asyncio.to_thread(database_oid, plan.target, self._maintenance_db(), plan.dbname)
            self.own("database", old, identity=current)
        if self._identity is not None:
            # A runner killed after the swap commits must not be said to have failed and been undone,
            # when the target is the restored database and the one it replaced is dropped (recovery).
            self.own(SWAPPED_IN, plan.dbname, identity=self._identity, previous=old)
        # Not in_thread: a cancel that lands while the swap commits must not turn a done swap into "cancelled".
        try:
            await asyncio.to_thread(swap_databases, plan.target, self._maintenance_db(), restored, plan.dbname, old,
                                    self._canceller, self._say_from_thread, self._waiting_from_thread)
        except SwapRefused as refused:
            # Nothing renamed (refused, whatever the reason, or failed before its COMMIT): no database
            # is `old`, the target is not the restored one. On record, they had a later start say it
            # would drop a database that never was. Kept only when the COMMIT's outcome is not known.
            self.release("database", old)
            self.release(SWAPPED_IN, plan.dbname)
            if isinstance(refused, SwapCancelled):
                raise Cancelled() from None  # cancelled (130); the cleanup drops the restored copy
            raise
        progress.held_waiting(None)  # the swap's wait is over
        self._created_database = None
        self.release("database", restored)
        self.log(f"'{plan.dbname}' is now the restored database; the previous one is '{old}'")
        if plan.keep_old:
            self._kept_as = old
            self.log(f"kept the previous database as '{old}' (--keep-old): drop it when you no longer need it")
            return
        try:
            subscriptions = await asyncio.to_thread(subscriptions_note, plan.target, self._maintenance_db(), old,
                                                    plan.dbname)
            if subscriptions:
                self.log(subscriptions, level="warning")
            await asyncio.to_thread(drop_database, plan.target, self._maintenance_db(), old)
            self.log(f"dropped the previous database ('{old}')")
            self.release("database", old)
        except (PgBackupError, psycopg.Error) as exc:
            cause = (str(exc).strip().splitlines() or ["?"])[0]
            self.log(f"could not drop the previous database '{old}' ({cause}); it is dropped on a later start of "
                     "pgbackup-tui", level="warning")

    def _waiting_from_thread(self, what: str) -> None:
        """What the swap waits for (in a thread), for the job's progress, on the job's own loop."""
        self._on_loop(self._progress().held_waiting, what)

    def _say_from_thread(self, line: str) -> None:
        """A line logged for a step that runs in a thread (the swap), on the job's own loop."""
        self._on_loop(self.log, line)

    def _on_loop(self, call: Callable[[str], object], text: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(call, text)

    # -- cleanup -------------------------------------------------------------------------------
    def _cancel_now(self) -> None:
        super()._cancel_now()
        self._canceller.cancel()

    def stopped_said(self) -> str:
        """A restore has no partial output: what became of its target is its cleanup_note."""
        return "the job was stopped"

    def _in_one_transaction(self) -> bool:
        mode = self._restore_mode
        return mode in ("tables", "data") or (mode == "into" and self.plan.single_transaction)

    def _stop_writing_into(self) -> None:
        if self._writing_into is not None:
            self.release(WRITES_INTO, self._writing_into)
            self._writing_into = None

    async def _cleanup(self, state: JobState) -> None:
        self._drop_checksums()  # still running when the job failed before it was needed
        # A cancel, or a stop by abort() (a state write failed); a pg_restore failure's message says it (_undo_note).
        if self._writing_into is not None and (state == JobState.CANCELLED or self._fatal is not None):
            self.cleanup_note = (f"'{self._writing_into}' may be partly restored: pg_restore had begun writing into "
                                 "it (restore again with --clean, or use --single-transaction for all-or-nothing)")
        elif self._fatal is not None and self._in_one_transaction():
            # Stopped by abort() (its log or state unwritable): psql's transaction ended with its session.
            self.cleanup_note = f"the restore's transaction was rolled back: '{self.plan.dbname}' is as it was"
        timescale = self._timescale.after_cancel if self._timescale is not None else None
        if state == JobState.CANCELLED and timescale and not self._created_database:
            # Into a database that stays: whether it left TimescaleDB's restoring mode (a failure's line says it).
            self.cleanup_note = "; ".join(filter(None, (self.cleanup_note, timescale)))
        self._stop_writing_into()
        if self._maintenance is not None:  # a dry run, or a failure before the CREATE
            self._maintenance.close()
            self._maintenance = None
        if self._created_database and state in (JobState.FAILED, JobState.CANCELLED):
            name = self._created_database
            try:
                if await asyncio.to_thread(drop_database, self.plan.target, self._maintenance_db(), name):
                    self.log(f"dropped database '{name}' (created by this restore, which did not finish)")
                self.release("database", name)
                self.cleanup_note = f"the new database '{name}' was dropped"
                if state == JobState.CANCELLED and name != self.plan.dbname:  # a failure's line says it already
                    self.cleanup_note = f"'{self.plan.dbname}' is unchanged; {self.cleanup_note}"
            except (PgBackupError, psycopg.Error) as exc:
                cause = (str(exc).strip().splitlines() or ["?"])[0]
                # Still on record (owned): the next start of pgbackup-tui drops it once the server is back.
                self.cleanup_note = (f"the new database '{name}' could NOT be dropped ({cause}); it is dropped on a "
                                     "later start of pgbackup-tui, once the server answers and no lock holds it up")
                self.log(self.cleanup_note, level="error")
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self.release("path", self._workdir)

