"""The job runner: one detached process per job, which owns its pg_dump / pg_restore / psql children.

A front (the CLI's `dump` / `restore`, the TUI, a scheduled run) calls `runner_start.start_job()`: the plan goes
to the job's folder (job_store.py, never a password), and the runner starts in a session of its
own, so that a hang-up of the terminal (an SSH drop, a closed tmux) does not reach it: a fork of a
headless front where that is safe (no second interpreter start), else `python -m
pgbackup_tui.core.runner FOLDER`. The password, if the front has one, is handed over in memory
(a fork) or in the runner's environment, and from there goes only into its children's. The runner:

- holds the job's lock for its whole life (job_store.runner_lock): a lock anyone can take means
  the runner is gone;
- runs the DumpJob / RestoreJob as the fronts used to in-process, with a private umask;
- writes state.json as the job goes: every state change, progress at most a few times a second,
  and the result (synced), then ends at once (os._exit: the front waiting for it notices through
  a pidfd); and what the job owns to owned.json, synced before the job creates it (job_store.py);
- treats SIGTERM and SIGINT as "cancel" (`pgbackup-tui jobs cancel`, or a front's Ctrl-C) and
  ignores SIGHUP. Its children get SIGKILL if it dies (PR_SET_PDEATHSIG, jobs.py), and the next
  command of any kind cleans up after it (job_recovery.recover).

Its exit code is the job's (0, 1, 2, 3, 130); STATE_UNWRITABLE when it could not even record
that, e.g. on a full disk, which the front then says in its own words.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import job_store
from .errors import EXIT_FAILED, JobFailed
from .job_owned import boot_id
from .jobs import Job, JobEvent, JobFinished, Owned, ProgressUpdated, StateChanged

PASSWORD_ENV = "PGBACKUP_TUI_RUNNER_PASSWORD"  # read and removed by the runner at once
LOCK_FD_ENV = "PGBACKUP_TUI_RUNNER_LOCK_FD"  # the job's lock, taken by the front, inherited
STATE_UNWRITABLE = 75  # EX_TEMPFAIL: the runner could not write the job's state
PROGRESS_WRITE_INTERVAL_S = 0.25


def build_job(spec: dict[str, Any], password: str | None) -> Job:
    from .job_kinds import job_class

    plan = job_store.plan_from_json(spec["kind"], spec["plan"], password)
    job: Job = job_class(spec["kind"])(plan)
    job.id = spec["id"]
    job.title = spec.get("title") or job.title
    return job


class StateWriter:
    """Keeps state.json in step with the job (a listener on it)."""

    def __init__(self, folder: Path, job: Job) -> None:
        self.folder = folder
        self.job = job
        self.state: dict[str, Any] = job_store.read_json(folder / job_store.STATE) or {}
        self.state.update(runner_pid=os.getpid(), boot_id=boot_id(), owned=list(self.state.get("owned") or []))
        self._last_progress_write = 0.0
        self.broken: OSError | None = None
        self._lock = threading.RLock()

    def write(self, *, durable: bool = False) -> JobFailed | None:
        """Write state.json; on failure stop the job (a job whose state cannot be kept is not safe
        to run) and return the reason."""
        job = self.job
        with self._lock:  # events may come from the job's threads (a set's members record what they own)
            self.state.update(state=job.state.value, title=job.title, started_at=job.started_at,
                              finished_at=job.finished_at, log_path=str(job.log_path) if job.log_path else None)
            return self._kept(job_store.STATE, self.state, durable=durable)

    def write_owned(self) -> JobFailed | None:
        """Write owned.json, synced (job_owned.owned_items): what the job owns but its process groups."""
        with self._lock:
            items = [item for item in self.state["owned"] if item.get("kind") != "process_group"]
            return self._kept(job_store.OWNED, {"items": items}, durable=True)

    def _kept(self, name: str, data: dict[str, Any], *, durable: bool) -> JobFailed | None:
        try:
            job_store.write_json(self.folder / name, data, durable=durable)
        except OSError as exc:
            full = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
            error = JobFailed(f"cannot write the job's state under {self.folder}: {exc.strerror}{full}; "
                              f"{self.job.stopped_said()}")
            if self.broken is None:
                self.broken = exc
                self.job.abort(error)
            return error
        return None

    def on_event(self, event: JobEvent) -> None:
        if isinstance(event, Owned):
            self._owned(event)
        elif isinstance(event, StateChanged):
            # A final state is written, synced, with its result (JobFinished). Another is not synced:
            # after a crash of the machine "queued" and "running" read alike (not finished), and an
            # fsync costs 1-30 ms on the job's path (more while the disk takes an archive's writes).
            if not event.state.is_final:
                self.write()
        elif isinstance(event, ProgressUpdated):
            self.state["progress"] = asdict(event.progress)
            now = time.monotonic()
            if now - self._last_progress_write >= PROGRESS_WRITE_INTERVAL_S or event.progress.phase == "done":
                self._last_progress_write = now
                self.write()
        elif isinstance(event, JobFinished):
            result = event.result
            self.state.update(exit_code=result.exit_code, message=result.message, duration_s=result.duration_s,
                              output_path=str(result.output_path) if result.output_path else None,
                              bytes_written=result.bytes_written, errors_ignored=result.errors_ignored,
                              details=job_store.details_for_state(result.details))
            if self.write(durable=True) is None and not job_store.still_owned(self.state.get("owned") or []):
                with contextlib.suppress(OSError):  # only a shortcut: without it the state is read as before
                    (self.folder / job_store.SETTLED).touch()

    def _owned(self, event: Owned) -> None:
        item = {"kind": event.kind, "value": event.value}
        if event.stop_at:
            item["stop_at"] = event.stop_at
        if event.identity:
            item["identity"] = event.identity
        if event.previous:
            item["previous"] = event.previous
        with self._lock:
            owned = [i for i in self.state["owned"] if (i.get("kind"), i.get("value")) != (event.kind, event.value)]
            if event.held:
                owned.append(item)
            self.state["owned"] = owned
        # The record (owned.json) is only ever written synced: state.json's later writes are not,
        # and a crash of the machine may leave that file empty or old. state.json keeps a copy
        # (the process groups are only there), written without an fsync.
        error = self.write_owned() if _must_sync(event) else None
        if error is None:
            error = self.write()
        if error is not None and event.held:
            raise error  # in the job, before it creates what it could not record


def _must_sync(event: Owned) -> bool:
    """Whether owned.json must be written, synced, for `event` before the job goes on (1-30 ms).

    A thing the job is about to create: yes, so that a runner killed right after, or a machine that
    stops, still has it on record. A child's process group: no, it serves only a runner that dies
    while the machine runs on (its --jobs workers outlive it), which state.json's copy (unsynced)
    serves. A path let go of once it is gone (renamed into place, removed): no, the next synced
    write carries it, and a death before that leaves a look for a file that is not there. Anything
    else let go of (a database now the user's, a path someone else took): yes, or a crash would undo it."""
    if event.kind == "process_group":
        return False
    if not event.held and event.kind == "path":
        return os.path.lexists(event.value)
    return True


_early_cancel: list[int] = []  # SIGTERM / SIGINT that came before the job could hear them


def _remember_cancel(signum: int, _frame: object) -> None:
    _early_cancel.append(signum)


async def _run(job: Job, writer: StateWriter) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, job.cancel)
    if _early_cancel:
        job.cancel()
    await job.run()
    # The result is on disk (JobFinished, synced) and the log closed: what is left is teardown
    # (asyncio joining its worker threads, the interpreter's), which nobody needs.
    _exit_now(_exit_code(job, writer))


