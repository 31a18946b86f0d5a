"""A restore's sha256 check (core/checksum_check.py): beside pg_restore at the lowest priority,
finished at the normal one once waited for, with compare_checksums' answers."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

from pgbackup_tui.core.archive_scan import compare_checksums
from pgbackup_tui.core.checksum_check import ChecksumCheck


def _archive(tmp_path: Path, size: int = 5 << 20) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "a.dump"
    path.write_bytes(os.urandom(size))
    return path, {"": hashlib.sha256(path.read_bytes()).hexdigest()}


async def test_the_check_yields_until_hurried_then_answers(tmp_path):
    archive, expected = _archive(tmp_path)
    check = ChecksumCheck(archive, expected)
    answer = check.start()
    beside = check._beside.native_id
    if hasattr(os, "SCHED_IDLE") and beside is not None and check._beside.is_alive():
        assert os.sched_getscheduler(beside) == os.SCHED_IDLE
    check.hurry()
    assert await asyncio.wait_for(answer, 30) == []


async def test_a_changed_byte_and_a_missing_file_are_named_as_compare_checksums_does(tmp_path):
    archive, expected = _archive(tmp_path)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 1
    archive.write_bytes(bytes(data))
    check = ChecksumCheck(archive, expected)
    answer = check.start()
    check.hurry()
    problems = await asyncio.wait_for(answer, 30)
    assert problems == compare_checksums(archive, expected) and "sha256 differs" in problems[0]
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "toc.dat").write_bytes(b"x")
    check = ChecksumCheck(folder, {"toc.dat": expected[""], "1.dat.gz": expected[""]})
    answer = check.start()
    check.hurry()
    assert await asyncio.wait_for(answer, 30) == compare_checksums(folder, {"toc.dat": expected[""],
                                                                           "1.dat.gz": expected[""]})


async def test_an_abandoned_check_stops_without_an_answer(tmp_path):
    archive, expected = _archive(tmp_path, 64 << 20)
    check = ChecksumCheck(archive, expected)
    answer = check.start()
    check.abandon()
    for thread in (check._beside, check._finisher):
        if thread is not None:
            await asyncio.to_thread(thread.join, 30)
            assert not thread.is_alive()
    await asyncio.sleep(0.05)
    assert not answer.done()
