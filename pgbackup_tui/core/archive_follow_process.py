"""The archive follower (archive_follow.py) in a process of its own, at the lowest CPU priority.

Why: following the new archive -- every block decompressed and its rows counted, the file summed --
costs CPU beside pg_dump (0.45 s for the 1 GB reference database), CPU that pg_dump and its server
want: on 2 cores their dump took 1.28x as long with the follower as a thread of the job. Run at
SCHED_IDLE, the follower gets only what would otherwise idle (pg_dump and its server leave 20-25 %
of two cores unused while they wait on each other): 1.15x (scripts/bench_follower.py). Not a thread
at SCHED_IDLE: such a thread holds the interpreter's lock while the kernel keeps it aside, and the
job's event loop (pg_dump's stderr, the progress, a cancel) waited up to 1.4 s for it; a process
has its own interpreter.

An unprivileged process cannot leave SCHED_IDLE (sched(7): RLIMIT_NICE is 0 by default). Once
pg_dump has exited the machine is usually the follower's, and it finishes within tens of ms. But
where other work keeps every core busy, an idle process may not run at all: FollowerProcess.finish()
then gives up on it (it has had no CPU for STARVED_S) and the job reads the archive through with
pg_restore at normal priority instead (dump_verify.py), which is slower but always ends.

The child is `python -m pgbackup_tui.core.archive_follow_process ARCHIVE`: "done" on its stdin says
pg_dump exited with success; stdin closing without it says stop. Its stdout gets one JSON object
at the end: the rows per data block, the checksum, the COPY statements (as latin-1, bytes kept), or
the error that made it step aside.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .archive_follow import CustomArchiveFollower
from .custom_archive import FormatUnknown
from .job_children import die_with_parent

STARVED_S = 2.0  # after pg_dump: no CPU for this long, the follower is given up on
_POLL_S = 0.05
_DONE = b"done\n"
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding pgbackup_tui
_IDLE = getattr(os, "SCHED_IDLE", None)  # Linux
_IDLE_PARAM = os.sched_param(0) if _IDLE is not None else None


def _setup_child() -> None:
    """Between fork and exec (nothing imported here): die with the runner, and run at SCHED_IDLE
    from the start, the interpreter's own start and imports included."""
    die_with_parent()
    if _IDLE is not None and _IDLE_PARAM is not None:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, _IDLE, _IDLE_PARAM)


class FollowerProcess:
    """The parent's side, with CustomArchiveFollower's interface: start() before pg_dump,
    writer_finished() once it has exited, finish() (blocking: call it in a thread), abandon()."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._process: subprocess.Popen[bytes] | None = None
        self.checksum: tuple[str, int] | None = None
        self.copy_statements: dict[int, bytes] = {}  # dump id -> its COPY statement, for the rows' table

    def start(self) -> None:
        """Called from the job's event loop thread: PR_SET_PDEATHSIG follows the thread that forks,
        so the child dies with the runner, not with a worker thread."""
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(self.path.absolute())], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True, preexec_fn=_setup_child,
            cwd=_PACKAGE_ROOT)  # `-m` looks in the working directory first: this code, not another copy

    def writer_finished(self) -> None:
        process = self._process
        if process is None or process.stdin is None or process.stdin.closed:
            return
        with contextlib.suppress(OSError):  # it ended already: finish() says why
            process.stdin.write(_DONE)
            process.stdin.flush()
        with contextlib.suppress(OSError):
            process.stdin.close()

    def finish(self) -> dict[int, int]:
        """Rows per TABLE DATA dump id; raises (FormatUnknown) if the archive was not confirmed."""
        self.writer_finished()
        process = self._process
        assert process is not None and process.stdout is not None
        _wait_unless_starved(process)
        out = process.stdout.read()
        process.wait()
        try:
            result = json.loads(out)
        except ValueError:
            raise FormatUnknown(f"the follower ended (exit {process.returncode}) without a result") from None
        if "error" in result:
            raise FormatUnknown(result["error"])
        self.checksum = (result["checksum"][0], result["checksum"][1]) if result.get("checksum") else None
        self.copy_statements = {int(key): text.encode("latin-1") for key, text in result["copy"].items()}
        return {int(key): rows for key, rows in result["rows"].items()}

    def abandon(self) -> None:
        """The job stops (failed, cancelled): the child is killed and reaped."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(OSError):
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _wait_unless_starved(process: subprocess.Popen[bytes]) -> None:
    """Wait for the child's end while it gets CPU; kill it once it has had none for STARVED_S."""
    last_cpu, last_change = _cpu_ticks(process.pid), time.monotonic()
    while process.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(_POLL_S)
            return
        cpu, now = _cpu_ticks(process.pid), time.monotonic()
        if cpu != last_cpu:
            last_cpu, last_change = cpu, now
        elif now - last_change >= STARVED_S:
            process.kill()
            process.wait()
            raise FormatUnknown(f"the follower had no CPU for {STARVED_S:.0f} s (every core busy with other work)")


def _cpu_ticks(pid: int) -> int | None:
    """utime + stime of a process, in clock ticks (/proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])


# -- the child -----------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    """Follow ARCHIVE (this process is at SCHED_IDLE from the start: _setup_child) until the
    parent says pg_dump is done, then print the result; stop quietly if the parent stops first."""
    follower = CustomArchiveFollower(Path(argv[0]))
    follower.start()  # its thread inherits this one's policy
    if sys.stdin.buffer.readline() != _DONE:  # stdin closed: the job failed, was cancelled, or died
        follower.abandon()
        return 0
    try:
        rows = follower.finish()
        assert follower.header is not None  # finish() checked the archive through to its end
        copies = {entry.dump_id: (entry.copy_stmt or b"").decode("latin-1")
                  for entry in follower.header.entries if entry.dump_id in rows}
        result: dict = {"rows": rows, "checksum": follower.checksum, "copy": copies}
    except Exception as exc:  # noqa: BLE001 - the parent falls back to pg_restore, saying why
        result = {"error": str(exc) or type(exc).__name__}
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
    return 0

if __name__ == "__main__":
    os._exit(main(sys.argv[1:]))
