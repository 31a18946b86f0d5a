"""What a dead runner leaves is found from its records, whatever moment it died at: real runners,
real signals (SIGSTOP at the moment a file appears, SIGKILL), real PostgreSQL.

- what a job owns has its own record, owned.json, only ever written synced: a state.json that a
  crash of the machine left empty (XFS may, after the unsynced writes that followed) loses nothing;
- a job's temporary folder, and a dump's reserved name and the folders made for it, are on record
  before they exist: a runner stopped the moment one appears leaves nothing;
- a runner killed after its archive was renamed into place, before its final state: the job is
  recorded as succeeded (the archive is complete and verified, and listed), not as failed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import json
import os
import select
import signal
import struct
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from cliutil import run_cli
from pgbackup_tui.core import catalog_index
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

IN_MOVED_TO, IN_CREATE = 0x80, 0x100


class Inotify:
    """The names that appear in one folder, as the kernel reports them (inotify(7)): fast enough
    to stop a process within a fraction of a millisecond of what it just created."""

    def __init__(self, folder: Path, mask: int = IN_CREATE | IN_MOVED_TO) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        assert libc.inotify_add_watch(self.fd, os.fsencode(folder), mask) >= 0, os.strerror(ctypes.get_errno())

    def wait_for(self, wanted: Callable[[str], bool], then: Callable[[str], None], timeout: float = 60) -> str:
        """Call `then(name)` as soon as a name `wanted` appears; return it."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "timed out waiting for the file to appear"
            if not select.select([self.fd], [], [], min(left, 1.0))[0]:
                continue
            data, offset = os.read(self.fd, 1 << 16), 0
            while offset < len(data):
                _wd, _mask, _cookie, length = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16:offset + 16 + length].rstrip(b"\0").decode(errors="replace")
                offset += 16 + length
                if wanted(name):
                    then(name)
                    return name

    def close(self) -> None:
        os.close(self.fd)


def runner_of(cli: subprocess.Popen) -> int | None:
    """The CLI's runner: its only child (a fork, or `python -m pgbackup_tui.core.runner`); None once
    it has ended and the CLI has reaped it (a busy machine may deliver the file's event that late)."""
    children = Path(f"/proc/{cli.pid}/task/{cli.pid}/children").read_text().split()
    assert len(children) <= 1, children
    return int(children[0]) if children else None


