"""A durable job state write (job_store.write_json) is on disk when it returns: the new file synced
before its rename, and its folder synced after it (the rename is the folder's change)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pgbackup_tui.core import job_store


@pytest.mark.parametrize("durable", [True, False])
def test_a_durable_write_syncs_the_file_then_its_folder(tmp_path: Path, monkeypatch, durable: bool) -> None:
    state = tmp_path / "state.json"
    state.write_text("{}")
    synced: list[tuple[str, bool]] = []  # what was synced, and whether the new state was in place then
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), json.loads(state.read_text()) == {"owned": ["x"]}))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    job_store.write_json(state, {"owned": ["x"]}, durable=durable)
    assert json.loads(state.read_text()) == {"owned": ["x"]}
    if not durable:
        assert synced == []
        return
    [(file, renamed_yet), (folder, renamed)] = synced
    assert file.startswith(str(tmp_path / ".state.json.")) and not renamed_yet  # the new file, before its rename
    assert folder == str(tmp_path) and renamed  # the folder, after it
