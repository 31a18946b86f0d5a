"""Output names (issue 10, point 3): dumps started together never share a name, and each
manifest describes its own archive.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pgbackup_tui.core import dump as dump_module
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
    monkeypatch.setattr(dump_module, "utc_stamp", lambda: "20260101T000000Z")
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
