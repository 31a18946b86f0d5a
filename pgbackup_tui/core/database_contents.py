"""What a database holds beyond a fresh CREATE DATABASE: whether a restore may go into it.

Objects created after initdb have OIDs >= FirstNormalObjectId (16384); what initdb puts into
template1 (plpgsql, information_schema, public) stays below. So anything at or above it in these
catalogs was made by someone, except temp schemas and what lives in them (another session's temp
tables are not part of the database's contents) and a `public` schema that was dropped and created
again (still the empty default a restore expects).

Extensions are apart. Many servers put one into template1 (pg_stat_statements, say), so every new
database has it: such a database is empty to a restore (the archive's `CREATE EXTENSION IF NOT
EXISTS` leaves it as it is). Their member objects (functions, types, an extension's own tables, and
what those have internally: row types, array types, TOAST tables, indexes) are not counted then.
"""

from __future__ import annotations

import psycopg
from psycopg.rows import tuple_row

# Every object that belongs to an extension, as (catalog, oid): its members (deptype 'e') and what
# they have of their own (deptype 'i' internal, 'a' auto: a table's row type, TOAST table, index).
_EXTENSION_OBJECTS = """
WITH RECURSIVE extension_objects(classid, objid) AS (
    SELECT classid, objid FROM pg_depend WHERE deptype = 'e' AND refclassid = 'pg_extension'::regclass
    UNION
    SELECT d.classid, d.objid FROM pg_depend d
      JOIN extension_objects e ON d.refclassid = e.classid AND d.refobjid = e.objid
     WHERE d.deptype IN ('i', 'a')
)"""

_COUNTS = """
, temp_ns AS (SELECT oid FROM pg_namespace WHERE nspname ~ '^(pg_temp_|pg_toast_temp_)')
SELECT 'schemas', count(*) FROM pg_namespace
 WHERE oid >= 16384 AND oid NOT IN (SELECT oid FROM temp_ns) AND nspname <> 'public' {schemas}
UNION ALL SELECT 'relations', count(*) FROM pg_class
 WHERE oid >= 16384 AND relnamespace NOT IN (SELECT oid FROM temp_ns) {relations}
UNION ALL SELECT 'types', count(*) FROM pg_type
 WHERE oid >= 16384 AND typnamespace NOT IN (SELECT oid FROM temp_ns) {types}
UNION ALL SELECT 'functions', count(*) FROM pg_proc
 WHERE oid >= 16384 AND pronamespace NOT IN (SELECT oid FROM temp_ns) {functions}
UNION ALL SELECT 'extensions', count(*) FROM pg_extension WHERE extname <> 'plpgsql' {extensions}
UNION ALL SELECT 'operators', count(*) FROM pg_operator WHERE oid >= 16384 {operators}
UNION ALL SELECT 'collations', count(*) FROM pg_collation WHERE oid >= 16384 {collations}
UNION ALL SELECT 'text search objects',
    (SELECT count(*) FROM pg_ts_config WHERE oid >= 16384 {ts_configs})
    + (SELECT count(*) FROM pg_ts_dict WHERE oid >= 16384 {ts_dicts})
UNION ALL SELECT 'casts', count(*) FROM pg_cast WHERE oid >= 16384 {casts}
UNION ALL SELECT 'foreign servers', count(*) FROM pg_foreign_server
UNION ALL SELECT 'event triggers', count(*) FROM pg_event_trigger WHERE true {event_triggers}
UNION ALL SELECT 'publications', count(*) FROM pg_publication
UNION ALL SELECT 'large objects', count(*) FROM pg_largeobject_metadata
"""

_CATALOGS = {"schemas": "pg_namespace", "relations": "pg_class", "types": "pg_type", "functions": "pg_proc",
             "operators": "pg_operator", "collations": "pg_collation", "ts_configs": "pg_ts_config",
             "ts_dicts": "pg_ts_dict", "casts": "pg_cast", "event_triggers": "pg_event_trigger"}


def _not_an_extension_s(catalog: str) -> str:
    return (f"AND (oid NOT IN (SELECT objid FROM extension_objects "
            f"WHERE classid = '{catalog}'::regclass))")


_ALL_OBJECTS = _EXTENSION_OBJECTS + _COUNTS.format(extensions="", **{kind: "" for kind in _CATALOGS})
_BESIDE_EXTENSIONS = _EXTENSION_OBJECTS + _COUNTS.format(
    extensions="AND false", **{kind: _not_an_extension_s(catalog) for kind, catalog in _CATALOGS.items()})


def _counts(conn: psycopg.Connection, query: str) -> dict[str, int]:
    with conn.cursor(row_factory=tuple_row) as cur:  # whatever row factory the caller gave the connection
        return {kind: int(count) for kind, count in cur.execute(query).fetchall() if count}


def user_object_counts(conn: psycopg.Connection) -> dict[str, int]:
    """What the connected database holds beyond a fresh CREATE DATABASE: {kind: count>0}, its
    extensions and their members included (template1's contents, which a new database copies).

    For messages like "database 'x' is not empty (12 relations, 3 functions)".
    """
    return _counts(conn, _ALL_OBJECTS)


def restore_collisions(conn: psycopg.Connection) -> dict[str, int]:
    """What the connected database holds that a restore into it could collide with: as
    user_object_counts, without extensions and their members. {} for a database to restore into."""
    return _counts(conn, _BESIDE_EXTENSIONS)


def database_is_empty(conn: psycopg.Connection) -> bool:
    """True when the connected database holds nothing a restore could collide with: no user schema,
    relation, type or function, nor any of the rarer objects (operators, casts, foreign servers,
    publications, large objects...). Extensions may be there (see the module's docstring)."""
    return not restore_collisions(conn)


def extension_names(conn: psycopg.Connection) -> list[str]:
    """The database's extensions but plpgsql, as 'name version'."""
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute("SELECT extname, extversion FROM pg_extension WHERE extname <> 'plpgsql' "
                           "ORDER BY extname").fetchall()
    return [f"{name} {version}" for name, version in rows]
