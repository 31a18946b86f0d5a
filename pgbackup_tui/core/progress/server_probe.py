"""The server's word on a running job: ServerProbe polls `pg_stat_progress_copy` (and, for
restores, `pg_stat_progress_create_index`) and the lock waits of one job's backends, which are told
apart by their application_name (the job sets PGAPPNAME for its children; the probe's own
connection has a different name). It runs in a worker thread (asyncio.to_thread); one poll is one
round trip of a prepared statement. The first poll, over TCP, times the link on the same connection
(link.link_rate). ProgressTracker (tracker.py) runs it and applies what it saw.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass

import psycopg

from ..connect import Target, connect
from .items import TAIL_FRACTION
from .priors import INDEX_SORT_SHARE
from .link import link_rate

MIN_SERVER_VERSION = 140000  # pg_stat_progress_copy appeared in PostgreSQL 14
POLL_STATEMENT_TIMEOUT = "2s"
# 1 MiB in 15 s: links down to 70 KB/s are timed (a probe slower than 1 s is not repeated).
LINK_PROBE_TIMEOUT = "15s"

_COPY_ROWS = """
SELECT 'copy', p.pid, p.relid::int8, n.nspname, c.relname, p.command,
       p.tuples_processed, p.bytes_processed, 0::int8, 0::int8
FROM pg_stat_progress_copy p
JOIN pg_stat_activity a ON a.pid = p.pid
LEFT JOIN pg_class c ON c.oid = p.relid
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE a.application_name = %(app)s
"""
# For CREATE INDEX the index itself is not committed yet (its name cannot be seen from here):
# the table it is built on can.
_INDEX_ROWS = """
SELECT 'index', p.pid, p.relid::int8, n.nspname, c.relname, p.phase,
       p.blocks_done, p.blocks_total, p.tuples_done, p.tuples_total
FROM pg_stat_progress_create_index p
JOIN pg_stat_activity a ON a.pid = p.pid
LEFT JOIN pg_class c ON c.oid = p.relid
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE a.application_name = %(app)s
"""


# A backend of the job that waits for a lock (pg_dump behind an ALTER TABLE, an index build behind
# an autovacuum of the table just loaded): who holds it, so the pane can say why nothing moves.
# pg_blocking_pids runs only for the waiting rows (the WHERE clause comes first).
_LOCK_WAITS = """
SELECT 'wait', a.pid, NULL::int8, NULL::name, NULL::name,
       coalesce('a lock held by pid ' || b.pid || ' (' || coalesce(nullif(b.application_name, ''), b.backend_type)
                || ')', 'a lock'),
       0::int8, 0::int8, 0::int8, 0::int8
FROM pg_stat_activity a
LEFT JOIN LATERAL (SELECT x.pid, x.application_name, x.backend_type FROM pg_stat_activity x
                   WHERE x.pid = (pg_blocking_pids(a.pid))[1]) b ON true
