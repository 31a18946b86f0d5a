"""Children of a job: what runs in a child between fork and exec, and feeding a child's stdin.

A child gets SIGKILL when the process that started it dies (PR_SET_PDEATHSIG, Linux), so that a
killed runner leaves no pg_dump behind; the prctl function is looked up once at import, because
nothing may be imported or loaded between fork and exec.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from typing import Any

async def feed_stdin(process: asyncio.subprocess.Process, chunks: Iterator[bytes]) -> None:
    """Write `chunks` to the child's stdin, then close it. A child that stops reading (psql with
    ON_ERROR_STOP stopped at an error) ends the feeding quietly: its exit code says why."""
    stdin = process.stdin
    assert stdin is not None
    done = object()
    try:
        while True:
            chunk = await asyncio.to_thread(next, chunks, done)
            if chunk is done:
                break
            assert isinstance(chunk, bytes)
            stdin.write(chunk)
            await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.close()


_PR_SET_PDEATHSIG = 1
try:  # looked up once here: the child, between fork and exec, must not import or load anything
    import ctypes

    _prctl: Any = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the process that started it dies (Linux), so that a
    killed runner leaves no pg_dump behind; elsewhere a no-op."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
