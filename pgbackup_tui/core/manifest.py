"""The backup manifest: `<archive>.manifest.json`, one typed schema.

Written by the dump job just before the archive gets its final name (dump.py), and by `backups
adopt` for an archive we did not write. Read by the catalog, the restore (its `restore_list`
and `tables` give the selection and the progress totals) and the TUI.

Schema versions:
  1  (manifest_version: 1) what dump.py wrote first: server, versions, database, format, times,
     bytes, options, selection, restore_list, added, left_out, extensions, tables.
  2  (schema_version: 2) adds: id (stable short id), server_key (the server's system identifier
     when readable, host, port: backups follow their server when its profile is renamed),
     checksums (checksums.py: xxh3-128, sha256 before; of the file, or of every file of a
     directory archive, by relative path),
     toc (counts of entries by kind; tables with rows and bytes), verifications (what was
     checked, when, with which tools, the result), adopted (true for an archive we did not write);
     later, without a new version (an older reader keeps it as an unknown key): job_id (the job
     that wrote it: a dead runner's job whose archive was in place is told apart, job_finish.py).
A version 1 manifest reads as version 2 with those fields empty; keys we do not know are kept
(`extra`) and written back, so an older or newer pgbackup-tui never loses what another wrote.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .paths import locked_then_removed, remove_abandoned_temp_files, remove_unheld_lock, write_private_file

MANIFEST_SUFFIX = ".manifest.json"
SCHEMA_VERSION = 2
# Set (to when) by catalog_ops.delete before it removes anything: a delete stopped half way (kill -9,
# a reboot) leaves a manifest that says so, not one that reads as a backup gone missing.
DELETING_KEY = "deleting"


def manifest_path(archive: Path) -> Path:
    """Where the manifest of `archive` lives: beside it, `<name>.manifest.json`."""
    return archive.with_name(archive.name + MANIFEST_SUFFIX)


def manifest_lock_path(archive: Path) -> Path:
    """The hidden file whose lock the writers of `archive`'s manifest take turns on (manifest_locked)."""
    return archive.with_name(f".{archive.name}{MANIFEST_SUFFIX}.lock")


@contextlib.contextmanager
def manifest_locked(archive: Path) -> Iterator[None]:
    """For a change of `archive`'s manifest read again under it: two writers at once both land.
    Its lock file is beside the archive (so that every home and user writing this manifest takes
    the same lock), and removed when the change is done: the user's backup folder keeps no litter."""
    with locked_then_removed(manifest_lock_path(archive)):
        yield


# A manifest's temp file (paths.temp_path) or lock file: `.NAME.manifest.json.PID.tmp`, `.NAME.manifest.json.lock`.
_LITTER = re.compile(r"\.(.+)" + re.escape(MANIFEST_SUFFIX) + r"(?:\.\d+\.tmp|\.lock)")


def clear_manifest_litter(archive: Path, names: Iterable[str] | None = None) -> None:
    """Remove what killed writers of `archive`'s manifest left beside it: their temp files, and its
    lock file when nobody holds it. `names`: the folder's listing, when the caller has read it."""
    remove_abandoned_temp_files(manifest_path(archive), names)
    lock = manifest_lock_path(archive)
    if names is None or lock.name in names:
        remove_unheld_lock(lock)


def clear_litter_in(folder: Path, names: Iterable[str]) -> None:
    """clear_manifest_litter for every archive of `folder` that a manifest's temp or lock file is
    left for, among `names` (the folder's listing: a scan has it)."""
    names = set(names)
    for archive in sorted({match.group(1) for name in names if (match := _LITTER.fullmatch(name))}):
        clear_manifest_litter(folder / archive, names)


def new_backup_id() -> str:
    """A short id for a new backup (8 hex digits, like job ids); stored, so it never changes."""
    return secrets.token_hex(4)


def now_iso() -> str:
    """The current time as the manifest writes times (ISO 8601, UTC)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class ServerKey:
    """What identifies the server a backup came from, beyond the profile's name."""

    system_identifier: str | None = None  # pg_control_system(): the cluster's own id, survives renames
    host: str | None = None
    port: str | None = None

    def host_port(self) -> tuple[str, str] | None:
        return (self.host or "", self.port or "5432") if (self.host or self.port) else None


@dataclass
class TableSummary:
    """One table's data in the archive."""

    name: str  # qualified as SQL writes it: public.orders, "Sales & Ops"."Order Items"
    rows: int | None = None
    bytes: int | None = None  # on disk at dump time (heap + TOAST)
    rows_exact: bool = False  # counted in the archive itself (else the planner's estimate or unknown)


@dataclass
class TocSummary:
    """The archive's table of contents in brief."""

    counts: dict[str, int] = field(default_factory=dict)  # "TABLE": 12, "INDEX": 30, "FUNCTION": 4...
    tables: list[TableSummary] = field(default_factory=list)

    def table_rows(self) -> dict[str, int]:
        """Exact row counts by table name (only the ones counted in the archive)."""
        return {t.name: t.rows for t in self.tables if t.rows_exact and t.rows is not None}


@dataclass
class Verification:
    """One check of a backup: `verify` (checksums, read to the end, tools) or `drill` (a real restore)."""

    kind: str  # verify | drill
    at: str
    ok: bool
    tools: dict[str, str] = field(default_factory=dict)  # e.g. {"pg_restore": "17.6 (/usr/lib/...)"}
    checks: list[str] = field(default_factory=list)  # what passed, one line each
    problems: list[str] = field(default_factory=list)  # what failed, one line each (names the file/table)
    details: dict[str, Any] = field(default_factory=dict)  # e.g. the drill's server and duration


