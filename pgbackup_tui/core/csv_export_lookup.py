"""What a CSV export copies, looked up before anything is written (csv_export.py's first step).

The tables named and those of the schemas named (the names checked as a selection dump checks
them: selection.py), less the partitions whose partitioned table is copied too (its file holds
their rows); each table's size and row estimate (the progress), its columns, its TimescaleDB time
dimension; the sequences and extensions the manifest lists.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from .connect import connect
from .csv_plans import CsvExportPlan
from .defaults import free_connections
from .errors import SelectionError
from .identifiers import QualifiedName
from .selection import TABLES_ONLY, lookup_relations, resolve_selection

# Partitions too: one whose partitioned table is copied as well is left to it (_UNDER_PARTITIONED),
# but one whose parent lives in a schema not exported is the only copy of its rows (`--schema parts`
# of public.m's partitions exported 0 tables, and its schema.sql made them: they came back empty).
_SCHEMA_TABLES = r"""
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s::text[]) AND c.relkind IN ('r', 'p')
  AND c.relpersistence <> 't'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
ORDER BY 1, 2
"""
# Heap + TOAST of the table and of what its COPY reads below it (partitions; a hypertable's chunks,
# `whole`), and its expected rows: the planner's, or the statistics' live tuples for a table never
# analyzed. A plain table's inheritance children are not: its COPY reads it alone (ONLY, _copy_one).
_SIZES = """
WITH RECURSIVE tree(root, relid, whole) AS (
    SELECT oid, oid, oid = ANY(%(whole)s::oid[]) FROM unnest(%(oids)s::oid[]) AS oid
    UNION ALL SELECT t.root, i.inhrelid, t.whole FROM tree t JOIN pg_inherits i ON i.inhparent = t.relid
    JOIN pg_class p ON p.oid = t.relid WHERE t.whole OR p.relkind = 'p'
)
SELECT t.root::int8,
       sum(pg_relation_size(c.oid) + coalesce(pg_relation_size(nullif(c.reltoastrelid, 0)), 0))::int8,
       sum(CASE WHEN c.relkind IN ('p', 'f') THEN 0 WHEN c.reltuples < 0 THEN pg_stat_get_live_tuples(c.oid)
                ELSE c.reltuples END)::int8
FROM tree t JOIN pg_class c ON c.oid = t.relid GROUP BY t.root
"""
# Tables of the list that are partitions (at any depth) of a partitioned table of the list, with
# it: the partitioned table's COPY reads their rows already, and its import routes them back.
_UNDER_PARTITIONED = """
WITH RECURSIVE up(relid, ancestor) AS (
    SELECT c.oid, i.inhparent FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
    WHERE c.oid = ANY(%(oids)s::oid[]) AND c.relispartition
    UNION ALL
    SELECT up.relid, i.inhparent FROM up JOIN pg_class a ON a.oid = up.ancestor AND a.relispartition
    JOIN pg_inherits i ON i.inhrelid = up.ancestor
)
SELECT DISTINCT ON (relid) relid::int8, ancestor::int8 FROM up WHERE ancestor = ANY(%(oids)s::oid[])
"""
# A plain table's inheritance children, and theirs: its COPY reads it alone (ONLY), but schema.sql
# makes them (they come along, as with a dump --table), so each is copied in a file of its own.
_INHERITORS = """
WITH RECURSIVE down(relid) AS (
    SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = ANY(%(oids)s::oid[])
    UNION SELECT i.inhrelid FROM down JOIN pg_inherits i ON i.inhparent = down.relid
)
SELECT n.nspname, c.relname FROM down JOIN pg_class c ON c.oid = down.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
ORDER BY 1, 2
"""
# The leaf partitions (at any depth) of the partitioned tables of the list, foreign ones included:
# a foreign partition's rows are on another server, which its COPY read through the FDW (and the
# import wrote back there). pg_dump copies no foreign table's data unless told to
# (--include-foreign-data): the partitioned table's file holds the rows of its other partitions.
_LEAVES = """
WITH RECURSIVE tree(root, relid) AS (
    SELECT oid, oid FROM unnest(%(oids)s::oid[]) AS oid
    UNION ALL SELECT t.root, i.inhrelid FROM tree t JOIN pg_inherits i ON i.inhparent = t.relid
)
SELECT t.root::int8, n.nspname, c.relname, c.relkind = 'f' FROM tree t JOIN pg_class c ON c.oid = t.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE t.relid <> t.root AND c.relkind IN ('r', 'f')
ORDER BY 2, 3
"""
# Columns a COPY FROM can fill: not dropped, not generated (the server computes those again).
_COLUMNS = """
SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
ORDER BY attnum
"""
# Sequences the tables use (owned by a column: serial, identity; or named in a default), and every
# sequence of an exported schema: its schema.sql creates them all, and each must go on from its value.
_SEQUENCES = """
SELECT DISTINCT n.nspname, s.relname FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND d.classid = 'pg_class'::regclass AND s.relkind = 'S'
JOIN pg_namespace n ON n.oid = s.relnamespace
WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY(%(oids)s::oid[]) AND d.deptype IN ('a', 'i')
UNION
SELECT n.nspname, s.relname FROM pg_attrdef ad
JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass
JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
JOIN pg_namespace n ON n.oid = s.relnamespace
WHERE ad.adrelid = ANY(%(oids)s::oid[])
UNION
SELECT n.nspname, s.relname FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
WHERE s.relkind = 'S' AND n.nspname = ANY(%(schemas)s::text[])
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = s.oid
                  AND e.deptype = 'e')
