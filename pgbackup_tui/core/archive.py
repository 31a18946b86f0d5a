"""Recognising an archive before anything touches a server.

pg_restore refuses archives from a newer pg_dump, and a truncated custom archive can still list
its TOC: so we read the header ourselves, pick a pg_restore that can read it, and the restore job
reads the whole archive once (`pg_restore -f /dev/null`) before it touches the target. Plain SQL
dumps must begin and end with pg_dump's own marker lines.

The archive format number alone does not name the pg_dump that wrote it (1.16 is written by 17
and 18 alike), so the header's own strings are read too: the server dumped from and pg_dump's
version (custom format, a tar archive's toc.dat, a directory's toc.dat; archive versions 1.10 and
later), or a plain file's "-- Dumped from / by" comment lines.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import ArchiveError

MAGIC = b"PGDMP"
PLAIN_HEAD = "-- PostgreSQL database dump"
PLAIN_TAIL = "-- PostgreSQL database dump complete"
# pg_dumpall's first and last lines (a whole cluster, or its globals alone).
CLUSTER_HEAD = "-- PostgreSQL database cluster dump"
CLUSTER_TAIL = "-- PostgreSQL database cluster dump complete"
# Archive format version -> the first pg_dump major that writes it (pg_backup_archiver.h).
ARCHIVE_VERSION_MIN_MAJOR = {(1, 12): 9, (1, 13): 11, (1, 14): 12, (1, 15): 16, (1, 16): 17}
# Enough for the header of any archive: 7 fixed bytes, a dozen small ints, three short strings.
HEADER_BYTES = 4096
# A plain dump's comment lines and psql's \restrict come within its first lines.
PLAIN_HEAD_BYTES = 8192
_DUMPED_FROM = re.compile(r"^-- Dumped from database version (.+?)\s*$", re.MULTILINE)
_DUMPED_BY = re.compile(r"^-- Dumped by pg_dump version (.+?)\s*$", re.MULTILINE)
# Plain dumps from the August 2025 minors on (13.22, 14.19, 15.14, 16.10, 17.6, 18) put psql into
# restricted mode; a psql from before those minors stops at "invalid command \restrict".
_RESTRICT = re.compile(r"^\\restrict\s", re.MULTILINE)
_FIRST_ENTRY = re.compile(r"^-- (?:Data for )?Name: [^\n]*; Type: ([A-Z ]+); Schema: ", re.MULTILINE)
# pg_dump --create's script: it makes its database and \connects to it itself, near its top.
_CREATES_DATABASE = re.compile(
    r'^-- Name: [^\n]*; Type: DATABASE; Schema: -;[^\n]*\n--\n\n'
    r'CREATE DATABASE ("(?:[^"]|"")+"|\S+) WITH .*?^\\connect ',
    re.MULTILINE | re.DOTALL)


def version_major(version: str | None) -> int | None:
    """15 for "15.18 (Debian 15.18-0+deb12u1)", 18 for "18beta1", 9 for "9.6.24"; None if unknown."""
    match = re.match(r"\s*(\d+)", version or "")
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class ArchiveInfo:
    """What an archive says about itself, read without any PostgreSQL tool."""

    path: Path
    format: str  # custom | directory | tar | plain
    archive_version: tuple[int, int, int] | None = None
    dump_version: str | None = None  # the pg_dump that wrote it, e.g. "18.6" (None: not recorded)
    server_version: str | None = None  # the server it was dumped from, e.g. "15.18 (Debian 15.18-0+deb12u1)"
    uses_restrict: bool = False  # a plain file that runs psql's \restrict
    creates_database: str | None = None  # a plain file of pg_dump --create: the database it makes itself
    first_entry_type: str | None = None  # a plain file's first entry ("TABLE DATA": a data-only dump)
    compression: str | None = None  # a 16+ header's method: "gzip", "lz4", "zstd" (None: none, or not recorded)

    @property
    def dump_major(self) -> int | None:
        """The major of the pg_dump that wrote the archive, when the archive records it."""
        return version_major(self.dump_version)

    @property
    def server_major(self) -> int | None:
        """The major of the server the archive was dumped from, when the archive records it."""
        return version_major(self.server_version)

    @property
    def min_reader_major(self) -> int | None:
        """The oldest pg_restore major that can read this archive (None: any / unknown).

        pg_dump's own version when the header has it, and at least the first major that writes
        its archive format (a format newer than any we know needs a pg_restore newer than any we know).
        """
        majors = [major for major in (self.dump_major, self._format_major) if major is not None]
        return max(majors) if majors else None

    @property
    def _format_major(self) -> int | None:
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

    @property
    def writer_text(self) -> str:
        """Who wrote it, for messages: "pg_dump 18.6", or "pg_dump 17 or later" from the format alone."""
        if self.dump_version and self.dump_major == self.min_reader_major:
            return f"pg_dump {self.dump_version}"
        major = self.min_reader_major
        if major is None:
            return "an unknown pg_dump"
        return f"pg_dump {major} or later (archive format {self.version_text})"


class _HeaderReader:
    """pg_backup_archiver.c's ReadHead, for the fields we need (it must agree with WriteHead)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.int_size = data, 0, 4

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise EOFError
        self.pos += 1
        return self.data[self.pos - 1]

    def int_(self) -> int:
        # A sign byte, then int_size bytes, least significant first (archive versions > 1.0).
        sign = self.byte()
        chunk = self.data[self.pos:self.pos + self.int_size]
        if len(chunk) < self.int_size:
            raise EOFError
        self.pos += self.int_size
        value = int.from_bytes(chunk, "little")
        return -value if sign else value

    def str_(self) -> str | None:
        length = self.int_()
        if length < 0:
            return None
        raw = self.data[self.pos:self.pos + length]
        if len(raw) < length:
            raise EOFError
        self.pos += length
        return raw.decode("utf-8", errors="replace")