def wait_until_stopped(pid: int, timeout: float = 10) -> None:
    """Until /proc says the process is stopped (state T)."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "T":
        assert time.monotonic() < deadline, f"pid {pid} did not stop"
        time.sleep(0.001)


def kill_runner_as_it_creates(watch: Inotify, cli: subprocess.Popen, wanted: Callable[[str], bool],
                              landed: Callable[[], bool] = lambda: True) -> bool:
    """Stop the CLI's runner (SIGSTOP) the moment a name `wanted` appears under `watch`, kill it
    (SIGKILL), and let the front clean up after it. Returns `landed()` as seen while the runner was
    stopped: whether the stop came at the moment the test is about (a step that takes milliseconds
    may be over before a busy machine delivers the signal). Where it landed, the front must have
    said that its runner stopped without finishing (exit 1)."""
    stopped: list[int] = []
    seen: list[bool] = []

    def stop_runner(_name: str) -> None:
        runner = runner_of(cli)
        if runner is None:  # it finished before the stop: not the moment under test
            seen.append(False)
            return
        stopped.append(runner)
        os.kill(runner, signal.SIGSTOP)
        wait_until_stopped(runner)  # kill() returns before the kernel has stopped it
        seen.append(landed())

    try:
        watch.wait_for(wanted, stop_runner)
    finally:
        watch.close()
    if not stopped:
        cli.communicate(timeout=60)
        return False
    os.kill(stopped[0], signal.SIGKILL)
    _, stderr = cli.communicate(timeout=60)  # the front cleans up after its dead runner
    if seen[0]:
        assert cli.returncode == 1, stderr
        assert "stopped without finishing" in stderr, stderr
    return seen[0]


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
    # Every file the recovery writes is 0600 (its "settled" mark was 0644).
    modes = {p.name: p.stat().st_mode & 0o777 for p in (home / "state" / "jobs").rglob("*") if p.is_file()}
    assert modes and set(modes.values()) == {0o600}, modes
    # A log that is gone is said, not printed as empty with exit 0.
    [log] = list((home / "logs").glob(f"*{job['id']}.log"))
    state_file = home / "state" / "jobs" / job["id"] / "state.json"
    state_file.write_text(json.dumps({**json.loads(state_file.read_text()), "log_path": str(log)}))
    log.unlink()
    gone = run_cli("jobs", "log", job["id"])
    assert gone.returncode == 2 and "is gone" in gone.stderr, gone.stderr


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


# -- 2. a temporary folder is on record before it exists ---------------------------------------


@pytest.mark.parametrize("what", ["restore", "dump-directory"])
def test_a_runner_stopped_as_its_temporary_folder_appears_leaves_nothing(sandbox, home, tmp_path, monkeypatch,
                                                                         slow_archive, fresh_db_name, what):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))  # the job's temporary folders, and only they, appear here
    watch = Inotify(temp, IN_CREATE)
    if what == "restore":
        prefix = "pgbackup-restore-"
        cli = start_cli("restore", str(slow_archive), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    else:  # the rows of a directory archive are counted by a pg_restore into a FIFO in such a folder
        prefix = "pgbackup-count-"
        cli = start_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--format", "directory",
                        "--output", str(tmp_path / "out" / "shop.dir"))
    kill_runner_as_it_creates(watch, cli, lambda name: name.startswith(prefix))
    assert list(temp.iterdir()) == []
    assert not database_exists(sandbox, fresh_db_name)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("output, appears", [("shop.dump", "shop.dump.partial"), ("new/sub/shop.dump", "new")],
                         ids=["partial", "folders"])
def test_a_runner_stopped_as_its_output_name_is_reserved_leaves_nothing(sandbox, home, out_dir, output, appears):
    """The dump's `.partial` (and the folders made for it) are on record before they exist: a
    runner stopped the moment the first of them appears, then killed, leaves nothing."""
    watch = Inotify(out_dir, IN_CREATE)
    cli = start_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--output", str(out_dir / output))
    kill_runner_as_it_creates(watch, cli, lambda name: name == appears)
    assert list(out_dir.iterdir()) == []


# -- 3. a runner killed between its archive's rename and its final state ------------------------


def catalog_index_locked() -> contextlib.AbstractContextManager[None]:
    """Hold the catalog index's lock, as another command adding a backup to it would: a job whose
    output is outside the backup dir waits for it right after renaming its archive into place."""
    return catalog_index.index_locked()


DONE_KINDS = {
    "dump": (["dump", "--db", SOURCE], "shop.dump"),
    "dumpall-file": (["dumpall", "--globals-only"], "globals.sql"),
    "dumpall-set": (["dumpall", "--set", "--db", SOURCE], "cluster.set"),
}


@pytest.mark.parametrize("kind", list(DONE_KINDS))
def test_a_runner_killed_after_its_rename_leaves_a_succeeded_job(sandbox, home, out_dir, kind):
    args, name = DONE_KINDS[kind]
    out = out_dir / name
    with catalog_index_locked():
        cli = start_cli(*args, "--dsn", sandbox.dsn(), "--output", str(out))
        wait_for(lambda: out.exists(), "the archive to be renamed into place", timeout=120)
        runner = runner_pid(home)
        os.kill(runner, signal.SIGSTOP)
        state = only_job_state(home)
        assert state["state"] == "running"  # the runner waits for the index: it has not recorded the end
        os.kill(runner, signal.SIGKILL)
    _, stderr = cli.communicate(timeout=60)  # the front finds its runner dead and cleans up after it
    assert cli.returncode == 0, stderr
    assert "stopped after putting it in place" in stderr, stderr
    assert out.exists() and not list(out_dir.glob("*.partial"))
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    [job] = jobs_json(home)
    assert manifest["job_id"] == job["id"]
    assert job["state"] == "succeeded" and job["exit_code"] == 0 and job["output_path"] == str(out)
    assert "stopped after putting it in place" in job["message"]
    shown = run_cli("jobs", "show", job["id"])
    assert "succeeded" in shown.stdout and str(out) in shown.stdout, shown.stdout
    listed = run_cli("backups", "list", "--json")  # in the catalog's index, as the job would have put it
    assert listed.returncode == 0, listed.stderr
    assert str(out) in listed.stdout
    verified = run_cli("backups", "verify", manifest["id"]) if kind == "dump" else None
    assert verified is None or verified.returncode == 0, verified.stderr if verified else ""


def writing_manifest(folder: Path, out: Path) -> bool:
    """Whether the dump's manifest is between its temporary file and its rename."""
    manifest = out.with_name(out.name + ".manifest.json")
    return not manifest.exists() and any(path.name.startswith(f".{manifest.name}.") for path in folder.iterdir())


def test_a_runner_killed_while_writing_its_manifest_leaves_nothing(sandbox, home, out_dir):
    """Stopped the moment its manifest's temporary file appears (the manifest is written aside,
    synced, then renamed into place; the archive's rename follows): no partial, no manifest, no
    temporary file is left. The step takes milliseconds: an attempt whose stop came after the
    rename is not the case under test, and another is made in a folder of its own."""
    for attempt in range(10):
        folder = out_dir / f"attempt{attempt}"
        folder.mkdir()
        out = folder / "shop.dump"
        temporary_prefix = f".{out.name}.manifest.json."
        watch = Inotify(folder, IN_CREATE)
        cli = start_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--output", str(out))
        if kill_runner_as_it_creates(watch, cli, lambda name, prefix=temporary_prefix: name.startswith(prefix),
                                     functools.partial(writing_manifest, folder, out)):
            break
    else:
        pytest.fail("the runner was never stopped while its manifest was being written, in 10 attempts")
    assert list(folder.iterdir()) == []
    assert jobs_json(home)[0]["state"] == "failed"  # newest first
