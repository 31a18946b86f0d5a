"""What the dump job adds to the manifest once pg_dump has finished (schema 2, manifest.py).

In the job's runner, after pg_dump and before the archive gets its final name:
  - the checksum of the archive (of every file of a directory archive; checksums.py): one read;
  - each table's rows counted in the archive itself: these exact counts are what a drill
    compares a restored database with. A compressed custom archive was read while pg_dump wrote
    it (dump_verify.py: `read_back` holds its rows and checksum); otherwise here, after pg_dump,
    with `pg_restore --data-only --file=-` through a FIFO the job's own child writes (so a
    cancel stops it like pg_dump), or directly for a plain dump;
  - the TOC in brief (entries by kind) and the tables with rows and their size at dump time;
  - a short id, and the server's key (system identifier when readable, host, port).
No second read of the tables on the server: per-table checksums would need one (a full scan of
every table, on a production server, at every backup), which is not affordable by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import psycopg

from .archive_scan import RowCounter, count_rows_in_chunks, read_chunks
from .checksums import as_checksum, checksum_archive, new_digest
from .connect import Target, connect
from .errors import ArchiveError, JobFailed, PgBackupError
from .identifiers import parse_qualified_name
from .job_temp import owned_temp_dir
from .jobs import Job
from .manifest import Manifest, ServerKey, TableSummary, TocSummary, new_backup_id
from .pgtools import ClientTools
from .toc import Toc, write_list


def read_server_key(target: Target, dbname: str) -> ServerKey:
    """The server's system identifier (pg_control_system(): needs superuser or a grant; None when
    not readable), and the host and port the connection really used. Never fails."""
    try:
        with connect(target, dbname) as conn:
            return server_key_of(conn)
    except (PgBackupError, psycopg.Error):
        params = target.params
        return ServerKey(None, params.get("host"), params.get("port"))


def server_key_of(conn: psycopg.Connection) -> ServerKey:
    """read_server_key on a connection the caller has open (the dump's preflight)."""
    host, port = conn.info.host, str(conn.info.port)
    try:
        with conn.transaction():  # a refusal must not spoil the caller's transaction
            row = conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()
        system_id = row[0] if row else None
    except psycopg.Error:
        system_id = None
    return ServerKey(system_id, host, port)


def toc_summary(counts: dict[str, int], rows: dict[str, int], dump_tables: list[dict[str, Any]]) -> TocSummary:
    """Counts by kind, and every table with data: exact rows (counted in the archive) and bytes
    (on disk at dump time, from the dump's own totals)."""
    sizes: dict[str, int] = {}
    for record in dump_tables:
        with contextlib.suppress(Exception):
            sizes[str(parse_qualified_name(str(record["name"])))] = int(record.get("bytes") or 0)
    tables = [TableSummary(name, count, sizes.get(name), True) for name, count in sorted(rows.items())]
    return TocSummary(dict(sorted(counts.items())), tables)


def toc_counts(toc: Toc, only: list[int] | None = None) -> dict[str, int]:
    """The TOC's entries by kind; `only`: those of these dump ids (a selection's restore_list: what
    the backup holds, not what pg_dump wrote around it)."""
    wanted = set(only) if only is not None else None
    counts: dict[str, int] = {}
    for entry in toc.entries:
        if wanted is None or entry.dump_id in wanted:
            counts[entry.desc] = counts.get(entry.desc, 0) + 1
    return counts


async def count_rows_in_job(job: Job, tools: ClientTools, archive: Path, env: dict[str, str], encoding: str,
                            toc: Toc | None, restore_list: list[int] | None) -> dict[str, int]:
    """Rows per table in `archive` (a pg_dump archive), counted by the job's own pg_restore child."""
    work = owned_temp_dir(job, "pgbackup-count-")  # on record, then created
    fifo = work / "data.sql"
    os.mkfifo(fifo, 0o600)
    argv = [tools.pg_restore, "--data-only", "--file", str(fifo)]
    if restore_list is not None and toc is not None:
        listed = work / "restore.list"
        write_list(toc, set(restore_list), listed)
        argv.append(f"--use-list={listed}")
    argv.append(str(archive))
    result: dict[str, Any] = {}

    def reader() -> None:
        try:
            with fifo.open("rb") as handle:  # blocks until pg_restore opens it
                result["counter"] = count_rows_in_chunks(read_chunks(handle), encoding)
        except OSError as exc:
            result["error"] = exc

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        code = await job.run_process(argv, env)
    finally:
        if thread.is_alive() and "counter" not in result:
            with contextlib.suppress(OSError):  # pg_restore never opened it: let the reader end
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        await asyncio.to_thread(thread.join)
        shutil.rmtree(work, ignore_errors=True)
        job.release("path", work)
    counter = result.get("counter")
    if code != 0 or counter is None or not counter.complete:
        cause = (job.child_failure(code) if code != 0 else
                 f"reading its output failed: {result['error']}" if "error" in result else "its data ends half way")
        raise JobFailed(f"{archive}: the new archive does not read to the end (pg_restore: {cause})")
    return counter.rows


async def complete_manifest(job: Job, body: dict[str, Any], *, archive: Path, tools: ClientTools, toc: Toc | None,
                            plain: bool, encoding: str, target: Target, dbname: str,
                            read_back: dict[str, Any] | None = None,
                            server_key: ServerKey | None = None) -> dict[str, Any]:
    """The dump's manifest (`body`, schema 1 keys) with the schema 2 fields filled in.
    `read_back`: the checksums and rows already taken while pg_dump wrote (dump_verify.py);
    without it the archive is read here. `server_key`: already read by the caller."""
    manifest = Manifest.from_json(body)
    manifest.id = new_backup_id()
    read_back = read_back if toc is not None and not plain else None
    if read_back is not None and toc is not None and "rows" in read_back:
        manifest.checksums, rows = read_back["checksums"], read_back["rows"]
        counts = toc_counts(toc, manifest.restore_list)
    else:
        job.log("recording the backup: the checksum of the archive, and each table's rows counted in it")
        if plain or toc is None:  # plain SQL: the file is the data (and its "-- Name:" lines the TOC)
            digest, rows, counts = await job.in_thread(_plain_counts, archive, encoding)
            manifest.checksums = {"": digest}
        else:  # the checksum pass beside pg_restore's
            hashing = asyncio.ensure_future(asyncio.to_thread(checksum_archive, archive)) if read_back is None else None
            try:
                rows = await count_rows_in_job(job, tools, archive, target.child_env(), encoding, toc,
                                               manifest.restore_list)
            finally:  # never left running: it reads the archive the cleanup may remove
                checksums = await hashing if hashing is not None else (read_back or {}).get("checksums", {})
            manifest.checksums = checksums
            counts = toc_counts(toc, manifest.restore_list)
    manifest.toc = toc_summary(counts, rows, manifest.tables)
    if server_key is None:
        server_key = await job.in_thread(read_server_key, target, dbname)
    manifest.server_key = server_key
    return manifest.to_json()


def _plain_counts(path: Path, encoding: str) -> tuple[str, dict[str, int], dict[str, int]]:
    """A plain dump's checksum, rows and kinds of entries, in one read."""
    counter, digest = RowCounter(encoding), new_digest()
    with path.open("rb") as handle:
        for chunk in read_chunks(handle):
            digest.update(chunk)
            counter.feed(chunk)
    if not counter.complete:
        raise ArchiveError(f"{path}: ends inside a table's data")
    return as_checksum(digest), counter.rows, counter.kinds
