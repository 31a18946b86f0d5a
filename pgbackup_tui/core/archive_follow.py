"""Verify a custom archive while pg_dump writes it: every data block decompressed, rows counted.

Why: reading the archive through again after pg_dump (`pg_restore --data-only`, archive_scan.py)
cost the dump job as much as a third of pg_dump's own time with zstd. pg_dump writes a custom
archive front to back (custom_archive.py: the header and TOC, then each table's block), and only
goes back at the end to write the TOC again with the blocks' offsets. So a thread follows the
file as it grows: it reads the TOC once written, then each block as soon as it is there,
decompresses it (zlib, zstandard; the library pinned in pyproject.toml) and counts its rows,
waiting for more bytes while pg_dump runs. What is left when pg_dump exits is the last block and
the TOC written again, which `finish()` checks: same entries, each block's offset where the
block was found. The file's sha256 is then taken in one read (the TOC at its start changed last,
so no earlier pass could hash it).

Anything this reader does not know (an archive version, a compression method without its
library, an uncompressed archive whose many small chunks would make Python the bottleneck)
makes it step aside: `usable` is False and the job counts rows with pg_restore afterwards, as
before. A block that does not decompress, or a file that ends early, is an ArchiveError.
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .custom_archive import BLK_BLOBS, BLK_DATA, OFFSET_NOT_SET, OFFSET_SET, FormatUnknown, Header, Reader, read_header
from .errors import ArchiveError

POLL_S = 0.02  # how long to wait for pg_dump to write more
READ_SIZE = 1 << 20
_TAIL = 64  # bytes of a block's text kept to find its end marker


class _Stopped(Exception):
    """The follower was told to stop (the job failed or was cancelled)."""


class _Decompressor(Protocol):
    def decompress(self, data: bytes) -> bytes: ...


def decompressor_for(method: str) -> Callable[[], Any] | None:
    """A factory of streaming decompressors for `method`, or None when this Python cannot."""
    if method == "gzip":
        return zlib.decompressobj
    if method == "zstd":
        try:
            import zstandard
        except ImportError:
            return None
        return lambda: _ZstdFrames(zstandard)
    return None


class _ZstdFrames:
    """zstandard's decompressobj reads one frame: a stream of several frames gets one each."""

    def __init__(self, zstandard: Any) -> None:
        self._zstandard = zstandard
        self._current = zstandard.ZstdDecompressor().decompressobj()

    def decompress(self, data: bytes) -> bytes:
        out = self._current.decompress(data)
        while self._current.eof and self._current.unused_data:  # another frame follows
            data = self._current.unused_data
            self._current = self._zstandard.ZstdDecompressor().decompressobj()
            out += self._current.decompress(data)
        return out

    @property
    def eof(self) -> bool:
        return bool(self._current.eof)


class _GrowingFile:
    """Bytes of a file pg_dump is still writing: `need` waits until they are there."""

    def __init__(self, path: Path, writer_done: threading.Event, stop: threading.Event) -> None:
        self.path = path
        self.writer_done = writer_done
        self.stop = stop
        self._fd: int | None = None
        self._buf = bytearray()
        self._start = 0  # file position of _buf[0]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def need(self, position: int, size: int) -> bytes:
        if position < self._start:
            raise FormatUnknown("the reader went back")
        if position - self._start > READ_SIZE:  # let go of what was read
            del self._buf[:position - self._start]
            self._start = position
        while position + size > self._start + len(self._buf):
            if not self._read_more():
                raise ArchiveError(f"{self.path}: ends early (at {self._start + len(self._buf)} bytes)")
        offset = position - self._start
        return bytes(self._buf[offset:offset + size])

    def _read_more(self) -> bool:
        """Append what the file has beyond the buffer; wait for pg_dump meanwhile. False at the end."""
        while True:
            if self.stop.is_set():
                raise _Stopped()
            done = self.writer_done.is_set()  # before the read: a read after it sees every byte
            if self._fd is None:
                try:
                    self._fd = os.open(self.path, os.O_RDONLY)
                except FileNotFoundError:
                    if done:
                        return False
                    time.sleep(POLL_S)
                    continue
            chunk = os.pread(self._fd, READ_SIZE, self._start + len(self._buf))
            if chunk:
                self._buf += chunk
                return True
            if done:
                return False
            time.sleep(POLL_S)