"""
# TimescaleDB 2.x: the first (time) dimension of every hypertable.
_HYPERTABLES = """
SELECT hypertable_schema::text, hypertable_name::text, column_name::text, time_interval::text, integer_interval
FROM timescaledb_information.dimensions WHERE dimension_number = 1
"""


@dataclass
class ExportTable:
    name: QualifiedName
    oid: int
    relkind: str
    size: int = 0
    rows_expected: int = -1
    columns: list[str] = field(default_factory=list)
    hypertable: dict[str, Any] | None = None
    file: str = ""
    # A partitioned table with foreign partitions: its COPY reads its other leaf partitions
    # (`local_leaves`), each ONLY; its `foreign_partitions` are left on their servers.
    local_leaves: list[QualifiedName] | None = None
    foreign_partitions: list[QualifiedName] = field(default_factory=list)


@dataclass
class ExportPreflight:
    server_version: str
    tables: list[ExportTable]
    encoding: str
    sequences: list[QualifiedName]
    extensions: list[dict[str, str]]
    free_connections: int | None = None  # this role's, once the look-up's own has closed (defaults.py)


RunningOn = Callable[[psycopg.Connection], contextlib.AbstractContextManager[object]]


def look_up_export(plan: CsvExportPlan, log: Callable[[str], object], *,
                   running_on: RunningOn | None = None) -> ExportPreflight:
    """The tables to copy (the plan's, and every table of its schemas; a partition whose partitioned
    table is copied too is left to it), with their sizes, columns and hypertable dimension, the
    sequences and extensions the manifest names; `log` says what was left out or found.
    `running_on(conn)`: held while the look-up's statements run (the job's StatementCanceller: a
    size waits for a lock another session holds on a table, and a cancel must not wait with it)."""
    with connect(plan.target, plan.dbname) as conn, \
            (running_on(conn) if running_on is not None else contextlib.nullcontext()):
        return look_up_on(conn, plan, log)


def look_up_on(conn: psycopg.Connection, plan: CsvExportPlan, log: Callable[[str], object], *,
               count_connections: bool = True) -> ExportPreflight:
    """look_up_export on `conn`: the export's data transaction reads it again, after its locks, in
    the snapshot its schema dump and its COPYs share (csv_export.py); there without the count of
    free connections (`count_connections`), whose failure would end the transaction."""
    row = conn.execute("SHOW server_version").fetchone()
    assert row is not None  # SHOW always returns one row
    # Checks every name as a selection dump does (one line naming the first missing one).
    resolve_selection(conn, list(plan.tables), plan.dbname, list(plan.schemas), takes=TABLES_ONLY)
    found = lookup_relations(conn, list(plan.tables))
    tables: list[ExportTable] = []
    for name in plan.tables:
        oid, relkind = found[name]
        if relkind not in ("r", "p"):
            what = {"v": "a view", "m": "a materialized view", "f": "a foreign table"}.get(relkind, relkind)
            raise SelectionError(f"--table {name} is {what}: csv export copies tables (name the tables it "
                                 "reads, or dump it with pgbackup-tui dump)")
        tables.append(ExportTable(name, oid, relkind))
    if plan.schemas:
        listed = {t.name for t in tables}
        extra = [QualifiedName(s, n) for s, n in conn.execute(_SCHEMA_TABLES, {"schemas": list(plan.schemas)})
                 if QualifiedName(s, n) not in listed]
        for name, (oid, relkind) in lookup_relations(conn, extra).items():
            tables.append(ExportTable(name, oid, relkind))
    under = conn.execute(_UNDER_PARTITIONED, {"oids": [t.oid for t in tables]}).fetchall()
    covered: dict[int, int] = dict(under)
    named = {t.oid: t.name for t in tables}  # before any is removed: the ancestor may go too
    for table in [t for t in tables if t.oid in covered]:
        parent = named[covered[table.oid]]
        if table.name in plan.tables:  # named: said; a --schema's partitions go with their parent unsaid
            log(f"{table.name}: a partition of {parent}, whose file holds its rows: not copied twice")
        tables.remove(table)
    hypertables = _hypertables(conn)
    # Not a hypertable's: its chunks are children its COPY reads (no ONLY).
    parents = [t.oid for t in tables if t.relkind == "r" and t.name not in hypertables]
    listed = {t.name for t in tables}
    children = [QualifiedName(s, n) for s, n in conn.execute(_INHERITORS, {"oids": parents})
                if QualifiedName(s, n) not in listed]
    for name, (oid, relkind) in lookup_relations(conn, children).items():
        log(f"{name}: a child table (INHERITS) of a table exported, which its schema.sql makes: copied too")
        tables.append(ExportTable(name, oid, relkind))
    tables.sort(key=lambda t: t.name)
    oids = [t.oid for t in tables]
    whole = [t.oid for t in tables if t.name in hypertables]
    sizes = {oid: (size, rows) for oid, size, rows in conn.execute(_SIZES, {"oids": oids, "whole": whole})}
    _foreign_partitions(conn, [t for t in tables if t.relkind == "p" and t.name not in hypertables], log)
    for table in tables:
        table.size, table.rows_expected = sizes.get(table.oid, (0, -1))
        table.columns = [r[0] for r in conn.execute(_COLUMNS, (table.oid,))]
        table.hypertable = hypertables.get(table.name)
        if table.hypertable:
            log(f"{table.name} is a hypertable (time column {table.hypertable['time_column']})")
    sequences = [QualifiedName(s, n) for s, n in conn.execute(
        _SEQUENCES, {"oids": oids, "schemas": list(plan.schemas)})]
    extensions = [{"name": n, "version": v} for n, v in conn.execute(
        "SELECT extname, extversion FROM pg_extension ORDER BY 1")]
    encoding_row = conn.execute("SHOW client_encoding").fetchone()
    assert encoding_row is not None
    free = free_connections(conn) if count_connections else None
    return ExportPreflight(row[0], tables, encoding_row[0], sorted(sequences), extensions,
                           None if free is None else free + 1)


def _foreign_partitions(conn: psycopg.Connection, partitioned: list[ExportTable], log: Callable[[str], object]) -> None:
    """Sets local_leaves and foreign_partitions of the `partitioned` tables that have foreign ones."""
    if not partitioned:
        return
    leaves: dict[int, list[tuple[QualifiedName, bool]]] = {}
    for root, schema, name, foreign in conn.execute(_LEAVES, {"oids": [t.oid for t in partitioned]}):
        leaves.setdefault(root, []).append((QualifiedName(schema, name), foreign))
    for table in partitioned:
        found = leaves.get(table.oid, [])
        table.foreign_partitions = [name for name, foreign in found if foreign]
        if table.foreign_partitions:
            table.local_leaves = [name for name, foreign in found if not foreign]
            log(f"{table.name}: its foreign partitions {', '.join(str(n) for n in table.foreign_partitions)} are "
                "not copied (their rows are on another server; csv export copies no foreign data, as pg_dump "
                "does not): the file holds the rows of its other partitions")


def _hypertables(conn: psycopg.Connection) -> dict[QualifiedName, dict[str, Any]]:
    """TimescaleDB hypertables by name, with their time column and chunk interval ({} without it)."""
    if not conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        return {}
    found = {}
    for schema, name, column, interval, integer_interval in conn.execute(_HYPERTABLES):
        found[QualifiedName(schema, name)] = {
            "time_column": column, "chunk_interval": interval if interval is not None else integer_interval}
    return found
