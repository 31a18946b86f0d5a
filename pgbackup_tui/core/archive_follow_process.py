"""The archive follower (archive_follow.py) in a process of its own: at the lowest CPU priority
while pg_dump runs, at the normal one once it has exited.

Why: following the new archive -- every block decompressed and its rows counted, the file summed --
costs CPU beside pg_dump (0.45 s for the 1 GB reference database), CPU that pg_dump and its server
want: on 2 cores their dump took 1.22-1.28x as long with the follower as a thread of the job. At
SCHED_IDLE the follower gets only what would otherwise idle (pg_dump and its server leave 20-25 %
of two cores unused while they wait on each other): 1.11-1.15x (scripts/bench_follower.py). That
needs pg_dump in the same scheduling group (core/job_children.own_group).

Why a process: a thread at SCHED_IDLE holds the interpreter's lock while the kernel keeps it
aside, and the job's event loop (pg_dump's stderr, the progress, a cancel) waited up to 1.4 s for
it; here only this process's own main thread can wait for it.

Why two threads: an unprivileged thread cannot leave SCHED_IDLE (sched(7): RLIMIT_NICE is 0 by
default), and on a machine busy with other work (a database server under load) an idle thread
may hardly run at all. So the reading runs in a worker thread that puts itself at SCHED_IDLE, and
once pg_dump has exited the main thread, at the normal priority, takes the same steps over from
wherever the worker left them (CustomArchiveFollower.run_steps): what is left is then the job's
critical path, and ends like any other work. Under full load the hand-over waits until the
worker next runs and lets go of the interpreter's lock (a few ms in every second or so).

The child is `python -P -c _LAUNCH PACKAGE_ROOT ARCHIVE` (this module's run_child, from the
runner's own copy of the package): "done" on its stdin says pg_dump exited with success; stdin
closing without it says stop. Its stdout gets one JSON
object at the end: the rows per data block, the checksum, the COPY statements (as latin-1: the
bytes kept), or the error that made it step aside (the job then reads the archive with pg_restore).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from .archive_follow import CustomArchiveFollower
from .custom_archive import FormatUnknown
from .job_children import die_with_parent

_DONE = b"done\n"
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding this very pgbackup_tui
# The child imports this very copy of the package (its folder first on the path only for that import:
# an installed package's folder is site-packages, which must not shadow the standard library), and
# nothing from the working directory (-P).
_LAUNCH = ("import sys; sys.path.insert(0, sys.argv[1]); import pgbackup_tui; del sys.path[0]; "
           "from pgbackup_tui.core.archive_follow_process import run_child; run_child(sys.argv[2])")


class FollowerProcess:
    """The parent's side, with CustomArchiveFollower's interface: start() before pg_dump,
    writer_finished() once it has exited, finish() (blocking: call it in a thread), abandon()."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - the child's traceback, if it fails to start
        self.checksum: tuple[str, int] | None = None
        self.copy_statements: dict[int, bytes] = {}  # dump id -> its COPY statement, for the rows' table

    def start(self) -> None:
        """From the job's event loop thread: PR_SET_PDEATHSIG follows the thread that forks, so the
        child dies with the runner, not with a worker thread. OSError if it cannot be started."""
        self._process = subprocess.Popen(
            [sys.executable, "-P", "-c", _LAUNCH, _PACKAGE_ROOT, str(self.path.absolute())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, close_fds=True,
            preexec_fn=die_with_parent)

    def writer_finished(self) -> None:
        """pg_dump has exited with success: the child goes on at the normal priority, to the end."""
        process = self._process
        if process is None or process.stdin is None or process.stdin.closed:
            return
        with contextlib.suppress(OSError):  # it ended already: finish() says why
            process.stdin.write(_DONE)
            process.stdin.flush()
        with contextlib.suppress(OSError):
            process.stdin.close()

    def finish(self) -> dict[int, int]:
        """Rows per TABLE DATA dump id; raises (FormatUnknown) if the archive was not confirmed.
        Reads the child's result to its end before waiting for its exit: a result bigger than the
        pipe's buffer (thousands of tables) would otherwise hold both for ever."""
        self.writer_finished()
        process = self._process
        assert process is not None and process.stdout is not None
        out = process.stdout.read()
        process.wait()
        try:
            result = json.loads(out)
        except ValueError:
            self._stderr.seek(0)
            said = self._stderr.read().decode(errors="replace").strip().splitlines()
            raise FormatUnknown(f"the follower ended (exit {process.returncode}) without a result"
                                + (f": {said[-1]}" if said else "")) from None
        if "error" in result:
            raise FormatUnknown(result["error"])
        self.checksum = (result["checksum"][0], result["checksum"][1]) if result.get("checksum") else None
        self.copy_statements = {int(key): text.encode("latin-1") for key, text in result["copy"].items()}
        return {int(key): rows for key, rows in result["rows"].items()}

    def abandon(self) -> None:
        """The job stops (failed, cancelled): the child is killed. Not waited for here (on the
        event loop): a thread at SCHED_IDLE on a busy machine can take seconds to be scheduled
        and die; a daemon thread reaps it."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(OSError):
            process.kill()
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()

        def reap() -> None:  # its stdout too: a close would wait for a read still running in finish()
            process.wait()
            for stream in (process.stdout, self._stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()

        threading.Thread(target=reap, name="follower-reaper", daemon=True).start()


# -- the child -----------------------------------------------------------------------------------
def _at_lowest_priority() -> None:
    """This thread (not the process: policies are per thread on Linux) at SCHED_IDLE, if it can."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux: it runs at the normal priority
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def run_child(archive: str) -> None:
    """The child's entry point (see _LAUNCH): follow, print the result, and end at once."""
    os._exit(main([archive]))


def main(argv: list[str]) -> int:
    follower = CustomArchiveFollower(Path(argv[0]))
    hand_over = threading.Event()
    ended: list[bool] = []

    def beside_pg_dump() -> None:
        _at_lowest_priority()
        ended.append(follower.run_steps(hand_over))

    worker = threading.Thread(target=beside_pg_dump, name="follower-idle", daemon=True)
    worker.start()
    if sys.stdin.buffer.readline() != _DONE:  # stdin closed: the job failed, was cancelled, or died
        follower.stop()
        return 0  # the worker is a daemon: not waited for
    if worker.native_id is not None:  # as root (CAP_SYS_NICE) the worker may go on at once; else it is let go
        with contextlib.suppress(OSError):
            os.sched_setscheduler(worker.native_id, os.SCHED_OTHER, os.sched_param(0))
    hand_over.set()
    follower.writer_finished()
    worker.join()  # it lets go before its next step
    if not ended or not ended[0]:
        follower.run_steps()  # the rest, here, at the normal priority
    result: dict[str, Any]
    try:
        rows = follower.result()
        assert follower.header is not None  # result() checked the archive through to its end
        copies = {entry.dump_id: (entry.copy_stmt or b"").decode("latin-1")
                  for entry in follower.header.entries if entry.dump_id in rows}
        result = {"rows": rows, "checksum": follower.checksum, "copy": copies}
    except Exception as exc:  # noqa: BLE001 - the parent falls back to pg_restore, saying why
        result = {"error": str(exc) or type(exc).__name__}
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":  # by hand: python -m pgbackup_tui.core.archive_follow_process ARCHIVE
    run_child(sys.argv[1])
