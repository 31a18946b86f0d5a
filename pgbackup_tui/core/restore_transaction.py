"""The one transaction of a restore run by psql (a table-level --clean, a data-only load), named.

psql runs the restore's files as one transaction and the runner cannot write its record in the
same commit: killed after the COMMIT, before it recorded the end, its recovery said "failed, what it
had made is undone" over tables that were replaced. So the transaction says its id first (a NOTICE,
from a file psql runs before the others), the job puts it on its record (job_store.COMMITS) while
the restore runs, and a recovery asks the server what became of it (txid_status, PostgreSQL 10+).
"""

from __future__ import annotations

import re
import time

import psycopg

from .connect import Target, connect

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
