"""What a file without a manifest is, read from its content alone (no PostgreSQL tool).

archive.identify_archive knows pg_dump's four formats (it is what a restore trusts, and it
refuses a pg_dumpall file: that restores whole, through cluster_restore.py). Dropped-in
files come in two more shapes: a plain dump compressed with gzip (`pg_dump | gzip`), and a
pg_dumpall script (a whole cluster: roles, then every database), plain or gzipped. The catalog
lists them as *foreign*, with what their header says; none of them is restored by `restore`
as is (gunzip first; pg_dumpall output goes to psql).
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from .archive import (CLUSTER_TAIL, PLAIN_HEAD, PLAIN_TAIL, ArchiveInfo, ends_with_line, identify_archive,
                      is_cluster_script, read_start)
from .errors import ArchiveError

HEAD_BYTES = 8192
_FROM = re.compile(r"^-- Dumped from database version (.+?)\s*$", re.MULTILINE)
_BY = re.compile(r"^-- Dumped by (pg_dump(?:all)?) version (.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Sniffed:
    """What a file or folder is, as far as its content tells."""

    path: Path
    format: str  # custom | directory | tar | plain | plain.gz | dumpall | dumpall.gz
    dump_version: str | None = None
    server_version: str | None = None
    complete: bool | None = None  # for text formats: ends with the closing line (None: not checked)
    info: ArchiveInfo | None = None  # pg_dump's formats

    @property
    def describe(self) -> str:
        """"custom archive by pg_dump 17.6 from PostgreSQL 15.18" and the like."""
        names = {"custom": "custom archive", "directory": "directory archive", "tar": "tar archive",
                 "plain": "plain SQL dump", "plain.gz": "gzip of a plain SQL dump",
                 "dumpall": "pg_dumpall script", "dumpall.gz": "gzip of a pg_dumpall script"}
        text = names.get(self.format, self.format)
        tool = "pg_dumpall" if self.format.startswith("dumpall") else "pg_dump"
        if self.dump_version:
            text += f" by {tool} {self.dump_version}"
        if self.server_version:
            text += f" from PostgreSQL {self.server_version}"
        if self.complete is False:
            text += " (truncated: no closing line)"
        return text


def sniff(path: Path) -> Sniffed:
    """Recognise `path`, or ArchiveError (one line naming it) if it is no dump we know."""
    if path.is_file():
        head = read_start(path, HEAD_BYTES)
        if head.startswith(b"\x1f\x8b"):
            return _sniff_gzip(path)
        if is_cluster_script(head):
            return _text_sniffed(path, "dumpall", head.decode("utf-8", "replace"), ends_with_line(path, CLUSTER_TAIL))
    info = identify_archive(path)
    complete = ends_with_line(path, PLAIN_TAIL) if info.format == "plain" else None
    return Sniffed(path, info.format, info.dump_version, info.server_version, complete, info)


def _text_sniffed(path: Path, fmt: str, head: str, complete: bool | None) -> Sniffed:
    server, by = _FROM.search(head), _BY.search(head)
    return Sniffed(path, fmt, by.group(2) if by else None, server.group(1) if server else None, complete)


def _sniff_gzip(path: Path) -> Sniffed:
    try:
        with gzip.open(path, "rb") as handle:
            data = handle.read(HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"{path}: damaged gzip file ({exc})") from None
    head = data.decode("utf-8", "replace")
    if is_cluster_script(data):
        return _text_sniffed(path, "dumpall.gz", head, None)
    if PLAIN_HEAD in head[:1024]:
        return _text_sniffed(path, "plain.gz", head, None)
    raise ArchiveError(f"{path}: a gzip file, but not of a pg_dump or pg_dumpall script")


def gzip_tail_has(path: Path, line: str) -> bool:
    """Whether a gzipped script decompresses to the end and closes with `line` (reads it all once)."""
    tail = b""
    try:
        with gzip.open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                tail = (tail + chunk)[-4096:]
    except (OSError, EOFError, zlib.error):
        return False
    return line in tail.decode("utf-8", "replace")


def closing_line(fmt: str) -> str | None:
    """The line a text format must end with, or None for pg_dump's binary formats."""
    if fmt.startswith("dumpall"):
        return CLUSTER_TAIL
    if fmt.startswith("plain"):
        return PLAIN_TAIL
    return None
