"""The databases a restore makes, swaps and drops: each a short statement on a maintenance connection;
and the checks of its target before any of that.

A restore that creates a database (`--create`, or the database a whole-database `--clean` builds
beside the target) records its name at once, so that a failure or a cancel drops exactly that
one. The swap of a whole-database `--clean` renames both databases in one transaction: either the
target is the restored database and the old one has another name, or nothing changed.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator

import psycopg

from .connect import APP_NAME, Target, connect
from .database_props import DatabaseMaker, parse_database_script
from .errors import ConnectError, JobFailed, TargetError
from .identifiers import always_quote
from .database_contents import database_is_empty, extension_names
from .inspect import database_exists
from .restore_clean import require_no_sessions

Log = Callable[..., None]
CANCEL_REQUEST_TIMEOUT_S = 5  # libpq's cancel request to a server that does not answer
CANCEL_REQUESTS, CANCEL_AGAIN_S = 20, 0.5  # sent again while the step runs on (see StatementCanceller)


def require_primary(conn: psycopg.Connection, target: Target) -> None:
    """The server must take writes: a hot standby (in recovery) refuses every one of them. Asked
    before anything is made, so that a restore or an import onto one is refused in one line (exit
    2), not failed half way by its first statement with nothing on record to undo."""
    if conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,):
        raise TargetError(f"server '{target.label}' is a standby (in recovery, read-only) and takes no writes; "
                          "nothing was done: run this against its primary, or promote the standby first")


def require_free_name(target: Target, maintenance_db: str, name: str) -> psycopg.Connection:
    """--create: database `name` must not exist yet, on a server that takes writes. Returns the open
    connection to the maintenance database, for the CREATE DATABASE that follows (the caller closes it)."""
    conn = connect(target, maintenance_db)
    try:
        require_primary(conn, target)
        if database_exists(conn, name):
            raise TargetError(f"database '{name}' already exists on server '{target.label}'; pick a new name for "
                              "--create, or restore into it without --create (with --clean if it is not empty)")
    except BaseException:
        conn.close()
        raise
    return conn


def check_target(target: Target, maintenance_db: str, name: str, mode: str, *,
                 unproven_whole: tuple[str, frozenset[tuple[str, str]]] | None = None) -> str | None:
    """The target database is fit for a restore in `mode` (RestoreJob._mode), on a server that takes
    writes (require_primary): free for "create"; there for the others, without other sessions for
    "replace", empty for "into" ("data" checks its tables instead, restore_data.py). `unproven_whole`:
    for "replace", an archive nothing says is a whole database's (no manifest) and its tables
    (schema, name): see check_no_table_lost.
    Returns a line for the job's log: the extensions an empty database has, restored into as it is."""
    where = f"server '{target.label}'"
    if mode == "create":
        require_free_name(target, maintenance_db, name).close()
        return None
    with connect(target, maintenance_db) as conn:
        require_primary(conn, target)
        exists = database_exists(conn, name)
        if not exists and mode == "data":
            raise TargetError(f"database '{name}' does not exist on {where}; a data-only archive loads into the "
                              "tables of one that does: make it and its tables first (e.g. restore a "
                              "--schema-only backup with --create)")
        if not exists:
            raise TargetError(f"database '{name}' does not exist on {where}; add --create to create it")
        if mode == "replace":
            require_no_sessions(conn, name)
    if mode == "replace" and unproven_whole is not None:
        with connect(target, name) as conn:
            check_no_table_lost(conn, name, *unproven_whole)
    if mode == "into":
        with connect(target, name) as conn:
            if not database_is_empty(conn):
                raise TargetError(f"database '{name}' on {where} is not empty; add --clean to replace it (or, with "
                                  "--table, those tables), or restore into a new database with --create")
            if extensions := extension_names(conn):  # from template1, most often: the archive's are IF NOT EXISTS
                return (f"database '{name}' holds only extensions ({', '.join(extensions)}): restored into as an "
                        "empty one; the archive's CREATE EXTENSION IF NOT EXISTS leaves them as they are")
    return None


