"""A dead runner's records read without a server: the files as a runner killed at a given moment
leaves them, then the next command's recovery (test_job_records.py has the real runners).

- a manifest in place naming the job: the job succeeded; naming another job, or no rename: failed;
- a name another job now holds (claimed by a dead job that found it taken and let it go, its
  release not yet synced): left to the live job;
- reserve_output's claims under threads; a CSV export's manifest inside its folder;
- a process group recorded before a restart of the machine is left alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cliutil import run_cli
from pgbackup_tui.core import catalog_index, job_store
from test_job_faults import jobs_json


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


PLAN = {"target": {"label": "nowhere", "params": {"host": "/nonexistent"}, "bin_dir": None},
        "dbname": "shop", "format": "custom"}


def dead_dump(job_id: str, out: Path, kind: str = "dump") -> Path:
    """A dump's folder as its runner leaves it when killed after writing the manifest of `out`:
    the partial on record (owned.json), its state "running"."""
    spec = {"id": job_id, "kind": kind, "title": f"{kind} {job_id}", "server": "nowhere", "database": "shop",
            "plan": PLAN, "created_at": time.time()}
    folder, lock_fd = job_store.create_job_dir(job_id, spec)
    os.close(lock_fd)
    partial = out.with_name(out.name + ".partial")
    job_store.write_json(folder / job_store.OWNED, {"items": [{"kind": "path", "value": str(partial)}]})
    job_store.write_json(folder / job_store.STATE, {"state": "running", "runner_pid": 999999999, "owned": []})
    return folder


@pytest.mark.parametrize("renamed", [False, True])
def test_a_manifest_in_place_tells_whether_the_archive_was(home, out_dir, renamed):
    """No server needed: the files as a runner killed on either side of the archive's rename leaves them."""
    out = out_dir / "shop.dump"
    dead_dump("deadbeef", out)
    (out if renamed else out.with_name(out.name + ".partial")).write_bytes(b"PGDMP whole")
    manifest = out.with_name(out.name + ".manifest.json")
    manifest.write_text(json.dumps({"kind": "dump", "job_id": "deadbeef", "id": "b4c4e1d0", "bytes": 11}))
    other = out_dir / "other.dump.manifest.json"  # another job's: never touched
    other.write_text(json.dumps({"kind": "dump", "job_id": "0ther000"}))
    listing = run_cli("jobs", "list")
    [job] = jobs_json(home)
    if renamed:
        assert job["state"] == "succeeded" and job["output_path"] == str(out), listing.stderr
        assert job["exit_code"] == 0
        assert sorted(p.name for p in out_dir.iterdir()) == sorted([out.name, manifest.name, other.name])
    else:
        assert job["state"] == "failed", listing.stderr
        assert [p.name for p in out_dir.iterdir()] == [other.name]


def test_a_manifest_naming_another_job_does_not_make_a_dead_job_succeed(home, out_dir):
    out = out_dir / "shop.dump"
    dead_dump("deadbeef", out)
    out.write_bytes(b"PGDMP whole")  # someone else's archive under that name, written since
    out.with_name(out.name + ".manifest.json").write_text(json.dumps({"kind": "dump", "job_id": "0ther000"}))
    run_cli("jobs", "list")
    [job] = jobs_json(home)
    assert job["state"] == "failed"
    assert out.exists() and out.with_name(out.name + ".manifest.json").exists()


def test_every_name_claimed_while_reserving_is_taken_or_let_go(tmp_path):
    """reserve_output's claims, from eight threads reserving numbered names at once: each name
    claimed is either the one returned or let go of (someone else had it); none is left dangling."""
    import threading

    from pgbackup_tui.core.output_names import reserve_output

    final = tmp_path / "a" / "b" / "x.dump"
    events: list[tuple[str, Path | None, bool]] = []
    lock = threading.Lock()
    got: list[Path] = []

    def claim(partial: Path, stop_at: Path | None, held: bool) -> None:
        with lock:
            events.append((str(partial), stop_at, held))

    def one() -> None:
        name = reserve_output(final, directory=False, numbered=True, created=[], claim=claim)
        with lock:
            got.append(name)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = sorted(name for name, _, is_held in events if is_held)
    let_go = [name for name, _, is_held in events if not is_held]
    assert len(set(got)) == 8
    assert held == sorted([str(name) + ".partial" for name in got] + let_go)
    assert events[0][1] == tmp_path  # the first claim, before any folder was made: those made go too


