"""What a job command does around its child, kept cheap without giving up what it is for.

- Every command first looks for dead jobs (job_store.recover): with nothing left to undo it
  imports no database driver, and a finished job it finds unmarked is marked settled once.
- A front that shows nothing while its job runs reads the job's state seldom, yet learns of the
  runner's end at once (a pidfd), not at its next read.

Real processes and files; no server is needed here (dropping a dead job's database is covered by
test_job_faults.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pgbackup_tui.core import job_store
from pgbackup_tui.core.job_follow import JobFollower
from pgbackup_tui.core.jobs import JobState

PLAN = {"target": {"label": "nowhere", "params": {"host": "/nonexistent"}, "bin_dir": None},
        "dbname": "shop", "format": "custom"}


def _job(job_id: str, state: dict) -> Path:
    """A job folder as a runner leaves it: its spec, its state, its lock (free: the runner is gone)."""
    spec = {"id": job_id, "kind": "dump", "title": f"dump {job_id}", "server": "nowhere", "database": "shop",
            "plan": PLAN, "created_at": time.time()}
    folder, lock_fd = job_store.create_job_dir(job_id, spec)
    os.close(lock_fd)
    job_store.write_json(folder / job_store.STATE, state)
    return folder


RECOVER = """
import sys
from pgbackup_tui.core.job_cleanup import recover_jobs
lines = recover_jobs()
print(len(lines), "psycopg" in sys.modules)
"""


def test_the_look_for_dead_jobs_settles_finished_ones_and_loads_no_driver(home):
    finished = _job("f1n15hed", {"state": "succeeded", "exit_code": 0, "owned": [], "message": "ok"})
    settled = _job("5e771ed0", {"state": "succeeded", "exit_code": 0, "owned": []})
    (settled / job_store.SETTLED).touch()
    assert not (finished / job_store.SETTLED).exists()  # as a job written before the marker existed

    done = subprocess.run([sys.executable, "-c", RECOVER], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ), stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "False"]  # nothing to report, and psycopg never imported
    assert (finished / job_store.SETTLED).is_file()  # passed by unread from now on
    assert job_store.list_jobs(unsettled_only=True) == []
    assert job_store.load("f1n15hed").state["state"] == "succeeded"  # its record unchanged


def test_a_dead_runner_s_job_is_still_failed_and_its_files_removed(home, tmp_path):
    partial = tmp_path / "shop.dump.partial"
    partial.write_bytes(b"PGDMP half")
    dead = _job("dead0001", {"state": "running", "runner_pid": 999999999,
                             "owned": [{"kind": "path", "value": str(partial)}]})
    done = subprocess.run([sys.executable, "-c", RECOVER], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ), stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "False"]  # a file to remove needs no driver either
    state = job_store.read_json(dead / job_store.STATE) or {}
    assert state["state"] == "failed" and state["owned"] == [] and not partial.exists()
    assert (dead / job_store.SETTLED).is_file()


FINISH_LATER = """
import json, os, sys, time
time.sleep(0.5)
state = {"state": "succeeded", "exit_code": 0, "message": "done", "owned": []}
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as handle:
    json.dump(state, handle)
os.replace(tmp, sys.argv[1])
"""


def test_a_quiet_front_learns_of_its_runner_s_end_at_once(home):
    folder = _job("qu1e7000", {"state": "running", "owned": []})
    runner = subprocess.Popen([sys.executable, "-c", FINISH_LATER, str(folder / job_store.STATE)])
    follower = JobFollower(job_store.load("qu1e7000"), runner=runner)
    started = time.monotonic()
    result = asyncio.run(follower.follow(poll_s=30.0))
    took = time.monotonic() - started
    assert result.state == JobState.SUCCEEDED and result.message == "done"
    assert took < 10.0, took  # woken by the runner's end, not by the next read 30 s later
    assert runner.returncode == 0
    assert json.loads((folder / job_store.STATE).read_text())["state"] == "succeeded"


def test_what_a_job_owns_is_synced_unless_nothing_could_be_lost(tmp_path):
    """Before creating a thing, its record is synced; letting go of a path that is already gone, or
    of a child's process group, is written without an fsync (a crash then loses nothing)."""
    from pgbackup_tui.core.job_events import Owned
    from pgbackup_tui.core.runner import _must_sync

    kept = tmp_path / "someone-else-s.csv"
    kept.write_text("x")
    gone = tmp_path / "shop.dump.partial"
    assert _must_sync(Owned("j", "path", str(gone), True))  # about to be created
    assert _must_sync(Owned("j", "database", "shop", True))
    assert _must_sync(Owned("j", "database", "shop", False))  # the user's now: a crash must not drop it
    assert _must_sync(Owned("j", "path", str(kept), False))  # still there: a crash must not remove it
    assert not _must_sync(Owned("j", "path", str(gone), False))  # renamed into place or removed
    assert not _must_sync(Owned("j", "process_group", "4242", True))
    assert not _must_sync(Owned("j", "process_group", "4242", False))