@dataclass
class Manifest:
    """Everything we know about one backup."""

    id: str = ""
    job_id: str = ""  # the job that wrote it ("" for one adopted or written before the key existed)
    kind: str = "dump"
    server: str = ""  # the profile's name (or the DSN's label) when it was written
    server_key: ServerKey = field(default_factory=ServerKey)
    server_version: str | None = None
    server_major: int | None = None
    pg_dump_version: str | None = None
    pg_dump_major: int | None = None
    database: str = ""
    format: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    bytes: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    selection: dict[str, Any] = field(default_factory=dict)
    restore_list: list[int] | None = None
    added: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    extensions: list[dict[str, str]] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)  # the dump's own totals (progress reads them)
    checksums: dict[str, str] = field(default_factory=dict)  # relative path ("" for a file) -> checksum (checksums.py)
    toc: TocSummary = field(default_factory=TocSummary)
    verifications: list[Verification] = field(default_factory=list)
    adopted: bool = False
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def created_at(self) -> str:
        return self.finished_at or self.started_at or ""

    @property
    def dump_tool(self) -> str:
        """The tool that wrote it, as its pg_dump_version is said: pg_dumpall, or pg_dump (a set's
        members' too)."""
        return "pg_dumpall" if self.kind == "dumpall" else "pg_dump"

    def to_json(self) -> dict[str, Any]:
        """The manifest as written to disk (keys we did not know are written back as they were)."""
        body = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        body["server_key"] = asdict(self.server_key)
        body["toc"] = asdict(self.toc)
        body["verifications"] = [asdict(v) for v in self.verifications]
        body["schema_version"] = SCHEMA_VERSION
        return {**self.extra, **body}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        """A manifest of any schema version we know (1 or 2); fields of the wrong type are dropped,
        not fatal: a manifest is a file on disk, someone may have edited it."""
        known = {f.name for f in fields(cls)} - {"extra"}
        extra = {k: v for k, v in data.items() if k not in known and k != "manifest_version"}
        manifest = cls(extra=extra)
        defaults = cls()
        for name in known - {"server_key", "toc", "verifications", "schema_version"}:
            if name in data and _same_kind(data[name], getattr(defaults, name), name):
                setattr(manifest, name, data[name])
        manifest.server_key = _server_key(data.get("server_key"))
        manifest.toc = _toc(data.get("toc"))
        manifest.verifications = [v for v in map(_verification, _list(data.get("verifications"))) if v]
        return manifest

    def add_verification(self, verification: Verification) -> None:
        self.verifications.append(verification)

    def last_verification(self) -> Verification | None:
        return self.verifications[-1] if self.verifications else None


_OPTIONAL = {"server_version", "server_major", "pg_dump_version", "pg_dump_major", "started_at", "finished_at",
             "duration_s", "restore_list"}


def _same_kind(value: Any, default: Any, name: str) -> bool:
    if value is None:
        return name in _OPTIONAL
    if name in ("server_major", "pg_dump_major", "bytes"):
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "duration_s":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if name == "restore_list":
        return isinstance(value, list)
    if name in ("server_version", "pg_dump_version", "started_at", "finished_at"):
        return isinstance(value, str)
    return isinstance(value, type(default))


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _server_key(value: Any) -> ServerKey:
    if not isinstance(value, dict):
        return ServerKey()
    return ServerKey(_text(value.get("system_identifier")), _text(value.get("host")), _text(value.get("port")))


def _toc(value: Any) -> TocSummary:
    if not isinstance(value, dict):
        return TocSummary()
    counts = value.get("counts")
    counts = counts if isinstance(counts, dict) else {}
    tables = []
    for item in _list(value.get("tables")):
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            rows, size = item.get("rows"), item.get("bytes")
            tables.append(TableSummary(item["name"], rows if isinstance(rows, int) else None,
                                       size if isinstance(size, int) else None, bool(item.get("rows_exact"))))
    return TocSummary({str(k): int(v) for k, v in counts.items() if isinstance(v, int)}, tables)


def _verification(value: Any) -> Verification | None:
    if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
        return None
    tools, details = value.get("tools"), value.get("details")
    return Verification(
        kind=value["kind"], at=str(value.get("at") or ""), ok=bool(value.get("ok")),
        tools={str(k): str(v) for k, v in tools.items()} if isinstance(tools, dict) else {},
        checks=[str(x) for x in _list(value.get("checks"))], problems=[str(x) for x in _list(value.get("problems"))],
        details=details if isinstance(details, dict) else {},
    )


def load_manifest(archive: Path) -> Manifest | None:
    """The typed manifest next to `archive`; None if there is none or it is not a JSON object."""
    try:
        data = json.loads(manifest_path(archive).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Manifest.from_json(data) if isinstance(data, dict) else None


def save_manifest(archive: Path, manifest: Manifest) -> Path:
    """Write the manifest beside `archive` atomically, 0600."""
    path = manifest_path(archive)
    body = json.dumps(manifest.to_json(), indent=2, sort_keys=True, default=str)
    write_private_file(path, body.encode("utf-8"))
    return path
