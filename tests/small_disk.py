"""A real full disk for the tests: a small tmpfs, and a file that fills it."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def small_filesystem(path: Path, size_kb: int) -> Iterator[Path]:
    """A real tmpfs of `size_kb` at `path` (root only, as CI runs)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0700", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path, leave_bytes: int) -> None:
    """Fill the filesystem of `folder` until about `leave_bytes` are free."""
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    with open(folder / "filler", "wb") as handle:
        handle.write(b"\0" * max(0, free - leave_bytes))


@contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """`path` bind-mounted read-only over itself (root only, as CI runs): a read-only mount's EROFS."""
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        # EBUSY ("mount point is busy") while a file is open for writing through the new mount: the
        # job writes its state a few times a second, each write brief. Tried until one falls between.
        deadline = time.monotonic() + 10
        while subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
            time.sleep(0.02)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
