"""What the client programs told us, kept per machine so a job need not ask them again.

Every job used to run `pg_dump --version` in each installation it considers, and a compression
probe: a few short processes (24 ms measured here) out of a job's fixed cost. Their answers only change when
the binary does, so they are kept in tool-probes.json in the user's cache dir (file 0600, folder
0700), each under the binary's real path together with its size, mtime_ns and inode: an upgraded
or replaced binary no longer matches and is asked again. A changed PATH or bin dir just looks up
other paths (a miss). The cache is only ever a shortcut: a missing, corrupt or unwritable file is
ignored and the program is asked as before.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .paths import cache_dir, ensure_private_dir

CACHE_NAME = "tool-probes.json"
FORMAT = 1  # bumped when what is stored changes meaning: an older file then reads as empty

Stamp = tuple[int, int, int]  # size, mtime_ns, inode
T = TypeVar("T")

_lock = threading.Lock()  # jobs look tools up from worker threads; one writer at a time here


def cache_file() -> Path:
    """Where the probes' answers are kept."""
    return cache_dir() / CACHE_NAME


def stamp_of(real_path: str) -> Stamp:
    """What identifies this version of the binary: changes when it is upgraded, replaced or touched."""
    status = os.stat(real_path)
    return status.st_size, status.st_mtime_ns, status.st_ino


def _read(path: Path) -> dict[str, Any]:
    """The stored entries, or {} for anything but a well-formed file of this format."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("binaries"), dict):
        return {}
    return data["binaries"]


def _write(path: Path, binaries: dict[str, Any]) -> None:
    """Atomically (temp file in the same folder + rename), 0600; failures are silent (a cache)."""
    try:
        ensure_private_dir(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"format": FORMAT, "binaries": binaries}, handle, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass


def _lookup(binaries: dict[str, Any], real_path: str, stamp: Stamp, probe: str) -> tuple[bool, Any]:
    entry = binaries.get(real_path)
    if not isinstance(entry, dict) or entry.get("stamp") != list(stamp):
        return False, None
    results = entry.get("results")
    if not isinstance(results, dict) or probe not in results:
        return False, None
    return True, results[probe]


def remembered(real_path: str, stamp: Stamp, probe: str, ask: Callable[[], T],
               valid: Callable[[Any], T | None]) -> T:
    """`probe`'s answer for this binary: from the cache when its stamp still matches, else `ask()`'s,
    stored for next time. `valid` turns a stored JSON value back into an answer (None: unusable,
    ask again), so a hand-edited or foreign file can never hand back a wrong type."""
    path = cache_file()
    with _lock:
        found, value = _lookup(_read(path), real_path, stamp, probe)
    if found:
        answer = valid(value)
        if answer is not None:
            return answer
    answer = ask()  # outside the lock: it runs a process
    with _lock:
        binaries = _read(path)  # re-read: another process may have added entries meanwhile
        entry = binaries.get(real_path)
        results: dict[str, Any] = {}
        if isinstance(entry, dict) and entry.get("stamp") == list(stamp) and isinstance(entry.get("results"), dict):
            results = entry["results"]  # a stale entry's answers all go
        results[probe] = answer
        binaries[real_path] = {"stamp": list(stamp), "results": results}
        _write(path, binaries)
    return answer