WHERE a.application_name = %(app)s AND a.wait_event_type = 'Lock'
"""


@dataclass(frozen=True)
class BackendProgress:
    """One row of a progress view for one of the job's backends.

    copy: done = tuples_processed, total = 0, bytes = bytes_processed (COPY's text bytes).
    index: done/total = blocks (scanning) and tuples (sorting, loading) as the view gives them.
    wait: the backend waits for a lock; `phase` says whose ("a lock held by pid 42 (psql)").
    """

    kind: str  # copy | index | wait
    pid: int
    relid: int | None
    schema: str | None
    table: str | None
    phase: str  # COPY TO / COPY FROM, or the CREATE INDEX phase
    a: int
    b: int
    c: int
    d: int

    @property
    def tuples(self) -> int:
        return self.a

    @property
    def copy_bytes(self) -> int:
        return self.b

    @property
    def btree_past_scan(self) -> bool:
        """A btree build that has scanned its table: sorting, or loading the tree (other access
        methods report "building index" from start to end)."""
        return "sorting" in (self.phase or "") or "loading tuples" in (self.phase or "")

    def index_fraction(self, scan_share: float) -> float | None:
        """How far a CREATE INDEX is, in share of its time rather than of its tuples, given the share
        of its time the scan takes (then INDEX_SORT_SHARE sorting, the loading up to TAIL_FRACTION,
        the commit): a fraction that moves with time shows the build's speed from its first half
        second. The sort moves no counter: it counts half done while it runs (a fraction that stands
        still for its whole length would look like a build gone many times slower)."""
        blocks_done, blocks_total, tuples_done, tuples_total = self.a, self.b, self.c, self.d
        phase, sorted_share = self.phase or "", scan_share + INDEX_SORT_SHARE
        if "scanning table" in phase and blocks_total:
            return scan_share * blocks_done / blocks_total
        if "sorting" in phase:
            return scan_share + INDEX_SORT_SHARE / 2
        if "loading tuples" in phase and tuples_total:
            return sorted_share + (TAIL_FRACTION - sorted_share) * tuples_done / tuples_total
        return None  # initializing, validating, waiting for old snapshots: nothing to measure


class ProbeUnavailable(Exception):
    """The server's progress views cannot be used for this job (the reason is the message)."""


class ServerProbe:
    """Polls the progress views for the backends whose application_name is `watched_app`.

    poll() runs in a worker thread, close() on the event loop's: the lock keeps them apart. A
    connection is never closed under a running query; close() during a poll (stop() gave up
    waiting for it) leaves it to that poll, which closes it as it returns, and one opened after
    close() is closed at once."""

    def __init__(self, target: Target, dbname: str, watched_app: str, *, indexes: bool = False,
                 time_link: bool = False) -> None:
        """`time_link`: time the link (link_rate) on the connection as it opens."""
        self.target = target
        self.watched_app = watched_app
        self.watch(dbname, indexes=indexes)
        self.cpu_s = 0.0  # CPU time of the polling threads (client side), for the benchmark
        self.polls = 0
        self.timing_link = time_link  # until the first connection has timed it (or failed to)
        self.link_bps: float | None = None  # the link's rate, once timed
        self._conn: psycopg.Connection | None = None
        self._conn_db = dbname
        self._lock = threading.Lock()
        self._busy = False  # a poll runs (in its thread)
        self._closed = False  # close() was called: no connection any more

    def watch(self, dbname: str, *, indexes: bool) -> None:
        """Poll from `dbname` (the tables' names resolve there; the views themselves show every
        database's backends), index builds too with `indexes`. The connection moves at the next poll."""
        self.dbname = dbname
        self.query = " UNION ALL ".join([_COPY_ROWS, _LOCK_WAITS] + ([_INDEX_ROWS] if indexes else []))

    def poll(self) -> list[BackendProgress]:
        """One reading; raises ProbeUnavailable when the views cannot be read (any more)."""
        started = time.thread_time()
        with self._lock:
            if self._closed:
                raise ProbeUnavailable("the monitor was closed")
            self._busy = True
        try:
            if self._conn is not None and self._conn_db != self.dbname:
                self._drop()  # one connection at a time
            if self._conn is None:
                self._conn_db = self.dbname
                self._open()
            assert self._conn is not None
            rows = self._conn.execute(self.query, {"app": self.watched_app}, prepare=True).fetchall()
            self.polls += 1
            return [BackendProgress(*row) for row in rows]
        except psycopg.Error as exc:
            self._drop()
            lines = str(exc).strip().splitlines()
            raise ProbeUnavailable(lines[0] if lines else type(exc).__name__) from None
        finally:
            self._poll_over()
            self.cpu_s += time.thread_time() - started

    def _poll_over(self) -> None:
        with self._lock:
            self._busy = False
            if self._closed:  # close() came while this poll ran: it left the connection to us
                self._drop()

    def _open(self) -> None:
        """Connect to self.dbname as self._conn (set before anything else runs on it, so that
        close() finds it), timing the link first if it is still to be timed."""
        try:
            conn = connect(self.target, self.dbname, application_name=self.watched_app + "/monitor")
        except Exception as exc:  # ConnectError and friends: progress must not fail the job
            raise ProbeUnavailable(str(exc)) from None
        with self._lock:
            self._conn = conn
            if self._closed:  # stop() came while it connected
                self._drop()
                raise ProbeUnavailable("the monitor was closed")
        version = conn.info.server_version
        if version < MIN_SERVER_VERSION:
            self._drop()
            raise ProbeUnavailable(f"PostgreSQL {version // 10000} has no pg_stat_progress_copy (14 and later do)")
        if self.timing_link:
            # Before the poll's timeout, under one sized for the probe: 1 MiB over a link slower
            # than 0.5 MiB/s takes over the poll's 2 s, and a cancelled probe is an ERROR in the
            # server's log and no rate.
            try:
                conn.execute(f"SET statement_timeout = '{LINK_PROBE_TIMEOUT}'")
                self.link_bps = link_rate(conn)
                conn.execute(f"SET statement_timeout = '{POLL_STATEMENT_TIMEOUT}'")
            except psycopg.Error:  # the priors stay (unless it was timed); the connection may be gone: once more
                self.timing_link = False
                self._drop()
                self._open()
            finally:
                self.timing_link = False
            return
        conn.execute(f"SET statement_timeout = '{POLL_STATEMENT_TIMEOUT}'")

    def _drop(self) -> None:
        """Close the connection (by the thread that uses it, or when no poll runs)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        """No more polls: close the connection now, or, while a poll runs, as that poll returns."""
        with self._lock:
            self._closed = True
            if not self._busy:
                self._drop()
