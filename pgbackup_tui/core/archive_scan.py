"""Reading an archive through: its files, and the rows of each table counted in its data.

Both stream in 1 MiB chunks: a backup is never held in memory. Rows are counted in SQL text (a
plain dump, or what `pg_restore --data-only --file=-` prints for the other formats): one line per
row between `COPY name (cols) FROM stdin;` and the line `\\.` (COPY's text format escapes newlines
inside values, so a line is a row). Counting at C speed: bytes.count / bytes.find per chunk.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from .copy_statement import CopyStatements
from .errors import ArchiveError, JobFailed
from .identifiers import parse_qualified_name

CHUNK = 1 << 20
_COPY_LINE = re.compile(r'^COPY ((?:"(?:[^"]|"")*"|[^\s."]+)\.(?:"(?:[^"]|"")*"|[^\s."(]+))')
_END = b"\\.\n"
_DATA_FOR = b"-- Data for Name: "  # pg_dump's and pg_restore's comment before an entry's data
_TYPE = re.compile(rb"; Type: ([A-Z][A-Z ]*);")  # for `kinds` (a TABLE DATA entry: copy_statement.DATA_COMMENT)
_SET_ENCODING = re.compile(rb"SET client_encoding = '([A-Za-z0-9_]+)';")


def archive_files(archive: Path) -> list[tuple[str, Path]]:
    """(relative name, path) of every file an archive is made of: "" for a single file."""
    if archive.is_dir():
        return sorted((str(p.relative_to(archive)), p) for p in archive.rglob("*") if p.is_file())
    return [("", archive)]


class RowCounter:
    """Feed SQL text in chunks; `rows` gives each COPY target's row count, `complete` whether every
    COPY block was closed. Memory stays at a chunk: a long row is never gathered whole.

    Names are read in `encoding` until the text says its own: pg_dump's script, pg_dumpall's (a
    database at a time) and pg_restore's output each begin with `SET client_encoding = '...'`, so a
    plain dump counted here reads its names as the dump job read them, whoever calls."""

    def __init__(self, encoding: str = "UTF8") -> None:
        self.encoding = encoding
        self.rows: dict[str, int] = {}
        self.kinds: dict[str, int] = {}  # a plain dump's "-- Name: x; Type: TABLE; ..." lines, by type
        self.data_comments = 0  # "-- Data for Name: …" lines, one per entry with data (TABLE DATA, BLOBS)
        self._pending = b""  # an unfinished line outside COPY data (SQL lines are short)
        # pg_dump's "-- Data for Name: …; Type: TABLE DATA" comment comes before each table's COPY (a
        # plain dump's, pg_restore's text). Where the text has those comments, a COPY line is taken
        # for one only in such an entry: a line of a string that reads like one (a COMMENT ON TABLE
        # that says how to load it: `COPY public.t (a) FROM stdin;`) read the SQL after it as that
        # table's rows (12 for its 2), and a drill failed the good backup against that count. A COPY
        # over lines (a newline in a quoted name) is read whole: copy_statement.CopyStatements.
        self._statements = CopyStatements()
        self._table: str | None = None  # inside the data of this table
        self._row_head = b""  # inside data: the first bytes of an unfinished row (enough to tell "\\.")
        self._row_len = 0  # inside data: bytes of the unfinished row so far (0: at a line start)

    @property
    def complete(self) -> bool:
        return self._table is None

    def feed(self, chunk: bytes) -> None:
        data = self._pending + chunk if self._pending else chunk
        self._pending = b""
        pos = 0
        while pos < len(data):
            if self._table is not None:
                pos = self._data(data, pos)
                continue
            end = data.find(b"\n", pos)
            if end < 0:
                self._pending = data[pos:]
                return
            self._header(data[pos:end])
            pos = end + 1

    def _header(self, line: bytes) -> None:
        if not self._statements.joining:
            if self._statements.comment(line):
                self.data_comments += line.startswith(_DATA_FOR)
                kind = _TYPE.search(line)
                if kind:
                    text = kind.group(1).decode("ascii", "replace")
                    self.kinds[text] = self.kinds.get(text, 0) + 1
                return
            if line.startswith(b"--") or not line.strip():
                return  # the rest of an entry's comment, or the blank line after it
            said = _SET_ENCODING.fullmatch(line.rstrip(b"\r"))
            if said is not None:
                self.encoding = said.group(1).decode("ascii")
                return
        # A line that ends inside a quoted name (`"Tab` + newline + `le"`) is read with the next: read
        # line by line, that table's rows went uncounted, its data read as SQL, and verify failed a
        # good backup: "not in the archive (the manifest counted 4 rows)".
        statement = self._statements.statement(line, b"\n")
        if statement is None or not self._statements.rows_follow(statement):
            return
        name = copy_target(statement, self.encoding)
        if name is None:
            return
        self._table = name
        self.rows.setdefault(name, 0)  # several COPYs into one table (partitions via root) add up
        self._row_head, self._row_len = b"", 0

    def _data(self, data: bytes, pos: int) -> int:
        """Count rows from `pos` to the end marker or the chunk's end; return where to go on."""
        assert self._table is not None
        if self._row_len:  # finish the row the last chunk cut
            end = data.find(b"\n", pos)
            piece = data[pos:] if end < 0 else data[pos:end]
            self._row_head = (self._row_head + piece[:3])[:3]
            self._row_len += len(piece)
            if end < 0:
                return len(data)
            if self._row_len == 2 and self._row_head == b"\\.":
                self._table = None
            else:
                self.rows[self._table] += 1
            self._row_head, self._row_len = b"", 0
            return end + 1
        if data.startswith(_END, pos):
            self._table = None
            return pos + len(_END)
        marker = data.find(b"\n" + _END, pos)
        if marker >= 0:
            self.rows[self._table] += data.count(b"\n", pos, marker + 1)
            self._table = None
            return marker + 1 + len(_END)
        last = data.rfind(b"\n", pos)
        if last >= 0:
            self.rows[self._table] += data.count(b"\n", pos, last + 1)
            pos = last + 1
        rest = data[pos:]
        if rest:
            self._row_head, self._row_len = rest[:3], len(rest)
        return len(data)