_USER_TABLES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
ORDER BY 1, 2
"""


def check_no_table_lost(conn: psycopg.Connection, name: str, archive: str,
                        archive_tables: frozenset[tuple[str, str]]) -> None:
    """A whole-database --clean replaces the database with what the archive holds. Without a
    manifest nothing says the archive is a whole database's: a selection's archive copied without
    its manifest, or a `pg_dump -t` made by hand, would leave the database with its few tables.
    Refused when the database has tables the archive does not hold."""
    lost = [(schema, table) for schema, table in conn.execute(_USER_TABLES).fetchall()
            if (schema, table) not in archive_tables]
    if not lost:
        return
    named = ", ".join(f"{always_quote(schema)}.{always_quote(table)}" for schema, table in lost[:3])
    more = f" and {len(lost) - 3} more" if len(lost) > 3 else ""
    raise TargetError(f"{archive} has no manifest, so nothing says it holds a whole database, and '{name}' has "
                      f"{len(lost)} table{'s' if len(lost) != 1 else ''} it does not hold ({named}{more}): --clean "
                      "would replace the database and drop them. Replace only the archive's tables with --clean "
                      "--table, restore into a new database with --create, or, if it is a whole database's dump, "
                      "record it with `pgbackup-tui backups adopt` first")


def scratch_database_name(purpose: str) -> str:
    """A name nobody uses, well under the 63-byte limit: pgbackup_new_1a2b3c4d."""
    return f"pgbackup_{purpose}_{secrets.token_hex(4)}"


def create_database(target: Target, maintenance_db: str, name: str, sql: bytes | None,
                    log: Log, *, conn: psycopg.Connection | None = None) -> DatabaseMaker | None:
    """CREATE DATABASE `name`: as pg_restore's --create SQL for the archive's database says (its
    encoding, locale, owner), or with the server's defaults from template0 when there is none.
    `conn`: an open connection to `maintenance_db` to do it on (closed here), else a new one."""
    try:
        script = parse_database_script(sql, name) if sql is not None else None
    except BaseException:
        if conn is not None:
            conn.close()
        raise
    if conn is not None and not _still_open(conn):
        conn = None  # closed meanwhile (idle_session_timeout, a restart, a pooler): a new one
    with conn if conn is not None else connect(target, maintenance_db) as conn:
        if script is None or script.create is None:
            try:
                conn.execute(f"CREATE DATABASE {always_quote(name)} TEMPLATE template0")
            except psycopg.errors.DuplicateDatabase:
                raise TargetError(f"database '{name}' already exists (created since the restore checked); "
                                  "nothing was restored") from None
            log(f"created database '{name}' with the server's defaults")
            return None
        maker = DatabaseMaker(script)
        maker.create(conn, name)
    log(f"created database '{name}': {script.summary()}")
    return maker


def _still_open(conn: psycopg.Connection) -> bool:
    """Whether a connection kept idle since the name's check still answers (closed if not)."""
    try:
        conn.execute("SELECT 1")
    except psycopg.Error:
        conn.close()
        return False
    return True


def own_database(target: Target, maintenance_db: str, maker: DatabaseMaker) -> None:
    """The archive's owner for a database that existed already (a set member into postgres)."""
    if maker.script.owner:
        with connect(target, maintenance_db) as conn:
            maker.own(conn)


