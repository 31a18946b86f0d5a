"""Verify a custom archive while pg_dump writes it: every data block decompressed, rows counted.

Why: reading the archive through again after pg_dump (`pg_restore --data-only`, archive_scan.py)
cost the dump job as much as a third of pg_dump's own time with zstd. pg_dump writes a custom
archive front to back (custom_archive.py: the header and TOC, then each table's block), and only
goes back at the end to write the TOC again with the blocks' offsets. So a thread follows the
file as it grows: it reads the TOC once written, then each block as soon as it is there,
decompresses it (zlib, or zstandard: pinned in pyproject.toml) and counts its rows, waiting for
more bytes while pg_dump runs. Once the TOC written again is there (the first one's bytes, each
block's offset where the block was found), the file is what it will be: its checksum is taken
while pg_dump fsyncs it and exits, and finish() checks that the file has not changed since.

That reading costs CPU (decompressing and counting: 0.45 s for 870 MB of COPY text), which on a
busy machine pg_dump and its server needed: the dump job runs this follower in a process of its
own at the lowest priority (archive_follow_process.py), whose thread this is.

This reader is a fast path, not the judge: whatever it does not know or cannot confirm (an
archive version, a method without its library, a file that ends before its blocks, a TOC that
differs) raises from finish(), and the job then reads the archive with pg_restore as before.
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

from .checksums import as_checksum, new_digest
from .copy_text import count_newlines, rows_before_end_marker
from .custom_archive import (
    BLK_BLOBS, BLK_DATA, OFFSET_FIELD, OFFSET_NOT_SET, OFFSET_SET, FormatUnknown, Header, NeedMore, Reader, parse_toc,
    read_header,
)

POLL_S = 0.02  # how long to wait for pg_dump to write more
READ_SIZE = 1 << 20
_TAIL = 64  # bytes of a block's text kept to find its end marker


class _Stopped(Exception):
    """The follower was told to stop (the job failed or was cancelled)."""


def decompressor_for(method: str) -> Callable[[], Any] | None:
    """A factory of streaming decompressors for `method`, or None when this Python has none."""
    if method == "gzip":
        return zlib.decompressobj
    if method == "zstd":
        try:
            import zstandard
        except ImportError:
            return None
        shared = zstandard.ZstdDecompressor()  # one context, used by one stream at a time
        return lambda: _ZstdFrames(shared)
    return None


class _ZstdFrames:
    """zstandard's decompressobj reads one frame: a stream of several frames gets one each."""

    def __init__(self, context: Any) -> None:
        self._context = context
        self._current = context.decompressobj()

    def decompress(self, data: bytes) -> bytes:
        out = self._current.decompress(data)
        while self._current.eof and self._current.unused_data:  # another frame follows
            data = self._current.unused_data
            self._current = self._context.decompressobj()
            out += self._current.decompress(data)
        return out

    @property
    def eof(self) -> bool:
        return bool(self._current.eof)


class _GrowingFile:
    """Bytes of a file pg_dump is still writing."""

    def __init__(self, path: Path, writer_done: threading.Event, stop: threading.Event) -> None:
        self.path = path
        self.writer_done = writer_done
        self.stop = stop
        self._fd: int | None = None
        self.buf = bytearray()
        self.start = 0  # file position of buf[0]

    @property
    def end(self) -> int:
        """The file position just past what was read."""
        return self.start + len(self.buf)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def need(self, position: int, size: int) -> bytes:
        """`size` bytes at `position`; the follower waits for them (_available) before it reads."""
        if position < self.start:
            raise FormatUnknown("the reader went back")
        if position - self.start > READ_SIZE:  # let go of what was read
            del self.buf[:position - self.start]
            self.start = position
        while position + size > self.end:
            got = self.read_some()
            if got is None:
                time.sleep(POLL_S)
            elif not got:
                raise FormatUnknown(f"the file ends at {self.end} bytes, inside a block")
        offset = position - self.start
        return bytes(self.buf[offset:offset + size])

    def read_some(self) -> bool | None:
        """Append what the file has beyond the buffer: True if there was some, False at the file's
        end (pg_dump has exited), None while pg_dump may still write more."""
        if self.stop.is_set():
            raise _Stopped()
        done = self.writer_done.is_set()  # before the read: a read after it sees every byte
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return False if done else None
        chunk = os.pread(self._fd, READ_SIZE, self.end)
        if chunk:
            self.buf += chunk
            return True
        return False if done else None


_WAIT = "wait"  # a step of the follower: nothing new in the file yet (its driver sleeps POLL_S)
_WORKED = "worked"  # a step: a chunk decompressed, a megabyte hashed


