"""Recognising an archive before anything touches a server.

pg_restore refuses archives from a newer pg_dump, and a truncated custom archive can still list
its TOC: so we read the header ourselves (format and archive version), pick a pg_restore that can
read it, and the restore job reads the whole archive once (`pg_restore -f /dev/null`) before it
touches the target. Plain SQL dumps must begin and end with pg_dump's own marker lines.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ArchiveError

MAGIC = b"PGDMP"
PLAIN_HEAD = "-- PostgreSQL database dump"
PLAIN_TAIL = "-- PostgreSQL database dump complete"
# Archive format version -> the first pg_dump major that writes it (pg_backup_archiver.h).
ARCHIVE_VERSION_MIN_MAJOR = {(1, 12): 9, (1, 13): 11, (1, 14): 12, (1, 15): 16, (1, 16): 17}


@dataclass(frozen=True)
class ArchiveInfo:
    path: Path
    format: str  # custom | directory | tar | plain
    archive_version: tuple[int, int, int] | None = None

    @property
    def min_reader_major(self) -> int | None:
        """The oldest pg_restore major that can read this archive (None: any / unknown)."""
        if self.archive_version is None:
            return None
        key = self.archive_version[:2]
        if key in ARCHIVE_VERSION_MIN_MAJOR:
            return ARCHIVE_VERSION_MIN_MAJOR[key]
        newest_known = max(ARCHIVE_VERSION_MIN_MAJOR)
        return ARCHIVE_VERSION_MIN_MAJOR[newest_known] + 1 if key > newest_known else None

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.archive_version[:2])) if self.archive_version else "?"


def _header_version(data: bytes, path: Path) -> tuple[int, int, int]:
    if len(data) < 8 or not data.startswith(MAGIC):
        raise ArchiveError(f"{path}: not a pg_dump archive (no PGDMP header)")
    return data[5], data[6], data[7]


def identify_archive(path: Path) -> ArchiveInfo:
    """Format and archive version of `path`, or ArchiveError with one clear line."""
    if not path.exists():
        raise ArchiveError(f"{path}: no such file or directory")
    if path.is_dir():
        toc = path / "toc.dat"
        if not toc.is_file():
            raise ArchiveError(f"{path}: a directory but not a pg_dump directory archive (no toc.dat)")
        with toc.open("rb") as handle:
            return ArchiveInfo(path, "directory", _header_version(handle.read(16), toc))
    with path.open("rb") as handle:
        head = handle.read(1024)
    if not head:
        raise ArchiveError(f"{path}: the file is empty")
    if head.startswith(MAGIC):
        return ArchiveInfo(path, "custom", _header_version(head, path))
    if len(head) >= 512 and head[257:262] == b"ustar":
        try:
            with tarfile.open(path, "r:") as tar:
                first = tar.next()
                if first is None or first.name != "toc.dat":
                    raise ArchiveError(f"{path}: a tar file but not a pg_dump tar archive (no toc.dat first)")
                member = tar.extractfile(first)
                data = member.read(16) if member else b""
        except tarfile.TarError as exc:
            raise ArchiveError(f"{path}: damaged tar archive: {exc}") from None
        return ArchiveInfo(path, "tar", _header_version(data, path))
    if head.startswith(b"\x1f\x8b"):
        raise ArchiveError(f"{path}: gzip-compressed; decompress it first (gunzip) and restore the .sql")
    text = head.decode("utf-8", errors="replace")
    if PLAIN_HEAD in text:
        return ArchiveInfo(path, "plain")
    raise ArchiveError(f"{path}: not a pg_dump archive (custom, directory, tar or plain SQL)")


def check_plain_complete(path: Path) -> None:
    """A plain dump is complete only if it ends with pg_dump's closing comment."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - 4096))
        tail = handle.read().decode("utf-8", errors="replace")
    if PLAIN_TAIL not in tail:
        raise ArchiveError(
            f"{path}: truncated SQL dump (it does not end with pg_dump's 'dump complete' line); nothing was restored"
        )


def check_tar_complete(path: Path) -> None:
    """Every member's data present, and the end-of-archive blocks written.

    Why here: pg_restore 15 spins forever on a truncated tar archive instead of failing, so a
    tar archive must be proven whole before pg_restore reads it.
    """
    size = path.stat().st_size
    try:
        with tarfile.open(path, "r:") as tar:
            end = 0
            for member in tar:
                end = member.offset_data + member.size
                if end > size:
                    raise ArchiveError(f"{path}: truncated tar archive ({member.name} is cut short); nothing was restored")
    except tarfile.TarError as exc:
        raise ArchiveError(f"{path}: truncated or damaged tar archive ({exc}); nothing was restored") from None
    with path.open("rb") as handle:
        handle.seek(max(0, size - 1024))
        trailer = handle.read()
    if size < end + 1024 or trailer != bytes(1024):
        raise ArchiveError(f"{path}: truncated tar archive (no end-of-archive blocks); nothing was restored")


def path_size(path: Path) -> int:
    """Bytes of a file, or of every file in a directory archive."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0
