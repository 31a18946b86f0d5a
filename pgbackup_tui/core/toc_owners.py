"""Who owns each entry of an archive, read from the archive's own TOC (custom, directory or tar).

Why: `pg_restore --list` joins an entry's namespace, tag and owner with spaces (`227; 1259 18461
TABLE Sales & Ops Order Items Odd Owner`), and names may hold spaces too. toc.py finds the
namespace among the archive's schema names and took the owner to be the last word: right for
`postgres` or `app`, wrong for a role such as "Odd Owner" or "Domain Admins", whose tables then
read as `"Sales & Ops"."Order Items Odd"`: `restore --table` said such a table was not in the
archive, and a data-only restore looked for a table of that name in the target. The archive
stores the owner as a field of its own; this reads it, so that the listing's names split exactly.
It also gives the DATABASE entry's CREATE DATABASE and the archive's encoding (database_definition),
which a cluster set's restore reads for the tablespace each member database is created in.

The TOC's layout is the one custom_archive.py reads (pg_backup_archiver.c's WriteToc), the same in
a directory's or a tar archive's toc.dat but for the pointer after each entry's dependencies: a
data offset in a custom file, a data file's name (a string) in the other two. Anything this does
not know gives no owners, and the listing's last word is the owner as before.
"""

from __future__ import annotations

import functools
import re
import struct
import tarfile
from pathlib import Path
from typing import IO

from .custom_archive import FORMAT_CUSTOM, MAGIC, NEWEST, OLDEST
from .server_text import python_codec

FORMAT_TAR, FORMAT_DIRECTORY = 3, 5  # pg_backup.h's ArchiveFormat
_INT = struct.Struct("<BI")  # a sign byte, then a 4-byte int, least significant byte first
_FIRST_READ = 1 << 20
# Bounds as custom_archive.py's parser has them: a length or a count past them is not a TOC (a
# damaged file, a layout not known here), and reading on for it would pull a multi-GB archive into
# memory before giving up. A TOC of a million objects is some hundreds of MB at most.
_MAX_STRING = 1 << 30
_MAX_ENTRIES = 100_000_000
_MAX_TOC = 1 << 30


# The entries whose definition database_definition reads, and the encoding in the ENCODING one's.
_DEFINITIONS_KEPT = frozenset({b"DATABASE", b"ENCODING"})
_SET_ENCODING = re.compile(rb"SET client_encoding = '([^']+)';")


class _Short(Exception):
    """The bytes read so far end inside the TOC."""


def archive_owners(path: Path, pg_encoding: str) -> dict[int, str]:
    """dump id -> owner (as `pg_restore --list` prints it: a line break as a space; "" for none)
    of every TOC entry of the archive at `path`; {} for an archive this cannot read."""
    try:
        if path.is_dir():
            return _owners(_Source((path / "toc.dat").open("rb")), pg_encoding)
        with path.open("rb") as handle:
            if handle.read(len(MAGIC)) == MAGIC:
                handle.seek(0)
                return _owners(_Source(handle), pg_encoding)
        with tarfile.open(path, "r:") as tar:
            first = tar.next()
            member = tar.extractfile(first) if first is not None and first.name == "toc.dat" else None
            return _owners(_Source(member), pg_encoding) if member is not None else {}
    except (OSError, ValueError, tarfile.TarError, _Short):
        return {}


class _Source:
    """The start of a file, read on as far as the TOC goes (a custom file's data follows it)."""

    def __init__(self, handle: IO[bytes]) -> None:  # a file, or a tar archive's member
        self.handle = handle
        self.data = handle.read(_FIRST_READ)

    def more(self) -> None:
        if len(self.data) >= _MAX_TOC:
            raise ValueError("no TOC ends within the first GiB")
        chunk = self.handle.read(min(max(len(self.data), _FIRST_READ), _MAX_TOC - len(self.data)))
        if not chunk:
            raise _Short()
        self.data += chunk


def _owners(source: _Source, pg_encoding: str, created: dict[bytes, bytes] | None = None) -> dict[int, str]:
    """Every entry's owner; with `created`, the DATABASE and ENCODING entries' definitions (its CREATE
    DATABASE, its SET client_encoding) put there by their kind."""
    codec = python_codec(pg_encoding) or "utf-8"
    with source.handle:
        head = None
        while head is None:
            try:
                head = _header(source.data)
            except (_Short, struct.error):
                source.more()
        layout, pointer, count, pos = head
        owners: dict[int, str] = {}
        while len(owners) < count:
            try:
                pos = _entry(source.data, pos, layout, pointer, owners, codec, created)
            except (_Short, struct.error):
                source.more()  # the entry goes on past what was read: read on and read it again
        return owners