class CustomArchiveFollower:
    """Follows one custom archive in a thread of its own: start() before pg_dump runs,
    writer_finished() once it has exited, then finish(); abandon() if it failed.

    The reading is a generator of small steps (_follow: a chunk decompressed, a megabyte hashed,
    a poll of a file that has nothing new yet), so that a cancel stops it at the next step."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer_done = threading.Event()
        self._stop = threading.Event()
        self._file = _GrowingFile(path, self._writer_done, self._stop)
        self._steps = self._follow()
        self._thread = threading.Thread(target=self._run, name="archive-follow", daemon=True)
        self._factory: Callable[[], Any] | None = None
        self._first_toc = b""  # header and TOC as first written, offsets not set
        self.header: Header | None = None
        self.blocks: dict[int, tuple[int, int]] = {}  # dump id -> (position, rows; -1 for large objects)
        self.error: BaseException | None = None
        self.checksum: tuple[str, int] | None = None  # the finished file's, and its size, once taken
        self.read_to_end = False  # every block read, nothing after the last: set last, by the steps

    def start(self) -> None:
        self._thread.start()

    def run_steps(self, hand_over: threading.Event | None = None) -> bool:
        """Run the steps in the calling thread instead of start()'s (archive_follow_process.py):
        True once they have ended; False as soon as `hand_over` is set, the reading left at its
        current step for another thread to go on with (calling this again)."""
        return self._run(hand_over)

    def stop(self) -> None:
        """The reading stops at its next step, whichever thread runs it."""
        self._stop.set()
        self._writer_done.set()

    def writer_finished(self) -> None:
        """pg_dump has exited: every byte is in the file (read what is left, then stop)."""
        self._writer_done.set()

    def abandon(self) -> None:
        self._stop.set()
        self._writer_done.set()
        if self._thread.is_alive():
            self._thread.join()
        self._steps.close()  # a generator left at a step: its file closed

    # -- the thread ------------------------------------------------------------------------------
    def _run(self, hand_over: threading.Event | None = None) -> bool:
        """Run the steps to their end (a poll waits POLL_S, or until pg_dump has exited), or
        until `hand_over` is set (False: the steps are left where they are)."""
        steps = self._steps
        try:
            while True:
                if hand_over is not None and hand_over.is_set():
                    return False  # before the next step: an idle thread does not take one more
                step = next(steps, None)
                if step is None:
                    break
                if self._stop.is_set():
                    raise _Stopped()
                if step is _WAIT:
                    self._writer_done.wait(POLL_S)
        except _Stopped:
            steps.close()
        except Exception as exc:  # handed to the job's thread by finish()
            self.error = exc
        return True

    # -- the steps -------------------------------------------------------------------------------
    def _follow(self) -> Generator[str, None, None]:
        try:
            header = yield from self._read_toc()
            self._factory = decompressor_for(header.compression)
            if header.compression == "none" or self._factory is None:
                raise FormatUnknown(f"compression {header.compression}: left to pg_restore")
            expected = {e.dump_id for e in header.entries if e.has_data and e.offset_flag in (OFFSET_NOT_SET,
                                                                                             OFFSET_SET)}
            reader = Reader(self._file.need, header.toc_end)
            for _ in range(len(expected)):
                if (yield from self._block(reader)) not in expected:
                    raise FormatUnknown(f"a data block before {reader.pos} belongs to no TOC entry with data")
            yield from self._hash_once_final(header, reader.pos)
            # Nothing may follow the last block: wait for pg_dump's end, then look.
            while not self._writer_done.is_set():
                yield _WAIT
            if self._file.end > reader.pos or self._file.read_some():
                raise FormatUnknown("more bytes follow the last block")
            self.read_to_end = True
        finally:
            self._file.close()

    def _available(self, end: int) -> Iterator[str]:
        """Wait until the file holds `end` bytes, or pg_dump has exited (a read past the end
        then finds where the file ends)."""
        file = self._file
        while file.end < end:
            got = file.read_some()
            if got is None:
                yield _WAIT
            elif not got:
                return

    def _read_toc(self) -> Generator[str, None, Header]:
        """The header and the whole TOC, as pg_dump first writes them."""
        file, header = self._file, None
        while header is None or not header.complete:
            got = file.read_some()
            if got is None:
                yield _WAIT
                continue
            if not got:
                raise FormatUnknown("the file ends inside its TOC")
            if header is None:
                try:
                    header = read_header(file.buf)
                except NeedMore:
                    continue
            else:
                parse_toc(file.buf, header)
        self.header = header
        self._first_toc = bytes(file.buf[:header.toc_end])
        return header

    def _block(self, reader: Reader) -> Generator[str, None, int]:
        """Read one block; its dump id."""
        position = reader.pos
        yield from self._available(position + 2 + reader.int_size)
        kind = reader.u8()
        dump_id = reader.integer()
        if dump_id in self.blocks:
            raise FormatUnknown(f"block {dump_id} twice")
        if kind == BLK_DATA:
            rows = yield from self._rows(reader)
            self.blocks[dump_id] = (position, rows)
        elif kind == BLK_BLOBS:
            while True:  # each large object's OID, then its data
                yield from self._available(reader.pos + 1 + reader.int_size)
                if reader.integer() == 0:
                    break
                yield from self._rows(reader)
            self.blocks[dump_id] = (position, -1)
        else:
            raise FormatUnknown(f"block type {kind} at {position}")
        return dump_id

    def _rows(self, reader: Reader) -> Generator[str, None, int]:
        """Decompress one stream of chunks; its lines before the end marker `\\.`."""
        assert self._factory is not None
        stream = self._factory()
        newlines, tail = 0, b""
        while True:
            yield from self._available(reader.pos + 1 + reader.int_size)
            size = reader.integer()
            if size == 0:
                break
            if size < 0:
                raise FormatUnknown(f"bad chunk length at {reader.pos}")
            yield from self._available(reader.pos + size)
            text = stream.decompress(reader.need(reader.pos, size))
            reader.pos += size
            if text:
                newlines += count_newlines(text)
                tail = text[-_TAIL:] if len(text) >= _TAIL else (tail + text)[-_TAIL:]
            yield _WORKED
        if not getattr(stream, "eof", True):
            raise FormatUnknown(f"a data block ends inside its compressed stream (at {reader.pos})")
        if getattr(stream, "unused_data", b""):  # pg_dump writes one stream a block: bytes after it were not read
            raise FormatUnknown(f"bytes after a data block's compressed stream (at {reader.pos})")
        return rows_before_end_marker(newlines, tail)

    def _hash_once_final(self, header: Header, end: int) -> Iterator[str]:
        """As soon as pg_dump has written the TOC again (the file then is what it will be: its
        blocks are never written twice), take the checksum while pg_dump fsyncs and exits. finish()
        checks the file still is that; if pg_dump ends first, the caller hashes it afterwards."""
        expected = self._final_toc(header)
        # pg_dump writes the TOC in order: the last block's offset is the one to watch, cheaply.
        probe = max((e.offset_at for e in header.entries if e.dump_id in self.blocks), default=0)
        probe_bytes = expected[probe:probe + OFFSET_FIELD.size]
        while not self._writer_done.is_set():
            with self.path.open("rb") as handle:
                if (os.pread(handle.fileno(), len(probe_bytes), probe) == probe_bytes
                        and handle.read(len(expected)) == expected and os.fstat(handle.fileno()).st_size == end):
                    handle.seek(0)
                    digest = new_digest()
                    while chunk := handle.read(READ_SIZE):  # a step a megabyte: a cancel stops it there
                        digest.update(chunk)
                        yield _WORKED
                    self.checksum = (as_checksum(digest), end)
                    return
            yield _WAIT

    def _final_toc(self, header: Header) -> bytes:
        """The header and TOC as pg_dump writes them at the end: the first ones, each block's
        offset set to where the block was read."""
        final = bytearray(self._first_toc)
        for entry in header.entries:
            block = self.blocks.get(entry.dump_id)
            if block is not None:
                final[entry.offset_at:entry.offset_at + OFFSET_FIELD.size] = OFFSET_FIELD.pack(OFFSET_SET, block[0])
        return bytes(final)

    # -- the result ------------------------------------------------------------------------------
    def finish(self) -> dict[int, int]:
        """After writer_finished(): rows per TABLE DATA dump id. Raises if the archive could not
        be confirmed here (the caller then reads it with pg_restore)."""
        self.writer_finished()
        self._thread.join()
        return self.result()

    def result(self) -> dict[int, int]:
        """finish()'s checks once the steps have ended (run_steps returned True)."""
        if self._stop.is_set():
            raise FormatUnknown("the reading was stopped")
        if self.error is not None:
            raise self.error
        if self.header is None or not self.read_to_end:
            raise FormatUnknown("the archive was not read to its end")
        self._check_rewritten_toc(self.header)
        return {dump_id: rows for dump_id, (_, rows) in self.blocks.items() if rows >= 0}

    def _check_rewritten_toc(self, header: Header) -> None:
        """pg_dump wrote the TOC again with the offsets: the finished file must start with the
        first TOC's bytes, each block's offset set to where the block was read. A checksum taken
        early stands only if the file is still the size it had then."""
        expected = self._final_toc(header)
        with self.path.open("rb") as handle:
            final = handle.read(len(expected))
            size = os.fstat(handle.fileno()).st_size
        if final != expected:
            raise FormatUnknown("the TOC pg_dump wrote again is not the first one with the blocks' offsets")
        if self.checksum is not None and self.checksum[1] != size:
            self.checksum = None
