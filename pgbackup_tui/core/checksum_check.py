"""A restore's check of its archive against the manifest's sha256, beside pg_restore.

The check reads the whole archive (206 MB, 0.17 s of CPU for the 1 GB reference database) while
pg_restore and its server work, on a machine whose cores they keep busy. So while pg_restore
runs, a thread at the lowest priority (SCHED_IDLE, Linux) reads it: it takes only the CPU
nothing else wants. As soon as the job waits for the answer (pg_restore has ended, or the target
is a database the job did not create and must not be touched before), hurry() has a thread at
the normal priority go on from the very chunk where that one stopped, so that a busy machine
cannot starve the check. The answer and its messages are compare_checksums' (archive_scan.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import threading
from collections.abc import Generator
from pathlib import Path

from .archive_scan import CHUNK, archive_files


def lowest_priority() -> None:
    """The calling thread runs only on CPU that nothing else wants (SCHED_IDLE, Linux);
    elsewhere nothing changes."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: this thread


class ChecksumCheck:
    """start() in the job's event loop, hurry() once the job waits for it, abandon() if it
    stops first. The future start() returns gets the problems (one line each; none: whole)."""

    def __init__(self, archive: Path, expected: dict[str, str]) -> None:
        self.archive = archive
        self.expected = expected
        self._steps = self._check()
        self._hurried = threading.Event()
        self._stop = threading.Event()
        self._beside = threading.Thread(target=self._run_beside, name="checksum-check", daemon=True)
        self._finisher: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._future: asyncio.Future[list[str]] | None = None

    def start(self) -> asyncio.Future[list[str]]:
        self._loop = asyncio.get_running_loop()
        self._future = self._loop.create_future()
        self._beside.start()
        return self._future

    def hurry(self) -> None:
        """From now on at the caller's priority (a thread started here)."""
        if self._finisher is None:
            self._hurried.set()
            self._finisher = threading.Thread(target=self._run_finisher, name="checksum-check-end", daemon=True)
            self._finisher.start()

    def abandon(self) -> None:
        """Stop at the next chunk (not waited for: a starved thread must not hold up the job)."""
        self._stop.set()
        self._hurried.set()

    # -- the threads -----------------------------------------------------------------------------
    def _run_beside(self) -> None:
        lowest_priority()
        self._drive(until_hurried=True)

    def _run_finisher(self) -> None:
        self._beside.join()  # it stops at its next chunk
        self._drive(until_hurried=False)

    def _drive(self, *, until_hurried: bool) -> None:
        try:
            while True:
                if self._stop.is_set():
                    self._steps.close()  # its file closed
                    return
                if until_hurried and self._hurried.is_set():
                    return  # the finisher goes on from here
                next(self._steps)
        except StopIteration as done:
            self._answer(done.value, None)
        except BaseException as exc:  # noqa: BLE001 - handed to the job (an OSError: the file could not be read)
            self._answer(None, exc)

    def _answer(self, problems: list[str] | None, error: BaseException | None) -> None:
        def settle() -> None:
            future = self._future
            if future is None or future.done():
                return  # dropped by the job meanwhile
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(problems or [])

        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the job's loop has ended: nobody waits for it
            self._loop.call_soon_threadsafe(settle)

    # -- the steps: a chunk each -----------------------------------------------------------------
    def _check(self) -> Generator[None, None, list[str]]:
        """archive_scan.compare_checksums, a chunk at a time."""
        archive, problems = self.archive, []
        present = dict(archive_files(archive)) if archive.exists() else {}
        for name, digest in sorted(self.expected.items()):
            path = present.pop(name, None)
            shown = archive / name if name else archive
            if path is None:
                problems.append(f"{shown}: missing")
                continue
            sha = hashlib.sha256()
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    sha.update(chunk)
                    yield
            if sha.hexdigest() != digest:
                problems.append(f"{shown}: sha256 differs from the manifest (the file changed since the backup)")
        for name in sorted(present):
            problems.append(f"{archive / name}: not in the manifest (added since the backup)")
        return problems
