"""What a server holds: version, databases, schemas, tables with sizes, extensions.

Every function takes an open psycopg Connection and returns frozen, plain-data dataclasses
(each has `as_dict()` for JSON). Queries are static and parameterised: no name is ever
formatted into SQL. Supported servers: PostgreSQL 10 and newer (declarative partitioning).

Row estimates: `reltuples` is -1 for a table that was never vacuumed or analyzed (PG 14+).
TableInfo reports such a table with `estimated_rows = 0` and `rows_known = False`, so a sum
of estimates never goes negative and the UI can still show "?" instead of a false 0.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from .identifiers import QualifiedName, parse_qualified_name

# Schemas a user never means when picking what to back up: the catalogs, TOAST and temp
# schemas (pg_toast_temp_N starts with pg_toast), and TimescaleDB's internal schemas whose
# contents (chunks, catalog) only make sense through the extension. A constant, not user data.
_VISIBLE_SCHEMA = """
    n.nspname NOT IN ('pg_catalog', 'information_schema',
                      'timescaledb_information', 'timescaledb_experimental')
    AND n.nspname !~ '^(pg_toast|pg_temp_|_timescaledb_)'
"""

# The relations we list: ordinary, partitioned, materialized views, foreign tables.
_LISTED_RELKINDS = "('r', 'p', 'm', 'f')"


class _AsDict:
    def as_dict(self) -> dict:
        """A JSON-ready dict of the fields."""
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class ServerInfo(_AsDict):
    version_num: int  # server_version_num, e.g. 150018
    version: str  # server_version, e.g. "15.18 (Debian 15.18-0+deb12u1)"
    major: int  # 15; for 9.x servers this is 9 (see pgtools for why that is enough)
    current_user: str
    is_superuser: bool
    in_recovery: bool


@dataclass(frozen=True)
class DatabaseInfo(_AsDict):
    name: str
    size_bytes: int | None  # None when we may not CONNECT to it (pg_database_size would fail)
    owner: str
    encoding: str
    allow_connections: bool  # False for datallowconn = false and for half-dropped (invalid) dbs
    is_template: bool


@dataclass(frozen=True)
class SchemaInfo(_AsDict):
    name: str
    owner: str
    table_count: int  # the relations list_tables() shows for it (partitions included)


@dataclass(frozen=True)
class TableInfo(_AsDict):
    """A relation that holds (or gathers) rows.

    kind: "table", "partitioned" (also a sub-partitioned partition), "matview", "foreign",
    or "partition" (a leaf partition). `parent` is the parent's qualified name as SQL writes it
    for every partition, whatever its kind. data_bytes is heap + TOAST (what COPY reads);
    total_bytes adds indexes, FSM and VM. For a partitioned table or a hypertable both are
    the sums over everything below it, and so is estimated_rows.
    """

    schema: str
    name: str
    kind: str
    estimated_rows: int
    data_bytes: int
    total_bytes: int
    owner: str
    is_hypertable: bool = False
    parent: str | None = None
    rows_known: bool = True  # False when some part was never analyzed (estimate is a floor)

    @property
    def qualified(self) -> QualifiedName:
        return QualifiedName(self.schema, self.name)

    @property
    def parent_qualified(self) -> QualifiedName | None:
        return parse_qualified_name(self.parent) if self.parent else None

    def as_dict(self) -> dict:
        data = asdict(self)
        data["qualified"] = str(self.qualified)
        return data


@dataclass(frozen=True)
class ExtensionInfo(_AsDict):
    name: str
    version: str
    schema: str


def _rows(conn: psycopg.Connection, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> list[tuple]:
    # A tuple cursor whatever row factory the caller gave the connection.
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def server_info(conn: psycopg.Connection) -> ServerInfo:
    """Version, who we are and whether the server is a standby."""
    ((version_num, version, user, superuser, in_recovery),) = _rows(
        conn,
        """SELECT current_setting('server_version_num')::int, current_setting('server_version'),
                  current_user, current_setting('is_superuser') = 'on', pg_is_in_recovery()""",
    )
    return ServerInfo(
        version_num=version_num,
        version=version,
        major=version_num // 10000,
        current_user=user,
        is_superuser=superuser,
        in_recovery=in_recovery,
    )


def list_databases(conn: psycopg.Connection, include_templates: bool = False) -> list[DatabaseInfo]:
    """Databases by name; template0/template1 only when asked for."""
    # has_database_privilege() by OID returns NULL for a database dropped meanwhile, and
    # without CONNECT pg_database_size() raises; the CASE keeps both away from the size call.
    # datconnlimit = -2 marks a database whose DROP was interrupted (PG 15.4+): unusable.
    rows = _rows(
        conn,
        """SELECT d.datname,
                  CASE WHEN has_database_privilege(d.oid, 'CONNECT') THEN pg_database_size(d.oid) END,
                  pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding),
                  d.datallowconn AND d.datconnlimit <> -2, d.datistemplate
             FROM pg_database d
            WHERE %(templates)s OR d.datname NOT IN ('template0', 'template1')
            ORDER BY d.datname""",
        {"templates": include_templates},
    )
    return [DatabaseInfo(*row) for row in rows]


def list_schemas(conn: psycopg.Connection) -> list[SchemaInfo]:
    """User schemas with their owner and how many tables list_tables() shows in each."""
    rows = _rows(
        conn,
        f"""SELECT n.nspname, pg_get_userbyid(n.nspowner), count(c.oid)
              FROM pg_namespace n
              LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN {_LISTED_RELKINDS}
             WHERE {_VISIBLE_SCHEMA}
             GROUP BY n.oid, n.nspname, n.nspowner
             ORDER BY n.nspname""",
    )
    return [SchemaInfo(name, owner, int(count)) for name, owner, count in rows]


# One static query serves list_tables (optionally one schema) and find_tables (exact
# schema/name pairs). Sizes come from pg_relation_size & co, which return NULL for a relation
# dropped after the catalog scan, hence the coalesce. `tree` walks pg_inherits below every
# partitioned table and hypertable so that they report the data of their partitions/chunks.
_TABLES_QUERY = f"""
WITH RECURSIVE rels AS (
    SELECT c.oid, n.nspname, c.relname, c.relkind, c.relispartition, c.reltuples,
           c.reltoastrelid, c.relowner, c.relpages
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN {_LISTED_RELKINDS} AND {_VISIBLE_SCHEMA}
       AND (%(schema)s::text IS NULL OR n.nspname = %(schema)s::text)
       AND (%(schemas)s::text[] IS NULL
            OR (n.nspname, c.relname) IN (SELECT s, r FROM unnest(%(schemas)s::text[], %(names)s::text[]) AS u(s, r)))
), tree(root, relid) AS (
    SELECT r.oid, r.oid FROM rels r WHERE r.relkind = 'p' OR r.oid = ANY(%(hypertables)s::oid[])
    UNION ALL
    SELECT t.root, i.inhrelid FROM tree t JOIN pg_inherits i ON i.inhparent = t.relid
), sums AS (
    SELECT t.root,
           sum(coalesce(pg_relation_size(k.oid), 0)
               + coalesce(pg_relation_size(NULLIF(k.reltoastrelid, 0)), 0))::bigint AS data_bytes,
           sum(coalesce(pg_total_relation_size(k.oid), 0))::bigint AS total_bytes,
           coalesce(sum(greatest(k.reltuples, 0)) FILTER (WHERE k.relkind <> 'p'), 0)::bigint AS est_rows,
           coalesce(bool_and(k.reltuples >= 0) FILTER (WHERE k.relkind <> 'p'), true) AS rows_known
      FROM tree t JOIN pg_class k ON k.oid = t.relid
     GROUP BY t.root
)
SELECT r.nspname, r.relname, r.relkind, r.relispartition,
       coalesce(s.est_rows, greatest(r.reltuples, 0)::bigint),
       coalesce(s.rows_known, r.reltuples >= 0),
       coalesce(s.data_bytes, coalesce(pg_relation_size(r.oid), 0)
                              + coalesce(pg_relation_size(NULLIF(r.reltoastrelid, 0)), 0)),
       coalesce(s.total_bytes, pg_total_relation_size(r.oid), 0),
       pg_get_userbyid(r.relowner),
       r.oid = ANY(%(hypertables)s::oid[]),
       pn.nspname, pc.relname
  FROM rels r
  LEFT JOIN sums s ON s.root = r.oid
  LEFT JOIN pg_inherits i ON r.relispartition AND i.inhrelid = r.oid
  LEFT JOIN pg_class pc ON pc.oid = i.inhparent
  LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
 ORDER BY r.nspname, r.relname
