"""Backups on disk and their manifests.

Every backup we write has a sidecar `<archive>.manifest.json` (0600), written just before the
archive is renamed from `.partial` to its final name. A backup is listed only when both exist,
so an interrupted job never shows up as a good backup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .paths import write_private_file
from .plans import PARTIAL_SUFFIX

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_VERSION = 1


def manifest_path(archive: Path) -> Path:
    return archive.with_name(archive.name + MANIFEST_SUFFIX)


def write_manifest(archive: Path, data: dict[str, Any]) -> Path:
    path = manifest_path(archive)
    body = {"manifest_version": MANIFEST_VERSION, **data}
    write_private_file(path, json.dumps(body, indent=2, sort_keys=True, default=str).encode("utf-8"))
    return path


def read_manifest(archive: Path) -> dict[str, Any] | None:
    """The manifest next to `archive`, or None if there is none or it is unreadable."""
    path = manifest_path(archive)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class BackupEntry:
    path: Path
    manifest: dict[str, Any]

    @property
    def server(self) -> str:
        return str(self.manifest.get("server", ""))

    @property
    def database(self) -> str:
        return str(self.manifest.get("database", ""))

    @property
    def format(self) -> str:
        return str(self.manifest.get("format", ""))

    @property
    def created_at(self) -> str:
        return str(self.manifest.get("finished_at") or self.manifest.get("started_at") or "")

    @property
    def size_bytes(self) -> int:
        return int(self.manifest.get("bytes") or 0)


def list_backups(root: Path, *, server: str | None = None, database: str | None = None) -> list[BackupEntry]:
    """Complete backups under `root` (newest first), optionally for one server/database."""
    if not root.exists():
        return []
    found: list[BackupEntry] = []
    for manifest_file in root.rglob("*" + MANIFEST_SUFFIX):
        archive = manifest_file.with_name(manifest_file.name[: -len(MANIFEST_SUFFIX)])
        if archive.name.endswith(PARTIAL_SUFFIX) or not archive.exists():
            continue
        manifest = read_manifest(archive)
        if manifest is None:
            continue
        if server is not None and manifest.get("server") != server:
            continue
        if database is not None and manifest.get("database") != database:
            continue
        found.append(BackupEntry(archive, manifest))
    found.sort(key=lambda entry: entry.created_at, reverse=True)
    return found
