"""What a CSV import must respect of its target (csv_import.py): tables that exist, sequences, its server.

A second run (after a failure, or with `--table`) loads into tables whose schema is in place, its
foreign keys included, in a database that may be in use:

- the tables go in parents first, following the target's foreign keys (name order put a child
  before its parent, and every retry failed the same way);
- no sequence is moved back: setting every sequence of the export to its exported value reset
  those of tables the run did not touch, under rows the application had added since (duplicate
  keys on its next insert); forward, every one is set (a first run that failed half way set none).

And whatever the target: a SQL_ASCII database's export holds bytes of no declared encoding, which
COPY with `client_encoding = SQL_ASCII` stores unchecked, even into a UTF8 database (raw_bytes_into);
and its schema.sql, written by the pg_restore of the source's major, may SET what an older server
does not know (script_for_server).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from .errors import TargetError
from .identifiers import QualifiedName

# Intervals read in the style the export wrote them. No timeout of the role's or the database's (a
# statement_timeout of 1 s stopped a big table's COPY half way): connect() lifts them, as pg_restore does.
IMPORT_SESSION = "SET IntervalStyle = postgres"
_KEYS_BETWEEN = """
SELECT c.conrelid::int8, c.confrelid::int8 FROM pg_constraint c
WHERE c.contype = 'f' AND c.conrelid = ANY(%(oids)s::oid[]) AND c.confrelid = ANY(%(oids)s::oid[])
  AND c.conrelid <> c.confrelid
"""
def existing_sequences(conn: psycopg.Connection, names: list[QualifiedName]) -> set[QualifiedName]:
    """The sequences among `names` that exist."""
    rows = conn.execute(
        """SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN unnest(%s::text[], %s::text[]) AS w(s, r) ON w.s = n.nspname AND w.r = c.relname
           WHERE c.relkind = 'S'""", ([n.schema for n in names], [n.name for n in names])).fetchall()
    return {QualifiedName(s, r) for s, r in rows}


def in_key_order(conn: psycopg.Connection, oids: dict[QualifiedName, int]) -> list[QualifiedName]:
    """The tables of `oids` (in their order) with every table after those its foreign keys point at.
    Tables in a cycle of keys keep their order (their load fails on the first key, and says so)."""
    parents: dict[int, set[int]] = {oid: set() for oid in oids.values()}
    for child, parent in conn.execute(_KEYS_BETWEEN, {"oids": list(oids.values())}).fetchall():
        parents[child].add(parent)
    placed: set[int] = set()
    order: list[QualifiedName] = []
    waiting = list(oids)
    while waiting:
        ready = next((name for name in waiting if parents[oids[name]] <= placed), waiting[0])
        waiting.remove(ready)
        placed.add(oids[ready])
        order.append(ready)
    return order


# The leaf partitions (any depth) of a table, each foreign or not, with a foreign one's partition
# constraint (its ancestors' included): the rows COPY FROM routes to it.
_LEAVES = """
WITH RECURSIVE tree(relid) AS (
    SELECT %s::regclass::oid
    UNION ALL SELECT i.inhrelid FROM tree t JOIN pg_inherits i ON i.inhparent = t.relid
)
SELECT n.nspname, c.relname, c.relkind = 'f',
       CASE WHEN c.relkind = 'f' THEN pg_get_partition_constraintdef(c.oid) END
FROM tree t JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relispartition AND c.relkind IN ('r', 'f')
ORDER BY 1, 2
"""


@dataclass(frozen=True)
class ForeignPartitions:
    """A partitioned table's foreign partitions in the target: an import writes no row to their
    servers (the rows the export's file holds are its local partitions'; written through the FDW
    they went to the remote table, where the export may have read them from). `keep` is COPY FROM's
    WHERE clause for the rows no foreign partition takes; `local` its other leaf partitions."""

    names: list[QualifiedName]
    local: list[QualifiedName]
    keep: str


def foreign_partitions(conn: psycopg.Connection, table: QualifiedName) -> ForeignPartitions | None:
    """`table`'s foreign partitions (None when it has none)."""
    if conn.info.server_version < 100000:  # partitions (and relispartition) came with 10
        return None
    names, local, constraints = [], [], []
    for schema, name, foreign, constraint in conn.execute(_LEAVES, (table.sql,)):
        if foreign:
            names.append(QualifiedName(schema, name))
            # A row the partition would take is one its constraint is not false for (NULL passes a
            # partition's check, as a CHECK's): kept only when it is false.
            constraints.append(f"({constraint}) IS FALSE" if constraint else "false")
        else:
            local.append(QualifiedName(schema, name))
    if not names:
        return None
    return ForeignPartitions(names, local, " AND ".join(constraints))


def has_rows(conn: psycopg.Connection, table: QualifiedName) -> bool:
    """Whether `table` has rows here: in its foreign partitions' servers not looked at (not the
    import's, and a remote table in use had refused the import)."""
    return has_rows_besides(conn, table, foreign_partitions(conn, table))


def has_rows_besides(conn: psycopg.Connection, table: QualifiedName, foreign: ForeignPartitions | None) -> bool:
    """has_rows, where `table`'s foreign partitions (foreign_partitions') are known already."""
    if foreign is None:
        return conn.execute(f"SELECT EXISTS (SELECT FROM {table.sql})").fetchone() == (True,)
    return any(conn.execute(f"SELECT EXISTS (SELECT FROM ONLY {leaf.sql})").fetchone() == (True,)
               for leaf in foreign.local)


