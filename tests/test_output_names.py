"""Output names (issue 10, points 3 and 5): dumps started together never share a name, each
manifest describes its own archive, a failed dump leaves no empty folder it made, and the files
of a directory archive are 0600 from the moment pg_dump creates them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pgbackup_tui.core import dump_output
from pgbackup_tui.core.catalog import manifest_path
from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.errors import UsageError
from pgbackup_tui.core.jobs import JobState
from pgbackup_tui.core.output_names import reserve_output
from pgbackup_tui.core.plans import DumpPlan

SOURCE = "shop"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pgbackup_tui", *args]


def archive_has_data(sandbox, archive: Path) -> bool:
    listing = subprocess.run([str(sandbox.bin_dir / "pg_restore"), "--list", str(archive)],
                             capture_output=True, text=True, check=True).stdout
    return " TABLE DATA " in listing


def assert_manifest_describes(sandbox, archive: Path) -> dict:
    manifest = json.loads(manifest_path(archive).read_text())
    assert manifest["bytes"] == archive.stat().st_size, archive
    assert archive_has_data(sandbox, archive) == (not manifest["options"]["schema_only"]), archive
    return manifest


def test_eight_dumps_of_one_database_at_once(sandbox, home):
    """Eight CLIs started together, half --schema-only: eight names, each manifest its archive's."""
    schema_only = [i % 2 == 0 for i in range(8)]
    children = [subprocess.Popen(cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--progress", "none",
                                     *(["--schema-only"] if flag else [])),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
                for flag in schema_only]
    results = [(child, *child.communicate(timeout=180)) for child in children]
    for child, _out, err in results:
        assert child.returncode == 0, err
    paths = [Path(out.strip()) for _child, out, _err in results]
    assert len(set(paths)) == 8
    folder = home / "backups"
    assert {p.parent for p in paths} == {next(folder.iterdir()) / SOURCE}
    for path, flag in zip(paths, schema_only, strict=True):
        assert assert_manifest_describes(sandbox, path)["options"]["schema_only"] == flag
    leftovers = [p.name for p in paths[0].parent.iterdir() if p.name.endswith(".partial") or p.name.startswith(".")]
    assert leftovers == []


async def test_dumps_in_the_same_second_are_numbered(sandbox, home, monkeypatch):
    """With the clock stopped every dump wants the same name: -2, -3... and each manifest is its own."""
    monkeypatch.setattr(dump_output, "utc_stamp", lambda: "20260101T000000Z")
    target = target_from_dsn(sandbox.dsn())
    plans = [DumpPlan(target=target, dbname=SOURCE, schema_only=(i % 2 == 1)) for i in range(6)]
    plans.append(DumpPlan(target=target, dbname=SOURCE, format="directory"))
    results = await asyncio.gather(*(DumpJob(plan).run() for plan in plans))
    assert [r.state for r in results] == [JobState.SUCCEEDED] * 7, [r.message for r in results]
    names = sorted(r.output_path.name for r in results if r.output_path is not None)
    assert names == ["20260101T000000Z-2.dump", "20260101T000000Z-3.dump", "20260101T000000Z-4.dump",
                     "20260101T000000Z-5.dump", "20260101T000000Z-6.dump", "20260101T000000Z.dir",
                     "20260101T000000Z.dump"]
    for result, plan in zip(results, plans, strict=True):
        assert result.output_path is not None
        if plan.format == "custom":
            assert assert_manifest_describes(sandbox, result.output_path)["options"]["schema_only"] == plan.schema_only


def test_reservations_from_many_threads(tmp_path):
    """The reservation itself, 40 threads at once on one name: 40 distinct names, one owner each."""
    final = tmp_path / "b" / "20260101T000000Z.dump"
    got: list[Path] = []
    created: list[Path] = []
    barrier = threading.Barrier(40)

    def reserve() -> None:
        barrier.wait()
        got.append(reserve_output(final, directory=False, numbered=True, created=created))

    threads = [threading.Thread(target=reserve) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(got)) == 40
    assert created == [tmp_path / "b"]  # made once, by one of them
    assert all((p.with_name(p.name + ".partial").stat().st_mode & 0o777) == 0o600 for p in got)
    with pytest.raises(UsageError, match="already exists"):
        reserve_output(final, directory=False, numbered=False, created=[])