def database_definition(path: Path) -> tuple[bytes, str] | None:
    """The archive's CREATE DATABASE (its DATABASE entry's definition, in the archive's encoding),
    as `pg_restore --create` would run it, and that encoding (its ENCODING entry's; UTF8 where it has
    none); None for an archive without one or that this cannot read. The encoding is the database's:
    a LATIN1 member's tablespace name, read as UTF-8, was not the name the server has."""
    created: dict[bytes, bytes] = {}
    try:
        if path.is_dir():
            _owners(_Source((path / "toc.dat").open("rb")), "UTF8", created)
        else:
            with path.open("rb") as handle:
                if handle.read(len(MAGIC)) != MAGIC:
                    return None  # a tar archive's or a plain file's: not looked into
                handle.seek(0)
                _owners(_Source(handle), "UTF8", created)
    except (OSError, ValueError, _Short):
        return None
    if b"DATABASE" not in created:
        return None
    encoding = _SET_ENCODING.search(created.get(b"ENCODING", b""))
    return created[b"DATABASE"], encoding.group(1).decode("ascii") if encoding else "UTF8"


def _header(data: bytes) -> tuple[tuple[str, ...], int, int, int]:
    """The entries' layout, the pointer after each (-1: a string, else its size), their count, and
    where the first one begins."""
    if not data.startswith(MAGIC) or len(data) < 11:
        raise ValueError("not a pg_dump archive")
    version = (data[5], data[6])
    int_size, off_size, archive_format = data[8], data[9], data[10]
    if not OLDEST <= version <= NEWEST or int_size != 4 or archive_format not in (
            FORMAT_CUSTOM, FORMAT_TAR, FORMAT_DIRECTORY):
        raise ValueError("an archive layout not known here")
    pos = 12 if version >= (1, 15) else 16  # the compression: a byte, or (before 1.15) an int
    pos += 7 * 5  # creation time
    for _ in range(3):  # database name, server version, pg_dump version
        sign, length = _INT.unpack_from(data, pos)
        pos += 5 + (0 if sign else length)
    sign, count = _INT.unpack_from(data, pos)
    if pos + 5 > len(data):
        raise _Short()
    if sign or count >= _MAX_ENTRIES:
        raise ValueError("not a count of entries")
    # After the dump id: has data, table oid, oid, tag, desc ("d"), section, definition ("c"), drop
    # statement, COPY statement, namespace, tablespace, [table AM], [relkind], owner ("o"), "false".
    layout = ("i", "s", "s", "s", "d", "i", "c", "s", "s", "s", "s",
              *(("s",) if version >= (1, 14) else ()), *(("i",) if version >= (1, 16) else ()), "o", "s")
    return layout, 1 + off_size if archive_format == FORMAT_CUSTOM else -1, -count if sign else count, pos + 5


def _entry(data: bytes, pos: int, layout: tuple[str, ...], pointer: int, owners: dict[int, str],
           codec: str, created: dict[bytes, bytes] | None = None) -> int:
    """Read the entry at `pos` into `owners` (its definition into `created`, if given and it is the
    DATABASE or the ENCODING entry); where the next one begins."""
    unpack = _INT.unpack_from
    _, dump_id = unpack(data, pos)
    pos += 5
    owner = definition = desc = b""
    for kind in layout:
        sign, value = unpack(data, pos)
        pos += 5
        if sign > 1 or (kind != "i" and not sign and value > _MAX_STRING):
            raise ValueError("not a TOC entry")
        if kind == "i" or sign:  # an int, or a NULL string
            continue
        if kind == "o":
            owner = data[pos:pos + value]
        elif kind == "d" and created is not None:
            desc = data[pos:pos + value]
        elif kind == "c" and desc in _DEFINITIONS_KEPT and pos + value <= len(data):
            definition = data[pos:pos + value]
        pos += value
    while True:  # dependencies, ended by a NULL string
        sign, value = unpack(data, pos)
        pos += 5
        if sign > 1 or (not sign and value > _MAX_STRING):
            raise ValueError("not a TOC entry")
        if sign:
            break
        pos += value
    if pointer < 0:  # a directory's or a tar archive's data file name
        sign, value = unpack(data, pos)
        pos += 5 + (0 if sign else value)
    else:  # a custom file's data offset: a flag byte, then the offset
        pos += pointer
    if pos > len(data):
        raise _Short()
    owners[dump_id] = _text(owner, codec)
    if desc in _DEFINITIONS_KEPT and created is not None:
        created.setdefault(desc, definition)
    return pos


@functools.lru_cache(maxsize=64)  # an archive has few owners and many entries
def _text(owner: bytes, codec: str) -> str:
    return owner.decode(codec, "surrogateescape").replace("\r", " ").replace("\n", " ")  # as the listing prints it
