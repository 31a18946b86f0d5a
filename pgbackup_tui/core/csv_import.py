"""The CSV import job: a folder csv export wrote, into a database.

Order (as pg_restore does it, and as Timescale documents for hypertables):
1. `--create`: the database, from template0 with the server's defaults (its name is on record at
   once: a failure or a cancel drops it, so the target ends as it was: no database).
2. `schema.sql` through psql, ON_ERROR_STOP, in one transaction: all of it or nothing. Skipped
   when every table to import exists already (a second run after a failure, with --table); each
   of those must be empty.
3. TimescaleDB: `create_hypertable` for the tables the manifest records as hypertables (or
   `--time-column TABLE=COL` names), on the empty tables, before their data.
4. Each table's data: `COPY … FROM STDIN WITH (FORMAT csv, HEADER)`, the file streamed in chunks,
   in a transaction of its own: a bad row rolls back that table only (it stays as it was, empty)
   and the error names the file and line; the tables imported before it stay imported. Into
   tables that existed, parents first by their foreign keys (csv_target.py).
5. Sequences are set to their exported values: exactly after schema.sql made them; into tables
   that existed, none moved back (csv_target.py).
6. `schema-post.sql` (indexes, constraints, foreign keys, triggers) in one transaction, after the
   data, so that triggers do not fire on the copied rows and foreign keys are checked once.
"""

from __future__ import annotations

import hashlib
import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg

from .connect import answered_note, connect, pinned, several_hosts
from .csv_plans import IMPORT_KIND, SCHEMA_POST, SCHEMA_PRE, CsvImportPlan, table_options
from .csv_target import (IMPORT_SESSION, ForeignPartitions, foreign_partitions, has_rows_besides,
                         in_key_order, make_hypertables, raw_bytes_into, script_for_server, set_sequences)
from .progress.csv import CsvProgress, TableWork
from .errors import JobFailed, PgBackupError
from .identifiers import QualifiedName, always_quote
from .job_store import IMPORT_COMMITS, IMPORT_TRANSACTION, IMPORTED_TABLE, WRITES_INTO
from .jobs import Cancelled, Job, JobState, Outcome
from .pgtools import ClientTools
from .database_drops import database_oid, drop_database
from .restore_target import StatementCanceller, create_database
from .csv_import_checks import import_preflight
from .csv_import_failures import copy_failure, newer_export, psql_line
from .csv_import_folder import ImportTable, header_problem, import_tables, read_manifest
from .selection import lookup_relations

CHUNK_BYTES = 1 << 20


