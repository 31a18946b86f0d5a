"""Stopping sandbox servers whose owner is gone: the postmaster named in a data dir, and a sweep
of sandboxes left behind by a killed run (atexit does not run on SIGKILL)."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

SANDBOX_PREFIX = "pgbackup-sandbox-"
OWNER_FILE = "owner.pid"  # pid of the process that will stop this sandbox (absent when keep=True)


def kill_postmaster_of(data_dir: Path) -> None:
    """SIGQUIT (immediate shutdown), then SIGKILL, the postmaster named in data_dir's pid file."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    for sig in (signal.SIGQUIT, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except OSError:  # gone already, or not ours to kill (then pg_ctl was our only chance)
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if not process_alive(pid):
                return
            time.sleep(0.1)


def process_alive(pid: int) -> bool:
    """True while pid runs. A zombie counts as dead: where PID 1 does not reap orphans (some
    containers), a stopped postmaster stays a zombie forever."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        pass  # no procfs: ask the kernel directly
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_sandboxes() -> list[Path]:
    """Stop and remove sandboxes whose owning process died without stopping them.

    atexit does not run on SIGKILL or an unhandled SIGTERM, so a killed test run would leave a
    postmaster and its directory behind; the next Sandbox cleans them up. Sandboxes made with
    keep=True have no owner file and are left alone. Returns the directories removed.
    """
    removed = []
    for root in Path(tempfile.gettempdir()).glob(SANDBOX_PREFIX + "*"):
        try:
            owner = int((root / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if process_alive(owner):
            continue
        kill_postmaster_of(root / "data")
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root)
    return removed
