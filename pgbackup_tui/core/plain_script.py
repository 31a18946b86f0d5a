"""Plain SQL dumps read line by line, never whole, in the file's own encoding (its `SET
client_encoding`): what a data-only script loads (its COPY or INSERT targets, the large objects it
creates, whether it has transactions of its own), fed to psql without those transactions, and
which tables a plain dump creates. For restore_data.py (a data-only load) and restore_choice.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .copy_statement import CopyStatements
from .identifiers import QualifiedName, parse_qualified_name
from .server_text import python_codec

# `COPY "Sales & Ops"."Order Items" (id, note) FROM stdin;` as pg_dump writes it in a plain file.
_QUALIFIED = r'((?:"(?:[^"]|"")*"|[^\s."]+)\.(?:"(?:[^"]|"")*"|[^\s."(]+))'  # schema.name as pg_dump writes it
_COPY_LINE = re.compile(rf"COPY {_QUALIFIED} ")
_INSERT_LINE = re.compile(rf"INSERT INTO {_QUALIFIED} ")
_CREATE_RELATION = re.compile(rf"CREATE (?:UNLOGGED |FOREIGN )?(?:TABLE|MATERIALIZED VIEW) {_QUALIFIED}[ (]")
_CREATES_RELATION = re.compile(rb"CREATE (?:UNLOGGED |FOREIGN )?(?:TABLE|MATERIALIZED VIEW) ")  # a line's start
_LO_CREATE = re.compile(rb"SELECT pg_catalog\.lo_create\('(\d+)'\);")
_SET_ENCODING = re.compile(rb"SET client_encoding = '([^']+)';")


@dataclass
class ScriptContents:
    tables: list[QualifiedName] = field(default_factory=list)  # COPY … FROM stdin, in order
    large_objects: list[int] = field(default_factory=list)  # lo_create(OID)
    # BEGIN; / COMMIT; of its own (a plain file's around its large objects): they would end the
    # load's one transaction half way, so they are left out of what psql reads (without_transactions).
    has_transactions: bool = False


def _opens_relation(line: bytes) -> bool:
    """A CREATE TABLE (or materialized view) line that ends inside its quoted name (`CREATE TABLE
    public."a` + newline + `b" (`): read a line at a time, the table was not seen, and a
    whole-database --clean without a manifest was refused for a table "the archive does not hold"."""
    return line.count(b'"') % 2 == 1 and _CREATES_RELATION.match(line) is not None


def script_relations(path: Path) -> frozenset[tuple[str, str]]:
    """The tables (and materialized views) a plain SQL dump creates, as (schema, name): its
    `CREATE TABLE` lines, read line by line in the file's own encoding."""
    found: set[tuple[str, str]] = set()
    codec, in_rows = "utf-8", False
    # A COPY's rows are not statements (a row `CREATE TABLE public.x (…` of a table of DDL is no table
    # of the dump's); which COPY has rows: copy_statement.CopyStatements, as archive_scan.RowCounter.
    statements = CopyStatements(opens=_opens_relation)
    with path.open("rb") as script:
        for raw in script:
            if in_rows:
                in_rows = raw.rstrip(b"\r\n") != b"\\."
                continue
            if statements.comment(raw):
                continue
            if not statements.joining and (raw.startswith(b"--") or not raw.strip()):
                continue
            statement = statements.statement(raw)
            if statement is None:
                continue
            if statements.rows_follow(statement):
                in_rows = True
            elif statement.startswith(b"CREATE "):
                match = _CREATE_RELATION.match(statement.decode(codec, errors="surrogateescape"))
                if match:
                    name = parse_qualified_name(match.group(1))
                    found.add((name.schema, name.name))
            elif statement.startswith(b"SET client_encoding = "):
                encoding = _SET_ENCODING.match(statement)
                codec = (python_codec(encoding.group(1).decode("ascii")) if encoding else None) or "utf-8"
    return frozenset(found)


def scan_script(path: Path) -> ScriptContents:
    """What a SQL script of rows loads (a plain data-only dump, or pg_restore's script of an
    archive), read line by line, never whole: its COPY (or INSERT) targets, in the file's own encoding (its
    `SET client_encoding`), the large objects it creates, and whether it has transactions."""
    found = ScriptContents()
    codec, in_rows, seen = "utf-8", False, set[QualifiedName]()
    statements = CopyStatements()  # which COPY has rows (a COMMENT's line that reads like one has none)
    with path.open("rb") as script:
        for raw in script:
            if in_rows:
                in_rows = raw.rstrip(b"\r\n") != b"\\."
                continue
            if statements.comment(raw):
                continue
            statement = statements.statement(raw)
            if statement is None:
                continue
            if statements.rows_follow(statement):
                match = _COPY_LINE.match(statement.decode(codec, errors="surrogateescape"))
                if match:
                    found.tables.append(parse_qualified_name(match.group(1)))
                in_rows = True
            elif statement.startswith(b"INSERT INTO "):  # pg_dump --inserts / --column-inserts: a statement a row
                match = _INSERT_LINE.match(statement.decode(codec, errors="surrogateescape"))
                if match:
                    name = parse_qualified_name(match.group(1))
                    if name not in seen:
                        seen.add(name)
                        found.tables.append(name)
            elif statement.startswith(b"SELECT pg_catalog.lo_create("):
                oid = _LO_CREATE.match(statement)
                if oid:
                    found.large_objects.append(int(oid.group(1)))
            elif statement.startswith(b"SET client_encoding = "):
                encoding = _SET_ENCODING.match(statement)
                codec = (python_codec(encoding.group(1).decode("ascii")) if encoding else None) or "utf-8"
            elif statement.rstrip(b"\r\n") in (b"BEGIN;", b"COMMIT;"):
                found.has_transactions = True
    return found