class CustomArchiveFollower:
    """Follows one custom archive in a thread of its own. start(); the job runs pg_dump; then
    writer_finished() and result() (or abandon() if pg_dump failed)."""

    def __init__(self, path: Path, method: str) -> None:
        self.path = path
        self._factory = decompressor_for(method)
        self.usable = self._factory is not None
        self._writer_done = threading.Event()
        self._stop = threading.Event()
        self._file = _GrowingFile(path, self._writer_done, self._stop)
        self._thread = threading.Thread(target=self._run, name="archive-follow", daemon=True)
        self.header: Header | None = None
        self.blocks: dict[int, tuple[int, int]] = {}  # dump id -> (position, rows; -1 for large objects)
        self.error: BaseException | None = None
        self.end = 0  # where the last block ended

    def start(self) -> None:
        if self.usable:
            self._thread.start()

    def writer_finished(self) -> None:
        """pg_dump has exited: every byte is in the file (read what is left, then stop)."""
        self._writer_done.set()

    def abandon(self) -> None:
        self._stop.set()
        self._writer_done.set()
        if self._thread.is_alive():
            self._thread.join()
        self._file.close()

    def wait(self) -> None:
        """Block until the thread has read everything (call after writer_finished)."""
        if self._thread.is_alive():
            self._thread.join()
        self._file.close()

    # -- the thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            reader = Reader(self._file.need)
            self.header = header = read_header(reader)
            if header.compression == "none" or decompressor_for(header.compression) is None:
                raise FormatUnknown(f"compression {header.compression}: left to pg_restore")
            self._factory = decompressor_for(header.compression)
            expected = {e.dump_id for e in header.entries if e.has_data and e.offset_flag in (OFFSET_NOT_SET,
                                                                                             OFFSET_SET)}
            reader.pos = header.toc_end
            for _ in range(len(expected)):
                if self._block(reader) not in expected:
                    raise ArchiveError(f"{self.path}: a data block at {reader.pos} belongs to no TOC entry with data")
            self.end = reader.pos
            # Nothing may follow the last block: wait for pg_dump's end, then look.
            if self._file._read_more() or self._file._start + len(self._file._buf) > self.end:
                raise ArchiveError(f"{self.path}: holds more than its TOC lists")
        except _Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the job's thread by finish()
            self.error = exc
        finally:
            self._file.close()  # the job's progress tells this reader from the sha256 pass by open files

    def _block(self, reader: Reader) -> int:
        """Read one block; its dump id."""
        position = reader.pos
        kind = reader.byte()
        dump_id = reader.int()
        if dump_id in self.blocks:
            raise ArchiveError(f"{self.path}: block {dump_id} twice")
        if kind == BLK_DATA:
            self.blocks[dump_id] = (position, self._rows(reader))
        elif kind == BLK_BLOBS:
            while reader.int() != 0:  # each large object's OID, then its data
                self._rows(reader)
            self.blocks[dump_id] = (position, -1)
        else:
            raise FormatUnknown(f"block type {kind} at {position}")
        return dump_id

    def _rows(self, reader: Reader) -> int:
        """Decompress one stream of chunks; its lines before the end marker `\\.`."""
        assert self._factory is not None
        stream = self._factory()
        newlines, tail = 0, b""
        while True:
            size = reader.int()
            if size == 0:
                break
            if size < 0:
                raise ArchiveError(f"{self.path}: bad chunk length at {reader.pos}")
            text = stream.decompress(reader.need(reader.pos, size))
            reader.pos += size
            if text:
                newlines += text.count(b"\n")
                tail = text[-_TAIL:] if len(text) >= _TAIL else (tail + text)[-_TAIL:]
        if not getattr(stream, "eof", True):
            raise ArchiveError(f"{self.path}: a data block ends inside its compressed stream (at {reader.pos})")
        return rows_before_end_marker(newlines, tail)

    # -- the result ------------------------------------------------------------------------------
    def finish(self) -> dict[int, int]:
        """After writer_finished(): rows per TABLE DATA dump id. Raises ArchiveError if the archive
        does not read to its end, FormatUnknown if this reader could not tell (use pg_restore)."""
        self.wait()
        if self.error is not None:
            raise self.error
        header = self.header
        if header is None:
            raise FormatUnknown("nothing was read")
        self._check_rewritten_toc(header)
        return {dump_id: rows for dump_id, (_, rows) in self.blocks.items() if rows >= 0}

    def _check_rewritten_toc(self, header: Header) -> None:
        """pg_dump wrote the TOC again with the offsets: read it from the finished file, and check
        it lists what was read, each block where it was found."""
        with self.path.open("rb") as handle:
            data = handle.read(header.toc_end)

        def need(position: int, size: int) -> bytes:
            if position + size > len(data):
                raise ArchiveError(f"{self.path}: its TOC changed length when pg_dump wrote it again")
            return data[position:position + size]

        final = read_header(Reader(need))
        if final.toc_end != header.toc_end or len(final.entries) != len(header.entries):
            raise ArchiveError(f"{self.path}: its TOC changed when pg_dump wrote it again")
        for entry in final.entries:
            block = self.blocks.get(entry.dump_id)
            if entry.offset_flag == OFFSET_SET and (block is None or block[0] != entry.offset):
                raise ArchiveError(f"{self.path}: TOC entry {entry.dump_id} points where no block of it was read")


def rows_before_end_marker(newlines: int, tail: bytes) -> int:
    """Lines of COPY data before the `\\.` line that ends them (pg_dump adds two blank lines after
    it); all the lines when there is no marker. `tail`: the text's last bytes."""
    stripped = tail.rstrip(b"\n")
    if stripped == b"\\." or stripped.endswith(b"\n\\."):
        return newlines - (len(tail) - len(stripped))
    return newlines