class StatementCanceller:
    """The connection a step in a thread runs its statements on, for the job's cancel to interrupt
    the one running: a statement waiting for another session's lock (a DBA's open transaction on
    the shared catalog a database's comment goes to) held the cancel until that lock was let go."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None
        self.cancelled = False

    @contextlib.contextmanager
    def running_on(self, conn: psycopg.Connection) -> Iterator[None]:
        with self._lock:
            self._conn = conn
        try:
            yield
        finally:
            with self._lock:
                self._conn = None

    def was_cancelled(self) -> bool:
        """Whether cancel() has been called (read again after a step: another thread sets it)."""
        with self._lock:
            return self.cancelled

    def cancel(self) -> None:
        """Stop what runs now and what would come after (from any thread; never waits for the server)."""
        with self._lock:
            self.cancelled = True
            conn = self._conn
        if conn is not None:  # libpq's cancel request is a connection of its own: not on the caller's thread
            threading.Thread(target=self._cancel_while_running, args=(conn,), daemon=True).start()

    def _cancel_while_running(self, conn: psycopg.Connection) -> None:
        # Again while the step is still on this connection: a request that reached the server between
        # two statements (idle) was ignored, and the next one could wait for its lock as before.
        for _ in range(CANCEL_REQUESTS):
            with contextlib.suppress(psycopg.Error):
                conn.cancel_safe(timeout=CANCEL_REQUEST_TIMEOUT_S)
            time.sleep(CANCEL_AGAIN_S)
            with self._lock:
                if self._conn is not conn:
                    return


def finish_database(target: Target, maker: DatabaseMaker | None, name: str, log: Log,
                    canceller: StatementCanceller | None = None, application_name: str = APP_NAME) -> list[str]:
    """The database's own settings, comment and grants, once its contents are restored.
    Returns what could not be kept (one line each), also logged as warnings; stops at `canceller`'s cancel.
    `application_name`: the job's, for its progress to see (and say) a lock its statements wait for."""
    if maker is None:
        return []
    if maker.script.after:  # else nothing to set: no connection to open on the restore's path
        # In the database itself, as pg_restore --create does: a comment's text then reaches the
        # shared catalog in that database's encoding, byte for byte as it was dumped.
        canceller = canceller or StatementCanceller()
        with connect(target, name, application_name=application_name) as conn, canceller.running_on(conn):
            maker.finish(conn, lambda: canceller.cancelled)
    for line in maker.not_kept:
        log(f"not kept on '{name}': {line}", level="warning")
    return list(maker.not_kept)


OBJECT_IN_USE = "55006"  # ALTER DATABASE … RENAME of a database another session is connected to


class SwapRefused(JobFailed):
    """The swap failed before its COMMIT (the server refused a rename: a session on the target, a
    privilege; or the connection was lost before it): nothing was renamed, for certain."""


SWAP_WAIT_SAID_AFTER_S = 1.0  # a swap's rename still running by then waits for a lock: whose is said

_LOCK_HOLDERS = """
SELECT string_agg(b.pid || ' (' || coalesce(nullif(b.application_name, ''), b.backend_type) || ')', ', ')
FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids(%s))
"""


def _say_lock_holders(target: Target, maintenance_db: str, waiting_pid: int, current: str,
                      said: Callable[[str, str], None]) -> None:
    """Who holds up the swap's rename (a DBA's open transaction that touched the target's row in
    pg_database): said as a log line and as what the job's progress waits for (SwapWait)."""
    try:
        with connect(target, maintenance_db) as conn:
            row = conn.execute(_LOCK_HOLDERS, (waiting_pid,)).fetchone()
    except (ConnectError, psycopg.Error):
        return  # a note only: the swap goes on, or fails, and says so itself
    if row and row[0]:
        said(f"the swap of names waits for a lock on database '{current}' held by pid {row[0]}: it goes on once "
             f"that transaction ends; a cancel leaves '{current}' as it was",
             f"a lock held by pid {row[0]} on database '{current}', to swap in the restored copy")


class SwapCancelled(SwapRefused):
    """The job's cancel came before the swap's COMMIT: its renames were interrupted or rolled back."""


