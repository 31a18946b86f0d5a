"""How a front starts a job's runner (runner.py is the runner itself).

`start_job()` writes the job's spec and starts its runner in a session of its own: a fork of a
headless front where that is safe (no second interpreter start, no imports again), else `python -m
pgbackup_tui.core.runner FOLDER`. The front then waits on the process it got back
(`sleep_until_exit` wakes at its end through a pidfd) and reads the job's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, TypeAlias

from . import job_store, paths
from .errors import EXIT_FAILED, JobFailed, UsageError
from .runner import LOCK_FD_ENV, PASSWORD_ENV, run

# A place we may not write (a read-only mount, another's folder, a file where a folder of ours goes:
# PGBACKUP_TUI_HOME naming a file): a setting to fix, not a failure.
UNWRITABLE_PLACE = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR)


def start_job(kind: str, plan: Any, title: str, *, fork: bool = False) -> tuple[str, Path, RunnerProcess]:
    """Write the job's spec and start its runner. Returns (job id, job folder, the runner process).

    `fork`: a headless front may let the runner be a fork of itself instead of a new interpreter
    (which imports everything again: about 0.25 s), when that is safe: one thread, and no open
    descriptor but stdio (no server connection whose socket the child would share). Otherwise,
    and always for the TUI (threads), `python -m pgbackup_tui.core.runner`. Either way the runner
    is in a session of its own, with stdio on /dev/null and the job's lock."""
    job_id = uuid.uuid4().hex[:8]
    spec = {"id": job_id, "kind": kind, "title": title, "server": plan.target.label, "database": plan.dbname,
            "plan": job_store.plan_to_json(plan), "created_at": time.time()}
    try:
        folder, lock_fd = job_store.create_job_dir(job_id, spec)
    except OSError as exc:
        shutil.rmtree(job_store.job_dir(job_id), ignore_errors=True)
        full = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
        said = f"cannot write the job's state under {job_store.jobs_root()}: {exc.strerror}{full}; nothing was started"
        if exc.errno in UNWRITABLE_PLACE:  # where we were told to keep our files: the user's to fix (exit 2)
            raise UsageError(f"{said} ({paths.HOME_ENV} or XDG_STATE_HOME must name a folder we may write)") from None
        raise JobFailed(said) from None
    password = plan.target.password
    try:
        if fork and fork_is_safe(lock_fd):
            return job_id, folder, _fork_runner(folder, lock_fd, password)
        env = dict(os.environ)
        env[LOCK_FD_ENV] = str(lock_fd)
        if password is not None:
            env[PASSWORD_ENV] = password
        process = subprocess.Popen(
            [sys.executable, "-m", "pgbackup_tui.core.runner", str(folder)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env, start_new_session=True, close_fds=True, pass_fds=(lock_fd,),
        )
    finally:
        os.close(lock_fd)  # the runner holds the lock now (the same open file, inherited)
    return job_id, folder, process


_inherited_fds: dict[int, str] = {}  # descriptors this process was started with (remember_inherited_fds)


def remember_inherited_fds() -> None:
    """Note the descriptors beyond stdio this process got from whoever started it (a terminal or
    a harness may leak some), before it opens any of its own: a fork of it may still be the
    runner, which closes them (as the exec'd runner's close_fds does). Called by the CLI first."""
    _inherited_fds.clear()
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd > 2:
                with contextlib.suppress(OSError):
                    _inherited_fds[fd] = os.readlink(f"/proc/self/fd/{fd}")


def fork_is_safe(lock_fd: int) -> bool:
    """True when a fork of this process can be the runner: a single thread (a fork copies only the
    caller; a lock another thread held stays held for good), and no descriptor open but stdio, the
    job's lock and those the process was started with (which the fork closes, unused). A libpq
    connection is a socket: a child that shared it could end the parent's session, and a file
    object whose descriptor the child closed could later close one of the job's."""
    try:
        if threading.active_count() != 1 or len(os.listdir("/proc/self/task")) != 1:
            return False
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd in (0, 1, 2, lock_fd):
                continue
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except FileNotFoundError:
                continue  # the descriptor that listed the folder, closed since
            if _inherited_fds.get(fd) != target:
                return False
    except OSError:
        return False  # no /proc: not Linux as we know it
    return True


class ForkedRunner:
    """A runner forked from this process, with what the fronts use of subprocess.Popen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped already (SIGCHLD ignored, inherited): gone, as Popen says
                self.returncode = 0  # its outcome is in the job's state, which the fronts read
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0005
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        assert self.returncode is not None
        return self.returncode


RunnerProcess: TypeAlias = "subprocess.Popen[bytes] | ForkedRunner"


async def sleep_until_exit(process: RunnerProcess | None, timeout: float) -> None:
    """Sleep `timeout`, or less if `process` (a runner this process started) exits first: a pidfd
    (Linux 5.3+) wakes the caller's event loop at its end, so that the front notices a finished
    job at once rather than a poll later. Without a pidfd, a plain sleep."""
    pidfd = None
    if process is not None and process.returncode is None and hasattr(os, "pidfd_open"):
        with contextlib.suppress(OSError):
            pidfd = os.pidfd_open(process.pid)
    if pidfd is None:
        await asyncio.sleep(timeout)
        return
    loop = asyncio.get_running_loop()
    exited = asyncio.Event()
    try:
        loop.add_reader(pidfd, exited.set)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(exited.wait(), timeout)
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


def _fork_runner(folder: Path, lock_fd: int, password: str | None) -> ForkedRunner:
    """Fork the runner: the child detaches as the exec'd runner does (its own session, stdio on
    /dev/null, nothing inherited but the lock), runs the job and leaves with os._exit, so that
    nothing of the front's (atexit, its buffered output) runs twice."""
    pid = os.fork()
    if pid:
        return ForkedRunner(pid)
    code = EXIT_FAILED
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        for fd in _inherited_fds:  # the front's own, never used by it (fork_is_safe checked they are the same)
            if fd != lock_fd:
                with contextlib.suppress(OSError):
                    os.close(fd)
        code = run(folder, password=password, lock_fd=lock_fd)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else EXIT_FAILED
    except BaseException:  # noqa: BLE001 - the child must never return into the front's code
        code = EXIT_FAILED
    finally:
        os._exit(code)