def without_transactions(path: Path) -> Iterator[bytes]:
    """The script's bytes, but its own top-level BEGIN; and COMMIT; (rows of COPY pass untouched),
    in batches of whole lines: a line at a time, each a hop to a thread and a write to psql's pipe,
    a data-only load of a few hundred MB (1.5M rows) took 2.5 min of the runner's CPU, not 10 s."""
    return without_settings(file_chunks(path), TRANSACTION_LINES, [0])


# What pg_dump and pg_restore 17+ write at the head of every script (a plain dump, each database
# of a pg_dumpall file, the SQL pg_restore writes for psql), whatever server it will meet, with the
# first major that knows it: on an older server psql stopped at it (ON_ERROR_STOP), at the first
# line, so that --allow-older-server could never run such a file there, nor a pg_restore 17+'s
# script of an archive of that very server.
NEWER_SETTINGS = {b"SET transaction_timeout = 0;": 17}


def sets_unknown_settings(tools_major: int, server_major: int) -> bool:
    """Whether client tools of `tools_major` set what a server of `server_major` does not know (a
    pg_restore 17+ does in every session it opens, and fails that statement on a server before 17)."""
    return any(server_major < since <= tools_major for since in NEWER_SETTINGS.values())


def settings_unknown_to(server_major: int) -> frozenset[bytes]:
    """The lines of NEWER_SETTINGS a server of `server_major` rejects."""
    return frozenset(line for line, since in NEWER_SETTINGS.items() if server_major < since)


def first_major_setting(lines: frozenset[bytes]) -> int:
    """The first major whose pg_dump writes one of `lines` (for messages: never a number written out)."""
    return min(NEWER_SETTINGS[line] for line in lines)


def head_has(path: Path, lines: frozenset[bytes]) -> bool:
    """Whether the file's first 64 kB hold one of `lines` (pg_dump writes them among its first)."""
    if not lines:
        return False
    with path.open("rb") as script:
        head = script.read(1 << 16)
    return any(line in head for line in lines)


# pg_dump's comment before a plain dump's large objects (`-- Data for Name: BLOBS; Type: BLOBS; …`, 17+:
# `-- Data for Name: 16684..16837; Type: BLOBS; …`): their lo_open/lowrite calls between a BEGIN; and
# a COMMIT; of their own.
LARGE_OBJECTS_ENTRY = b"; Type: BLOBS;"
TRANSACTION_LINES = frozenset({b"BEGIN;", b"COMMIT;"})


def without_large_objects_transactions(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """A whole plain dump's bytes without the BEGIN; and COMMIT; around its large objects: run with
    psql --single-transaction, that COMMIT ended the one transaction half way (psql only warned
    "there is already a transaction in progress"), so a failure after it left the tables and large
    objects before it in a target said to be "unchanged (one transaction, rolled back)". Only in
    pg_dump's large-objects entries: a function body's own line `COMMIT;` is left as written."""
    return without_settings(chunks, TRANSACTION_LINES, [0], only_in_entry=LARGE_OBJECTS_ENTRY)


def without_settings(chunks: Iterable[bytes], lines: frozenset[bytes], skipped: list[int], *,
                     only_in_entry: bytes | None = None) -> Iterator[bytes]:
    """`chunks` (a script's bytes) without the statements `lines` (whole lines, outside COPY's rows,
    which pass untouched); `skipped[0]` counts those left out. Yields batches of whole lines.
    `only_in_entry`: left out only in the entries whose pg_dump comment holds it."""
    in_rows, pending, batch, statements = False, list[bytes](), bytearray(), CopyStatements()
    skipping = only_in_entry is None
    for chunk in chunks:
        if b"\n" not in chunk:  # a long line (a row of a big value) is joined once, not per chunk
            pending.append(chunk)
            continue
        parts = (b"".join(pending) + chunk).split(b"\n")
        pending = [parts.pop()]
        for part in parts:
            raw = part + b"\n"
            if in_rows:
                in_rows = part.rstrip(b"\r") != b"\\."
            elif statements.comment(part):
                if only_in_entry is not None:
                    skipping = only_in_entry in part
            elif (statement := statements.statement(part, b"\n")) is not None:
                if statements.rows_follow(statement):
                    in_rows = True
                elif skipping and statement.rstrip(b"\r") in lines:
                    skipped[0] += 1
                    continue
            batch += raw
        if len(batch) >= 1 << 20:
            yield bytes(batch)
            batch.clear()
    rest = b"".join(pending)
    if rest and (in_rows or statements.joining or not skipping or rest.rstrip(b"\r") not in lines):
        batch += rest
    elif rest:
        skipped[0] += 1
    if batch:
        yield bytes(batch)


def file_chunks(path: Path, chunk: int = 1 << 20) -> Iterator[bytes]:
    """The file's bytes, a chunk at a time."""
    with path.open("rb") as source:
        while data := source.read(chunk):
            yield data
