"""The archive follower in a process of its own (core/archive_follow_process.py): its reading at
the lowest CPU priority beside pg_dump, handed to a normal-priority thread once pg_dump has exited,
a result of any size, and no follower outliving its runner. Real pg_dump, processes, CPU pinning."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pgbackup_tui.core.archive_follow import CustomArchiveFollower
from pgbackup_tui.core.archive_follow_process import FollowerProcess
from pgbackup_tui.core.checksums import checksum_archive
from pgbackup_tui.core.custom_archive import read_header
from pgbackup_tui.core.pgtools import find_client_tools

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


def _by_table(follower: FollowerProcess | CustomArchiveFollower, by_id: dict[int, int]) -> dict[bytes, int]:
    if isinstance(follower, FollowerProcess):
        copies = follower.copy_statements
    else:
        assert follower.header is not None
        copies = {entry.dump_id: entry.copy_stmt or b"" for entry in follower.header.entries}
    return {copies[dump_id].split(b" (")[0]: rows for dump_id, rows in by_id.items()}


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
        policies = _wait_for(lambda: _when_two(_thread_policies(pid)))
        assert sorted(policies) == sorted([os.SCHED_OTHER, os.SCHED_IDLE])  # the main thread, the reading one
        with growing.open("ab") as rest:
            rest.write(data[half:])
        follower.writer_finished()
        by_id = follower.finish()
    finally:
        follower.abandon()
    assert _by_table(follower, by_id) == {b"COPY public.a": 150_000, b'COPY public."B b"': 11}
    # Summed only if it saw pg_dump write the TOC again before it ended; else the job sums it after.
    if follower.checksum is not None:
        assert follower.checksum == (checksum_archive(growing)[""], len(data))


def test_the_reading_is_handed_over_between_threads(sandbox, empty_db, tmp_path):
    """What the child does once pg_dump has exited: its main thread takes the steps over from the
    idle thread, wherever that one left them, and ends with the same result."""
    sandbox.psql(ROWS_SQL, empty_db)
    data = _archive(sandbox, empty_db, tmp_path / "whole.dump").read_bytes()
    growing = tmp_path / "growing.dump"
    growing.write_bytes(data[:len(data) * 2 // 3])
    follower = CustomArchiveFollower(growing)
    hand_over = threading.Event()
    ended: list[bool] = []
    first = threading.Thread(target=lambda: ended.append(follower.run_steps(hand_over)))
    first.start()
    _wait_for(lambda: follower.blocks or None)  # it is on the blocks, waiting for more bytes
    hand_over.set()
    first.join()
    assert ended == [False]
    with growing.open("ab") as rest:
        rest.write(data[len(data) * 2 // 3:])
    follower.writer_finished()
    assert follower.run_steps() is True
    assert _by_table(follower, follower.result()) == {b"COPY public.a": 150_000, b'COPY public."B b"': 11}


def test_a_result_bigger_than_a_pipe_is_read_whole(sandbox, empty_db, tmp_path):
    """Thousands of tables: the child's JSON (a COPY statement each) is far over a pipe's 64 KiB."""
    sandbox.psql("DO $$ BEGIN FOR i IN 1..1500 LOOP EXECUTE format('CREATE TABLE wide_%s (a_long_column_name "
                 "int, another_long_column_name text, a_third_long_column_name date)', i); END LOOP; END $$;",
                 empty_db)
    archive = _archive(sandbox, empty_db, tmp_path / "many.dump")
    follower = FollowerProcess(archive)
    follower.start()
    follower.writer_finished()
    results: list[dict[int, int]] = []
    reading = threading.Thread(target=lambda: results.append(follower.finish()), daemon=True)
    reading.start()
    reading.join(60)  # a parent that waits for the child's exit before reading it would wait for ever
    follower.abandon()
    assert results, "the follower's result was not read"
    [by_id] = results
    assert len(by_id) == 1500 and set(by_id.values()) == {0}
    assert sum(len(copy) for copy in follower.copy_statements.values()) > 1 << 17


def test_a_follower_kept_off_the_cpu_finishes_once_pg_dump_has_exited(sandbox, empty_db, tmp_path):
    """A busy process on the follower's only core leaves its idle thread next to nothing (about
    0.3 % of it); once pg_dump has exited the main thread, at the normal priority, takes over."""
    sandbox.psql("CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 1000000) g",
                 empty_db)
    data = _archive(sandbox, empty_db, tmp_path / "big_whole.dump").read_bytes()
    toc_end = read_header(data).toc_end
    archive = tmp_path / "big.dump"
    archive.write_bytes(data[:toc_end])  # the TOC only: the data is yet to come
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    follower = FollowerProcess(archive)
    try:
        os.sched_setaffinity(busy.pid, {0})
        follower.start()
        [pid] = _wait_for(lambda: _followers_of(archive))
        _wait_for(lambda: _when_two(_thread_policies(pid)))
        for thread in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(thread), {0})
        with archive.open("ab") as rest:
            rest.write(data[toc_end:])
        time.sleep(1)  # the idle thread sees the data but hardly runs
        started = time.monotonic()
        follower.writer_finished()
        by_id = follower.finish()
        took = time.monotonic() - started
    finally:
        busy.kill()
        busy.wait()
        follower.abandon()
    assert _by_table(follower, by_id) == {b"COPY public.big": 1_000_000}
    # At the idle priority the rest (about 0.1 s of CPU here) would take half a minute and more.
    assert took < 15, f"{took:.1f} s: the reading stayed at the idle priority"


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


def _followers_of(archive: Path) -> list[int]:
    """Follower processes reading `archive`, by their command line."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                argv = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"pgbackup_tui.core.archive_follow_process" in b" ".join(argv) and str(archive).encode() in argv:
                found.append(int(name))
    return found


def _thread_policies(pid: int) -> list[int]:
    policies = []
    for thread in os.listdir(f"/proc/{pid}/task"):
        try:
            policies.append(os.sched_getscheduler(int(thread)))
        except OSError:
            continue
    return policies


def _when_two(policies: list[int]) -> list[int] | None:
    """Both threads there, the reading one already at its policy."""
    return policies if len(policies) == 2 and os.SCHED_IDLE in policies else None


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


def test_the_follower_s_process_loads_no_database_driver_nor_event_loop():
    """It starts beside pg_dump, on the cores pg_dump and its server want: what it imports is CPU
    taken from them (psycopg and asyncio were 0.1 s of it, for nothing it uses)."""
    probe = ("import sys; import pgbackup_tui.core.archive_follow_process; "
             "print(sorted(n for n in ('psycopg', 'asyncio') if n in sys.modules))")
    done = subprocess.run([sys.executable, "-P", "-c", probe], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
