"""toc_owners.py reads each entry's owner from an archive's own TOC; a length that is no length (a
damaged file) must end the read there, not pull the rest of a multi-GB archive into memory."""

from __future__ import annotations

import io
import subprocess

import pytest

from pgbackup_tui.core import toc_owners
from pgbackup_tui.core.pgtools import find_client_tools


class _Zeros(io.RawIOBase):
    """A file of `size` bytes: `head`, then zeros; counts what was read of it."""

    def __init__(self, head: bytes, size: int) -> None:
        self.head, self.size, self.pos = head, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.size - self.pos)
        part = self.head[self.pos:self.pos + count]
        buffer[:count] = part + bytes(count - len(part))
        self.pos += count
        return count


def test_a_length_past_any_toc_s_ends_the_read(sandbox, empty_db, tmp_path):
    sandbox.psql("CREATE TABLE t (id int)", empty_db)
    archive = tmp_path / "a.dump"
    subprocess.run([find_client_tools(sandbox.major).pg_dump, "-Fc", "-f", str(archive), sandbox.dsn(empty_db)],
                   check=True, capture_output=True)
    data = archive.read_bytes()
    layout, pointer, count, first = toc_owners._header(data)
    assert count > 0 and toc_owners.archive_owners(archive, "UTF8")  # the sound archive reads
    # The first entry: its dump id and its "has data" int, then its table OID (a string) said to be
    # 2 GiB long, then zeros.
    damaged = (data[:first] + b"\x00\x01\x00\x00\x00" + b"\x00\x00\x00\x00\x00" + b"\x00"
               + (0x7FFFFFFF).to_bytes(4, "little"))
    stream = _Zeros(damaged, 64 << 20)
    with pytest.raises(ValueError):  # archive_owners takes it as an archive it cannot read: {}
        toc_owners._owners(toc_owners._Source(io.BufferedReader(stream)), "UTF8")
    assert stream.pos <= 2 << 20, stream.pos  # the first read's MiB, not the 64 MiB behind it