"""

_KIND_BY_RELKIND = {"r": "table", "p": "partitioned", "m": "matview", "f": "foreign"}

# pg_relation_size & co open the relation (ACCESS SHARE): behind a table's exclusive lock (a long
# ALTER TABLE, a LOCK TABLE) the whole listing waited, and the tree said "loading…" until the lock
# went. After this long, the sizes come from the catalog instead (pages as of the last VACUUM or
# ANALYZE): a little off, at once.
SIZE_LOCK_TIMEOUT = "500ms"
_BLOCK = "current_setting('block_size')::bigint"
_TABLES_QUERY_FROM_CATALOG = re.sub(
    r"pg_total_relation_size\((\w)\.oid\)",
    lambda m: (f"(({m[1]}.relpages::bigint + coalesce((SELECT relpages FROM pg_class WHERE oid = "
               f"NULLIF({m[1]}.reltoastrelid, 0)), 0) + (SELECT coalesce(sum(i.relpages), 0) FROM pg_index x "
               f"JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = {m[1]}.oid)) * {_BLOCK})"),
    re.sub(r"pg_relation_size\(NULLIF\((\w)\.reltoastrelid, 0\)\)",
           lambda m: f"(SELECT relpages::bigint * {_BLOCK} FROM pg_class WHERE oid = NULLIF({m[1]}.reltoastrelid, 0))",
           re.sub(r"pg_relation_size\((\w)\.oid\)", lambda m: f"({m[1]}.relpages::bigint * {_BLOCK})",
                  _TABLES_QUERY)))


def _has_extension(conn: psycopg.Connection, name: str) -> bool:
    return bool(_rows(conn, "SELECT 1 FROM pg_extension WHERE extname = %s", (name,)))


def _hypertable_oids(conn: psycopg.Connection) -> list[int]:
    """OIDs of TimescaleDB hypertables; empty when the extension is absent or unreadable."""
    if not _has_extension(conn, "timescaledb"):
        return []
    try:
        # A savepoint (or a short transaction in autocommit mode): a failure here must not
        # abort the caller's transaction. Old TimescaleDB (1.x) named these columns differently.
        with conn.transaction():
            rows = _rows(
                conn,
                """SELECT c.oid
                     FROM timescaledb_information.hypertables h
                     JOIN pg_namespace n ON n.nspname = h.hypertable_schema::text
                     JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = h.hypertable_name::text""",
            )
    except psycopg.Error:
        return []
    return [oid for (oid,) in rows]


def _query_tables(
    conn: psycopg.Connection,
    schema: str | None = None,
    names: list[QualifiedName] | None = None,
) -> list[TableInfo]:
    params = {
        "schema": schema,
        "schemas": [n.schema for n in names] if names is not None else None,
        "names": [n.name for n in names] if names is not None else None,
        "hypertables": _hypertable_oids(conn),
    }
    if not conn.autocommit or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        # In the caller's own transaction, SET LOCAL would outlive the query
        rows = _rows(conn, _TABLES_QUERY, params)
    else:
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = '{SIZE_LOCK_TIMEOUT}'")
                rows = _rows(conn, _TABLES_QUERY, params)
        except psycopg.errors.LockNotAvailable:
            rows = _rows(conn, _TABLES_QUERY_FROM_CATALOG, params)
    tables = []
    for (nsp, rel, relkind, is_partition, est_rows, rows_known, data_bytes, total_bytes, owner,
         is_hypertable, parent_schema, parent_name) in rows:
        kind = "partition" if relkind == "r" and is_partition else _KIND_BY_RELKIND[relkind]
        parent = str(QualifiedName(parent_schema, parent_name)) if parent_name is not None else None
        tables.append(
            TableInfo(
                schema=nsp,
                name=rel,
                kind=kind,
                estimated_rows=int(est_rows),
                data_bytes=int(data_bytes),
                total_bytes=int(total_bytes),
                owner=owner,
                is_hypertable=bool(is_hypertable),
                parent=parent,
                rows_known=bool(rows_known),
            )
        )
    return tables


def list_tables(conn: psycopg.Connection, schema: str | None = None) -> list[TableInfo]:
    """Tables, partitioned tables, partitions, matviews and foreign tables, by schema and name.

    `schema` is an exact schema name (not a pattern); None lists every user schema.
    """
    return _query_tables(conn, schema=schema)


def find_tables(
    conn: psycopg.Connection, names: Iterable[QualifiedName]
) -> tuple[list[TableInfo], list[QualifiedName]]:
    """(found, missing) for exact schema/name pairs, to reject a --table before anything runs.

    `found` follows the order of `names` (duplicates collapsed); `missing` too. Views and
    sequences are not tables here, so they come back as missing.
    """
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return [], []
    by_name = {t.qualified: t for t in _query_tables(conn, names=wanted)}
    found = [by_name[n] for n in wanted if n in by_name]
    missing = [n for n in wanted if n not in by_name]
    return found, missing


def list_extensions(conn: psycopg.Connection) -> list[ExtensionInfo]:
    """Installed extensions (plpgsql included) with version and schema, by name."""
    rows = _rows(
        conn,
        """SELECT e.extname, e.extversion, n.nspname
             FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
            ORDER BY e.extname""",
    )
    return [ExtensionInfo(*row) for row in rows]


def database_exists(conn: psycopg.Connection, name: str) -> bool:
    """Whether a database of exactly this name exists on the server."""
    return bool(_rows(conn, "SELECT 1 FROM pg_database WHERE datname = %s", (name,)))
