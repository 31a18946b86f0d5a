"""The CSV export job: some tables' data as CSV files, with the schema they need, in one folder.

Steps: check the names (the same selection as a dump) and take sizes (csv_export_lookup.py); reserve
`DIR.partial` (0700); the schema: a schema-only selection dump (the DumpJob itself, so the
closure is the very one a selection dump keeps: types, domains, sequences and functions in other
schemas) into a work archive, written out by pg_restore as `schema.sql` (pre-data) and
`schema-post.sql` (post-data, to run after the data); then every table's data through
`COPY (SELECT …) TO STDOUT WITH (FORMAT csv, HEADER)`, streamed in chunks to its file (never held
in memory), all tables in one REPEATABLE READ transaction so that they agree with each other (csv_export_snapshot.py);
the manifest; rename to DIR. A failure or a cancel leaves only the log.

Owners and privileges are left out of the schema (no_owner / no_privileges): the tables belong to
whoever imports them, as a per-table copy usually wants, and a target without the source's roles
still takes the schema.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from .connect import answered_note, connect, pinned, several_hosts
from .csv_export_lookup import ExportPreflight, ExportTable, look_up_export, look_up_on
from .csv_export_snapshot import EXPORT_SESSION, SchemaDump, as_in_snapshot, lock_statement
from .csv_plans import (CSV_FORMAT_VERSION, EXPORT_KIND, MANIFEST_NAME, SCHEMA_POST, SCHEMA_PRE, CsvExportPlan,
                        csv_file_name)
from .progress.csv import CsvProgress, TableWork
from .restore_target import StatementCanceller
from .errors import JobFailed, ToolNotFoundError, server_error_said
from .formatting import human_bytes
from .identifiers import always_quote
from .jobs import Cancelled, Job, JobState, Outcome
from .output_names import check_output_location, job_claim, put_in_place, remove_empty_folders, reserve_output
from .paths import write_private_file
from .plans import DumpPlan, partial_path
from .server_text import decode_listing
from .toc import parse_toc, write_list

# The data's connection held open beside the schema's pg_dump, and one to spare (a session just
# closed still counts until its backend exits): fewer free, the schema is dumped before the data.
SHARED_SNAPSHOT_CONNECTIONS = 3
CHUNK_BYTES = 1 << 20  # rows are gathered up to this much before a write: few syscalls, bounded memory


class CsvExportJob(Job):
    kind = EXPORT_KIND

    def __init__(self, plan: CsvExportPlan) -> None:
        super().__init__(f"csv export {plan.dbname} on {plan.target.label}", database=plan.dbname,
                         server=plan.target.label)
        self.plan = plan
        self._partial: Path | None = None
        self._created_folders: list[Path] = []
        self._child: Job | None = None
        # A cancel interrupts the statement running: the look-up's sizes and a COPY wait for a lock
        # another session holds on a table (a DBA's open transaction), and the cancel waited with them.
        self._canceller = StatementCanceller()

    async def _execute(self) -> Outcome:
        plan = self.plan
        plan.validate()
        started_at = datetime.now(UTC)
        if several_hosts(plan.target):  # its schema's pg_dump and its COPY sessions on the host that answered
            asked = plan.target
            self.plan = plan = dataclasses.replace(plan, target=await self.in_thread(pinned, asked, plan.dbname))
            self.log(f"exporting from server {plan.target.label}{answered_note(asked, plan.target)}")
        pre: ExportPreflight = await self.in_thread(self._preflight)
        final = Path(plan.output).expanduser().absolute()
        check_output_location(final)
        partial = partial_path(final)
        # On record before it (or a folder for it) exists: a runner that dies leaves no folder.
        reserve_output(final, directory=True, numbered=False, created=self._created_folders, claim=job_claim(self))
        self._partial = partial
        names: set[str] = set()
        for table in pre.tables:
            table.file = csv_file_name(table.name, names)
        progress = CsvProgress(self, [TableWork(t.file, str(t.name), t.size, t.rows_expected) for t in pre.tables],
                               by_bytes=False, steps=("schema",))
        progress.enter_phase("schema")
        progress.start()
        self.progress_tracker = progress

        # The schema and the data from one snapshot, taken after the data's locks: an ALTER TABLE ...
        # ADD COLUMN committed between the look-up and the COPY's lock gave schema.sql (pg_dump's own,
        # later, snapshot) a column the file lacked (the look-up's). pg_dump reads the data
        # transaction's exported snapshot, as pg_dump -j's workers do; where the role has no
        # connection to spare for it beside pg_dump's, the schema is dumped first and a table whose
        # columns changed before the locks fails the export instead (run it again).
        shared = pre.free_connections is None or pre.free_connections >= SHARED_SNAPSHOT_CONNECTIONS
        conn: psycopg.Connection | None = None
        try:
            if shared:
                conn, snapshot, pre = await self.in_thread(self._begin_data, pre, True)
                schema = await self._dump_schema(partial, snapshot)
            else:
                schema = await self._dump_schema(partial, None)
                conn, _, pre = await self.in_thread(self._begin_data, pre, False)
            assert conn is not None  # both ways open it
            progress.enter_phase("data")
            # The server says when a COPY waits for another session's lock: the bar and the time left
            # stand still then, and the job says whose lock it is.
            progress.watch_server_beside("the COPY", 1, pre.free_connections, plan.target, plan.dbname)
            files, sequences = await self.in_thread(self._copy_tables, conn, partial, pre, progress)
        finally:
            if conn is not None:
                conn.close()
        progress.enter_phase("finishing")
        for name in (SCHEMA_PRE, SCHEMA_POST):
            files[name] = _file_facts(partial / name)
        total = sum(facts["bytes"] for facts in files.values())
        manifest = {
            "kind": "csv", "csv_format_version": CSV_FORMAT_VERSION, "job_id": self.id,
            "server": plan.target.label, "server_version": pre.server_version, "database": plan.dbname,
            "pg_dump_version": schema["pg_dump_version"], "pg_dump_major": schema["pg_dump_major"],
            "encoding": pre.encoding,
            "started_at": started_at.isoformat(), "finished_at": datetime.now(UTC).isoformat(),
            "selection": {"tables": [str(t) for t in plan.tables], "schemas": list(plan.schemas)},
            "schema": {"pre_data": SCHEMA_PRE, "post_data": SCHEMA_POST},
            "added": schema["added"], "left_out": schema["left_out"],
            "extensions": pre.extensions,
            "tables": [{"schema": t.name.schema, "name": t.name.name, "qualified": str(t.name), "file": t.file,
                        "columns": t.columns, "rows": files[t.file]["rows"], "hypertable": t.hypertable,
                        **({"foreign_partitions_not_copied": [str(n) for n in t.foreign_partitions]}
                           if t.foreign_partitions else {})}
                       for t in pre.tables],
            "sequences": sequences,
            "files": files,
        }
        write_private_file(partial / MANIFEST_NAME, _json(manifest))
        put_in_place(partial, final)
        self.release("path", partial)
        self._partial = None
        rows = sum(files[t.file]["rows"] for t in pre.tables)
        return Outcome(message=f"{final} ({len(pre.tables)} tables, {rows} rows, {human_bytes(total)} "
                               f"in {self.elapsed_s:.1f}s)",
                       output_path=final, bytes_written=total,
                       details={"added": schema["added"], "left_out": schema["left_out"], "manifest": manifest})

    # -- before anything is written ---------------------------------------------------------------
    def _preflight(self) -> ExportPreflight:
        try:
            return look_up_export(self.plan, self.log, running_on=self._interruptible)
        except psycopg.Error:
            if self._cancel_requested:  # the cancel's own interruption (QueryCanceled)
                raise Cancelled() from None
            raise

    @contextlib.contextmanager
    def _interruptible(self, conn: psycopg.Connection) -> Iterator[None]:
        """`conn`'s statements stop at the job's cancel: one asked for before it was in the canceller's
        hands is seen here (the canceller had no statement to interrupt then)."""
        with self._canceller.running_on(conn):
            self.check_cancelled()
            yield

    # -- the schema -----------------------------------------------------------------------------------
    async def _dump_schema(self, partial: Path, snapshot: str | None) -> dict[str, Any]:
        """schema.sql and schema-post.sql from a schema-only selection dump (DumpJob's closure), in
        the data transaction's `snapshot` where there is one."""
        plan = self.plan
        archive = partial / ".schema.dump"
        dump_plan = DumpPlan(target=plan.target, dbname=plan.dbname, format="custom", tables=plan.tables,
                             schemas=plan.schemas, schema_only=True, no_owner=True, no_privileges=True,
                             output=archive, snapshot=snapshot)
        child = self._child = SchemaDump(dump_plan, self)
        try:
            result = await child.run()
        finally:
            self._child = None
        self.check_cancelled()
        if result.state != JobState.SUCCEEDED:
            # What stopped the schema's pg_dump before it ran (no pg_dump here new enough for the
            # server, the server gone) keeps its kind, and its exit code: 2, as `dump` says it.
            found = result.error
            kind = found if found is not None and issubclass(found, ToolNotFoundError) else JobFailed
            raise kind(f"the schema of the tables could not be dumped: {result.message}")
        pre = child.preflight
        assert pre is not None  # set by a run that succeeded
        listing, list_file = partial / ".schema.toc", partial / ".schema.list"
        env = plan.target.child_env(self.application_name)
        code = await self.run_process([pre.tools.pg_restore, "--list", str(archive)], env, stdout_path=listing)
        if code != 0:
            raise JobFailed(f"the schema archive does not read back: {self.child_failure(code)}")
        toc = parse_toc(decode_listing(listing.read_bytes(), pre.client_encoding))
        write_list(toc, set(result.details["manifest"]["restore_list"]), list_file)
        for section, name in (("pre-data", SCHEMA_PRE), ("post-data", SCHEMA_POST)):
            code = await self.run_process([pre.tools.pg_restore, f"--use-list={list_file}", f"--section={section}",
                                           "--no-owner", "--no-privileges", f"--file={partial / name}",
                                           str(archive)], env)
            if code != 0:  # how it ended: a signal's kill is not said by the last line a child printed
                raise JobFailed(f"writing {name} failed: {self.child_failure(code)}")
        for work in (archive, listing, list_file, archive.with_name(archive.name + ".manifest.json")):
            work.unlink(missing_ok=True)
        return {"added": result.details.get("added", []), "left_out": result.details.get("left_out", []),
                "pg_dump_version": pre.tools.version, "pg_dump_major": pre.tools.major}

    # -- the data ------------------------------------------------------------------------------------
    def _begin_data(self, pre: ExportPreflight,
                    export_snapshot: bool) -> tuple[psycopg.Connection, str | None, ExportPreflight]:
        """The data's transaction: its session settings, ACCESS SHARE on every table, then its snapshot
        (exported for pg_dump when `export_snapshot`), in which the tables and their columns are read
        again. Returns (the connection, the snapshot's name, `pre` with the columns and sequences of
        the snapshot). The tables changed since the look-up fail it (what was locked is not what the
        snapshot holds), and so do columns changed when the schema is not dumped in this snapshot."""
        plan = self.plan
        try:
            conn = connect(plan.target, plan.dbname, application_name=self.application_name, autocommit=False)
        except psycopg.Error:
            if self._cancel_requested:
                raise Cancelled() from None
            raise
        try:
            with self._interruptible(conn):
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                conn.read_only = True
                conn.execute(EXPORT_SESSION)
                if pre.tables:  # LOCK takes no snapshot: the next statement's begins after the locks
                    conn.execute(lock_statement(pre.tables))
                snapshot = None
                if export_snapshot:
                    row = conn.execute("SELECT pg_export_snapshot()").fetchone()
                    assert row is not None  # the function returns one row
                    snapshot = str(row[0])
                now = look_up_on(conn, plan, lambda _text: None, count_connections=False)
            return conn, snapshot, as_in_snapshot(pre, now, columns_may_change=export_snapshot)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, psycopg.Error) and self._cancel_requested:  # the cancel's QueryCanceled
                raise Cancelled() from None
            raise

    def _copy_tables(self, conn: psycopg.Connection, folder: Path, pre: ExportPreflight,
                     progress: CsvProgress) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """Every table's CSV, in the data transaction's snapshot; returns (file facts, sequence values)."""
        try:
            with self._interruptible(conn):
                return self._copy_in_snapshot(conn, folder, pre, progress)
        except psycopg.Error:
            if self._cancel_requested:  # the cancel's own interruption (QueryCanceled)
                raise Cancelled() from None
            raise

    def _copy_in_snapshot(self, conn: psycopg.Connection, folder: Path, pre: ExportPreflight,
                          progress: CsvProgress) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        files: dict[str, dict[str, Any]] = {}
        for table in pre.tables:
            self.log(f"copying {table.name} to {table.file}")
            progress.table_started(table.file)
            try:
                files[table.file] = self._copy_one(conn, table, folder / table.file, progress)
            except psycopg.Error as exc:
                raise self._copy_failed(table, exc) from None
            progress.table_finished(table.file)
            self.log(f"copied {table.name}: {files[table.file]['rows']} rows, "
                     f"{human_bytes(files[table.file]['bytes'])}")
        sequences = []
        for seq in pre.sequences:
            row = conn.execute(f"SELECT last_value, is_called FROM {seq.sql}").fetchone()
            assert row is not None  # a sequence has its one row
            sequences.append({"schema": seq.schema, "name": seq.name, "qualified": str(seq),
                              "last_value": int(row[0]), "is_called": bool(row[1])})
        conn.rollback()
        return files, sequences

    def _copy_one(self, conn: psycopg.Connection, table: ExportTable, path: Path,
                  progress: CsvProgress) -> dict[str, Any]:
        # ONLY for a plain table: its inheritance children are tables of their own. Not for a
        # partitioned table or a hypertable, whose rows live in their partitions or chunks.
        only = "ONLY " if table.relkind == "r" and table.hypertable is None else ""
        columns = ", ".join(always_quote(c) for c in table.columns)
        source = f"SELECT {columns} FROM {only}{table.name.sql}"
        if table.local_leaves is not None:  # not through its foreign partitions' FDW: its other leaves
            source = " UNION ALL ".join(f"SELECT {columns} FROM ONLY {leaf.sql}" for leaf in table.local_leaves) \
                or f"{source} WHERE false"
        sql = f"COPY ({source}) TO STDOUT WITH (FORMAT csv, HEADER)"
        digest = hashlib.sha256()
        written, rows = 0, -1  # the first message is the header
        buffer = bytearray()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with _naming(path), open(fd, "wb") as out, conn.cursor() as cur, cur.copy(sql) as copy:
            for data in copy:  # one message per row (the server sends them so)
                buffer += data
                rows += 1
                if len(buffer) >= CHUNK_BYTES:
                    out.write(buffer)
                    digest.update(buffer)
                    written += len(buffer)
                    buffer.clear()
                    progress.table_advanced(rows, written)
                    if self._cancel_requested:
                        raise Cancelled()
            out.write(buffer)
            digest.update(buffer)
            written += len(buffer)
        progress.table_advanced(max(rows, 0), written)
        return {"bytes": written, "sha256": digest.hexdigest(), "rows": max(rows, 0)}

    def _copy_failed(self, table: ExportTable, exc: psycopg.Error) -> Exception:
        """The server's error while copying `table`, named with it (one line said only "refused a
        statement"); the cancel's own interruption is the cancel; not the server's: as it was."""
        if self._cancel_requested:
            return Cancelled()
        said = server_error_said(exc, self.plan.target.label)
        if said is None:
            return exc
        if exc.sqlstate == "22P05":  # untranslatable_character: WIN1252's 0x81, in a UTF8 file
            said += ("; the database holds bytes UTF8 has no character for (the files are UTF8): fix those values, "
                     "or copy the table with pgbackup-tui dump, which keeps them")
        return JobFailed(f"copying {table.name} failed: {said}")

    # -- cancel and cleanup ------------------------------------------------------------------------
    def _cancel_now(self) -> None:
        super()._cancel_now()
        self._canceller.cancel()
        if self._child is not None:
            self._child.cancel()

    async def _cleanup(self, state: JobState) -> None:
        if state not in (JobState.SUCCEEDED, JobState.PARTIAL) and self._partial is not None:
            shutil.rmtree(self._partial, ignore_errors=True)
            self.release("path", self._partial)
            remove_empty_folders(self._created_folders)



@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """A write to a file opened from its descriptor fails without its name: a full disk was said as
    "the disk is full (No space left on device)", with no word of which disk (--output's)."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise


def _file_facts(path: Path) -> dict[str, Any]:
    """bytes and sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return {"bytes": size, "sha256": digest.hexdigest()}


def _json(data: dict[str, Any]) -> bytes:
    import json

    return json.dumps(data, indent=2, ensure_ascii=False, default=str).encode("utf-8", "surrogateescape")
