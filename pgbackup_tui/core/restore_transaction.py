"""The one transaction of a restore run by psql (a table-level --clean, a data-only load, a plain
file with --single-transaction), named; and the one of pg_restore --single-transaction, which cannot be.

psql runs the restore's files as one transaction and the runner cannot write its record in the
same commit: killed after the COMMIT, before it recorded the end, its recovery said "failed, what it
had made is undone" over tables that were replaced. So the transaction says its id first (a NOTICE,
from a file psql runs before the others, or the first lines fed to it), the job puts it on its record
(job_store.COMMITS) while the restore runs, and a recovery asks the server what became of it
(txid_status, PostgreSQL 10+). pg_restore's transaction runs no SQL of ours: it fills a database
that was empty (job_store.FILLS), and what that database holds now says whether it committed (fill_status).
"""

from __future__ import annotations

import re
import time

import psycopg

from .connect import Target, connect
from .database_contents import database_is_empty
from .database_drops import oid_of

MARK_PREFIX = "pgbackup-tui: the restore runs in transaction"  # no quote: it goes into SQL
# client_min_messages may hide a NOTICE: raised to notice for this statement only, then put back
# to what the session had (SET LOCAL ... TO DEFAULT is the session's value, not the server's).
MARK_SQL = f"""SET LOCAL client_min_messages = notice;
DO $$BEGIN RAISE NOTICE '{MARK_PREFIX} % (session %)', txid_current(), pg_backend_pid(); END$$;
SET LOCAL client_min_messages TO DEFAULT;
"""
_MARK = re.compile(re.escape(MARK_PREFIX) + r" (\d+) \(session (\d+)\)")

ORPHAN_END_WAIT_S = 5  # for the ended session's rollback to show

COMMITTED, ABORTED, IN_PROGRESS, UNKNOWN = "committed", "aborted", "in progress", "unknown"


def transaction_mark(line: str) -> tuple[str, str] | None:
    """The transaction id and the session's pid a line of psql's stderr says (MARK_SQL's NOTICE), or None."""
    match = _MARK.search(line)
    return (match.group(1), match.group(2)) if match else None


def transaction_status(target: Target, maintenance_db: str, xid: str, pid: str | None) -> str:
    """COMMITTED, ABORTED, IN_PROGRESS, or UNKNOWN (too old for the server to say, or a server
    before 10). Asked after the job's runner died, and its psql with it: a session still in that
    transaction is ours, orphaned, and may not see its client gone while it waits for a lock. It is
    ended, which rolls back what has not committed, and the answer waited for a moment: the session
    of that pid still in that transaction (its xid is the transaction's own, without the epoch), no
    other. Raises (psycopg.Error) when the server cannot say now: asked again later."""
    with connect(target, maintenance_db) as conn:
        status = _status(conn, xid)
        if status == IN_PROGRESS and pid is not None:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = %s "
                         "AND backend_xid::text::bigint = mod(%s::bigint, 4294967296)", (int(pid), int(xid)))
            deadline = time.monotonic() + ORPHAN_END_WAIT_S
            while status == IN_PROGRESS and time.monotonic() < deadline:
                time.sleep(0.05)
                status = _status(conn, xid)
    return status


def _status(conn: psycopg.Connection, xid: str) -> str:
    try:
        row = conn.execute("SELECT txid_status(%s::bigint)", (int(xid),)).fetchone()
    except (psycopg.errors.UndefinedFunction, psycopg.errors.InvalidParameterValue):
        return UNKNOWN  # a server before 10; an id "in the future" (another cluster now at that address)
    status = row[0] if row else None
    return status if status in (COMMITTED, ABORTED, IN_PROGRESS) else UNKNOWN


# Sessions in a database with a transaction that wrote (an xid): a killed pg_restore's, until its server
# process sees its client gone (at once in a COPY; after the statement it runs, else).
_WRITERS_IN = "SELECT count(*) FROM pg_stat_activity WHERE datid = %s::oid AND backend_xid IS NOT NULL"


def fill_status(target: Target, maintenance_db: str, name: str, oid: str | None) -> str:
    """Whether the one transaction that filled database `name` (of OID `oid`; empty when the restore
    began) committed, by what it holds now: COMMITTED (anything), ABORTED (nothing, with no transaction
    that wrote left open in it), IN_PROGRESS (one still open after ORPHAN_END_WAIT_S: the job's,
    whose client is gone, or another's), UNKNOWN (no such database now, or another one of that name).
    Raises (psycopg.Error) when the server cannot say now: asked again later."""
    with connect(target, maintenance_db) as conn:
        found = oid_of(conn, name)
        if found is None or (oid is not None and found != oid):
            return UNKNOWN
        deadline = time.monotonic() + ORPHAN_END_WAIT_S
        while (open_ := conn.execute(_WRITERS_IN, (found,)).fetchone()) and open_[0]:
            if time.monotonic() >= deadline:
                return IN_PROGRESS
            time.sleep(0.05)
    # Looked at once no writer is left: one that committed meanwhile is seen.
    with connect(target, name) as conn:
        return ABORTED if database_is_empty(conn) else COMMITTED
