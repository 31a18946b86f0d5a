"""The archive follower in a process of its own (core/archive_follow_process.py): at the lowest CPU
priority beside pg_dump, given up on when starved, never outliving its runner. Real pg_dump,
real signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pgbackup_tui.core import archive_follow_process
from pgbackup_tui.core.archive_follow_process import FollowerProcess
from pgbackup_tui.core.archive_scan import count_rows_with_pg_restore
from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.custom_archive import read_header
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.pgtools import find_client_tools
from pgbackup_tui.core.plans import DumpPlan

ROWS_SQL = """
CREATE TABLE a (id int, v text);
INSERT INTO a SELECT g, md5(g::text) FROM generate_series(1, 150000) g;
CREATE TABLE "B b" (t text);
INSERT INTO "B b" SELECT '' FROM generate_series(1, 11);
"""


def _archive(sandbox, dbname: str, path: Path) -> Path:
    tools = find_client_tools(sandbox.major)
    subprocess.run([tools.pg_dump, f"--dbname={sandbox.dsn(dbname)}", "-Fc", "-Z1", f"--file={path}"], check=True)
    return path


def _followers_of(archive: Path) -> list[int]:
    """Follower processes reading `archive`, by their command line."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                argv = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if archive_follow_process.__name__.encode() in argv and str(archive).encode() in argv:
                found.append(int(name))
    return found


def test_the_follower_reads_a_growing_archive_at_idle_priority(sandbox, empty_db, tmp_path):
    sandbox.psql(ROWS_SQL, empty_db)
    data = _archive(sandbox, empty_db, tmp_path / "whole.dump").read_bytes()
    half = read_header(data).toc_end + (len(data) - read_header(data).toc_end) // 2
    growing = tmp_path / "growing.dump"
    growing.write_bytes(data[:half])  # mid-block, as pg_dump would leave it while writing
    follower = FollowerProcess(growing)
    follower.start()
    try:
        [pid] = _wait_for(lambda: _followers_of(growing))
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
        with growing.open("ab") as rest:
            rest.write(data[half:])
        follower.writer_finished()
        by_id = follower.finish()
    finally:
        follower.abandon()
    names = {dump_id: copy.split(b" (")[0] for dump_id, copy in follower.copy_statements.items()}
    assert {names[dump_id]: rows for dump_id, rows in by_id.items()} == {
        b"COPY public.a": 150_000, b'COPY public."B b"': 11}
    # Summed only if it saw pg_dump write the TOC again before it ended; else the job sums it after.
    assert follower.checksum is None or follower.checksum[1] == len(data)


def test_a_starved_follower_is_given_up_and_the_archive_read_through(sandbox, empty_db, tmp_path, home):
    """SIGSTOP stands for a follower that every busy core keeps aside: the job does not wait for it
    for ever; it kills it and counts the rows with pg_restore, as for a format it does not follow."""
    sandbox.psql(ROWS_SQL, empty_db)
    archive = tmp_path / "starved.dump"
    stopped: list[int] = []
    job_ended = threading.Event()

    def stop_the_follower() -> None:
        pids = _wait_for(lambda: _followers_of(Path(f"{archive}.partial")), timeout=60, step=0.002)
        os.kill(pids[0], signal.SIGSTOP)
        stopped.append(pids[0])
        if not job_ended.wait(60):  # a job that waits for it for ever: let it go, the asserts say so
            os.kill(pids[0], signal.SIGCONT)

    watcher = threading.Thread(target=stop_the_follower, daemon=True)
    watcher.start()
    job = DumpJob(DumpPlan(target=target_from_dsn(sandbox.dsn()), dbname=empty_db, output=archive, compress=1))
    started = time.monotonic()
    result = asyncio.run(job.run())
    job_ended.set()
    watcher.join()
    assert result.exit_code == 0, result.message
    assert time.monotonic() - started >= archive_follow_process.STARVED_S
    log = job.log_path.read_text() if job.log_path else ""
    assert "had no CPU" in log and "read again with pg_restore" in log
    manifest = json.loads(Path(f"{archive}.manifest.json").read_text())
    recorded = {table["name"]: table["rows"] for table in manifest["toc"]["tables"]}
    assert recorded == {"public.a": 150_000, 'public."B b"': 11}
    assert recorded == count_rows_with_pg_restore(find_client_tools(sandbox.major).pg_restore, archive,
                                                  dict(os.environ), "UTF8")
    assert not Path(f"/proc/{stopped[0]}").exists() or _is_zombie_or_gone(stopped[0])


def test_the_follower_dies_with_its_runner(tmp_path):
    archive = tmp_path / "never.dump"
    archive.touch()
    runner = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from pathlib import Path\n"
         "from pgbackup_tui.core.archive_follow_process import FollowerProcess\n"
         f"FollowerProcess(Path({str(archive)!r})).start()\n"
         "print('started', flush=True)\n"
         "time.sleep(600)\n"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    try:
        assert runner.stdout is not None and runner.stdout.readline().strip() == "started"
        [follower] = _wait_for(lambda: _followers_of(archive))
        runner.kill()
        runner.wait()
        assert _wait_for(lambda: _is_zombie_or_gone(follower) or None)
    finally:
        runner.kill()
        runner.wait()


def _is_zombie_or_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _wait_for(probe, timeout: float = 30, step: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(step)
    pytest.fail("timed out")
