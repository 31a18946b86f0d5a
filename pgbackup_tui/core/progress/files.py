"""The child's files, read from /proc while a job runs: its read positions in an archive, and the
size of the output it writes (tracker.py's observe_local)."""

from __future__ import annotations

import os
from pathlib import Path


def open_positions(pid: int, under: Path) -> dict[Path, int]:
    """Read offsets of the files `pid` has open at or under `under` (an archive or its folder)."""
    found: dict[Path, int] = {}
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return found
    prefix = str(under)
    for fd in fds:
        try:
            target = os.readlink(fd_dir / fd)
        except OSError:
            continue
        if target != prefix and not target.startswith(prefix + "/"):
            continue
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as info:
                for line in info:
                    if line.startswith("pos:"):
                        found[Path(target)] = int(line.split()[1])
                        break
        except (OSError, ValueError):
            continue
    return found


def output_size(path: Path) -> int:
    """Bytes written so far to a file, or to the files of a directory archive."""
    try:
        if path.is_dir():
            return sum(entry.stat().st_size for entry in os.scandir(path) if entry.is_file())
        return path.stat().st_size
    except OSError:
        return 0