def swap_databases(target: Target, maintenance_db: str, restored: str, current: str, old: str,
                   canceller: StatementCanceller | None = None, log: Callable[[str], None] | None = None,
                   waiting: Callable[[str], None] | None = None) -> None:
    """`current` becomes `old` and `restored` becomes `current`, in one transaction. SwapRefused when
    nothing was renamed (SwapCancelled: by `canceller`'s cancel, which interrupts a rename waiting for
    a lock); JobFailed when the COMMIT's outcome is not known (its connection lost). `log` is told
    (a line) and `waiting` (what for, as a progress snapshot's `waiting` says it) who holds the lock
    a rename waits for."""
    # The whole restore is behind it: the job failed (exit 1), it was not the DBA's input (exit 2,
    # as a session on the target is refused before anything runs).
    said = f"could not put the restored database in the place of '{current}'"
    try:
        conn = connect(target, maintenance_db, autocommit=False)
    except (ConnectError, psycopg.Error) as exc:  # psycopg's: a statement of connect()'s own, after libpq's
        cause = (str(exc).strip().splitlines() or ["?"])[0]
        raise SwapRefused(f"{said} ({cause}); '{current}' is unchanged") from None
    canceller = canceller or StatementCanceller()
    with conn:
        try:
            # A rename waits for any lock on the database's row or object (a DBA's uncommitted GRANT
            # CONNECT or ALTER DATABASE, a CREATE DATABASE … TEMPLATE copying it), for as long as it is
            # held: the job's cancel interrupts it, which held Ctrl-C until the lock went, and then
            # replaced the target of a job its DBA had cancelled.
            with canceller.running_on(conn), _said_if_held_up(target, maintenance_db, conn, current, log, waiting):
                if canceller.cancelled:  # before running_on: no request would reach the renames
                    raise psycopg.errors.QueryCanceled("cancelled before the swap")
                conn.execute(f"ALTER DATABASE {always_quote(current)} RENAME TO {always_quote(old)}")
                conn.execute(f"ALTER DATABASE {always_quote(restored)} RENAME TO {always_quote(current)}")
        except psycopg.Error as exc:  # any refusal (not only a session's): rolled back, nothing renamed
            if canceller.cancelled:
                raise SwapCancelled(f"{said}: cancelled; '{current}' is unchanged") from None
            cause = (str(exc).strip().splitlines() or ["?"])[0]
            # A session that came to the target while the restore ran is what stops a rename most.
            hint = "; close its other sessions and start again" if exc.sqlstate == OBJECT_IN_USE else ""
            raise SwapRefused(f"{said} ({cause}); '{current}' is unchanged{hint}") from None
        # running_on has let go of the connection: a cancel from now on sends no request to it, and
        # one that came while the renames ran (they finished first) is honoured by not committing.
        if canceller.was_cancelled():
            conn.rollback()
            raise SwapCancelled(f"{said}: cancelled; '{current}' is unchanged")
        try:
            conn.commit()
        except psycopg.Error as exc:
            cause = (str(exc).strip().splitlines() or ["?"])[0]
            # Its connection lost during it: the server may have committed. The job's record keeps
            # both names, for a later start to ask the server which database is which.
            raise JobFailed(f"{said} ({cause}): whether the swap was done is not known; a later start of "
                            "pgbackup-tui looks at the server and settles it") from None


@contextlib.contextmanager
def _said_if_held_up(target: Target, maintenance_db: str, conn: psycopg.Connection, current: str,
                     log: Callable[[str], None] | None, waiting: Callable[[str], None] | None) -> Iterator[None]:
    """While the renames run: if they still do after SWAP_WAIT_SAID_AFTER_S, `log` says whose lock they
    wait for, and `waiting` is told it."""
    if log is None and waiting is None:
        yield
        return

    def said(line: str, what: str) -> None:
        if log is not None:
            log(line)
        if waiting is not None:
            waiting(what)

    note = _UntilDone(said)
    timer = threading.Timer(SWAP_WAIT_SAID_AFTER_S, _say_lock_holders,
                            args=(target, maintenance_db, conn.info.backend_pid, current, note.say))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        # cancel() does not stop a callback already started (asking the server who holds the lock):
        # its line came after the swap had committed, saying it waited. done() waits for a line being
        # written and lets none through after it.
        timer.cancel()
        note.done()


class _UntilDone:
    """Passes (line, what it waits for) to `said` until done(); done() returns once one being passed has been."""

    def __init__(self, said: Callable[[str, str], None]) -> None:
        self._said = said
        self._lock = threading.Lock()
        self._done = False

    def say(self, line: str, what: str) -> None:
        with self._lock:
            if not self._done:
                self._said(line, what)

    def done(self) -> None:
        with self._lock:
            self._done = True
