"""A dead runner's job whose output was already in place: told apart from one that was not.

A dump (and a pg_dumpall file or set, a CSV export) writes its manifest, renames its `.partial`
into place, and only then records its final state. A runner killed between the two leaves a
complete, verified backup, which the catalog lists, beside a state that still says "running".
The manifest names the job that wrote it (`job_id`), so the cleanup after a dead runner
(job_recovery.recover) can record such a job as succeeded, saying that its runner stopped before it
recorded the end, rather than as failed with its output "removed". A manifest a dead job wrote
(or was writing) beside an archive it never renamed into place is its own leftover, and goes with
the partial.

Nothing here imports a database driver: every command's look for dead jobs may call it.
"""

from __future__ import annotations

import contextlib
import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalog_index import remember_backup
from .csv_plans import MANIFEST_NAME as CSV_MANIFEST_NAME
from .job_store import read_json
from .manifest import manifest_path
from .plans import PARTIAL_SUFFIX


@dataclass(frozen=True)
class FinishedOutput:
    """The output a dead job had put in place, as its manifest describes it."""

    path: Path
    bytes: int
    finished_at: float  # when its manifest was written (the end, give or take the rename)


def _manifests_of(final: Path) -> list[Path]:
    """Where the manifest of `final` is: beside it (a dump, a pg_dumpall file or set), or in it (CSV)."""
    return [manifest_path(final), final / CSV_MANIFEST_NAME]


def _partials(owned: list[dict[str, Any]]) -> list[tuple[Path, Path]]:
    """(partial, final) for each `.partial` path the job owned."""
    found = []
    for item in owned:
        value = str(item.get("value") or "")
        if item.get("kind") == "path" and value.endswith(PARTIAL_SUFFIX) and len(value) > len(PARTIAL_SUFFIX):
            found.append((Path(value), Path(value[:-len(PARTIAL_SUFFIX)])))
    return found


def finished_output(job_id: str, owned: list[dict[str, Any]]) -> FinishedOutput | None:
    """The output job `job_id` renamed into place before its runner died, if it did: one of the
    `.partial` paths it owned is gone, and the final name holds an archive whose manifest names
    this job. None otherwise (nothing of another job's, nor a file the user put there, counts)."""
    for partial, final in _partials(owned):
        if os.path.lexists(partial) or not os.path.lexists(final):
            continue
        for manifest in _manifests_of(final):
            data = read_json(manifest)
            if data is not None and data.get("job_id") == job_id:
                try:
                    finished_at = manifest.stat().st_mtime
                except OSError:
                    continue
                return FinishedOutput(final, _size(data), finished_at)
    return None


def _size(manifest: dict[str, Any]) -> int:
    """The output's bytes as its manifest gives them: `bytes` (a dump's), or its files' (a CSV export's)."""
    size = manifest.get("bytes")
    if isinstance(size, int):
        return size
    files = manifest.get("files")
    if isinstance(files, dict):
        return sum(f["bytes"] for f in files.values() if isinstance(f, dict) and isinstance(f.get("bytes"), int))
    return 0


def remove_orphan_manifests(job_id: str, owned: list[dict[str, Any]]) -> None:
    """Remove the manifest job `job_id` wrote beside an archive it never renamed into place (its
    runner died between the two), and the manifest's temporary file if it died while writing it
    (paths.write_private_file): with no archive of that name, nobody else writes its manifest."""
    for _partial, final in _partials(owned):
        if os.path.lexists(final):
            continue
        manifest = manifest_path(final)
        data = read_json(manifest)
        if data is not None and data.get("job_id") == job_id:
            with contextlib.suppress(OSError):
                manifest.unlink()
        for unfinished in final.parent.glob(f".{glob.escape(manifest.name)}.*.tmp"):
            with contextlib.suppress(OSError):
                unfinished.unlink()


def list_in_catalog(kind: str, output: Path) -> str | None:
    """Put the output of a dump or pg_dumpall job in the catalog's index, as the job does right
    after its rename (a runner that died there had not); None, or why it could not."""
    if kind not in ("dump", "dumpall"):
        return None  # a CSV export is not a backup the catalog lists
    try:
        remember_backup(output)
    except OSError as exc:
        return f"could not add it to the backup catalog's index ({exc.strerror}); `pgbackup-tui backups adopt` adds it"
    return None