def test_an_explicit_output_taken_meanwhile_is_refused(sandbox, home):
    """Two dumps to one --output at once: one writes it, the other says so (exit 2); the manifest is the winner's."""
    output = home / "one.dump"
    children = [subprocess.Popen(cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--output", str(output),
                                     "--progress", "none", *flags),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
                for flags in ([], ["--schema-only"], [], ["--schema-only"])]
    outcomes = [(child.wait(timeout=180), child.stderr.read() if child.stderr else "") for child in children]
    assert sorted(code for code, _ in outcomes).count(0) == 1, outcomes
    for code, err in outcomes:
        if code != 0:
            assert code == 2 and "exists" in err and len(err.strip().splitlines()) == 1, err
    assert_manifest_describes(sandbox, output)
    assert not Path(f"{output}.partial").exists()


async def test_a_failed_dump_removes_the_folders_it_made(sandbox, home, tmp_path):
    sandbox.psql("DROP ROLE IF EXISTS no_rights_names; CREATE ROLE no_rights_names LOGIN")
    target = target_from_dsn(sandbox.dsn().replace("user=postgres", "user=no_rights_names"))
    # Default place: backups/<server>/<db>/ are all new, and all go again.
    result = await DumpJob(DumpPlan(target=target, dbname=SOURCE)).run()
    assert result.state == JobState.FAILED and "permission denied" in result.message
    assert not (home / "backups").exists()
    # An explicit output under new folders: they go; a folder that was there stays, with what it held.
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "mine.txt").write_text("x")
    result = await DumpJob(DumpPlan(target=target, dbname=SOURCE, output=kept / "a" / "b" / "x.dump")).run()
    assert result.state == JobState.FAILED
    assert sorted(p.name for p in kept.iterdir()) == ["mine.txt"]
    # A folder that holds another dump's archive stays.
    good = await DumpJob(DumpPlan(target=target_from_dsn(sandbox.dsn()), dbname=SOURCE, schema_only=True)).run()
    assert good.state == JobState.SUCCEEDED and good.output_path is not None
    result = await DumpJob(DumpPlan(target=target, dbname=SOURCE)).run()
    assert result.state == JobState.FAILED
    assert good.output_path.exists() and sorted(p.name for p in good.output_path.parent.iterdir()) == sorted(
        [good.output_path.name, manifest_path(good.output_path).name])


def _pids_writing(partial: Path) -> list[int]:
    """pg_dump's processes (leader and workers) writing into `partial`, from /proc."""
    pids = []
    needle = f"--file={partial}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_directory_archive_files_are_private_while_pg_dump_writes(sandbox, home, fresh_db_name):
    """pg_dump is frozen (SIGSTOP) as soon as its first data file exists, before anything of ours
    could fix modes: every file is 0600 and every folder 0700 already. Then it finishes normally."""
    sandbox.create_database(fresh_db_name)
    tables = "".join(f"CREATE TABLE t{i} AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 20000) g;"
                     for i in range(12))
    sandbox.psql(tables, fresh_db_name)
    output = home / "out.dir"
    partial = Path(f"{output}.partial")
    child = subprocess.Popen(cli("dump", "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--format", "directory",
                                 "--jobs", "2", "--output", str(output), "--progress", "none"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    stopped: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            if partial.is_dir() and any(p.name.endswith(".dat.gz") or p.name.endswith(".dat")
                                        for p in partial.iterdir()):
                stopped = _pids_writing(partial)
                for pid in stopped:
                    os.kill(pid, signal.SIGSTOP)
                break
            time.sleep(0.002)
        assert stopped, f"never saw pg_dump write a data file (exit {child.poll()})"
        modes = {p.name: p.stat().st_mode & 0o777 for p in [partial, *partial.rglob("*")]}
        assert modes[partial.name] == 0o700
        assert {name: mode for name, mode in modes.items() if name != partial.name and mode != 0o600} == {}, modes
    finally:
        for pid in stopped:
            with_suppressed(os.kill, pid, signal.SIGCONT)
    _out, err = child.communicate(timeout=180)
    assert child.returncode == 0, err
    assert all((p.stat().st_mode & 0o777) == 0o600 for p in output.iterdir())


def with_suppressed(func, *args) -> None:
    with contextlib.suppress(ProcessLookupError):
        func(*args)
