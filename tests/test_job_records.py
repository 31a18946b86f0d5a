"""What a dead runner leaves is found from its records, whatever moment it died at: real runners,
real signals, real PostgreSQL.

- what a job owns has its own record, owned.json, only ever written synced: a state.json that a
  crash of the machine left empty (XFS may, after the unsynced writes that followed) loses nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from cliutil import run_cli
from pgbackup_tui.core.sandbox import Sandbox
from test_job_faults import (
    SOURCE,
    backend_waiting,
    children_running,
    copying,
    database_exists,
    jobs_json,
    only_job_state,
    runner_pid,
    start_cli,
    table_locked,
    wait_for,
)

def job_folder(home: Path) -> Path:
    [folder] = list((home / "state" / "jobs").iterdir())
    return folder


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def slow_archive(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive whose restore takes seconds: each of its 400 rows passes a CHECK that sleeps 10 ms."""
    name = f"slow_{uuid.uuid4().hex[:6]}"
    sandbox.create_database(name)
    sandbox.psql("""
        CREATE FUNCTION public.slowly(int) RETURNS boolean LANGUAGE sql AS 'SELECT pg_sleep(0.01) IS NOT NULL';
        CREATE TABLE public.slow (id int PRIMARY KEY CHECK (public.slowly(id)));
        INSERT INTO public.slow SELECT generate_series(1, 400);""", name)
    folder = tmp_path_factory.mktemp("slow")
    archive = folder / "slow.dump"
    result = run_cli("dump", "--dsn", sandbox.dsn(), "--db", name, "--output", str(archive),
                     env=dict(os.environ, PGBACKUP_TUI_HOME=str(folder / "home")))
    sandbox.drop_database(name)
    assert result.returncode == 0, result.stderr
    return archive


def kill_front_and_runner(cli: subprocess.Popen, home: Path) -> None:
    """Both die (kill -9 of the group, the OOM killer): nothing but the next command cleans up."""
    runner = runner_pid(home)
    cli.kill()
    cli.wait()
    os.kill(runner, signal.SIGKILL)


def empty_the_state_file(home: Path) -> None:
    """What XFS may leave of a file replaced by a rename that was not synced, after a crash of the
    machine: the name, with no data."""
    state = job_folder(home) / "state.json"
    os.truncate(state, 0)
    assert state.read_bytes() == b""


def unsynced_write_came_after(home: Path) -> bool:
    """state.json holds a child's process group: written, not synced, after the job recorded what
    it was about to create (before its child ran)."""
    with contextlib.suppress(ValueError, OSError, AssertionError):
        return any(item["kind"] == "process_group" for item in only_job_state(home)["owned"])
    return False


# -- 1. the owned list survives an emptied state.json ------------------------------------------


def test_a_dead_dump_s_partial_is_removed_though_its_state_file_is_empty(sandbox, home, out_dir):
    out = out_dir / "shop.dump"
    with table_locked(sandbox):
        cli = start_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--output", str(out))
        wait_for(lambda: backend_waiting(sandbox), "pg_dump to wait for its lock")
        wait_for(lambda: unsynced_write_came_after(home), "an unsynced write after the partial's record")
        kill_front_and_runner(cli, home)
        wait_for(lambda: not children_running(str(out_dir)), "pg_dump to die with its runner", timeout=10)
    assert (out_dir / "shop.dump.partial").exists()
    empty_the_state_file(home)
    listing = run_cli("jobs", "list")
    assert "stopped without finishing" in listing.stderr, listing.stderr
    assert "shop.dump.partial" in listing.stderr  # "undone: path ..."
    assert not list(out_dir.iterdir())
    [job] = jobs_json(home)
    assert job["state"] == "failed" and job["exit_code"] == 1
    assert only_job_state(home)["owned"] == []


def test_a_dead_restore_s_database_is_dropped_though_its_state_file_is_empty(sandbox, home, slow_archive,
                                                                            fresh_db_name):
    cli = start_cli("restore", str(slow_archive), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    wait_for(lambda: copying(sandbox, fresh_db_name), "pg_restore to load rows")
    assert unsynced_write_came_after(home)
    kill_front_and_runner(cli, home)
    wait_for(lambda: not children_running(str(slow_archive)), "pg_restore to die with its runner", timeout=10)
    assert database_exists(sandbox, fresh_db_name)
    empty_the_state_file(home)
    listing = run_cli("jobs", "list")
    assert f"database {fresh_db_name}" in listing.stderr, listing.stderr
    assert not database_exists(sandbox, fresh_db_name)
    assert [job["state"] for job in jobs_json(home)] == ["failed"]
