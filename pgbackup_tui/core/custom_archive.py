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

import functools
import struct
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
    toc_count: int = 0
    entries: list[TocEntry] = field(default_factory=list)
    toc_end: int = 0  # where the entries read so far end; where the data begins once all are read

    @property
    def complete(self) -> bool:
        return len(self.entries) == self.toc_count


class NeedMore(Exception):
    """The bytes given end before what is being read: read more of the file and try again."""


class Reader:
    """Reads fields from `need(position, n)`, which returns exactly n bytes at position or raises."""

    def __init__(self, need: Callable[[int, int], bytes], position: int = 0) -> None:
        self.need = need
        self.pos = position
        self.int_size = 4
        self.off_size = 8

    def u8(self) -> int:
        value = self.need(self.pos, 1)[0]
        self.pos += 1
        return value

    def integer(self) -> int:
        raw = self.need(self.pos, 1 + self.int_size)
        self.pos += 1 + self.int_size
        value = int.from_bytes(raw[1:], "little")
        if raw[0] not in (0, 1):
            raise FormatUnknown(f"bad int sign byte {raw[0]} at {self.pos}")
        return -value if raw[0] else value

    def raw_string(self) -> bytes | None:
        length = self.integer()
        if length < 0:
            return None
        if length > 1 << 30:
            raise FormatUnknown(f"implausible string length {length}")
        value = self.need(self.pos, length)
        self.pos += length
        return value


def in_memory(data: bytes | bytearray) -> Callable[[int, int], bytes]:
    """A `need` over bytes at hand: NeedMore past their end."""
    def need(position: int, size: int) -> bytes:
        if position + size > len(data):
            raise NeedMore()
        return bytes(data[position:position + size])
    return need


def read_header(data: bytes | bytearray) -> Header:
    """The header, and the TOC's entries as far as `data` (the file's first bytes) holds them
    (parse_toc reads on when more is there). NeedMore if the header itself is not all there."""
    reader = Reader(in_memory(data))
    if reader.need(0, 5) != MAGIC:
        raise FormatUnknown("not a pg_dump archive")
    reader.pos = 5
    version = (reader.u8(), reader.u8(), reader.u8())
    if not OLDEST <= version[:2] <= NEWEST:
        raise FormatUnknown(f"archive version {version} not known here")
    reader.int_size, reader.off_size = reader.u8(), reader.u8()
    if reader.int_size != 4 or reader.off_size != 8:  # what every pg_dump on a 64-bit machine writes
        raise FormatUnknown("unusual int or offset size")
    if reader.u8() != FORMAT_CUSTOM:
        raise FormatUnknown("not the custom format")
    if version[:2] >= (1, 15):
        compression = COMPRESSION_BY_CODE.get(reader.u8(), "?")
    else:
        compression = "none" if reader.integer() == 0 else "gzip"
    for _ in range(7):  # creation time
        reader.integer()
    for _ in range(3):  # database name, server version, pg_dump version
        reader.raw_string()
    count = reader.integer()
    if not 0 <= count < 100_000_000:
        raise FormatUnknown(f"implausible TOC size {count}")
    header = Header(version, reader.int_size, reader.off_size, compression, reader.pos - 5, count)
    header.toc_end = reader.pos
    parse_toc(data, header)
    return header


_INT = struct.Struct("<BI")
OFFSET_FIELD = struct.Struct("<BQ")  # an offset: its flag byte, then 8 bytes


def parse_toc(data: bytes | bytearray, header: Header) -> None:
    """Read on the TOC's entries that `data` (the file from its start) holds whole, from
    header.toc_end; stops before an entry that is not all there yet. Written for speed (a
    database of 10,000 tables has some 30,000 entries): fields are skipped, not decoded."""
    unpack_int, unpack_offset = _INT.unpack_from, OFFSET_FIELD.unpack_from
    end = len(data)
    v14, v16 = header.version[:2] >= (1, 14), header.version[:2] >= (1, 16)
    pos, entries = header.toc_end, header.entries
    try:
        while len(entries) < header.toc_count:
            _, dump_id = unpack_int(data, pos)
            _, has_data = unpack_int(data, pos + 5)
            pos += 10
            fields: list[bytes | None] = []
            # table oid, oid, tag, desc, (section: an int), defn, drop, copy, namespace, tablespace,
            # [table AM], [relkind: an int], owner, "false"
            for kind in _entry_layout(v14, v16):
                sign, value = unpack_int(data, pos)
                pos += 5
                if sign > 1:
                    raise FormatUnknown(f"bad int sign byte at {pos - 5}")
                if kind == "i" or sign:  # an int, or a NULL string
                    if kind == "s":
                        fields.append(None)
                    continue
                if kind == "s":
                    fields.append(bytes(data[pos:pos + value]))
                pos += value
            while True:  # dependencies, ended by a NULL string
                sign, value = unpack_int(data, pos)
                pos += 5
                if sign:
                    break
                pos += value
            flag, offset = unpack_offset(data, pos)
            pos += 9
            if pos > end:
                raise NeedMore()
            tag, desc, copy_stmt, namespace = fields[0], fields[1], fields[2], fields[3]
            entries.append(TocEntry(dump_id, has_data != 0, _text(desc), _text(tag),
                                    None if namespace is None else _text(namespace), copy_stmt,
                                    flag, offset, pos - 9))
            header.toc_end = pos
    except (struct.error, NeedMore):
        pass  # this entry is not all there yet


@functools.lru_cache(maxsize=4)
def _entry_layout(v14: bool, v16: bool) -> tuple[str, ...]:
    """The fields of a TOC entry after its dump id and data flag: "s" a string kept (tag, desc,
    COPY statement, namespace), "x" a string skipped, "i" an int."""
    return ("x", "x", "s", "s", "i", "x", "x", "s", "s", "x", *(("x",) if v14 else ()), *(("i",) if v16 else ()),
            "x", "x")


def _text(raw: bytes | None) -> str:
    return "" if raw is None else raw.decode("utf-8", "surrogateescape")