def test_a_csv_export_in_place_with_its_manifest_inside_is_a_succeeded_job(home, out_dir):
    """A CSV export's manifest is inside its folder; its size is its files'."""
    out = out_dir / "shop.csv"
    dead_dump("c5vc5v00", out, kind="csv-export")
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"kind": "csv", "job_id": "c5vc5v00",
                                                   "files": {"a.csv": {"bytes": 5}, "schema.sql": {"bytes": 7}}}))
    run_cli("jobs", "list")
    [job] = jobs_json(home)
    assert job["state"] == "succeeded" and job["output_path"] == str(out)
    assert not (home / catalog_index.INDEX_NAME).exists()  # not a backup the catalog lists
    shown = run_cli("jobs", "show", job["id"])
    assert "12 B" in shown.stdout or "12 bytes" in shown.stdout, shown.stdout


@pytest.mark.parametrize("same_boot", [True, False])
def test_a_dead_job_s_process_group_is_ended_only_in_the_boot_it_was_recorded_in(home, tmp_path, same_boot):
    """After a restart of the machine, the process group a dead job recorded (unsynced, in
    state.json) may be another job's pg_dump: it is left alone. In the same boot it is ended."""
    import shutil

    from pgbackup_tui.core.job_owned import boot_id

    fake = tmp_path / "psql"  # a process the cleanup takes for one of the job's children
    shutil.copy("/bin/sleep", fake)
    child = subprocess.Popen([str(fake), "60"], start_new_session=True)
    try:
        folder = dead_dump("b0075a3e", tmp_path / "out" / "shop.dump")
        job_store.write_json(folder / job_store.STATE, {
            "state": "running", "runner_pid": 999999999, "boot_id": boot_id() if same_boot else "an-earlier-boot",
            "owned": [{"kind": "process_group", "value": str(child.pid)}]})
        run_cli("jobs", "list")
        assert [job["state"] for job in jobs_json(home)] == ["failed"]
        if same_boot:
            assert child.wait(timeout=10) == -signal.SIGKILL
        else:
            time.sleep(0.2)
            assert child.poll() is None
    finally:
        child.kill()
        child.wait()


def test_a_name_a_live_job_holds_is_not_removed_for_a_dead_job_that_let_it_go(home, out_dir):
    """Two dumps saw the same free name; the live one created its .partial (on record first), the
    other found it taken and died before its release was synced: its record still names that
    .partial, which recovery must leave to the live job. Once that job is dead too, it goes."""
    out = out_dir / "shop.dump"
    partial = out.with_name(out.name + ".partial")
    dead_dump("deadbeef", out)
    live_spec = {"id": "a1ive000", "kind": "dump", "title": "dump a1ive000", "server": "nowhere",
                 "database": "shop", "plan": PLAN, "created_at": time.time()}
    live, live_lock = job_store.create_job_dir("a1ive000", live_spec)  # its lock held: its runner is alive
    try:
        job_store.write_json(live / job_store.OWNED, {"items": [{"kind": "path", "value": str(partial)}]})
        job_store.write_json(live / job_store.STATE, {"state": "running", "runner_pid": os.getpid(), "owned": []})
        partial.write_bytes(b"PGDMP being written")
        run_cli("jobs", "list")
        states = {job["id"]: job["state"] for job in jobs_json(home)}
        assert states["deadbeef"] == "failed"
        assert partial.exists(), "the live job's .partial was removed for the dead one"
    finally:
        os.close(live_lock)  # now its runner is gone too
    run_cli("jobs", "list")
    assert not partial.exists()
    assert {job["id"]: job["state"] for job in jobs_json(home)}["a1ive000"] == "failed"


def test_folders_made_for_an_output_go_though_the_runner_died_before_making_them_all(tmp_path, out_dir):
    """The name and the folders for it are on record before any is made: a runner killed after
    making `new` but before `new/sub` leaves `new`, which goes too."""
    from pgbackup_tui.core.job_owned import undo_owned

    (out_dir / "new").mkdir()
    record = job_store.JobRecord(id="deadbeef", folder=tmp_path, spec={}, state={})
    partial = out_dir / "new" / "sub" / "shop.dump.partial"
    claim = {"kind": "path", "value": str(partial), "stop_at": str(out_dir)}
    left = undo_owned(record, lambda spec, name, identity: "absent", [claim])
    assert left == []
    assert list(out_dir.iterdir()) == []


def test_a_job_prefix_that_fits_several_jobs_says_so(home, out_dir):
    """`jobs show d2` with two jobs starting d2: the ids that fit, not "no such job"."""
    dead_dump("d2aa0001", out_dir / "a.dump")
    dead_dump("d2bb0002", out_dir / "b.dump")
    several = run_cli("jobs", "show", "d2")
    assert several.returncode == 2
    assert "fits 2 jobs" in several.stderr and "d2aa0001" in several.stderr and "d2bb0002" in several.stderr
    # (the lines before it: the two dead runners these jobs stand for, cleaned up by this command)
    assert several.stderr.strip().splitlines()[-1].startswith("pgbackup-tui: error: job d2: the prefix fits")
    one = run_cli("jobs", "show", "d2a")
    assert one.returncode == 0, one.stderr
    assert run_cli("jobs", "show", "zz").returncode == 2


