"""What a dump will copy, taken before pg_dump starts (DumpJob's preflight, same connection).

The size on disk (heap + TOAST heap) and the expected rows of every table whose data the dump
copies: plain and partition tables (relkind r), minus extension members, temporary tables, tables
a selection or --exclude-table leaves out; none at all with --schema-only. Expected rows follow
the planner: reltuples / relpages scaled to the table's current size (-1 when never analyzed). A
table never analyzed (reltuples -1: freshly loaded or restored, autovacuum not there yet) takes
its expected rows from the cumulative statistics' live tuples instead, which every insert counts:
else a quick table the view never catches would end the dump (and its manifest) with 0 rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from ..identifiers import QualifiedName
from ..plans import DumpPlan

# pg_table_size opens the table (ACCESS SHARE): it waits behind an exclusive lock, which pg_dump
# would wait for as well -- but the wait belongs to pg_dump, not to our preflight. So the sizes
# are read under a short lock_timeout, and from the catalog (sizes as of the last VACUUM/ANALYZE)
# when a table is locked.
_SIZE_LOCK_TIMEOUT = "500ms"
# Heap + TOAST heap, without the free space and visibility maps (pg_table_size counts them: for a
# small table they are most of its "size", and none of its COPY time).
_SIZES_NOW = """(pg_relation_size(c.oid) + coalesce(pg_relation_size(t.oid), 0))::int8,
       c.reltuples::float8, c.relpages::int8, pg_relation_size(c.oid)::int8, pg_stat_get_live_tuples(c.oid)"""
_SIZES_FROM_CATALOG = """((c.relpages + coalesce(t.relpages, 0))::int8 * current_setting('block_size')::int8),
       c.reltuples::float8, c.relpages::int8, c.relpages::int8 * current_setting('block_size')::int8,
       pg_stat_get_live_tuples(c.oid)"""
_TABLES = r"""
SELECT c.oid::int8, n.nspname, c.relname, {sizes}
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
WHERE c.relkind = 'r' AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%%' AND n.nspname NOT LIKE 'pg\_temp%%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
  AND (%(only)s::oid[] IS NULL OR c.oid = ANY(%(only)s::oid[]))
  AND NOT c.oid = ANY(%(skip)s::oid[])
ORDER BY n.nspname, c.relname
"""
_RELATIONS = r"""
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%%'
"""
_LARGE_OBJECTS = "SELECT EXISTS (SELECT FROM pg_largeobject_metadata), pg_table_size('pg_largeobject')::int8"


@dataclass(frozen=True)
class TableSize:
    oid: int
    name: QualifiedName
    bytes: int  # heap + TOAST
    rows: int  # expected rows, -1 unknown


@dataclass(frozen=True)
class DumpInventory:
    """What a dump will copy, taken before it starts."""

    tables: tuple[TableSize, ...]
    relations: int  # relations in the database: pg_dump's catalog reading grows with them
    large_object_bytes: int | None = None  # None: the dump copies no large objects
    notes: tuple[str, ...] = field(default=())


def expected_rows(reltuples: float, relpages: int, heap_bytes: int, live_tuples: int | None = None) -> int:
    """The planner's estimate: tuples per page at the last ANALYZE times the pages now; for a table
    never analyzed, the statistics' live tuples (None or 0 with pages: unknown, -1)."""
    pages_now = heap_bytes / 8192
    if reltuples < 0:
        if live_tuples:
            return live_tuples
        return 0 if pages_now == 0 else -1
    if relpages > 0:
        return round(reltuples / relpages * pages_now)
    return 0 if pages_now == 0 else -1


def take_inventory(conn: psycopg.Connection, plan: DumpPlan, only_oids: frozenset[int] | None,
                   excluded_oids: set[int]) -> DumpInventory:
    """Sizes and expected rows of the tables `plan` dumps (`only_oids`: a selection's relations)."""
    relations = _one_row(conn, _RELATIONS, {})[0]
    if plan.schema_only:
        return DumpInventory((), relations)
    params = {"only": sorted(only_oids) if only_oids is not None else None, "skip": sorted(excluded_oids)}
    conn.execute(f"SET lock_timeout = '{_SIZE_LOCK_TIMEOUT}'")
    try:
        rows = conn.execute(_TABLES.format(sizes=_SIZES_NOW), params).fetchall()
    except psycopg.errors.LockNotAvailable:
        rows = conn.execute(_TABLES.format(sizes=_SIZES_FROM_CATALOG), params).fetchall()
    finally:
        conn.execute("SET lock_timeout = 0")  # as connect() left it: RESET would bring back the role's
    tables = tuple(TableSize(oid, QualifiedName(schema, name), size, expected_rows(reltuples, relpages, heap, live))
                   for oid, schema, name, size, reltuples, relpages, heap, live in rows)
    large_objects = None
    if not plan.is_selection:  # a selection is dumped with --no-blobs
        has_any, lo_bytes = _one_row(conn, _LARGE_OBJECTS)
        large_objects = lo_bytes if has_any else None
    return DumpInventory(tables, relations, large_objects)


def _one_row(conn: psycopg.Connection, query: str, params: dict[str, object] | None = None) -> tuple[Any, ...]:
    """The one row an aggregate query returns. None would be a server fault: raised as a psycopg
    error, which the dump's preflight turns into "no sizes" rather than a failed dump."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise psycopg.DataError(f"the server returned no row for: {' '.join(query.split())[:60]}")
    return row
