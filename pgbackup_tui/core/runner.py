"""The job runner: one detached process per job, which owns its pg_dump / pg_restore / psql children.

A front (the CLI's `dump` / `restore`, the TUI, a scheduled run) calls `start_job()`: the plan goes
to the job's folder (job_store.py, never a password), and `python -m pgbackup_tui.core.runner
FOLDER` starts in a session of its own, so that a hang-up of the terminal (an SSH drop, a closed
tmux) does not reach it. The password, if the front has one, travels in the runner's environment
and from there only into its children's. The runner:

- holds the job's lock for its whole life (job_store.runner_lock): a lock anyone can take means
  the runner is gone;
- runs the DumpJob / RestoreJob as the fronts used to in-process, with a private umask;
- writes state.json as the job goes: every state change and everything the job owns (synced
  before the job creates it), progress at most a few times a second, and the result;
- treats SIGTERM and SIGINT as "cancel" (`pgbackup-tui jobs cancel`, or a front's Ctrl-C) and
  ignores SIGHUP. Its children get SIGKILL if it dies (PR_SET_PDEATHSIG, jobs.py), and the next
  command of any kind cleans up after it (job_store.recover).

Its exit code is the job's (0, 1, 2, 3, 130); STATE_UNWRITABLE when it could not even record
that, e.g. on a full disk, which the front then says in its own words.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import job_store
from .errors import EXIT_FAILED, JobFailed
from .jobs import Job, JobEvent, JobFinished, Owned, ProgressUpdated, StateChanged

PASSWORD_ENV = "PGBACKUP_TUI_RUNNER_PASSWORD"  # read and removed by the runner at once
LOCK_FD_ENV = "PGBACKUP_TUI_RUNNER_LOCK_FD"  # the job's lock, taken by the front, inherited
STATE_UNWRITABLE = 75  # EX_TEMPFAIL: the runner could not write the job's state
PROGRESS_WRITE_INTERVAL_S = 0.25


def start_job(kind: str, plan: Any, title: str) -> tuple[str, Path, subprocess.Popen[bytes]]:
    """Write the job's spec and start its runner. Returns (job id, job folder, the runner process)."""
    job_id = uuid.uuid4().hex[:8]
    spec = {"id": job_id, "kind": kind, "title": title, "server": plan.target.label, "database": plan.dbname,
            "plan": job_store.plan_to_json(plan), "created_at": time.time()}
    try:
        folder, lock_fd = job_store.create_job_dir(job_id, spec)
    except OSError as exc:
        shutil.rmtree(job_store.job_dir(job_id), ignore_errors=True)
        full = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
        raise JobFailed(f"cannot write the job's state under {job_store.jobs_root()}: {exc.strerror}{full}; "
                        "nothing was started") from None
    env = dict(os.environ)
    env[LOCK_FD_ENV] = str(lock_fd)
    if plan.target.password is not None:
        env[PASSWORD_ENV] = plan.target.password
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "pgbackup_tui.core.runner", str(folder)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env, start_new_session=True, close_fds=True, pass_fds=(lock_fd,),
        )
    finally:
        os.close(lock_fd)  # the runner holds the lock now (the same open file, inherited)
    return job_id, folder, process


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
        self.state.update(runner_pid=os.getpid(), owned=list(self.state.get("owned") or []))
        self._last_progress_write = 0.0
        self.broken: OSError | None = None
        self._lock = threading.RLock()

    def write(self, *, durable: bool = False) -> JobFailed | None:
        """Write state.json; on failure stop the job (a job whose state cannot be kept is not safe
        to run) and return the reason."""
        job = self.job
        try:
            with self._lock:  # events may come from the job's threads (a set's members record what they own)
                self.state.update(state=job.state.value, title=job.title, started_at=job.started_at,
                                  finished_at=job.finished_at, log_path=str(job.log_path) if job.log_path else None)
                job_store.write_json(self.folder / job_store.STATE, self.state, durable=durable)
        except OSError as exc:
            full = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
            error = JobFailed(f"cannot write the job's state under {self.folder}: {exc.strerror}{full}; "
                              "the job was stopped and its partial output removed")
            if self.broken is None:
                self.broken = exc
                job.abort(error)
            return error
        return None

    def on_event(self, event: JobEvent) -> None:
        if isinstance(event, Owned):
            self._owned(event)
        elif isinstance(event, StateChanged):
            if not event.state.is_final:  # a final state is written with its result (JobFinished)
                self.write(durable=True)
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
                              details=result.details)
            self.write(durable=True)

    def _owned(self, event: Owned) -> None:
        item = {"kind": event.kind, "value": event.value}
        if event.stop_at:
            item["stop_at"] = event.stop_at
        with self._lock:
            owned = [i for i in self.state["owned"] if (i.get("kind"), i.get("value")) != (event.kind, event.value)]
            if event.held:
                owned.append(item)
            self.state["owned"] = owned
        # Synced before the job creates the thing: a runner killed right after still has it on record.
        error = self.write(durable=True)
        if error is not None and event.held:
            raise error  # in the job, before it creates what it could not record


_early_cancel: list[int] = []  # SIGTERM / SIGINT that came before the job could hear them


def _remember_cancel(signum: int, _frame: object) -> None:
    _early_cancel.append(signum)


async def _run(job: Job) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, job.cancel)
    if _early_cancel:
        job.cancel()
    await job.run()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m pgbackup_tui.core.runner JOB_FOLDER", file=sys.stderr)
        return 2
    folder = Path(argv[1])
    os.umask(0o077)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # its own session already; belt and braces
    for sig in (signal.SIGINT, signal.SIGTERM):  # a cancel that comes while we start is kept
        signal.signal(sig, _remember_cancel)
    password = os.environ.pop(PASSWORD_ENV, None)
    inherited = os.environ.pop(LOCK_FD_ENV, None)
    with job_store.runner_lock(folder, inherited_fd=int(inherited) if inherited else None) as got_it:
        if not got_it:
            return 2  # another runner has this job
        spec = job_store.read_json(folder / job_store.SPEC)
        if spec is None:
            return 2
        job = build_job(spec, password)
        writer = StateWriter(folder, job)
        if writer.write(durable=True) is not None:
            return STATE_UNWRITABLE
        job.subscribe(writer.on_event)
        try:
            asyncio.run(_run(job))
        except OSError:
            return STATE_UNWRITABLE
        if writer.broken is not None:
            return STATE_UNWRITABLE
        return job.result.exit_code if job.result is not None else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv))
