"""A csv export's folder as an import reads it: its manifest, the tables to import and their files.

Every fault of the folder (no manifest, a table or file missing, a header that is not the export's
columns in order, no schema.sql) is the user's to fix: said in one line (UsageError, exit 2)
before the import makes anything (csv_import.py).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .csv_plans import CSV_FORMAT_VERSION, MANIFEST_NAME, SCHEMA_PRE, CsvImportPlan
from .identifiers import is_system_schema
from .errors import UsageError
from .identifiers import QualifiedName
from .server_text import python_codec


@dataclass
class ImportTable:
    """One table to import: its file in the folder, its columns in order, as the manifest lists it."""

    name: QualifiedName
    file: str
    columns: list[str]
    size: int
    sha256: str | None
    hypertable: dict[str, Any] | None
    rows: int | None = None  # the rows the export wrote (None: a manifest that does not say)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The folder's manifest.json, as a csv export wrote it (UsageError: not one, or a newer one's)."""
    path = folder / MANIFEST_NAME
    try:
        data = json.loads(path.read_bytes().decode("utf-8", "surrogateescape"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror or exc}); is it a csv export's folder?") from None
    except ValueError as exc:
        raise UsageError(f"{path}: not readable as a csv export's manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != "csv" or not isinstance(data.get("tables"), list):
        raise UsageError(f"{path}: not a csv export's manifest")
    version = data.get("csv_format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise UsageError(f"{path}: csv_format_version is not a number ({json.dumps(version)}); {_BY_HAND}")
    if version > CSV_FORMAT_VERSION:
        raise UsageError(f"{path}: written by a newer pgbackup-tui (format {data.get('csv_format_version')}); "
                         "upgrade to import it")
    if problem := _shape_problem(data):
        raise UsageError(f"{path}: {problem}; {_BY_HAND}")
    return data


_BY_HAND = "the manifest was changed since the export: put back the one csv export wrote"
_SEQUENCE_FIELDS: dict[str, type] = {"schema": str, "name": str, "last_value": int, "is_called": bool}
_KIND_WORDS: dict[type, str] = {str: "a string", int: "a number", bool: "true or false"}


def _shape_problem(data: dict[str, Any]) -> str | None:
    """The first field of a manifest whose type is not the one csv export writes (a hand edit): it
    would stop the import half way with a TypeError, or name a file outside the folder."""
    def bad(where: str, value: Any, what: str) -> str:
        return f"{where} is not {what} ({_shown(value)})"

    for key in ("encoding", "pg_dump_major"):
        value = data.get(key)
        wanted = str if key == "encoding" else int
        if value is not None and (not isinstance(value, wanted) or isinstance(value, bool)):
            return bad(key, value, "a string" if wanted is str else "a number")
    files = data.get("files")
    if files is not None and not isinstance(files, dict):
        return bad("files", files, "an object")
    for name, facts in (files or {}).items():
        if not isinstance(facts, dict) or not isinstance(facts.get("sha256", ""), str):
            return bad(f"files[{json.dumps(name)}]", facts, "an object with a sha256 string")
    for i, entry in enumerate(data["tables"]):
        where = f"tables[{i}]"
        if not isinstance(entry, dict):
            return bad(where, entry, "an object")
        for key in ("schema", "name", "file"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                return bad(f"{where}.{key}", entry.get(key), "a non-empty string")
        if not _plain_file_name(entry["file"]):
            return (f"{where}.file {_shown(entry['file'])} is not a file name in the export's folder (a path "
                    "that leaves it, or names a folder): refused")
        columns = entry.get("columns")
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            return bad(f"{where}.columns", columns, "a list of column names")
        rows = entry.get("rows")
        if rows is not None and (not isinstance(rows, int) or isinstance(rows, bool) or rows < 0):
            return bad(f"{where}.rows", rows, "a count of rows")
        hypertable = entry.get("hypertable")
        if hypertable is not None and (not isinstance(hypertable, dict)
                                       or not isinstance(hypertable.get("time_column"), str)):
            return bad(f"{where}.hypertable", hypertable, "null or an object with a time_column")
    sequences = data.get("sequences")
    if sequences is not None and not isinstance(sequences, list):
        return bad("sequences", sequences, "a list")
    for i, seq in enumerate(sequences or []):
        if not isinstance(seq, dict):
            return bad(f"sequences[{i}]", seq, "an object")
        for key, kind in _SEQUENCE_FIELDS.items():
            value = seq.get(key)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                return bad(f"sequences[{i}].{key}", value, _KIND_WORDS[kind])
    return None


def _plain_file_name(name: str) -> bool:
    """A name of a file directly in the folder: no separator, not `.` or `..`, no NUL."""
    return name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def import_tables(plan: CsvImportPlan, manifest: dict[str, Any]) -> list[ImportTable]:
    """The tables `plan` imports, each file there, its header the export's columns in order, the
    `--time-column`s theirs, and schema.sql there: the folder's own faults, the user's to fix, are
    said (UsageError, exit 2) before anything is made."""
    folder = Path(plan.source)
    files = manifest.get("files") or {}
    listed = {QualifiedName(t["schema"], t["name"]): t for t in manifest["tables"]}
    for name in [*plan.tables, *(n for n, _ in plan.time_columns)]:
        if name not in listed:
            raise UsageError(f"{name}: not in this csv export ({folder}); it holds "
                             f"{', '.join(str(QualifiedName(t['schema'], t['name'])) for t in manifest['tables'])}")
    given = dict(plan.time_columns)
    wanted = plan.tables or tuple(listed)
    for name in wanted:
        if is_system_schema(name.schema):  # an export made before csv export refused them
            raise UsageError(f"{name}: a system catalog in this csv export ({folder}); an import would put its "
                             "rows into the target's own catalog: refused")
    tables = []
    for name in wanted:
        entry = listed[name]
        path = folder / entry["file"]
        if not path.is_file():
            raise UsageError(f"{path}: missing (the csv export lists it for {name})")
        hypertable = entry.get("hypertable")
        if name in given and given[name] not in entry["columns"]:
            raise UsageError(f"--time-column {name}={given[name]}: {name} has no column {given[name]!r} in this "
                             f"csv export; its columns: {', '.join(entry['columns'])}")
        if name in given:
            hypertable = {"time_column": given[name],
                          "chunk_interval": (hypertable or {}).get("chunk_interval")}
        tables.append(ImportTable(name, entry["file"], list(entry["columns"]), path.stat().st_size,
                                  (files.get(entry["file"]) or {}).get("sha256"), hypertable, entry.get("rows")))
    codec = python_codec(manifest.get("encoding") or "UTF8") or "utf-8"
    for table in tables:
        if problem := header_problem(folder / table.file, table.columns, codec):
            raise UsageError(problem)
    if not (folder / SCHEMA_PRE).is_file():
        raise UsageError(f"{folder / SCHEMA_PRE}: missing (every csv export has one)")
    return tables


def header_lines(path: Path) -> int:
    """How many lines the file's header takes. The server counts it as one line whatever its quoted
    newlines (a column name may hold one), then every line of the rows."""
    try:
        with path.open(encoding="utf-8", errors="surrogateescape", newline="") as source:
            reader = csv.reader(source)
            next(reader, None)
            return max(reader.line_num, 1)
    except (OSError, csv.Error):
        return 1


def header_problem(path: Path, columns: list[str], codec: str) -> str | None:
    """COPY … HEADER skips the first line whatever it says, and loads by position: a file whose
    columns were moved, or that lost its header, would load rows into the wrong columns (or lose
    its first row) without an error. Its header must name the export's columns, in order."""
    with path.open(encoding=codec, errors="surrogateescape", newline="") as source:
        header = next(csv.reader(source), [])
    if header == columns:
        return None
    shown = ", ".join(header) if header else "nothing"
    return (f"{path.name}: its header ({shown}) is not the export's columns in order ({', '.join(columns)}): its "
            "rows would go into the wrong columns; fix the file's header and columns, then import it again")
