"""Jobs: one dump or restore, run as asyncio subprocesses, observed through events.

A Job moves queued -> running -> succeeded | failed | cancelled | partial (finished, but
pg_restore ignored errors). Its children's stderr is streamed line by line to listeners and to a
per-job log file (0600) under the log dir, never buffered whole. Children run in their own
process group so that cancel reaches pg_dump's parallel workers too: SIGINT, then SIGTERM, then
SIGKILL after a grace period.

Listeners are plain callables taking a JobEvent; they are called on the event loop that runs
the job and must not block. The TUI turns events into messages, the CLI prints them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import signal
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, ClassVar, ParamSpec, TextIO, TypeVar

from . import paths
from .errors import EXIT_CANCELLED, EXIT_FAILED, JobFailed, PgBackupError, server_error_said
from .identifiers import one_line, printable
from .job_children import (die_with_parent, disk_full_cause, exit_in_words, feed_stdin, group_ends, own_group,
                           signal_group, telling_line)
from .job_events import (  # re-exported: `from .jobs import JobState` & co keep working
    DISK_NEARLY_FULL_BYTES,
    EXIT_CODE_FOR_STATE,
    LOG_LEVEL_FOR_STATE,
    Cancelled,
    JobEvent,
    JobFinished,
    JobResult,
    JobState,
    Listener,
    LogLine,
    Outcome,
    Owned,
    ProgressUpdated,
    StateChanged,
    classify_line,
    WARNING_PREFIX,
    SecretBlanker,
    log_stamp,
)
from .plans import safe_path_part, shell_preview, utc_stamp
from .progress.snapshot import JobProgress, ProgressSnapshot

__all__ = [  # the job and, re-exported, what it says (job_events.py)
    "DISK_NEARLY_FULL_BYTES", "EXIT_CODE_FOR_STATE", "LOG_LEVEL_FOR_STATE", "Cancelled", "Job", "JobEvent",
    "JobFinished", "JobResult", "JobState", "Listener", "LogLine", "Outcome", "Owned", "ProgressUpdated",
    "StateChanged", "classify_line",
]

P = ParamSpec("P")  # in_thread's callable: its arguments and result keep their types
R = TypeVar("R")


class Job:
    """Base class: subclasses implement `_execute` and, if they leave things behind, `_cleanup`."""

    kind: ClassVar[str] = "job"
    CANCEL_GRACE_S: ClassVar[float] = 5.0
    STDERR_LINE_LIMIT: ClassVar[int] = 1 << 20

    def __init__(self, title: str, *, database: str = "", server: str = "") -> None:
        self.id = uuid.uuid4().hex[:8]
        self.title = title
        self.database = database
        self.server = server
        self.state = JobState.QUEUED
        self.created_at = time.time()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.result: JobResult | None = None
        self.log_path: Path | None = None
        # A child's line that is not UTF-8 is read in this codec: pg_dump talks to the server in the
        # database's encoding, and a LATIN1 table name in its error would be "Caf\ufffd" otherwise.
        self.child_text_codec = "utf-8"
        self._listeners: list[Listener] = []
        self._log_file: TextIO | None = None
        self._process: asyncio.subprocess.Process | None = None
        # Bytes written so far to the running child's stdin (None: it reads none from us): how far
        # a psql fed a script through a pipe (--file=-) has come, where no read position shows it.
        self.stdin_fed: int | None = None
        self._cancel_requested = False
        self._fatal: PgBackupError | None = None  # abort()'s reason: the job ends failed with it
        self.cleanup_note: str | None = None  # what _cleanup did or could not do, added to the result
        self._loop: asyncio.AbstractEventLoop | None = None
        self._escalation: asyncio.Task | None = None
        self._stderr_tail: list[str] = []  # the children's last lines, for one-line error messages
        self._child_tail: list[str] = []  # the last child's own (child_failure)
        # The job's progress tracker (progress_monitor.ProgressTracker), set by subclasses once
        # they know what the job will do; run() stops it and sends the final 100 % on success.
        self.progress_tracker: JobProgress | None = None

    # -- observing ---------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(self, event: JobEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    @property
    def progress(self) -> ProgressSnapshot | None:
        """The latest snapshot, or None before the first one."""
        return self.progress_tracker.last if self.progress_tracker is not None else None

    @property
    def application_name(self) -> str:
        """PGAPPNAME for our children, so a monitor connection can find their backends."""
        return f"pgbackup-tui/{self.id}"

    @property
    def child_pid(self) -> int | None:
        """The pid of the child running now (its process group has the same id), if any."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    @property
    def elapsed_s(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.finished_at or time.time()) - self.started_at

    # -- running -----------------------------------------------------------------------------
    async def run(self) -> JobResult:
        """Run the job to its end and return the result; never raises for expected failures."""
        self._loop = asyncio.get_running_loop()
        self.started_at = time.time()
        self._open_log()
        self._set_state(JobState.RUNNING)
        state, exit_code, outcome = JobState.FAILED, EXIT_FAILED, None
        error: type[Exception] | None = None
        try:
            if self._cancel_requested:
                raise Cancelled()
            outcome = await self._execute()
            state = JobState.PARTIAL if outcome.errors_ignored else JobState.SUCCEEDED
            exit_code = EXIT_CODE_FOR_STATE[state]
            message = outcome.message
        except (Cancelled, asyncio.CancelledError):
            state, exit_code, message = JobState.CANCELLED, EXIT_CANCELLED, f"{self.title}: cancelled"
            if self._fatal is not None:
                state, exit_code, message = JobState.FAILED, self._fatal.exit_code, str(self._fatal)
                error = type(self._fatal)
        except PgBackupError as exc:
            exit_code, message, error = exc.exit_code, str(exc), type(exc)
        except Exception as exc:
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:  # a write of ours (a manifest...) found no room
                where = f" writing {exc.filename}" if exc.filename else ""
                exit_code, message, error = (EXIT_FAILED, f"{self.title}: the disk is full ({exc.strerror}{where}); "
                                             "the job was stopped", type(exc))
            elif (said := server_error_said(exc, self.server)) is not None:  # the server's word, not a bug of ours
                exit_code, message, error = EXIT_FAILED, f"{self.title}: {said}", type(exc)
            else:  # a bug: keep the traceback in the log, one line for the user
                exit_code, message, error = (EXIT_FAILED, f"{self.title}: internal error: {exc!r} (see the log)",
                                             type(exc))
                self.log(traceback.format_exc().rstrip(), level="error")
        tracker = self.progress_tracker
        if tracker is not None:
            await tracker.stop()  # before cleanup: a database it watches may be dropped
        try:
            await self._cleanup(state)
        except Exception as exc:
            self.log(f"cleanup failed: {exc!r}", level="error")
        if self.cleanup_note:
            message = f"{message}; {self.cleanup_note}"
        if tracker is not None and state in (JobState.SUCCEEDED, JobState.PARTIAL):
            tracker.emit_done()
        self.finished_at = time.time()
        # The result as it is (a partial or cancelled job's is at warning level): every front says it
        # as the result, not as one of the job's warnings.
        # One line (DESIGN: every error is one), here and for every front: a database or table named
        # with a line break ("database 'two<LF>lines' already exists…") broke it in two.
        message = one_line(message)
        self._log_line(message, LOG_LEVEL_FOR_STATE[state])
        self.result = JobResult(
            state=state,
            exit_code=exit_code,
            message=message,
            log_path=self.log_path,
            duration_s=self.elapsed_s,
            output_path=outcome.output_path if outcome else None,
            bytes_written=outcome.bytes_written if outcome else 0,
            errors_ignored=outcome.errors_ignored if outcome else 0,
            details=outcome.details if outcome else {},
            error=error,
        )
        self._set_state(state)
        self._close_log()
        self.emit(JobFinished(self.id, self.result))
        return self.result

    async def _execute(self) -> Outcome:
        raise NotImplementedError

    async def _cleanup(self, state: JobState) -> None:
        """Undo what a failed or cancelled job left behind (partial archives, created databases)."""

    def cancel(self) -> None:
        """Ask the job to stop. Safe to call from any thread, any number of times."""
        loop = self._loop
        if loop is not None and loop.is_running():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                loop.call_soon_threadsafe(self._cancel_now)
                return
        self._cancel_now()

    def _cancel_now(self) -> None:
        if self._cancel_requested or self.state.is_final:
            return
        self._cancel_requested = True
        # What was asked for (the result says it), not a warning to repeat to whoever asked.
        self.log(f"stopping: {self._fatal}" if self._fatal else "cancel requested")
        process = self._process
        if process is not None and process.returncode is None:
            signal_group(process, signal.SIGINT)
            self._escalation = asyncio.ensure_future(self._escalate(process))

    async def _escalate(self, process: asyncio.subprocess.Process) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if await group_ends(process, self.CANCEL_GRACE_S):  # its workers too (they outlive it on a stalled link)
                return
            self.log(f"child still running; sending {sig.name}", level="warning")
            signal_group(process, sig)

    def own(self, kind: str, value: str | Path, *, stop_at: Path | None = None, identity: str | None = None,
            previous: str | None = None) -> None:
        """Say, before creating it, that this job creates `value` and must undo it unless it finishes;
        said again with its `identity` once made (a database's OID), the record gains it."""
        self.emit(Owned(self.id, kind, str(value), True, str(stop_at) if stop_at else None, identity, previous))

    def forward_owned(self, child: Job) -> None:
        """A job run inside this one (a member of a cluster set): what it owns goes on this job's
        record too, so that a dead runner's recovery finds the member's database and files."""
        def forward(event: JobEvent) -> None:
            if isinstance(event, Owned):
                self.emit(dataclasses.replace(event, job_id=self.id))

        child.subscribe(forward)

    def release(self, kind: str, value: str | Path) -> None:
        """`value` is no longer ours to undo (renamed into place, kept, or already undone)."""
        self.emit(Owned(self.id, kind, str(value), False))

    def _fed(self, size: int) -> None:
        self.stdin_fed = (self.stdin_fed or 0) + size

    def check_cancelled(self) -> None:
        if self._cancel_requested:
            raise Cancelled()

    async def in_thread(self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run blocking work (psycopg) off the event loop; stop afterwards if cancelled."""
        result = await asyncio.to_thread(func, *args, **kwargs)
        self.check_cancelled()
        return result

    async def run_process(
        self,
        argv: list[str],
        env: dict[str, str],
        *,
        on_line: Callable[[str], None] | None = None,
        stdout_path: Path | None = None,
        stdin_chunks: Iterator[bytes] | None = None,
    ) -> int:
        """Run one child, streaming its stderr into the log; return its exit code.

        `stdin_chunks`: what to write to its standard input, a chunk at a time (read lazily, in a
        thread: a big file passes through without being held). Raises Cancelled if cancel() was
        requested while it ran.
        """
        self.check_cancelled()
        # One line, a name's line break as \n: "--dbname=dbname='two<LF>lines' …" was two lines of the log.
        self.log("$ " + one_line(shell_preview(argv)), level="command")
        self._child_tail = []
        stdout_target: int | IO[bytes] = asyncio.subprocess.DEVNULL
        stdout_file = None
        if stdout_path is not None:
            # Closed in the finally below, as soon as the child holds its own descriptor.
            stdout_file = open(os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")  # noqa: SIM115
            stdout_target = stdout_file
        try:
            self._process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin_chunks is not None else asyncio.subprocess.DEVNULL,
                stdout=stdout_target,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                **own_group(),
                umask=0o077,  # what children create (pg_dump -Fd's files) is private from the start
                preexec_fn=die_with_parent,
                limit=self.STDERR_LINE_LIMIT,
            )
        finally:
            if stdout_file is not None:
                stdout_file.close()  # the child holds its own descriptor now
        process = self._process
        # Its group (pg_dump --jobs workers too) is ended by whoever cleans up after a dead runner.
        try:
            self.own("process_group", str(process.pid))
        except PgBackupError:  # not on record (state disk full): not ours to let run
            signal_group(process, signal.SIGKILL)
            await process.wait()
            self._process = None
            raise
        if self._cancel_requested and process.returncode is None:  # cancelled while the child was starting
            signal_group(process, signal.SIGINT)
            self._escalation = asyncio.ensure_future(self._escalate(process))
        assert process.stderr is not None
        self.stdin_fed = 0 if stdin_chunks is not None else None
        feeder = (asyncio.ensure_future(feed_stdin(process, stdin_chunks, self._fed))
                  if stdin_chunks is not None else None)
        blank_secrets = SecretBlanker()
        try:
            while True:
                raw = await process.stderr.readline()
                if not raw:
                    break
                try:
                    line = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError:  # the server's words in the database's encoding (pg_dump's session)
                    line = raw.decode(self.child_text_codec, errors="replace").rstrip("\r\n")
                line = blank_secrets(line)
                self.log(line, level=classify_line(line))
                self._stderr_tail = (self._stderr_tail + [line])[-50:]
                self._child_tail = (self._child_tail + [line])[-50:]
                if on_line is not None:
                    on_line(line)
            code = await process.wait()
            if feeder is not None:
                await feeder
        except asyncio.CancelledError:
            # The task running us was cancelled (e.g. the app is quitting): take the child down.
            signal_group(process, signal.SIGKILL)
            await process.wait()
            raise
        finally:
            self._process = None
            if feeder is not None and not feeder.done():
                feeder.cancel()
        self.release("process_group", str(process.pid))
        if self._cancel_requested:
            raise Cancelled()
        return code

    def disk_full(self, folder: Path) -> str | None:
        """Why `folder`'s disk looks full, from the children's last lines or what is free, or None."""
        return disk_full_cause(self._stderr_tail, folder)

    def last_error(self) -> str:
        """The most telling line the children printed (job_children.telling_line)."""
        return telling_line(self._stderr_tail)

    def child_failure(self, code: int) -> str:
        """Why the last child ended with `code`, in one line: how, if a signal killed it (its own last
        lines say what it was doing, not why it stopped), else its most telling line. Not the job's
        last_error(): a child that printed nothing was said with the line of the one before it
        (pg_dump's "dumping contents of table …" for a pg_restore --list killed by SIGKILL)."""
        if code < 0 or not self._child_tail:
            return exit_in_words(code)
        return telling_line(self._child_tail)

    def children_said(self, words: str) -> bool:
        """Whether one of the children's last lines holds `words` (a refusal whose line a name cut in two)."""
        return any(words in line for line in self._stderr_tail)

    # -- logging -----------------------------------------------------------------------------
    def log(self, text: str, level: str = "info") -> None:
        """One line (or several) to the log file and to listeners (bytes that are not UTF-8 as \\xNN).
        A warning whose words do not say so gets "warning: " in front: the log file keeps no level,
        and a front that follows the job from it (the CLI's --progress none, the TUI) would take it
        for an info line."""
        for line in printable(text).splitlines() or [""]:
            if level == "warning" and classify_line(line) != "warning":
                line = WARNING_PREFIX + line
            self._log_line(line, level)

    def _log_line(self, line: str, level: str) -> None:
        if self._log_file is not None:
            stamp = log_stamp()
            try:
                self._log_file.write(f"{stamp} {line}\n")
            except OSError as exc:
                self._log_file_failed(exc)
        self.emit(LogLine(self.id, line, level))

    def _log_file_failed(self, exc: OSError) -> None:
        """The log cannot be written (its disk is full): a job without its log is not ours to run."""
        log_file, self._log_file = self._log_file, None
        with contextlib.suppress(OSError):
            if log_file is not None:
                log_file.close()
        full = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
        self.abort(JobFailed(f"cannot write the job's log {self.log_path}: {exc.strerror}{full}; "
                             f"{self.stopped_said()}"))

    def stopped_said(self) -> str:
        """What a job stopped by abort() (its log or state unwritable) says it undid: a job that
        writes files removes them. A job that writes into a database says no such thing (it has no
        partial output): its cleanup_note, added to the result, says what became of the database."""
        return "the job was stopped and its partial output removed"

    def abort(self, error: PgBackupError) -> None:
        """Stop the job as failed with `error` (not as cancelled): its children end, its cleanup runs."""
        if self._fatal is None:
            self._fatal = error
        self._cancel_now()

    def _open_log(self) -> None:
        folder = paths.ensure_private_dir(paths.logs_dir())
        name = f"{utc_stamp()}-{self.kind}-{safe_path_part(self.database or 'job')[:64]}-{self.id}.log"  # fits NAME_MAX
        self.log_path = folder / name
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        # Line-buffered, so tail -f works; open for the job's life and closed by _close_log.
        self._log_file = open(fd, "w", encoding="utf-8", buffering=1)  # noqa: SIM115

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _set_state(self, state: JobState) -> None:
        self.state = state
        self.emit(StateChanged(self.id, state))