@dataclass(frozen=True)
class SequenceValue:
    last_value: int
    is_called: bool


def set_forward(conn: psycopg.Connection, name: QualifiedName, exported: SequenceValue) -> bool:
    """Set the sequence to its exported value unless that would move it back (the next value it
    gives would be one it gave already); False when it was left as it is."""
    row = conn.execute(f"SELECT last_value, is_called FROM {name.sql}").fetchone()
    step = conn.execute("SELECT seqincrement FROM pg_sequence WHERE seqrelid = %s::regclass", (name.sql,)).fetchone()
    assert row is not None and step is not None  # the sequence exists: existing_sequences found it
    increment = int(step[0])

    def next_value(value: SequenceValue) -> int:
        return value.last_value + increment if value.is_called else value.last_value

    now, then = next_value(SequenceValue(int(row[0]), bool(row[1]))), next_value(exported)
    if (then < now) if increment > 0 else (then > now):
        return False
    conn.execute("SELECT setval(%s::regclass, %s, %s)", (name.sql, exported.last_value, exported.is_called))
    return True


def raw_bytes_into(file_encoding: str, server_encoding: str | None) -> str | None:
    """The client encoding to load a SQL_ASCII export's files with into a database of
    `server_encoding`, or None to load them as `file_encoding` says.

    COPY FROM with client_encoding SQL_ASCII converts nothing and checks nothing (PostgreSQL 15 to
    18): bytes that are not UTF-8 went into a UTF8 database as they were, text the server then holds
    invalid (errors, or wrong results, on a later read, convert or dump). Loaded as the database's
    own encoding, the bytes still go in unchanged, but the server checks each is valid there: a row
    that is not fails its table, named with its line."""
    if file_encoding.upper() != "SQL_ASCII" or not server_encoding or server_encoding.upper() == "SQL_ASCII":
        return None
    return server_encoding


def set_sequences(conn: psycopg.Connection, sequences: list[dict[str, Any]], forward_only: bool,
                  log: Callable[..., object]) -> None:
    """The manifest's sequences at their exported values: exactly, or (`forward_only`: into tables
    that existed) none moved back. Every one, not only the loaded tables': a first run that failed
    half way set none, and its retry loads only the rest; forward only, so an application's values
    are kept."""
    present = existing_sequences(conn, [QualifiedName(s["schema"], s["name"]) for s in sequences])
    for seq in sequences:
        name = QualifiedName(seq["schema"], seq["name"])
        if name not in present:
            continue
        exported = SequenceValue(int(seq["last_value"]), bool(seq["is_called"]))
        if not forward_only:
            conn.execute("SELECT setval(%s::regclass, %s, %s)", (name.sql, exported.last_value, exported.is_called))
            continue
        try:
            moved = set_forward(conn, name, exported)
        except psycopg.errors.InsufficientPrivilege as exc:  # another's sequence, in a shared database
            log(f"sequence {name} left as it is: {str(exc).strip().splitlines()[0]}", level="warning")
            continue
        if not moved:
            log(f"sequence {name} is past its exported value already: left as it is")


def make_hypertables(conn: psycopg.Connection, todo: list[tuple[QualifiedName, dict[str, Any]]], dbname: str,
                     log: Callable[..., object]) -> None:
    """create_hypertable on each empty table of `todo` (name, {time_column, chunk_interval}), the
    extension first if the database lacks it (Timescale's procedure for a schema and data moved apart)."""
    if not conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        if not conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone():
            raise TargetError(f"{todo[0][0]} is a hypertable, but the server of '{dbname}' has no "
                              "TimescaleDB (install it there, or import without the hypertable)")
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        log(f"created extension timescaledb in '{dbname}' for the hypertables")
    for name, hypertable in todo:
        column, interval = hypertable["time_column"], hypertable.get("chunk_interval")
        args: list[Any] = [name.sql, column]
        sql = "SELECT create_hypertable(%s::regclass, %s::name"
        if interval is not None:
            sql += ", chunk_time_interval => %s::bigint" if isinstance(interval, int) else \
                ", chunk_time_interval => %s::interval"
            args.append(interval)
        conn.execute(sql + ", if_not_exists => true)", args)
        log(f"{name}: hypertable on {column}" + (f", chunks of {interval}" if interval else ""))


# What pg_restore 17+ writes at the head of every script it writes to a file (it cannot know the
# server the script will meet): unknown to 16 and older, where it stopped the schema's transaction
# before its first CREATE ("unrecognized configuration parameter"), so that no CSV copy of a 17+
# server (or one written with 17+'s client tools) could go into an older one.
_NEWER_SETTINGS = {b"SET transaction_timeout = 0;": 170000}
_BATCH_BYTES = 1 << 20


def script_for_server(script: Path, server_version: int) -> Iterator[bytes] | None:
    """`script`'s bytes without the settings a server of `server_version` (libpq's number) does not
    know, for psql's stdin; None when it has none of those (psql reads the file itself)."""
    unknown = {line for line, since in _NEWER_SETTINGS.items() if server_version < since}
    if not unknown:
        return None
    with open(script, "rb") as source:
        head = source.read(1 << 16)
    if not any(line in head for line in unknown):  # pg_restore writes them among its first lines
        return None

    def chunks() -> Iterator[bytes]:
        batch = bytearray()
        with open(script, "rb") as source:
            for line in source:
                if line.rstrip(b"\r\n") not in unknown:
                    batch += line
                if len(batch) >= _BATCH_BYTES:
                    yield bytes(batch)
                    batch.clear()
        yield bytes(batch)

    return chunks()