def main(argv: list[str]) -> int:
    """`python -m pgbackup_tui.core.runner FOLDER`: the job's lock and password come in the environment."""
    if len(argv) != 2:
        print("usage: python -m pgbackup_tui.core.runner JOB_FOLDER", file=sys.stderr)
        return 2
    password = os.environ.pop(PASSWORD_ENV, None)
    inherited = os.environ.pop(LOCK_FD_ENV, None)
    return run(Path(argv[1]), password=password, lock_fd=int(inherited) if inherited else None)


def run(folder: Path, *, password: str | None, lock_fd: int | None) -> int:
    """Run the job of `folder` to its end. Once its state is final and on disk the process ends at
    once (os._exit; the lock goes with it): a normal exit would wait for the job's leftover threads
    and tear down every module, time the front spends waiting for us. Returns only when the job
    did not run (another runner has it, no spec, the state cannot be written)."""
    os.umask(0o077)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # its own session already; belt and braces
    # A front started with SIGCHLD ignored (it survives exec and fork) would have the kernel reap
    # pg_dump for us, and its exit status, which says whether the backup is whole, would be lost.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for sig in (signal.SIGINT, signal.SIGTERM):  # a cancel that comes while we start is kept
        signal.signal(sig, _remember_cancel)
    with job_store.runner_lock(folder, inherited_fd=lock_fd) as got_it:
        if not got_it:
            return 2  # another runner has this job
        spec = job_store.read_json(folder / job_store.SPEC)
        if spec is None:
            return 2
        job = build_job(spec, password)
        writer = StateWriter(folder, job)
        # Not synced: a crash of the machine leaves a job that reads as unfinished either way (what
        # it owns has its own record, owned.json, synced before each thing is created). A state it cannot write
        # at all (a full disk) is still found here, or at that first synced write, before anything.
        if writer.write() is not None:
            return _said_unwritable(folder, writer.broken)
        job.subscribe(writer.on_event)
        try:
            asyncio.run(_run(job, writer))
        except OSError as exc:
            return _said_unwritable(folder, exc)
        return _exit_code(job, writer)


def _said_unwritable(folder: Path, cause: OSError | None) -> int:
    """Leave an empty file saying why the state could not be written (job_store.UNWRITABLE_MARK:
    a file with no bytes takes no block of a full disk, only an inode), for the next start's
    recovery to say that, not "killed, or out of memory"; STATE_UNWRITABLE."""
    code = errno.errorcode.get(cause.errno or 0, "EIO") if cause is not None else "EIO"
    with contextlib.suppress(OSError):
        os.close(os.open(folder / f"{job_store.UNWRITABLE_MARK}{code}", os.O_WRONLY | os.O_CREAT, 0o600))
    return STATE_UNWRITABLE


def _exit_code(job: Job, writer: StateWriter) -> int:
    if writer.broken is not None:
        return _said_unwritable(writer.folder, writer.broken)
    return job.result.exit_code if job.result is not None else EXIT_FAILED


def _exit_now(code: int) -> None:
    """End the process: the job's log is closed and its final state written durably (JobFinished)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main(sys.argv))
