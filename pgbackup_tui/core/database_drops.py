"""Dropping a database a job made (or the one a --clean swapped out), and finding its OID.

A job records the OID of each database it makes, so that its own drop, or a later start's after
a dead runner (job_cleanup.py), drops that database and never one a DBA made of the same name
since. A drop is bounded by a lock timeout (a later start must not wait without end), and lets
go of the database's subscriptions first, which PostgreSQL would not drop it with.
"""

from __future__ import annotations

import psycopg

from .connect import Target, connect
from .database_contents import database_is_empty, extension_names
from .errors import ConnectError
from .identifiers import always_quote, quote_ident

DROP_LOCK_TIMEOUT_S = 10  # dropping a database another session's lock holds up: left for a later start


def database_oid(target: Target, maintenance_db: str, name: str) -> str | None:
    """The OID of database `name` (what a job records of a database it made), or None."""
    with connect(target, maintenance_db) as conn:
        return oid_of(conn, name)


def oid_of(conn: psycopg.Connection, name: str) -> str | None:
    """The OID of database `name` as text (as jobs record it), or None, on an open connection."""
    row = conn.execute("SELECT oid::int8 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return str(row[0]) if row else None


DROPPED, ABSENT, ANOTHER = "dropped", "absent", "another"


def _holds_anything(target: Target, name: str) -> bool:
    """Whether database `name` holds anything a job that had just made it could not have put there.
    A job that died between its record of a database's name (before the CREATE) and of its OID (right
    after it, before anything is restored into it) left a name only: the database of that name may be
    the job's, empty, or one a DBA made since, with their tables. One that cannot be looked into is
    not known to be the job's either."""
    try:
        with connect(target, name) as conn:
            return not database_is_empty(conn) or bool(extension_names(conn))
    except (ConnectError, psycopg.Error):  # connect() says a refusal (datallowconn, CONNECT) as ConnectError
        return True


def _has_sessions(conn: psycopg.Connection, name: str) -> bool:
    """Whether anyone is connected to database `name`: the dead job's own sessions ended with it, so
    one there now is a DBA's, maybe loading it in a transaction whose tables no one else sees yet.
    Clients only: an autovacuum worker visiting the job's empty database says nothing of who made it."""
    row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
                       "AND backend_type = 'client backend'", (name,)).fetchone()
    return bool(row and row[0])


def drop_database(target: Target, maintenance_db: str, name: str, *, oid: str | None = None) -> bool:
    """Drop `name`, disconnecting its sessions; False if there was no such database, or (`oid`
    given) if the database of that name is another one than the job made."""
    return drop_database_of(target, maintenance_db, name, oid=oid) == DROPPED


def drop_database_of(target: Target, maintenance_db: str, name: str, *, oid: str | None = None,
                     lock_timeout_s: float = DROP_LOCK_TIMEOUT_S, only_if_empty: bool = False) -> str:
    """drop_database, saying what it found: DROPPED, ABSENT (no such database) or ANOTHER (one of
    that name that is not the `oid` the job made: a DBA's, left alone). `only_if_empty`: without
    an `oid`, one that holds anything is ANOTHER too (see _holds_anything)."""
    with connect(target, maintenance_db) as conn:
        found = oid_of(conn, name)
        if found is None:
            return ABSENT
        if oid is not None and found != oid:
            return ANOTHER
        if oid is None and only_if_empty and (_has_sessions(conn, name) or _holds_anything(target, name)):
            return ANOTHER
        subscriptions = conn.execute("SELECT subname FROM pg_subscription WHERE subdbid = %s::oid",
                                     (found,)).fetchall()
        if subscriptions:
            let_go_of_subscriptions(target, name, [str(row[0]) for row in subscriptions], lock_timeout_s)
        # Bounded: a lock another session holds (on the shared catalogs a drop updates) must not hold
        # a cancel, or every command's start, without end; the job's record keeps it for a later start.
        conn.execute(f"SET lock_timeout = '{int(lock_timeout_s * 1000)}ms'")
        if conn.execute("SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)).fetchone() == (True,):
            # The previous database of a whole-database --clean of a template: "cannot drop a template
            # database", at the swap and at every later start, said each time, for ever.
            conn.execute(f"ALTER DATABASE {always_quote(name)} IS_TEMPLATE false")
        conn.execute(f"DROP DATABASE {always_quote(name)} WITH (FORCE)")
    return DROPPED


def subscriptions_note(target: Target, maintenance_db: str, old: str, restored: str) -> str:
    """What a whole-database --clean says of the subscriptions of the database it swapped out, which
    its drop lets go of (let_go_of_subscriptions): their slots stay on the publisher, which keeps WAL
    for them until a subscription takes them up again; "" when it has none."""
    with connect(target, maintenance_db) as conn:
        rows = conn.execute("SELECT d.datname, s.subname, s.subslotname FROM pg_subscription s JOIN pg_database d "
                            "ON d.oid = s.subdbid WHERE d.datname IN (%s, %s) ORDER BY 2", (old, restored)).fetchall()
    gone = [(str(sub), slot) for database, sub, slot in rows if database == old]
    if not gone:
        return ""
    named = ", ".join(f"{quote_ident(sub)} (slot {slot or 'none'})" for sub, slot in gone)
    copies = [quote_ident(str(sub)) for database, sub, _ in rows if database == restored]
    resume = (f"the restored '{restored}' has {', '.join(copies)} disabled (as pg_dump writes them): ALTER "
              "SUBSCRIPTION … ENABLE there to resume, or drop the slots on the publisher" if copies else
              "the backup held none: drop the slots on the publisher if nothing will take them up")
    return (f"the previous database's subscription(s) {named} are dropped with it, their slots kept on the "
            f"publisher, which keeps WAL for them; {resume}")


def let_go_of_subscriptions(target: Target, name: str, subscriptions: list[str],
                            lock_timeout_s: float = DROP_LOCK_TIMEOUT_S) -> None:
    """Drop the subscriptions of database `name`, which is about to be dropped, without touching
    their publisher: a database with one may not be dropped ("is being used by logical replication
    subscription", WITH (FORCE) or not). pg_dump keeps a database's subscriptions (connect = false,
    their slot's name kept), so every restore of one made it: the database a failed restore had
    created, a drill's scratch copy, and the previous database a --clean swapped out stayed for
    good, a later start failing to drop them each time. A plain DROP SUBSCRIPTION would connect to
    the publisher and drop the slot it names, which the subscription in production (or the restored
    database's copy) goes on with: each is disabled and let go of its slot's name first."""
    with connect(target, name) as conn:
        conn.execute(f"SET lock_timeout = '{int(lock_timeout_s * 1000)}ms'")  # bounded, as the drop is
        for subscription in subscriptions:
            ident = always_quote(subscription)
            conn.execute(f"ALTER SUBSCRIPTION {ident} DISABLE")
            conn.execute(f"ALTER SUBSCRIPTION {ident} SET (slot_name = NONE)")
            conn.execute(f"DROP SUBSCRIPTION {ident}")
