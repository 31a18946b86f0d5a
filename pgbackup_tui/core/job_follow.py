"""A front's view of a job that runs in its runner: the same events a Job emits, read from disk.

JobFollower reads the job's folder (job_store.py) and its log file a few times a second and
emits StateChanged, LogLine, ProgressUpdated and JobFinished, like an in-process Job, so the
CLI's reporter and the TUI's panes need not know where the job runs. It has the attributes the
fronts read (id, title, kind, server, database, state, progress, result, log_path...), and
cancel() asks the runner to stop (SIGTERM to it, which the runner turns into a clean cancel).

A listener may take a chunk's log lines in one event (subscribe_batched: one
LogLines, not one LogLine a line): pg_dump --verbose writes four lines a table, 40,000 for 10,000
tables in a few seconds, and a LogLine each cost the TUI about 70 ms of CPU per dump.

Following never changes the job: a front that goes away (Ctrl-Z, an SSH drop, a crash) leaves
the job running, and any other front can follow it from where it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from . import job_store
from .errors import EXIT_FAILED
from .jobs import (
    Job, JobEvent, JobFinished, JobResult, JobState, Listener, LogLine, ProgressUpdated, StateChanged, classify_line,
)
from .job_events import all_info
from .job_stopped import unwritable_state_message
from .progress import ProgressSnapshot

if TYPE_CHECKING:
    from .runner_start import RunnerProcess

POLL_S = 0.1
# A state.json that looks unchanged (same inode, mtime and size) is not parsed again, but at least
# this often it is: two writes between polls could give a reused inode the same look.
STATE_REREAD_S = 1.0
# What a finished job's view keeps of its state.json (keep_summary): what the fronts show.
SUMMARY_KEYS = ("state", "created_at", "started_at", "finished_at", "log_path", "runner_pid", "title")
_STAMP_LENGTH = len("2026-01-01T00:00:00Z ")


@dataclasses.dataclass(frozen=True)
class LogLines:
    """The (text, level) log lines of one chunk, for a listener that takes them in one event."""

    job_id: str
    lines: tuple[tuple[str, str], ...]


BatchedListener: TypeAlias = Callable[["JobEvent | LogLines"], None]


def levelled_lines(block: str) -> list[tuple[str, str]]:
    """The (text, level) lines of a chunk of the log (whole lines, without their time stamps)."""
    texts = [line[_STAMP_LENGTH:] for line in block.split("\n")]
    if all_info(block):  # the usual case: no line to look into
        return [(text, "command" if text.startswith("$ ") else "info") for text in texts]
    return [(text, "command" if text.startswith("$ ") else classify_line(text)) for text in texts]


def result_from_state(state: dict[str, Any]) -> JobResult:
    """The JobResult a finished job's state.json describes."""
    return JobResult(
        state=JobState(state.get("state", "failed")),
        exit_code=int(state.get("exit_code", EXIT_FAILED)),
        message=str(state.get("message", "")),
        log_path=Path(state["log_path"]) if state.get("log_path") else None,
        duration_s=float(state.get("duration_s") or 0.0),
        output_path=Path(state["output_path"]) if state.get("output_path") else None,
        bytes_written=int(state.get("bytes_written") or 0),
        errors_ignored=int(state.get("errors_ignored") or 0),
        details=dict(state.get("details") or {}),
    )


def snapshot_from_state(state: dict[str, Any]) -> ProgressSnapshot | None:
    data = state.get("progress")
    if not isinstance(data, dict):
        return None
    try:
        return ProgressSnapshot(**{**data, "current": tuple(data.get("current") or ())})
    except TypeError:
        return None