# pg_dump's pg_compress_algorithm, as an archive header of format 1.15+ (pg_dump 16+) records it.
_COMPRESSION_METHODS = {1: "gzip", 2: "lz4", 3: "zstd"}


def _read_header(data: bytes, path: Path, fmt: str) -> ArchiveInfo:
    if len(data) < 8 or not data.startswith(MAGIC):
        raise ArchiveError(f"{path}: not a pg_dump archive (no PGDMP header)")
    version = (data[5], data[6], data[7])
    reader = _HeaderReader(data)
    reader.pos = 8
    dump_version = server_version = compression = None
    try:
        reader.int_size = reader.byte()
        if reader.int_size > 32:  # ReadHead's own sanity check: this is no header
            raise ArchiveError(f"{path}: damaged archive header (integer size {reader.int_size})")
        if version >= (1, 7, 0):
            reader.byte()  # offSize
        reader.byte()  # format
        if version >= (1, 15, 0):
            compression = _COMPRESSION_METHODS.get(reader.byte())  # pg_compress_algorithm
        elif version >= (1, 4, 0):
            reader.int_()  # compression level
        elif version >= (1, 2, 0):
            reader.byte()
        if version >= (1, 4, 0):
            for _ in range(7):  # creation time: sec, min, hour, mday, mon, year, isdst
                reader.int_()
            reader.str_()  # database name
        if version >= (1, 10, 0):
            server_version = reader.str_()
            dump_version = reader.str_()
    except EOFError:
        # A header cut short: what it does say is kept; reading the archive through fails later.
        pass
    return ArchiveInfo(path, fmt, version, dump_version=dump_version, server_version=server_version,
                       compression=compression)


def _read_plain_head(path: Path, head: bytes) -> ArchiveInfo:
    text = head.decode("utf-8", errors="replace")
    dumped_from, dumped_by = _DUMPED_FROM.search(text), _DUMPED_BY.search(text)
    creates, first = _CREATES_DATABASE.search(text), _FIRST_ENTRY.search(text)
    return ArchiveInfo(path, "plain", dump_version=dumped_by.group(1) if dumped_by else None,
                       server_version=dumped_from.group(1) if dumped_from else None,
                       uses_restrict=bool(_RESTRICT.search(text)),
                       creates_database=_unquoted(creates.group(1)) if creates else None,
                       first_entry_type=first.group(1) if first else None)


def _unquoted(identifier: str) -> str:
    return identifier[1:-1].replace('""', '"') if identifier.startswith('"') else identifier


