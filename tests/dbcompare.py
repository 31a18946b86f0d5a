"""What a database holds, in comparable form: schema, rows, sequences, large objects.

Used by the round-trip and selection tests to prove a restore is exact, with the real pg_dump and
psql, and nothing mocked.
"""

from __future__ import annotations

import re
import subprocess

from pgbackup_tui.core.pgtools import find_client_tools
from pgbackup_tui.core.sandbox import Sandbox

# pg_dump (15.14+, 16.10+, 17.6+) writes \restrict / \unrestrict lines with a random key per run.
_RESTRICT = re.compile(r"^\\(un)?restrict\b.*$", re.M)


def schema_sql(sandbox: Sandbox, dbname: str) -> str:
    """`pg_dump --schema-only` of the database, minus the per-run \\restrict key lines."""
    # The server's own major (not PATH's pg_dump: Debian's dispatcher, absent on other machines).
    pg_dump = find_client_tools(sandbox.major).pg_dump
    out = subprocess.run([pg_dump, "--schema-only", f"--dbname={sandbox.dsn(dbname)}"],
                         check=True, capture_output=True, text=True).stdout
    return _RESTRICT.sub("", out)


def user_tables(sandbox: Sandbox, dbname: str) -> list[str]:
    """Ordinary and partitioned tables and matviews, as schema.name (quoted where needed)."""
    out = sandbox.psql(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r','p','m') AND n.nspname NOT IN ('pg_catalog','information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1",
        dbname,
    )
    return [line for line in out.splitlines() if line]


def table_fingerprints(sandbox: Sandbox, dbname: str, tables: list[str] | None = None) -> dict[str, str]:
    """table -> "rows:md5 of all rows in a stable order"."""
    tables = tables if tables is not None else user_tables(sandbox, dbname)
    if not tables:
        return {}
    parts = [
        f"SELECT {sql_literal(t)}, count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') "
        f"FROM {t} x"
        for t in tables
    ]
    out = sandbox.psql(" UNION ALL ".join(parts), dbname)
    return dict(line.split("|", 1) for line in out.splitlines() if line)


def sequence_values(sandbox: Sandbox, dbname: str) -> dict[str, str]:
    out = sandbox.psql(
        "SELECT format('%I.%I', schemaname, sequencename), coalesce(last_value::text, 'null') "
        "FROM pg_sequences ORDER BY 1",
        dbname,
    )
    return dict(line.split("|", 1) for line in out.splitlines() if line)


def large_objects(sandbox: Sandbox, dbname: str) -> list[str]:
    """md5 of each large object's content (OIDs may differ between databases)."""
    out = sandbox.psql("SELECT md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY 1", dbname)
    return [line for line in out.splitlines() if line]


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
