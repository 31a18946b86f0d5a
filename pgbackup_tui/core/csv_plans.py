"""Per-table CSV copies: the plans (what the user asked for) and the folder's layout. Pure: no I/O.

A CSV copy is one folder: `manifest.json`, `schema.sql` (what the tables need before their data:
schemas, types, domains, sequences, functions, the tables themselves), `schema-post.sql` (what is
better made after the data: indexes, constraints, foreign keys, triggers), and one CSV file per
table, with a header. Files are named from the table's schema and name so that any name gives a
safe, unique file name (csv_file_name); the manifest keeps the exact qualified name beside it.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .identifiers import QualifiedName, is_system_schema
from .plans import check_database_name

if TYPE_CHECKING:  # only for annotations: keeps the CLI's start free of psycopg
    from .connect import Target

MANIFEST_NAME = "manifest.json"
SCHEMA_PRE = "schema.sql"
SCHEMA_POST = "schema-post.sql"
CSV_FORMAT_VERSION = 1
EXPORT_KIND = "csv-export"
IMPORT_KIND = "csv-import"
# Bytes of a file name part before it is cut and given a hash: two parts, a dot and ".csv" stay
# well under NAME_MAX (255) even with a "-1a2b3c4d" for a case-insensitive clash.
_MAX_PART_BYTES = 100
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@dataclass(frozen=True)
class CsvExportPlan:
    """Export the data of some tables as CSV, with the schema they need, into one new folder."""

    target: Target
    dbname: str
    output: Path
    tables: tuple[QualifiedName, ...] = ()
    schemas: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "output", Path(self.output))  # a str when back from a job's spec
        # A table named twice (`--table t --table public.t`) is copied once: twice, the export wrote
        # its rows twice (a second file), and an import of the folder kept one of them.
        object.__setattr__(self, "tables", tuple(dict.fromkeys(self.tables)))
        object.__setattr__(self, "schemas", tuple(dict.fromkeys(self.schemas)))

    def validate(self) -> None:
        """Refuse what cannot run, before anything connects."""
        check_database_name(self.dbname)
        if not self.tables and not self.schemas:
            raise UsageError("csv export needs at least one --table (or --schema)")
        for name in self.tables:
            if is_system_schema(name.schema):
                raise UsageError(f"--table {name} is a system catalog: csv export copies user tables (an import "
                                 "would put its rows into the target's own catalog)")
        for schema in self.schemas:
            if is_system_schema(schema):
                raise UsageError(f"--schema {schema} is a system schema: csv export copies user tables")
        from .output_names import check_output_location  # here: output_names imports plans

        check_output_location(Path(self.output).expanduser().absolute())


@dataclass(frozen=True)
class CsvImportPlan:
    """Import a CSV copy's folder: its schema first, then each table's data in its own transaction."""

    source: Path
    target: Target
    dbname: str
    create: bool = False
    tables: tuple[QualifiedName, ...] = ()  # only these tables' data (default: all in the manifest)
    time_columns: tuple[tuple[QualifiedName, str], ...] = ()  # --time-column QNAME=COL: make it a hypertable

    def __post_init__(self) -> None:
        # Back from a job's spec (job_store.plan_from_json), paths and pairs come as JSON gives them.
        object.__setattr__(self, "source", Path(self.source))
        # A table named twice is imported once (twice, the job stopped on an internal error).
        object.__setattr__(self, "tables", tuple(dict.fromkeys(self.tables)))
        pairs: list[tuple[Any, Any]] = list(self.time_columns)
        object.__setattr__(self, "time_columns", tuple(
            (name if isinstance(name, QualifiedName) else QualifiedName(*name), str(column)) for name, column in pairs))

    def validate(self) -> None:
        check_database_name(self.dbname)
        source = Path(self.source)
        if not source.is_dir():
            raise UsageError(f"{source}: no such folder (give the folder csv export wrote)")
        if not (source / MANIFEST_NAME).is_file():
            raise UsageError(f"{source}: no {MANIFEST_NAME} there; is it a folder written by csv export?")
        wanted = [name for name, _ in self.time_columns]
        if len(set(wanted)) != len(wanted):
            raise UsageError("--time-column names a table twice")


# The server's own catalogs: pg_dump -t makes no schema for them, so an import COPYed their rows
# straight into the target's catalog of that name (a superuser may: pg_largeobject without its
# metadata, pg_authid's password hashes in a file...). Never a CSV copy's to carry.
def csv_file_name(table: QualifiedName, taken: set[str]) -> str:
    """A file name for `table`'s CSV, unique among `taken` (compared without case, for file
    systems that ignore it) and added to it: `schema.table.csv`, each part with every byte other
    than ASCII letters, digits, `_` and `-` written as %XX (so `.`, `/`, quotes and spaces cannot
    clash or escape the folder); a very long part is cut and given a hash of the whole name."""
    base = f"{_safe_part(table.schema)}.{_safe_part(table.name)}"
    name = f"{base}.csv"
    if name.lower() in taken:
        digest = hashlib.sha256(f"{table.schema}\0{table.name}".encode("utf-8", "surrogateescape")).hexdigest()
        name = f"{base}-{digest[:8]}.csv"
    taken.add(name.lower())
    return name


def _safe_part(part: str) -> str:
    raw = part.encode("utf-8", "surrogateescape")  # names of SQL_ASCII databases carry raw bytes
    text = "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in raw)
    if len(text) > _MAX_PART_BYTES:
        text = f"{text[:_MAX_PART_BYTES - 17]}~{hashlib.sha256(raw).hexdigest()[:16]}"
    return text


def parse_time_column(text: str) -> tuple[QualifiedName, str]:
    """`--time-column public.metrics=ts` -> (public.metrics, "ts"); the column is taken as written."""
    from .identifiers import parse_qualified_name

    table, sep, column = text.rpartition("=")
    if not sep or not table.strip() or not column.strip():
        raise UsageError(f"--time-column {text!r}: write TABLE=COLUMN, e.g. public.metrics=ts")
    return parse_qualified_name(table), column.strip()


def table_options(names: Iterable[object]) -> str:
    """`--table NAME …` for an import's "import the rest with" hint, each name quoted for the shell
    as SQL writes it: `--table "Sales & Ops"."Order Items"` pasted into a shell lost its quotes and
    ran `Ops.Order` in the background (`'"Sales & Ops"."Order Items"'`, as README writes it)."""
    return " ".join(f"--table {shlex.quote(str(name))}" for name in names)