def copy_target(line: bytes, encoding: str = "UTF8") -> str | None:
    """The table a `COPY name (cols) FROM stdin;` line (in the dump's encoding) loads, as the
    manifest names it; None for any other line."""
    if not line.startswith(b"COPY ") or not line.rstrip().endswith(b"FROM stdin;"):
        return None
    # Here, not at the top: server_text loads psycopg (0.1 s), which the archive follower's process
    # (archive_follow_process.py, beside pg_dump) would import through checksums.py for nothing.
    from .server_text import decode_listing

    match = _COPY_LINE.match(decode_listing(line, encoding))
    return None if match is None else str(parse_qualified_name(match.group(1)))


def count_rows_in_chunks(chunks: Iterable[bytes], encoding: str = "UTF8") -> RowCounter:
    """Count the rows of every COPY block in a stream of SQL text."""
    counter = RowCounter(encoding)
    for chunk in chunks:
        counter.feed(chunk)
    return counter


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def read_chunks(handle: Readable) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk


def count_rows_with_pg_restore(pg_restore: str, archive: Path, env: dict[str, str], encoding: str,
                               list_file: Path | None = None, data_entries: int | None = None) -> dict[str, int]:
    """Each table's rows as the archive holds them: `pg_restore --data-only --file=-` read through
    (the whole archive is read and decompressed once). ArchiveError naming the archive if it does
    not read to the end. `data_entries`: the entries of its table of contents that hold data (TABLE
    DATA, BLOBS), each of which pg_restore prints under its own "-- Data for Name:" comment."""
    argv = [pg_restore, "--data-only", "--file=-"]
    if list_file is not None:
        argv.append(f"--use-list={list_file}")
    argv.append(str(archive))
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          env=env) as process:
        assert process.stdout is not None and process.stderr is not None
        counter = count_rows_in_chunks(read_chunks(process.stdout), encoding)
        error = process.stderr.read().decode("utf-8", "replace").strip()
        code = process.wait()
    from .job_children import killed_from_outside, reader_cause, reader_killed

    if killed_from_outside(code):
        raise JobFailed(reader_killed("pg_restore", code, archive))
    if code != 0 or not counter.complete:
        cause = reader_cause("pg_restore", code, (error.splitlines() or ["it ends inside a table's data"])[-1])
        raise ArchiveError(f"{archive}: does not read to the end ({cause})")
    read_whole = counter.data_comments
    if data_entries is not None and read_whole < data_entries:
        # A directory archive's data file cut short, uncompressed or lz4/zstd (pg_restore reads either
        # to its end without a word, gzip's alone it checks): its COPY data ran on, without its `\.`,
        # into the next table's comment and COPY line, read as rows, up to that table's `\.`. Adopted
        # (nothing to compare it with) it listed complete, then verified, and a drill failed it.
        raise ArchiveError(f"{archive}: does not read to the end (a table's data is cut short: {data_entries} "
                           f"entries of data in its table of contents, {read_whole} read whole)")
    return counter.rows
