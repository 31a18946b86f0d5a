"""The dump job's reading back of its new archive: during pg_dump where it can, after it where not.

A backup is recorded as good only once every data block of it has been decompressed and each
table's rows counted (the manifest keeps the counts; drills compare a restored database with
them), and its checksum taken (checksums.py). For a compressed custom archive (the default) the
blocks are read while pg_dump writes them (archive_follow.py), by a process of its own at the
lowest CPU priority (archive_follow_process.py), and the checksum taken as soon as pg_dump has
written its TOC again (while it fsyncs the file): what remains after pg_dump is checking that
TOC, beside `pg_restore --list`. For the other
formats, or when the follower steps aside (FormatUnknown), backup_record.py reads the archive
after pg_dump as before (`pg_restore --data-only` for the rows).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from .archive_follow import decompressor_for
from .archive_follow_process import FollowerProcess
from .archive_scan import copy_target
from .checksums import checksum_archive
from .jobs import Job


def compression_method(spec: int | str | None) -> str:
    """pg_dump's method for a --compress spec: None is pg_dump's default for custom (gzip)."""
    if spec is None:
        return "gzip"
    if isinstance(spec, int) or spec.isdigit():
        return "gzip" if int(spec) > 0 else "none"
    method, _, level = spec.partition(":")
    return "none" if method == "gzip" and level == "0" else method


def can_follow(plan_format: str, run_format: str, compress: int | str | None) -> bool:
    """Whether the archive pg_dump writes now is read while it is written: a compressed custom
    archive that stays as it is (a plain selection is converted afterwards) and whose method this
    Python decompresses. An uncompressed one is left to pg_restore: its many small chunks would
    make Python the slow part."""
    method = compression_method(compress)
    return plan_format == run_format == "custom" and method != "none" and decompressor_for(method) is not None


class DumpReadBack:
    """One dump's reading back: start() before pg_dump, ended() after it, then result()."""

    def __init__(self, job: Job, archive: Path, *, follow: bool) -> None:
        self.job = job
        self.archive = archive
        self.follower = FollowerProcess(archive) if follow else None
        self._checksum_pass: asyncio.Future[dict[str, str]] | None = None

    @property
    def following(self) -> bool:
        return self.follower is not None

    def start(self) -> None:
        """Start following (before pg_dump). A follower that cannot start (no process to be had)
        is only a lost shortcut: the archive is then read after pg_dump, as for other formats."""
        if self.follower is None:
            return
        try:
            self.follower.start()
        except OSError as exc:
            self.job.log(f"the archive will be read after pg_dump: its reader could not start ({exc})")
            self.follower = None

    def ended(self, ok: bool) -> None:
        """pg_dump has exited: the follower reads what is left (its checksum of the finished file
        is usually taken already, while pg_dump fsynced), beside pg_restore --list."""
        if self.follower is None:
            return
        if not ok:
            self.follower.abandon()
            self.follower = None
            return
        self.follower.writer_finished()

    def abandon(self) -> None:
        """The job stops (failed, cancelled): the follower process is killed."""
        if self.follower is not None:
            self.follower.abandon()
        if self._checksum_pass is not None and not self._checksum_pass.done():
            self._checksum_pass.add_done_callback(lambda future: future.exception())  # nobody waits for it now

    async def result(self, restore_list: list[int] | None, encoding: str) -> dict[str, Any] | None:
        """{"checksums", "rows"} taken during the dump (rows of the entries in restore_list when
        given); only "checksums" when the follower could not confirm the archive (backup_record.py
        then counts the rows with pg_restore); None when nothing was followed."""
        follower = self.follower
        if follower is None:
            return None
        try:
            by_id = await asyncio.to_thread(follower.finish)
        except Exception as exc:  # the follower is a fast path: pg_restore is the judge
            self.job.log(f"the archive is read again with pg_restore to count its rows ({exc})")
            by_id = None
        self.job.check_cancelled()
        if by_id is not None and follower.checksum is not None:  # taken while pg_dump fsynced
            checksums = {"": follower.checksum[0]}
        else:
            self._checksum_pass = asyncio.ensure_future(asyncio.to_thread(checksum_archive, self.archive))
            checksums = await self._checksum_pass
        if by_id is None:
            return {"checksums": checksums}
        wanted = set(restore_list) if restore_list is not None else None
        rows: dict[str, int] = {}
        for dump_id, copy_stmt in follower.copy_statements.items():
            if dump_id not in by_id or (wanted is not None and dump_id not in wanted):
                continue
            name = copy_target(copy_stmt, encoding)
            if name is not None:  # several COPYs into one table (partitions via their root) add up
                rows[name] = rows.get(name, 0) + by_id[dump_id]
        return {"checksums": checksums, "rows": rows}
