"""Children of a job: what runs in a child between fork and exec, feeding a child's stdin, its end
in words, and what its last lines of stderr tell (the telling line, a full disk).

A child gets SIGKILL when the process that started it dies (PR_SET_PDEATHSIG, Linux), so that a
killed runner leaves no pg_dump behind; the prctl function is looked up once at import, because
nothing may be imported or loaded between fork and exec.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # asyncio is imported where it is used: the archive follower's process needs none of it
    import asyncio


async def feed_stdin(process: asyncio.subprocess.Process, chunks: Iterator[bytes],
                     fed: Callable[[int], None] | None = None) -> None:
    """Write `chunks` to the child's stdin, then close it; `fed` is told each chunk's size once the
    pipe took it. A child that stops reading (psql with ON_ERROR_STOP stopped at an error) ends the
    feeding quietly: its exit code says why."""
    import asyncio

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
            if fed is not None:
                fed(len(chunk))
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


def own_group() -> dict[str, Any]:
    """How a child is started: the leader of a process group of its own (what a cancel and a dead
    runner's cleanup signal). In a runner -- the leader of a session of its own, with no terminal --
    the child stays in that session: a session of its own would also be a scheduling group of its
    own where the kernel groups sessions (autogroup), and the dump's follower at SCHED_IDLE
    (archive_follow_process.py) would then be idle only next to the runner, not next to pg_dump
    (pg_dump took 1.25x its time alone beside it, 1.15x in the runner's session). Elsewhere (a dry
    run or a drill in a terminal's front) a session of its own, without the terminal: a child that
    prompted for a password would otherwise stop there as a background group (SIGTTIN)."""
    if os.getsid(0) == os.getpid():
        return {"process_group": 0}
    return {"start_new_session": True}


def exit_in_words(code: int) -> str:
    """A child's exit code in words: "exit 1", or "killed by signal 9 (SIGKILL)" for asyncio's -9."""
    if code >= 0:
        return f"exit {code}"
    try:
        name = f" ({signal.Signals(-code).name})"
    except ValueError:
        name = ""
    return f"killed by signal {-code}{name}"


def child_failed(tool: str, code: int, cause: str) -> str:
    """How a child failed, in words: "pg_dump failed (exit 1): CAUSE", or for one a signal killed (the
    OOM killer, a kill -9) "pg_dump was killed by signal 9 (SIGKILL)": its last line then says what it
    was doing ("pg_dump: dumping contents of table …"), which read as the error that stopped it."""
    if code < 0:
        return f"{tool} was {exit_in_words(code)}"
    return f"{tool} failed ({exit_in_words(code)}): {cause}"


# Signals sent from outside (the OOM killer's SIGKILL, a kill, a closed terminal): they say nothing of
# what the child was reading. A crash (SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL) may be the input's
# doing, a damaged archive the reader trips on: that is said as the archive's problem, not "try again"
# (a backup a crash stops would stay "complete" for ever, every verify saying "try again").
_FROM_OUTSIDE = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT})


def killed_from_outside(code: int) -> bool:
    """Whether a child's `code` (asyncio's or subprocess's: -N for signal N) is a signal sent from outside."""
    return code < 0 and -code in _FROM_OUTSIDE


def reader_cause(tool: str, code: int, last_line: str) -> str:
    """Why a reader of an archive failed, for the archive's refusal: its last line, or, for a crash,
    the crash ("pg_restore was killed by signal 11 (SIGSEGV)": what it printed last says nothing)."""
    return f"{tool} was {exit_in_words(code)}" if code < 0 else last_line


def reader_killed(tool: str, code: int, path: Path) -> str:
    """A child that reads an archive through (pg_restore --list, --data-only, --file=/dev/null) and that a
    signal killed (the OOM killer on a big archive, a kill -9): said as that, not as the archive's fault.
    Its last line (or none: "no output") read as "truncated or damaged", and verify recorded a sound
    backup as failed."""
    return f"{tool} was {exit_in_words(code)} while reading {path}, which says nothing of the archive: try again"


def signal_group(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    """Send `sig` to the child's process group (own_group(): the child leads it), its workers too."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
        if sig != signal.SIGKILL:  # a stopped child would hold the signal until it runs again
            os.killpg(process.pid, signal.SIGCONT)


async def group_ends(process: asyncio.subprocess.Process, timeout: float) -> bool:
    """Whether the child and every process of its group (pg_dump's and pg_restore's --jobs workers)
    are gone within `timeout` seconds. The leader alone is not enough: its workers can outlive it
    (blocked on a link that stalled, in a cancel request to a server that does not answer), holding
    the job's stderr pipe open, and the job with it, for as long as they live."""
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        if process.returncode is not None:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:  # the group id taken by someone else's processes: ours are gone
                return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)


WORKER_DIED = "a worker process died unexpectedly"  # a parallel leader's line after a worker's error
# pg_dumpall's last line after the pg_dump it ran for a database failed: pg_dump's error, before it, is the cause.
PG_DUMP_FAILED_ON = "pg_dump failed on database "


# What libpq (and the server, as it ends a session) says when the connection goes half way: the
# server stopped or restarted, a backend was terminated, the link failed. Over SSL (most remote
# servers) libpq says it its own way ("SSL SYSCALL error: EOF detected"): a pattern that knew only
# the plain-TCP words took that for an ordinary error (a drill recorded it as a failed one).
# Not libpq's "connection to server at … failed": that is a connection that never was (a password
# refused at the start), which restore_output.py counts as lost only where it cannot be one.
CONNECTION_LOST = re.compile(
    r"no connection to the server|server closed the connection unexpectedly|connection to server was lost|"
    r"terminating connection (?:due to|because of)|"
    r"SSL SYSCALL error: (?:EOF detected|Connection reset by peer|Broken pipe)|SSL error: unexpected eof|"
    r"SSL connection has been closed unexpectedly|could not (?:receive|send) data (?:from|to) server")


def statement_error(line: str) -> bool:
    """A statement the server refused ('ERROR:'): its words may quote another connection's loss
    (postgres_fdw's, dblink's), but the session that ran it lives on."""
    return "ERROR:" in line


def lost_connection(stderr_tail: list[str]) -> str | None:
    """What the children said of a connection lost half way (the first such line's words), or None."""
    for line in stderr_tail:
        found = CONNECTION_LOST.search(line)
        if found and not statement_error(line):
            return line[found.start():].strip().rstrip(".")
    return None


def telling_line(stderr_tail: list[str]) -> str:
    """The most telling line the children printed: the last error, else the last line. A
    parallel pg_dump/pg_restore ends with its leader's 'a worker process died unexpectedly':
    the worker's own error, before it, is the cause (a file gone, a lock, a full disk); pg_dumpall
    with 'pg_dump failed on database "x", exiting', said with pg_dump's error. A connection lost
    half way is said as such: pg_dump's own words for it are 'PQgetCopyData() failed.' or, over
    SSL, the tail of its detail line ('EOF detected')."""
    lost = lost_connection(stderr_tail)
    if lost is not None:
        # The server's own words say why it ended the session (an administrator, a standby's
        # conflict with recovery, a timeout); libpq's alone do not.
        why = "" if "terminating connection" in lost else ": the server stopped or the network failed"
        said = f"lost the connection to the server half way ({lost}){why}"
        dumpall = [line for line in stderr_tail if PG_DUMP_FAILED_ON in line]
        if dumpall:  # which database
            return f"{dumpall[-1][dumpall[-1].index(PG_DUMP_FAILED_ON):].strip().removesuffix(', exiting')}: {said}"
        return said
    errors = []
    for line in stderr_tail:
        lowered = line.lower()
        if "error:" in lowered:
            errors.append(line[lowered.index("error:") + len("error:"):].strip())
        elif "fatal:" in lowered:
            errors.append(line.strip())
    causes = [line for line in errors if not line.startswith((WORKER_DIED, PG_DUMP_FAILED_ON))]
    if errors and errors[-1].startswith(WORKER_DIED) and causes:
        return causes[-1]
    if errors and errors[-1].startswith(PG_DUMP_FAILED_ON) and causes:  # which database, and why
        return f"{errors[-1].removesuffix(', exiting')}: {causes[-1]}"
    if errors:
        return errors[-1]
    return stderr_tail[-1].strip() if stderr_tail else "no output"


def disk_full_cause(stderr_tail: list[str], folder: Path) -> str | None:
    """Why `folder`'s disk looks full (what a child said, or what is free), or None. pg_dump
    --jobs often reports only "a worker process died" when a worker hit ENOSPC."""
    from .job_events import DISK_NEARLY_FULL_BYTES  # here: the archive follower's process needs none of it

    if any("No space left on device" in line for line in stderr_tail):
        return "No space left on device"
    try:
        stats = os.statvfs(folder)
    except OSError:
        return None
    free = stats.f_bavail * stats.f_frsize
    return f"{free} bytes free" if free < DISK_NEARLY_FULL_BYTES else None