class JobFollower:
    """Follows one job's folder; see the module docstring."""

    def __init__(self, record: job_store.JobRecord, *, runner: RunnerProcess | None = None,
                 on_unwritable: Callable[[], str] | None = None) -> None:
        spec = record.spec
        self.id = record.id
        self.folder = record.folder
        self.kind = str(spec.get("kind", "job"))
        self.title = str(spec.get("title", self.id))
        self.server = str(spec.get("server", ""))
        self.database = str(spec.get("database", ""))
        self.created_at = float(spec.get("created_at") or time.time())
        self.runner = runner  # the runner's Popen when this front started it (to reap it)
        self._listeners: list[Listener] = []
        self._batched: list[BatchedListener] = []  # listeners that take a chunk's lines in one LogLines
        self._state: dict[str, Any] = record.state
        self.state = JobState(record.state.get("state", "queued"))
        self.progress: ProgressSnapshot | None = snapshot_from_state(record.state)
        self.result: JobResult | None = result_from_state(record.state) if self.state.is_final else None
        self._log_offset = 0
        self._partial_line = b""
        self._state_look: tuple[int, int, int] | None = None  # state.json's (inode, mtime, size) when last parsed
        self._state_read_at = 0.0
        self._on_unwritable = on_unwritable
        self._cancel_wanted = False
        self._cancel_sent_at = 0.0

    # -- what the fronts read ----------------------------------------------------------------------
    @property
    def started_at(self) -> float | None:
        value = self._state.get("started_at")
        return float(value) if value else None

    @property
    def finished_at(self) -> float | None:
        value = self._state.get("finished_at")
        return float(value) if value else None

    @property
    def log_path(self) -> Path | None:
        value = self._state.get("log_path")
        return Path(value) if value else None

    @property
    def elapsed_s(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.finished_at or time.time()) - self.started_at

    @property
    def runner_pid(self) -> int | None:
        value = self._state.get("runner_pid")
        return int(value) if value else None

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` with the job's events (a LogLine a log line)."""
        self._listeners.append(listener)

    def subscribe_batched(self, listener: BatchedListener) -> None:
        """Call `listener` with the job's events, a chunk's log lines in one LogLines event."""
        self._batched.append(listener)

    def unsubscribe(self, listener: Listener | BatchedListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)
        if listener in self._batched:
            self._batched.remove(listener)

    def emit(self, event: JobEvent) -> None:
        for listener in [*self._listeners, *self._batched]:
            listener(event)

    def _emit_lines(self, lines: list[tuple[str, str]]) -> None:
        for batched in list(self._batched):
            batched(LogLines(self.id, tuple(lines)))
        for listener in list(self._listeners):
            for text, level in lines:
                listener(LogLine(self.id, text, level))

    def cancel(self) -> None:
        """Ask the runner to cancel the job (it removes the partial output itself). Asked again at
        every poll until the job ends: a runner that is only starting may not have heard it."""
        self._cancel_wanted = True
        self._send_cancel()

    def _send_cancel(self) -> None:
        if self.state.is_final:
            return
        pid = self.runner.pid if self.runner is not None else self.runner_pid
        if pid is None or (self.runner is None and not job_store.runner_alive(self.folder)):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            # A runner stopped (SIGSTOP, or Ctrl-Z where it was started) holds the SIGTERM until it
            # runs again: the cancel would wait for ever without a word. Cancelling it is asking it to run.
            os.kill(pid, signal.SIGCONT)

    def keep_summary(self) -> None:
        """Once the job has finished, forget what its state.json holds beyond what the fronts show
        (a runner of an earlier version wrote the manifest and the tables' list in the result's
        details there: megabytes for 10,000 tables). A front that keeps many finished jobs (the
        TUI) calls it; the CLI reads the details of the one job it runs and does not."""
        if self.result is None:
            return
        self._state = {key: self._state[key] for key in SUMMARY_KEYS if key in self._state}
        self.result = dataclasses.replace(self.result, details={})

    # -- following ----------------------------------------------------------------------------------
    def poll(self) -> None:
        """Read what changed since the last poll and emit it."""
        self._read_state()
        # The progress as of that state before the log lines written since: after them, a job that
        # failed before its first poll (a full disk in under a second) ended `--progress plain` with
        # its first snapshot ("0% schema 0/17 tables"), below the line that said how it ended.
        snapshot = snapshot_from_state(self._state)
        if snapshot is not None and snapshot != self.progress:
            self.progress = snapshot
            self.emit(ProgressUpdated(self.id, snapshot))
        self._read_log()
        new_state = JobState(self._state.get("state", "queued"))
        if new_state != self.state:
            self.state = new_state
            self.emit(StateChanged(self.id, new_state))
        if self._cancel_wanted and not new_state.is_final and time.monotonic() - self._cancel_sent_at > 1.0:
            self._cancel_sent_at = time.monotonic()
            self._send_cancel()
        if new_state.is_final and self.result is None:
            self._read_log()
            self.result = result_from_state(self._state)
            self.emit(JobFinished(self.id, self.result))

    def _read_state(self) -> None:
        """Parse state.json when it changed: the runner rewrites it at most 4 times a second while
        a front may poll 10 times (parsing it was 7 % of the TUI's CPU in a profiled dump)."""
        path = self.folder / job_store.STATE
        try:
            stat = os.stat(path)
        except OSError:
            return
        look = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        now = time.monotonic()
        if look == self._state_look and now - self._state_read_at < STATE_REREAD_S:
            return
        state = job_store.read_json(path)
        if state is not None:
            self._state = state
            self._state_look, self._state_read_at = look, now

    def _read_log(self) -> None:
        self.read_log_chunk()

    def read_log_chunk(self) -> bool:
        """Emit the log lines of the next chunk (1 MiB at most); False at the end of the log."""
        path = self.log_path
        if path is None:
            return False
        try:
            if os.stat(path).st_size <= self._log_offset:  # nothing new: not opened (a poll's usual case)
                return False
            with open(path, "rb") as handle:
                handle.seek(self._log_offset)
                data = handle.read(1 << 20)
        except OSError:
            return False
        if not data:
            return False
        self._log_offset += len(data)
        data = self._partial_line + data
        end = data.rfind(b"\n")
        self._partial_line = data[end + 1:]
        if end >= 0:  # whole lines, decoded at once (a line break is never part of a UTF-8 sequence)
            self._emit_lines(levelled_lines(data[:end].decode("utf-8", errors="replace")))
        return True

    def skip_log(self, keep_bytes: int = 0) -> None:
        """Start reading the log near its end: only the last `keep_bytes` (from a line start)."""
        path = self.log_path
        with contextlib.suppress(OSError):
            if path is not None:
                size = path.stat().st_size
                self._log_offset = max(0, size - keep_bytes)
                self._partial_line = b""
                if self._log_offset:
                    with open(path, "rb") as handle:  # skip the cut line
                        handle.seek(self._log_offset)
                        self._log_offset += len(handle.readline())

    async def follow(self, poll_s: float = POLL_S) -> JobResult:
        """Emit the job's events until it ends; its result. A runner that dies without finishing
        is cleaned up after (job_recovery.recover) and reported as failed. `poll_s`: how often its
        state and log are read while it runs (its end wakes us at once where a pidfd can)."""
        from .runner_start import sleep_until_exit

        while True:
            result = self._poll_result()
            if result is None and not self._runner_running():
                await asyncio.sleep(POLL_S)  # its last write may land right after it exits
                # Cleaning up after it may connect to a server: never on the caller's event loop.
                result = self._poll_result() or await asyncio.to_thread(self._runner_died)
            if result is not None:
                self._reap()
                return result
            await sleep_until_exit(self.runner, poll_s)  # woken at once by the runner's end

    def _poll_result(self) -> JobResult | None:
        self.poll()
        return self.result

    def _runner_running(self) -> bool:
        if self.runner is not None and self.runner.poll() is None:
            return True
        if self.runner is not None:
            return False
        if self._state.get("state", "queued") == "queued" and time.time() - self.created_at < 10:
            return True  # a runner someone else started may not hold its lock yet
        return job_store.runner_alive(self.folder)

    def _runner_died(self) -> JobResult:
        from .runner import STATE_UNWRITABLE

        code = self.runner.returncode if self.runner is not None else None
        if code == STATE_UNWRITABLE:
            message = self._on_unwritable() if self._on_unwritable else unwritable_state_message(self.folder)
        else:
            message = f"{self.title}: the job's runner stopped without finishing (exit {code})"
        record = job_store.load(self.id)
        if record is not None:
            from .job_cleanup import recover_jobs

            recover_jobs(only=self.id)
            state = job_store.read_json(self.folder / job_store.STATE) or {}
            if state.get("state") in job_store.FINAL_STATES and code != STATE_UNWRITABLE:
                self._state = state
                message = str(state.get("message") or message)
                if state.get("state") == JobState.SUCCEEDED.value:  # its output was in place (job_finish.py)
                    self.state, self.result = JobState.SUCCEEDED, result_from_state(state)
                    self.emit(StateChanged(self.id, self.state))
                    self.emit(JobFinished(self.id, self.result))
                    return self.result
        self.state = JobState.FAILED
        self.result = JobResult(JobState.FAILED, EXIT_FAILED, message, self.log_path, self.elapsed_s)
        self.emit(StateChanged(self.id, JobState.FAILED))
        self.emit(JobFinished(self.id, self.result))
        return self.result

    def _reap(self) -> None:
        if self.runner is not None:
            with contextlib.suppress(Exception):
                self.runner.wait(timeout=10)


JobView: TypeAlias = Job | JobFollower
"""What a front shows of a job: one run in this process (a dry run) or one followed from its runner."""


def start_and_follow(kind: str, plan: Any, title: str, *, listener: Listener | None = None,
                     on_start: Callable[[str], None] | None = None, poll_s: float = POLL_S) -> JobResult:
    """Start a job in its runner and follow it here to its end (the way the CLI's commands and
    scheduled runs do): Ctrl-C and SIGTERM ask the runner to cancel it, and we wait for that; a
    hang-up (SIGHUP) ends only this view while the job goes on. `on_start` gets the job's id;
    `poll_s` as in JobFollower.follow (a front that shows nothing while the job runs reads less)."""
    from .runner_start import start_job

    # A headless front: the runner may be a fork of this process (no second interpreter start).
    job_id, _folder, process = start_job(kind, plan, title, fork=True)
    record = job_store.load(job_id)
    if record is None:
        raise RuntimeError(f"job {job_id} vanished from the store just after it was started")
    follower = JobFollower(record, runner=process)
    if listener is not None:
        follower.subscribe(listener)
    if on_start is not None:
        on_start(job_id)

    async def follow() -> JobResult:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, follower.cancel)
        return await follower.follow(poll_s)

    return asyncio.run(follow())
