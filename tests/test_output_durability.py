"""A finished archive's name is durable before the job says it succeeded: the folder holding the
archive and its manifest is synced after the rename into place (output_names.put_in_place), so a
machine that stops right after does not leave a `.partial` that no job owns any more."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.jobs import JobState
from pgbackup_tui.core.plans import DumpPlan

SAMPLE_DB = "shop"  # what the session fixture in conftest.py loads


def test_a_dump_syncs_its_folder_after_the_rename_into_place(sandbox, home, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out" / "shop.dump"
    synced: list[tuple[str, bool]] = []  # what this process synced, and whether the archive had its name then
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), out.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    job = DumpJob(DumpPlan(target=target_from_dsn(sandbox.dsn()), dbname=SAMPLE_DB, format="custom", output=out))
    result = asyncio.run(job.run())
    assert result.state == JobState.SUCCEEDED, result.message
    assert (str(out.parent), True) in synced, synced  # the folder, once the archive was in place
