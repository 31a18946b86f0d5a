"""What a CSV import checks of its target before anything is made (csv_import.py): a primary, the
database there or not as --create says, TimescaleDB for the hypertables, the tables all there and
empty or none there; the psql to run the schema with, and which of the schema's scripts to run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client_ssl import over_ssl, prefer_ssl
from .connect import connect
from .csv_import_folder import ImportTable
from .csv_plans import SCHEMA_PRE, CsvImportPlan
from .csv_target import has_rows
from .defaults import free_connections
from .errors import TargetError
from .identifiers import QualifiedName
from .pgtools import ClientTools, passed_over, psql_for_plain
from .restore_target import require_primary
from .selection import lookup_relations

_POST_DATA_THERE = """
SELECT EXISTS (SELECT FROM pg_index WHERE indrelid = ANY(%s::oid[]))
    OR EXISTS (SELECT FROM pg_constraint WHERE conrelid = ANY(%s::oid[]) AND contype IN ('p', 'u', 'f', 'x'))
    OR EXISTS (SELECT FROM pg_trigger WHERE tgrelid = ANY(%s::oid[]) AND NOT tgisinternal)
"""


@dataclass(frozen=True)
class ImportPreflight:
    tools: ClientTools  # the psql that runs schema.sql and schema-post.sql
    run_schema: bool  # schema.sql: not into tables that exist already
    run_post: bool  # schema-post.sql: not where an earlier import ran it
    free_connections: int | None  # this role's on the server and in the target (defaults.py)
    server_version: int  # the target's, as libpq says it (170002)


def import_preflight(plan: CsvImportPlan, manifest: dict[str, Any], tables: list[ImportTable],
                     log: Callable[..., None]) -> ImportPreflight:
    """The psql to run the schema with, whether to run schema.sql, and schema-post.sql, and what
    the target is (its free connections, its version); TargetError for a target that cannot take them.

    A second run (the tables exist: an earlier import failed, or imported other tables) runs
    schema-post.sql only while none of the folder's tables has an index, a constraint other
    than NOT NULL / CHECK, or a trigger yet: an earlier import that got that far ran it."""
    with connect(plan.target, plan.target.maintenance_db(plan.dbname)) as conn:
        require_primary(conn, plan.target)  # a standby: refused before --create puts a database on record
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (plan.dbname,)).fetchone()
        # Known before anything is made: a server without TimescaleDB cannot take the hypertables.
        timescale_here = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone() is not None
        free = free_connections(conn, plan.dbname)  # whether the monitor fits (defaults.py)
        server_version = conn.info.server_version
        ssl_in_use = over_ssl(conn)
    hypertable = next((t for t in tables if t.hypertable), None)
    if hypertable is not None and not timescale_here:
        raise TargetError(f"{hypertable.name} is a hypertable, but {plan.target.label} has no TimescaleDB "
                          "(install it there, or import without the hypertable)")
    if plan.create and exists:
        raise TargetError(f"database '{plan.dbname}' exists already on {plan.target.label}; drop --create to "
                          "import into it, or name a new database")
    if not plan.create and not exists:
        raise TargetError(f"database '{plan.dbname}' does not exist on {plan.target.label}; add --create")
    schema = Path(plan.source) / SCHEMA_PRE
    needs_restrict = b"\\restrict" in schema.read_bytes()[:1 << 16]
    tools = prefer_ssl(
        psql_for_plain(manifest.get("pg_dump_major"), plan.target.bin_dir, label=str(schema),
                       needs_restrict=needs_restrict),
        lambda accept: psql_for_plain(manifest.get("pg_dump_major"), plan.target.bin_dir, label=str(schema),
                                      needs_restrict=needs_restrict, accept=accept),
        plan.target, ssl_in_use, "psql", log)
    # --bin-dir (or the profile's) too old for the export's SQL: said, as a restore says it (it was silent).
    made_by = manifest.get("pg_dump_major")
    other = passed_over(tools, plan.target.bin_dir, made_by if isinstance(made_by, int) else None,
                        f"the export's pg_dump {made_by}")
    if other:
        log(other, level="warning")
    if plan.create:
        return ImportPreflight(tools, True, True, free, server_version)
    with connect(plan.target, plan.dbname) as conn:
        found = lookup_relations(conn, [t.name for t in tables])
        if not found:
            return ImportPreflight(tools, True, True, free, server_version)
        missing = [t.name for t in tables if t.name not in found]
        if missing:
            raise TargetError(f"{missing[0]} does not exist in '{plan.dbname}' but {next(iter(found))} does: "
                              "import into an empty database (or --create), or into one holding every table")
        for table in tables:
            if has_rows(conn, table.name):
                raise TargetError(f"{table.name} in '{plan.dbname}' has rows already; the import loads into "
                                  "empty tables only (truncate it, or import into another database)")
        everything = lookup_relations(conn, [QualifiedName(t["schema"], t["name"]) for t in manifest["tables"]])
        oids = [oid for oid, _ in everything.values()]
        row = conn.execute(_POST_DATA_THERE, (oids, oids, oids)).fetchone()
    return ImportPreflight(tools, False, not (row and row[0]), free, server_version)
