"""pg_dump's custom archive format, read in Python: the header, the TOC, the data blocks.

Why: the dump job verifies a new archive while pg_dump writes it (archive_follow.py) instead of
reading it through again with `pg_restore --data-only` afterwards. This module knows the layout
(pg_backup_archiver.c / pg_backup_custom.c), for archive versions 1.12 to 1.16 (pg_dump 9.5 to 18):

    header   "PGDMP", version (3 bytes), int size, offset size, format (1 = custom),
             compression (1.15+: the algorithm as a byte; before: a gzip level as an int),
             creation time (7 ints), database name, server and pg_dump versions (strings)
    TOC      a count, then per entry: dump id, has-data flag, catalog ids, tag, desc, section,
             defn, drop statement, COPY statement, namespace, tablespace, table AM (1.14+),
             relkind (1.16+), owner, "false", dependencies (ended by a NULL string), data offset
    data     per entry with data: a block type byte (1 = table data, 3 = large objects), the
             dump id, then length-prefixed chunks ended by a zero length: one compressed stream
             per table (per large object inside a type 3 block, each after its OID, the list
             ended by OID 0)

An int is a sign byte and `int size` bytes, least significant first; a string is its length as
an int (-1: NULL) and its bytes; an offset is a flag byte (1: not set, 2: set, 3: no data) and
`offset size` bytes. pg_dump writes the TOC first with the data offsets not set, then the data,
then seeks back and writes the TOC again with them: same length, only the offsets differ.
Anything else than this layout raises FormatUnknown, and the caller falls back to pg_restore.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

MAGIC = b"PGDMP"
FORMAT_CUSTOM = 1
BLK_DATA = 1
BLK_BLOBS = 3
OFFSET_NOT_SET, OFFSET_SET, OFFSET_NO_DATA = 1, 2, 3
OLDEST, NEWEST = (1, 12), (1, 16)
COMPRESSION_BY_CODE = {0: "none", 1: "gzip", 2: "lz4", 3: "zstd"}  # pg_compress_algorithm


class FormatUnknown(Exception):
    """The bytes are not a custom archive this module knows: use pg_restore instead."""


@dataclass
class TocEntry:
    dump_id: int
    has_data: bool
    desc: str
    tag: str
    namespace: str | None
    copy_stmt: bytes | None  # in the archive's encoding
    offset_flag: int
    offset: int
    offset_at: int  # where the offset's flag byte is in the file


@dataclass
class Header:
    version: tuple[int, int, int]
    int_size: int
    off_size: int
    compression: str  # none, gzip, lz4, zstd
    toc_start: int  # where the TOC begins (what pg_dump writes again at the end)
    entries: list[TocEntry] = field(default_factory=list)
    toc_end: int = 0  # where the data begins


class Reader:
    """Reads fields from `need(position, n)`, which returns exactly n bytes at position or raises."""

    def __init__(self, need: Callable[[int, int], bytes], position: int = 0) -> None:
        self.need = need
        self.pos = position
        self.int_size = 4
        self.off_size = 8

    def byte(self) -> int:
        value = self.need(self.pos, 1)[0]
        self.pos += 1
        return value

    def int(self) -> int:
        raw = self.need(self.pos, 1 + self.int_size)
        self.pos += 1 + self.int_size
        value = int.from_bytes(raw[1:], "little")
        if raw[0] not in (0, 1):
            raise FormatUnknown(f"bad int sign byte {raw[0]} at {self.pos}")
        return -value if raw[0] else value

    def raw_str(self) -> bytes | None:
        length = self.int()
        if length < 0:
            return None
        if length > 1 << 30:
            raise FormatUnknown(f"implausible string length {length}")
        value = self.need(self.pos, length)
        self.pos += length
        return value

    def str(self) -> str | None:
        value = self.raw_str()
        return None if value is None else value.decode("utf-8", "surrogateescape")

    def offset(self) -> tuple[int, int, int]:
        at = self.pos
        raw = self.need(self.pos, 1 + self.off_size)
        self.pos += 1 + self.off_size
        return raw[0], int.from_bytes(raw[1:], "little"), at


def read_header(reader: Reader) -> Header:
    """The header and the TOC, from the start of the file."""
    if reader.need(0, 5) != MAGIC:
        raise FormatUnknown("not a pg_dump archive")
    reader.pos = 5
    version = (reader.byte(), reader.byte(), reader.byte())
    if not OLDEST <= version[:2] <= NEWEST:
        raise FormatUnknown(f"archive version {version} not known here")
    reader.int_size, reader.off_size = reader.byte(), reader.byte()
    if reader.int_size not in (4, 8) or reader.off_size not in (4, 8):
        raise FormatUnknown("unusual int or offset size")
    if reader.byte() != FORMAT_CUSTOM:
        raise FormatUnknown("not the custom format")
    if version[:2] >= (1, 15):
        compression = COMPRESSION_BY_CODE.get(reader.byte(), "?")
    else:
        compression = "none" if reader.int() == 0 else "gzip"
    for _ in range(7):  # creation time
        reader.int()
    for _ in range(3):  # database name, server version, pg_dump version
        reader.raw_str()
    header = Header(version, reader.int_size, reader.off_size, compression, reader.pos)
    header.entries = read_toc(reader, version)
    header.toc_end = reader.pos
    return header


def read_toc(reader: Reader, version: tuple[int, int, int]) -> list[TocEntry]:
    count = reader.int()
    if not 0 <= count < 10_000_000:
        raise FormatUnknown(f"implausible TOC size {count}")
    entries = []
    for _ in range(count):
        dump_id = reader.int()
        has_data = reader.int() != 0
        reader.raw_str()  # catalog id: table OID
        reader.raw_str()  # catalog id: OID
        tag = reader.str() or ""
        desc = reader.str() or ""
        reader.int()  # section
        reader.raw_str()  # defn
        reader.raw_str()  # drop statement
        copy_stmt = reader.raw_str()
        namespace = reader.str()
        reader.raw_str()  # tablespace
        if version[:2] >= (1, 14):
            reader.raw_str()  # table access method
        if version[:2] >= (1, 16):
            reader.int()  # relkind
        reader.raw_str()  # owner
        reader.raw_str()  # "false" (WITH OIDS, long gone)
        while reader.raw_str() is not None:  # dependencies
            pass
        flag, offset, at = reader.offset()
        entries.append(TocEntry(dump_id, has_data, desc, tag, namespace, copy_stmt, flag, offset, at))
    return entries