def read_start(path: Path, size: int) -> bytes:
    """The first `size` bytes of `path`, or ArchiveError naming it when they cannot be read (a
    failing disk's I/O error, a stale NFS handle, another user's file): that was an "internal
    error: OSError(5, 'Input/output error')" of the restore, exit 1, and adopt's bare
    "error: Input/output error"."""
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise ArchiveError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def identify_archive(path: Path) -> ArchiveInfo:
    """Format, archive version and writer of `path`, or ArchiveError with one clear line."""
    if not path.exists():
        raise ArchiveError(f"{path}: no such file or directory")
    if path.is_dir():
        toc = path / "toc.dat"
        if not toc.is_file():
            raise ArchiveError(_orphan_set_problem(path) or
                               f"{path}: a directory but not a pg_dump directory archive (no toc.dat)")
        info = _read_header(read_start(toc, HEADER_BYTES), toc, "directory")
        return ArchiveInfo(path, "directory", info.archive_version, info.dump_version, info.server_version,
                           compression=info.compression)
    head = read_start(path, PLAIN_HEAD_BYTES)
    if not head:
        raise ArchiveError(f"{path}: the file is empty")
    if head.startswith(MAGIC):
        return _read_header(head, path, "custom")
    if len(head) >= 512 and head[257:262] == b"ustar":
        try:
            with tarfile.open(path, "r:") as tar:
                first = tar.next()
                if first is None or first.name != "toc.dat":
                    raise ArchiveError(f"{path}: a tar file but not a pg_dump tar archive (no toc.dat first)")
                member = tar.extractfile(first)
                data = member.read(HEADER_BYTES) if member else b""
        except tarfile.TarError as exc:
            raise ArchiveError(f"{path}: damaged tar archive: {exc}") from None
        return _read_header(data, path, "tar")
    if head.startswith(b"\x1f\x8b"):
        raise ArchiveError(f"{path}: gzip-compressed; decompress it first (gunzip) and restore the .sql")
    if is_cluster_script(head):
        # Before the plain check: a small cluster's file has pg_dump's header in its first KiB too,
        # and psql running it into one database would make its roles on the server first.
        raise ArchiveError(f"{path}: a pg_dumpall file, not one database's dump: it restores whole onto a server "
                           "(restore it from the Backups tab, or pgbackup-tui restore FILE --server NAME)")
    if PLAIN_HEAD in head[:1024].decode("utf-8", errors="replace"):
        return _read_plain_head(path, head)
    raise ArchiveError(f"{path}: not a pg_dump archive (custom, directory, tar or plain SQL)")


def is_cluster_script(head: bytes) -> bool:
    """pg_dumpall's output (whole cluster or globals), from the first bytes of the file (of a gzip,
    decompressed): its first lines say so."""
    return CLUSTER_HEAD.encode() in head[:1024]


def _orphan_set_problem(folder: Path) -> str | None:
    """What to do with a cluster set's folder that cannot be restored as one: copied without the
    manifest beside it (which lists its members and holds globals.sql's checksum), with a manifest
    that is damaged or not a set's, or without its globals.sql; None when `folder` is no set's.
    (They were all "a directory but not a pg_dump directory archive (no toc.dat)".)"""
    from .cluster_plans import GLOBALS_FILE
    from .manifest import MANIFEST_SUFFIX, load_manifest, manifest_path

    has_globals = (folder / GLOBALS_FILE).is_file()
    sidecar = manifest_path(folder)
    members = sorted(p.name.removesuffix(MANIFEST_SUFFIX) for p in folder.glob(f"*{MANIFEST_SUFFIX}"))
    example = f"{folder / members[0]}" if members else f"{folder}/MEMBER"
    alone = f"each member alone (restore {example} --db NAME --create)"
    if has_globals and not sidecar.exists():
        return (f"{folder}: a cluster set's folder ({GLOBALS_FILE} and {len(members)} member archive(s)), but its "
                f"manifest {sidecar.name} is not beside it: it lists the members and holds "
                f"{GLOBALS_FILE}'s checksum; copy it along from where the set was made, or restore the roles "
                f"(restore {folder / GLOBALS_FILE}) and then {alone}")
    manifest = load_manifest(folder) if sidecar.exists() else None
    if has_globals and manifest is not None and manifest.kind == "cluster-set":
        # A whole set, as it should be (its folder typed where one database's archive goes).
        return (f"{folder}: a cluster set, not one database's dump: it restores onto a server (restore it from "
                f"the Backups tab, or pgbackup-tui restore {folder} --server NAME), or {alone}")
    if has_globals:
        return (f"{folder}: a cluster set's folder ({GLOBALS_FILE} and {len(members)} member archive(s)), but the "
                f"manifest beside it, {sidecar.name}, is damaged or not a cluster set's; copy it again from where "
                f"the set was made, or restore the roles (restore {folder / GLOBALS_FILE}) and then {alone}")
    if manifest is not None and manifest.kind == "cluster-set":
        return (f"{folder}: a cluster set whose {GLOBALS_FILE} (its roles and tablespaces) is missing; copy it "
                f"again from where the set was made, or restore {alone} onto a server that has the roles")
    return None