def test_a_child_killed_by_a_signal_is_said_in_words():
    from pgbackup_tui.core.job_children import exit_in_words

    assert exit_in_words(1) == "exit 1"
    assert exit_in_words(-9) == "killed by signal 9 (SIGKILL)"


def test_a_dead_restore_whose_last_step_the_server_cannot_tell_is_asked_again_for_a_day(home):
    """A runner killed at its swap, its server down: nothing was said nor undone, and every start
    asked again, without end (review). For a day it is asked again; then it is recorded as failed,
    saying what could not be told."""
    from pgbackup_tui.core import job_recovery
    from pgbackup_tui.core.job_cleanup import recover_jobs
    from test_job_start_cost import _job

    folder = _job("5a1d0000", {"state": "running", "runner_pid": 999999999, "owned": []})
    job_store.write_json(folder / job_store.OWNED, {"items": [
        {"kind": "swapped_in", "value": "shop", "identity": "16384", "previous": "pgbackup_old_x"}]})
    [line] = recover_jobs()
    assert "looked at again on a later start" in line, line
    state = job_store.read_json(folder / job_store.STATE)
    assert state["state"] == "running" and state["unsure_since"] <= time.time()
    # Listed as stopped, its outcome untold: not running (its runner is gone), nor failed (it may be done).
    [listed] = json.loads(run_cli("jobs", "list", "--json").stdout)
    assert listed["state"] == "stopped" and "cannot be told yet" in listed["message"], listed
    state["unsure_since"] = time.time() - 2 * job_recovery.UNSURE_FOR_S
    job_store.write_json(folder / job_store.STATE, state)
    [line] = recover_jobs()
    state = job_store.read_json(folder / job_store.STATE)
    assert state["state"] == "failed" and "could not be told for a day" in state["message"], state
    assert recover_jobs() == []  # settled: not asked again


def test_a_dead_job_whose_end_cannot_be_written_is_listed_as_failed(tmp_path, monkeypatch):
    """Its runner dead and the state folder's disk full, a job's recovery cannot write its end:
    `jobs list` said "running" for as long as the disk stayed full."""
    from small_disk import fill, small_filesystem
    from test_job_start_cost import _job

    with small_filesystem(tmp_path / "home", 512) as app_home:
        monkeypatch.setenv("PGBACKUP_TUI_HOME", str(app_home))
        _job("f0110000", {"state": "running", "runner_pid": 999999999, "owned": []})
        fill(app_home, 0)
        listed = run_cli("jobs", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        [job] = json.loads(listed.stdout)
        assert job["state"] == "failed" and "not on record yet" in job["message"], job
        assert "running" not in run_cli("jobs", "list").stdout
        (app_home / "filler").unlink()  # room again: the next command records its end
        [job] = json.loads(run_cli("jobs", "list", "--json").stdout)
        assert job["state"] == "failed" and "not on record yet" not in job["message"], job


def test_ctrl_c_while_a_dead_job_s_database_waits_to_be_dropped_is_one_line(home, out_dir):
    """Every command first undoes what dead jobs left; one whose server does not answer holds it for
    the connect timeout, and Ctrl-C there was a KeyboardInterrupt traceback. The database stays on
    record for the next start."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (the backlog), never answers
        port = silent.getsockname()[1]
        folder = dead_dump("deadbeef", out_dir / "shop.dump", kind="restore")
        spec = json.loads((folder / job_store.SPEC).read_text())
        spec["plan"]["target"]["params"] = {"host": "127.0.0.1", "port": str(port), "user": "nobody"}
        spec["plan"]["archive"] = str(out_dir / "shop.dump")
        job_store.write_json(folder / job_store.SPEC, spec)
        job_store.write_json(folder / job_store.OWNED, {"items": [{"kind": "database", "value": "made_by_it"}]})
        process = subprocess.Popen([sys.executable, "-m", "pgbackup_tui", "jobs", "list"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        time.sleep(1.5)  # started, in the recovery's connect (10 s before it gives up)
        assert process.poll() is None
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == "pgbackup-tui: cancelled" and "Traceback" not in err, err
    owned = json.loads((folder / job_store.OWNED).read_text())
    assert [item["value"] for item in owned["items"] if item["kind"] == "database"] == ["made_by_it"]
