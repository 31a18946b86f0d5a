"""What a pg_dumpall job asks the server (dumpall.py): the databases it dumps, the bytes each
one's dump holds (for the progress), and the databases pg_dumpall passes over (for a warning)."""

# The databases pg_dumpall dumps (a user's template database too: template_postgis...); template1,
# whose contents its file holds as well, is a set member only when it holds anything. Its size
# only where the role may connect: pg_database_size refuses the others ('permission denied for
# database'), which stopped a role that is not superuser (a managed server's DBA) from dumping even
# the globals, or a set of the databases it may read.
DATABASES = """
SELECT datname, CASE WHEN has_database_privilege(oid, 'CONNECT') THEN pg_database_size(oid) ELSE 0 END::int8,
       has_database_privilege(oid, 'CONNECT')
FROM pg_database
WHERE datallowconn AND datconnlimit <> -2 AND datname NOT IN ('template0', 'template1') ORDER BY datname
"""
# What a database's dump holds, for its progress: its tables' and materialized views' heap and
# TOAST bytes and its large objects -- not its indexes nor its catalog, which pg_database_size counts
# (an empty database is 7 MB of catalog, and a big one's indexes can outweigh its tables).
DATA_SIZE = r"""
SELECT coalesce(sum(pg_table_size(c.oid)), 0)::int8 + pg_table_size('pg_largeobject')::int8
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'
"""
# The same from the catalog (pages as of the last VACUUM / ANALYZE), for when a table is locked:
# pg_table_size waits behind an exclusive lock, and the job could neither start nor be cancelled.
DATA_SIZE_FROM_CATALOG = r"""
SELECT coalesce(sum(c.relpages::int8 + coalesce(t.relpages, 0)), 0) * current_setting('block_size')::int8
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'
"""
# Databases pg_dumpall passes over (it dumps only those that accept connections), for a warning.
NOT_CONNECTABLE = "SELECT datname FROM pg_database WHERE NOT datallowconn AND datname <> 'template0' ORDER BY 1"
# A DROP DATABASE interrupted half way leaves its database invalid (datconnlimit -2, PG 15.4+): no one
# can connect to it, pg_dumpall passes over it without a word, and a set's pg_dump of it failed the set.
INVALID = "SELECT datname FROM pg_database WHERE datconnlimit = -2 ORDER BY 1"
SIZE_LOCK_TIMEOUT = "500ms"
TIMESCALE = "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"