# The top of every plain script: comments (not an entry's "-- Name:" header), SETs, \restrict.
_PREAMBLE_LINE = re.compile(rb"^(--(?! Name: | Data for Name: ).*|\s*|SET .*|SELECT pg_catalog\.set_config\(.*"
                            rb"|\\restrict .*)$")
# What pg_dump --clean writes right after the preamble, one statement a line: the drops of what
# follows, and its note where it keeps a schema initdb made ("-- *not* dropping schema, ...").
_DROP_LINE = re.compile(rb"^(DROP .*;|ALTER .* DROP .*;|SELECT pg_catalog\.lo_unlink\(.*;|-- \*not\* dropping .*)$")


def plain_drop_section(path: Path) -> tuple[int, int, int] | None:
    """(start, end, how many) byte offsets and count of the DROP statements a plain script of pg_dump --clean (without
    --if-exists) begins with, or None. They drop the objects of the database it was dumped from: on
    the new or empty database a restore runs it in, each fails, and with ON_ERROR_STOP the first
    stops the restore. Read line by line from the top, up to the first other statement."""
    offset, start, count = 0, None, 0
    with path.open("rb") as script:
        for raw in script:
            line = raw.rstrip(b"\r\n")
            if _DROP_LINE.match(line):
                start = offset if start is None else start
                count += not line.startswith(b"--")
            elif start is None and not _PREAMBLE_LINE.match(line):
                return None
            elif start is not None:
                return start, offset, count
            offset += len(raw)
    return None


def read_skipping(path: Path, start: int, end: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    """The file's bytes without [start, end), a chunk at a time (for a child's stdin)."""
    with path.open("rb") as source:
        left = start
        while left > 0:
            data = source.read(min(chunk, left))
            if not data:
                return
            left -= len(data)
            yield data
        source.seek(end)
        while data := source.read(chunk):
            yield data


def ends_with_line(path: Path, line: str) -> bool:
    """Whether a script's last 4 KiB hold `line` (PLAIN_TAIL, CLUSTER_TAIL): the closing comment
    pg_dump and pg_dumpall write last, which a file cut short lacks."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - 4096))
        return line in handle.read().decode("utf-8", errors="replace")


def check_plain_complete(path: Path) -> None:
    """A plain dump is complete only if it ends with pg_dump's closing comment."""
    if not ends_with_line(path, PLAIN_TAIL):
        raise ArchiveError(
            f"{path}: truncated SQL dump (it does not end with pg_dump's 'dump complete' line); nothing was restored"
        )


def check_tar_complete(path: Path) -> None:
    """Every member's data present, and the end-of-archive blocks written.

    Why here: pg_restore 15 spins forever on a truncated tar archive instead of failing, so a
    tar archive must be proven whole before pg_restore reads it. Its lines say what is wrong, not
    what follows (verify and adopt read it too; a restore adds that nothing was restored).
    """
    size = path.stat().st_size
    try:
        with tarfile.open(path, "r:") as tar:
            end = 0
            for member in tar:
                end = member.offset_data + member.size
                if end > size:
                    raise ArchiveError(f"{path}: truncated tar archive ({member.name} is cut short)")
    except tarfile.TarError as exc:
        raise ArchiveError(f"{path}: truncated or damaged tar archive ({exc})") from None
    with path.open("rb") as handle:
        handle.seek(max(0, size - 1024))
        trailer = handle.read()
    if size < end + 1024 or trailer != bytes(1024):
        raise ArchiveError(f"{path}: truncated tar archive (no end-of-archive blocks)")


def path_size(path: Path) -> int:
    """Bytes of a file, or of every file in a directory archive."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0