class CsvImportJob(Job):
    kind = IMPORT_KIND

    def __init__(self, plan: CsvImportPlan) -> None:
        super().__init__(f"csv import into {plan.dbname} on {plan.target.label}", database=plan.dbname,
                         server=plan.target.label)
        self.plan = plan
        self._created: str | None = None  # the database --create made, until the job succeeds
        self.imported: list[QualifiedName] = []
        self.rows_differ: list[QualifiedName] = []  # imported, but not the rows the manifest counts: exit 3
        self.warnings: list[str] = []
        self._order: list[QualifiedName] = []  # the tables in the order they are loaded
        self._said_what_stays = False  # a failure's message named the tables imported (copy_failure)
        self._writing_into = False  # WRITES_INTO on record: the tables are being loaded into an existing database
        # A cancel interrupts the COPY running (the server may take long over a chunk: triggers, checks).
        self._canceller = StatementCanceller()
        self._free_connections: int | None = None  # this role's on the server and in the target (import_preflight)
        self._server_version = 0  # the target's, as libpq says it (170002); set by import_preflight
        self._exported_from = ""  # the export's server version ("18.6"), as its manifest says it
        self._raw_into: str | None = None  # a SQL_ASCII export's bytes loaded as this encoding (raw_bytes_into)
        # After the data, until done: what a cancel there leaves undone (_say_what_stays). The psql
        # to run schema-post.sql with while it is still to run; whether the sequences are set.
        self._post_left: ClientTools | None = None
        self._sequences_left = False

    async def _execute(self) -> Outcome:
        plan = self.plan
        plan.validate()
        if several_hosts(plan.target):  # its psql and its COPY sessions on the host that answered
            asked = plan.target
            self.plan = plan = replace(plan, target=await self.in_thread(pinned, asked, self._maintenance_db()))
            self.log(f"importing into server {plan.target.label}{answered_note(asked, plan.target)}")
        manifest = read_manifest(Path(plan.source))
        self._exported_from = str(manifest.get("server_version") or "")
        tables = import_tables(plan, manifest)  # the folder's own faults: said before anything is made
        folder = Path(plan.source)
        pre = await self.in_thread(import_preflight, plan, manifest, tables, self.log)
        tools, run_schema, run_post = pre.tools, pre.run_schema, pre.run_post
        self._free_connections, self._server_version = pre.free_connections, pre.server_version
        if not run_schema:  # into tables that exist, their foreign keys maybe in place: parents first
            tables = await self.in_thread(self._in_key_order, tables)
        self._order = [t.name for t in tables]
        progress = CsvProgress(self, [TableWork(t.file, str(t.name), t.size) for t in tables], by_bytes=True,
                               steps=("schema",) if run_schema else ())
        progress.enter_phase("schema")
        progress.start()
        self.progress_tracker = progress
        if plan.create:
            self.own("database", plan.dbname)  # on record before it exists
            try:
                await self.in_thread(create_database, plan.target, self._maintenance_db(), plan.dbname, None, self.log)
            except (PgBackupError, psycopg.Error):
                # No CREATE happened (a role without CREATEDB, the name taken since): not ours to drop. Left
                # on record, the next start dropped the database of that name the DBA made meanwhile.
                self.release("database", plan.dbname)
                raise
            self._created = plan.dbname
            oid = await self.in_thread(database_oid, plan.target, self._maintenance_db(), plan.dbname)
            if oid is not None:  # a recovery drops it only if it is still this one
                self.own("database", plan.dbname, identity=oid)
        if run_schema:
            await self._psql(tools, folder / SCHEMA_PRE, "the schema (schema.sql)")
        else:
            self.log("every table to import exists already (and is empty): schema.sql is not run")
        await self.in_thread(self._make_hypertables, tables)
        progress.enter_phase("data")
        # The server says when a COPY waits for another session's lock: the bar and the time left stand
        # still then, and the job says whose lock it is (the database exists by now).
        progress.watch_server_beside("the COPY", 1, self._free_connections, plan.target, plan.dbname)
        if self._created is None:
            # Said by a dead runner's recovery: the tables loaded before it died stay (job_store).
            self.own(WRITES_INTO, plan.dbname)
            self._writing_into = True
        changed = await self.in_thread(self._copy_tables, tables, manifest.get("encoding") or "UTF8", progress)
        progress.enter_phase("finishing")
        self._post_left, self._sequences_left = (tools if run_post else None), True
        # The sequences before schema-post.sql: one that fails (a duplicate under a key) leaves the data in,
        # and a retry is refused (the tables have rows): set after it, they stayed at 1 under the rows.
        await self.in_thread(self._set_sequences, manifest.get("sequences") or [], not run_schema)
        self._sequences_left = False
        if run_post:
            await self._psql(tools, folder / SCHEMA_POST, "indexes, constraints and triggers (schema-post.sql)",
                             after_data=True)
        self._post_left = None
        if self._created is not None:
            self.release("database", plan.dbname)
            self._created = None
        self._stop_writing_into()
        total = sum(t.size for t in tables)
        counted = "1 table" if len(tables) == 1 else f"{len(tables)} tables"
        message = f"imported {counted} into '{plan.dbname}' in {self.elapsed_s:.1f}s"
        if self.rows_differ:  # exit 3 (partial): the data is in, but not what the export wrote
            message += (f"; {len(self.rows_differ)} of them not as exported (the rows loaded differ from the "
                        f"export's count): {', '.join(str(t) for t in self.rows_differ)}")
        if self.warnings:  # in the message: every front shows it (stderr with --progress none, jobs show)
            message += "; warning: " + "; warning: ".join(self.warnings)
        return Outcome(message=message, bytes_written=total, errors_ignored=len(self.rows_differ),
                       details={"imported": [str(t) for t in self.imported], "changed_files": changed,
                                "rows_differ": [str(t) for t in self.rows_differ], "warnings": list(self.warnings)})

    # -- the target -------------------------------------------------------------------------------------
    def _maintenance_db(self) -> str:
        return self.plan.target.maintenance_db(self.plan.dbname)

    async def _psql(self, tools: ClientTools, script: Path, what: str, *, after_data: bool = False) -> None:
        plan = self.plan
        argv = [tools.psql, f"--dbname={plan.target.conninfo(plan.dbname)}", "--no-psqlrc", "--quiet",
                "--set=ON_ERROR_STOP=1", "--echo-errors", "--single-transaction", f"--file={script}"]
        # A newer pg_restore's SET an older server does not know: the script through stdin without it.
        chunks = script_for_server(script, self._server_version)
        if chunks is not None:
            argv[-1] = "--file=-"
        code = await self.run_process(argv, plan.target.child_env(self.application_name), stdin_chunks=chunks)
        if code != 0:
            if after_data and not plan.create:
                where = "the tables' data was imported and stays, the sequences set; none of "
            elif after_data:  # the database it made goes, data and all (the cleanup says so)
                where = "none of "
            else:
                where = "nothing of the import was done; none of "
            finish = ""
            if after_data and not plan.create:  # a retry is refused (the tables have rows): how to finish
                finish = f": fix what it says, then run it: {psql_line(plan, tools, script)}"
                self._post_left = None  # said here
            # How psql ended: a kill by a signal is not said by the last line a child printed.
            newer = newer_export(self._exported_from, self._server_version, plan.target.label)
            raise JobFailed(f"{what} failed: {self.child_failure(code)}{newer}; {where}{script.name} "
                            f"was kept (one transaction){finish}")

    def _make_hypertables(self, tables: list[ImportTable]) -> None:
        todo = [(t.name, t.hypertable) for t in tables if t.hypertable]
        if todo:
            with connect(self.plan.target, self.plan.dbname) as conn:
                make_hypertables(conn, todo, self.plan.dbname, self.log)

    def _copy_tables(self, tables: list[ImportTable], encoding: str, progress: CsvProgress) -> list[str]:
        """Each table's file in a transaction of its own; returns the files that changed since the export."""
        plan = self.plan
        folder = Path(plan.source)
        changed = []
        with connect(plan.target, plan.dbname, application_name=self.application_name) as conn:
            self._raw_into = raw_bytes_into(encoding, conn.info.parameter_status("server_encoding"))
            if self._raw_into:
                self.log(f"the files hold a SQL_ASCII database's bytes: loaded as {self._raw_into} without "
                         f"conversion, each checked to be valid {self._raw_into}")
            # The files' encoding (a SQL_ASCII export's bytes: the target's, so that the server checks them).
            conn.execute("SELECT set_config('client_encoding', %s, false)", (self._raw_into or encoding,))
            conn.execute(IMPORT_SESSION)
            conn.autocommit = False
            for table in tables:
                progress.table_started(table.file)
                self.log(f"importing {table.file} into {table.name}")
                try:
                    with self._canceller.running_on(conn):
                        digest, rows, foreign = self._copy_one(conn, table, folder / table.file, progress)
                except psycopg.Error as exc:
                    with contextlib.suppress(psycopg.Error):  # a lost session has nothing to roll back
                        conn.rollback()
                    if self._cancel_requested:  # the cancel's own interruption (QueryCanceled)
                        raise Cancelled() from None
                    said = copy_failure(plan, table, exc, imported=self.imported,
                                        remaining=self._remaining_after(table), raw_into=self._raw_into)
                    self._said_what_stays = True
                    raise JobFailed(said) from None
                except OSError as exc:  # the file went (moved, a mount gone) or cannot be read: said as internal
                    raise JobFailed(f"{folder / table.file}: cannot be read ({exc.strerror or exc}) (importing "
                                    f"{table.name}); {table.name} is as it was before (its transaction was rolled "
                                    "back)") from None
                self.imported.append(table.name)
                self.log(f"imported {table.name}: {rows} rows")
                if table.sha256 and digest != table.sha256:
                    changed.append(table.file)
                    self._warn(f"{table.file} changed since the export (its sha256 differs): imported as it is now")
                if foreign is not None and table.rows is not None and rows < table.rows:
                    self._warn(f"{table.name}: {table.rows - rows} rows of {table.file} belong in its foreign "
                               f"partitions ({', '.join(map(str, foreign.names))}): not written to their server "
                               "(csv import writes no foreign data, as pg_restore of a pg_dump does not)")
                elif table.rows is not None and rows != table.rows:
                    # The data is in, but not what was exported (a file cut short, or rows added by hand).
                    self.rows_differ.append(table.name)
                    self._warn(f"{table.name}: {rows} rows loaded from {table.file}, but the export wrote "
                               f"{table.rows}: not the exported data")
                if self._writing_into:
                    # On record for a dead runner's recovery, which names the tables that stay. A record
                    # that cannot be written has stopped the job (abort): its end names them instead.
                    with contextlib.suppress(JobFailed):
                        self.own(IMPORTED_TABLE, str(table.name))
                progress.table_finished(table.file, rows)
        return changed

    def _copy_one(self, conn: psycopg.Connection, table: ImportTable, path: Path,
                  progress: CsvProgress) -> tuple[str, int, ForeignPartitions | None]:
        """The file's rows into the table, in a transaction committed here: (its sha256, the rows
        loaded, the table's foreign partitions, whose rows stayed out)."""
        if problem := header_problem(path, table.columns, conn.info.encoding):  # changed since the job began
            raise JobFailed(problem)
        # No column list for a table without columns (or with generated ones only): `()` is a syntax error.
        columns = f" ({', '.join(always_quote(c) for c in table.columns)})" if table.columns else ""
        sql = f"COPY {table.name.sql}{columns} FROM STDIN WITH (FORMAT csv, HEADER)"
        digest = hashlib.sha256()
        done = 0
        with conn.transaction(), conn.cursor() as cur, open(path, "rb") as source:
            foreign = foreign_partitions(conn, table.name)
            if foreign is not None:  # the rows its foreign partitions would take stay out
                if self._server_version < 120000:  # COPY … WHERE came in 12
                    raise JobFailed(f"{table.name} has foreign partitions ({', '.join(map(str, foreign.names))})"
                                    " and a server older than 12 cannot leave their rows out of a COPY (csv import "
                                    "writes no foreign data): detach them, or import into a newer server")
                sql += f" WHERE {foreign.keep}"
            if self._writing_into:
                # Empty at the start, but a database in use may have written to it since (while the tables
                # before it loaded, or a second import of the folder): checked again, held so until the
                # commit. Rows were added on top of the application's (or twice) without a word.
                try:
                    with conn.transaction():  # a savepoint: the lock needs UPDATE, DELETE or TRUNCATE
                        cur.execute(f"LOCK TABLE {table.name.sql} IN SHARE ROW EXCLUSIVE MODE")
                except psycopg.errors.InsufficientPrivilege:
                    pass  # a role that may only insert: looked at again all the same, unlocked
                if has_rows_besides(conn, table.name, foreign):
                    raise JobFailed(f"{table.name} in '{self.plan.dbname}' has rows now (written since the import "
                                    "found it empty): left as it is; the import loads into empty tables only")
            with cur.copy(sql) as copy:
                while chunk := source.read(CHUNK_BYTES):
                    copy.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    progress.table_advanced(0, done)
                    if self._cancel_requested:
                        raise Cancelled()
            rows = max(cur.rowcount, 0)  # the server's count, once the COPY has ended
            if self._writing_into:
                # On record before the COMMIT: a runner killed after it, before the table is on record
                # as imported, is asked about by its recovery (job_store.IMPORT_COMMITS). A record that
                # cannot be written raises here, and the table's rows are rolled back with it.
                row = cur.execute("SELECT txid_current(), pg_backend_pid()").fetchone()
                if row is not None:
                    self.own(IMPORT_COMMITS, IMPORT_TRANSACTION, identity=f"{row[0]} {row[1]}",
                             previous=str(table.name))
        return digest.hexdigest(), rows, foreign

    def _warn(self, line: str) -> None:
        self.warnings.append(line)
        self.log(line, level="warning")

    def _remaining_after(self, table: ImportTable) -> list[QualifiedName]:
        return self._order[self._order.index(table.name) + 1:]

    def _in_key_order(self, tables: list[ImportTable]) -> list[ImportTable]:
        plan = self.plan
        with connect(plan.target, plan.dbname) as conn:
            found = lookup_relations(conn, [t.name for t in tables])
            order = in_key_order(conn, {t.name: found[t.name][0] for t in tables})
        by_name = {t.name: t for t in tables}
        return [by_name[name] for name in order]

    def _set_sequences(self, sequences: list[dict[str, Any]], forward_only: bool) -> None:
        """The sequences at their exported values: after schema.sql made them, exactly; into tables
        that existed (`forward_only`), none moved back (csv_target.py)."""
        if not sequences:
            return
        plan = self.plan
        with connect(plan.target, plan.dbname) as conn:
            set_sequences(conn, sequences, forward_only, self.log)

    async def _cleanup(self, state: JobState) -> None:
        if state in (JobState.SUCCEEDED, JobState.PARTIAL):
            return
        if self._created is None:
            self._say_what_stays()
            return
        name = self._created
        try:
            await self.in_thread_uncancellable(drop_database, self.plan.target, self._maintenance_db(), name)
        except Exception as exc:  # noqa: BLE001 - said in the result; dropped on a later start
            self.cleanup_note = (f"the database '{name}' it created could not be dropped yet ({exc}); "
                                 "a later start drops it")
            return
        self.release("database", name)
        self.cleanup_note = f"the database '{name}' it created was dropped"

    def _cancel_now(self) -> None:
        super()._cancel_now()
        self._canceller.cancel()

    def stopped_said(self) -> str:
        return "the job was stopped"  # what stays in the database: the cleanup_note

    def _say_what_stays(self) -> None:
        """Into a database that existed, each table is loaded in a transaction of its own: a cancel,
        or a failure after the copies began (a lost session), keeps those loaded before it."""
        self._stop_writing_into()
        if self._said_what_stays or not self._order:
            return
        done = [str(t) for t in self.imported]
        if not done:
            self.cleanup_note = f"no table was imported into '{self.plan.dbname}' (each is its own transaction)"
            return
        left = [str(name) for name in self._order if name not in self.imported]
        self.cleanup_note = (f"the tables imported into '{self.plan.dbname}' before it stopped stay (each is its own "
                             f"transaction): {', '.join(done)}")
        if left:
            self.cleanup_note += "; import the rest with " + table_options(left)
            return
        # Stopped after every table's data: a retry is refused (the tables have rows), so what is not
        # done is said (a cancel under schema-post.sql said only that the tables stay: no keys came).
        if self._sequences_left:
            self.cleanup_note += ("; the sequences were not set to the export's values (manifest.json's "
                                  "`sequences`): set them before the application inserts")
        if self._post_left is not None:
            run = psql_line(self.plan, self._post_left, Path(self.plan.source) / SCHEMA_POST)
            self.cleanup_note += (f"; {SCHEMA_POST} (indexes, constraints, foreign keys, triggers) did not run: "
                                  f"run it: {run}")

    def _stop_writing_into(self) -> None:
        if self._writing_into:
            for name in self.imported:  # said in the job's end from here (_say_what_stays)
                self.release(IMPORTED_TABLE, str(name))
            self.release(IMPORT_COMMITS, IMPORT_TRANSACTION)
            self.release(WRITES_INTO, self.plan.dbname)
            self._writing_into = False

    async def in_thread_uncancellable(self, func: Any, *args: Any) -> Any:
        import asyncio

        return await asyncio.to_thread(func, *args)
