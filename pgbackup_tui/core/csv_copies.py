"""CSV copies on disk: the folders `csv export` wrote (a `manifest.json` of kind "csv" inside).

The catalog (catalog.py) lists pg_dump and pg_dumpall output; a CSV copy is not an archive, so
it is found here, for the fronts that offer `csv import` from a list (the TUI's Backups tab).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .csv_plans import MANIFEST_NAME
from .plans import PARTIAL_SUFFIX


@dataclass(frozen=True)
class CsvCopy:
    """One folder written by `csv export`."""

    path: Path
    manifest: dict[str, Any]

    @property
    def server(self) -> str:
        return str(self.manifest.get("server") or "")

    @property
    def database(self) -> str:
        return str(self.manifest.get("database") or "")

    @property
    def created_at(self) -> str:
        return str(self.manifest.get("finished_at") or self.manifest.get("started_at") or "")

    @property
    def tables(self) -> list[str]:
        """The tables it holds, qualified as SQL writes them."""
        tables = self.manifest.get("tables")  # not a list: a manifest edited or damaged (size_bytes)
        return [str(t.get("qualified")) for t in tables if isinstance(t, dict)] if isinstance(tables, list) else []

    @property
    def size_bytes(self) -> int:
        """The files' bytes as the manifest counts them; a count that is not one (a manifest edited or
        damaged) counts 0: int() of it failed the Backups tab's whole listing ("list backups: ValueError")."""
        files = self.manifest.get("files")
        if not isinstance(files, dict):
            return 0
        sizes = [f.get("bytes") for f in files.values() if isinstance(f, dict)]
        return sum(size for size in sizes if isinstance(size, int) and not isinstance(size, bool) and size > 0)


def read_csv_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a CSV copy's folder, or None when `folder` is not one."""
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("kind") == "csv" else None


def is_csv_copy(folder: Path) -> bool:
    return read_csv_manifest(folder) is not None


def find_csv_copies(root: Path) -> list[CsvCopy]:
    """Every CSV copy under `root` (not walked into), newest first; unfinished `.partial` ones are left out."""
    found = []
    if root.is_dir():
        for folder, dirs, _files in os.walk(root):
            here = Path(folder)
            keep = []
            for name in dirs:
                if name.startswith(".") or name.endswith(PARTIAL_SUFFIX):
                    continue
                manifest = read_csv_manifest(here / name)
                if manifest is not None:
                    found.append(CsvCopy((here / name).absolute(), manifest))
                else:
                    keep.append(name)
            dirs[:] = keep
    return sorted(found, key=lambda c: c.created_at, reverse=True)
