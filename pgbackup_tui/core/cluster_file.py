"""Reading a pg_dumpall file: is it one, will it restore whole, and the stream psql runs.

Before anything runs, `check_cluster_file` refuses a file cut short, one of pg_dumpall --clean,
one a newer pg_dump wrote, and one with a TimescaleDB database (`timescale_databases`: it cannot
be restored the way Timescale documents through psql). As it runs, `tolerant_roles` makes each
`CREATE ROLE x;` of its Roles section (and only there: a database's data or a function body may
hold that line as text) "create it unless it exists", so that a cluster restores onto a server
that has some of its roles (every server has its bootstrap superuser); and it leaves out the
`ALTER ROLE x WITH ...` of the role the restore connects as: run, it would set that role's
attributes and password to the source's (NOSUPERUSER, say, or another password) half way through
the restore, whose next connections, and the DBA's, would then fail. The file is streamed, never
held.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from .archive import CLUSTER_TAIL, ends_with_line, is_cluster_script
from .catalog import read_manifest
from .copy_statement import CopyStatements
from .errors import ArchiveError, UsageError
from .identifiers import QualifiedName, parse_qualified_name, split_name_parts
from .server_text import python_codec

_ROLE_NAME = rb'((?:"(?:[^"]|"")+")|[A-Za-z_][A-Za-z0-9_$]*)'
_CREATE_ROLE = re.compile(rb"^CREATE ROLE " + _ROLE_NAME + rb";\s*$")
_ALTER_ROLE_WITH = re.compile(rb"^ALTER ROLE " + _ROLE_NAME + rb" WITH ")
CHUNK = 1 << 16
# psql's line for a role the file creates that exists already (_tolerant_line's NOTICE), read by the job.
# The name is a JSON string (noticed_role reads it): as it is, a line break in it put the NOTICE on two
# lines, and the role was missing from the restore's "kept" list.
KEPT_ROLE = re.compile(r'NOTICE:\s+pgbackup-tui: role ("(?:[^"\\]|\\.)*") already exists: kept')
# psql's line for the connected role's ALTER ROLE left out (_own_role_line's NOTICE).
OWN_ROLE_KEPT = re.compile(
    r'NOTICE:\s+pgbackup-tui: role ("(?:[^"\\]|\\.)*") is the role this restore connects as: kept as it is')
_CLEAN_SECTION = re.compile(rb"^-- Drop (?:databases|roles|tablespaces)\b", re.MULTILINE)
_DUMPED_BY = re.compile(rb"^-- Dumped by pg_dump version (\d+)")
_DUMPED_FROM = re.compile(rb"^-- Dumped from database version (\d+)")
# A database's section begins with its `\connect` line; pg_dump writes the extension as below.
_CONNECT = b"\n\\connect "
_TIMESCALE_EXTENSION = b"\nCREATE EXTENSION IF NOT EXISTS timescaledb"
_IDENT = r'(?:"(?:[^"]|"")*"|[^\s."(;]+)'
_CREATED_SCHEMA = re.compile(rf"CREATE SCHEMA ({_IDENT})(?: AUTHORIZATION |;)")
_CREATED_RELATION = re.compile(
    rf"CREATE (?:UNLOGGED |FOREIGN )?(?:TABLE|VIEW|MATERIALIZED VIEW|SEQUENCE) ({_IDENT}\.{_IDENT})[\s(;]")
_SET_ENCODING = re.compile(rb"SET client_encoding = '([^']+)';")
_CREATE_TABLESPACE = re.compile(rb"^CREATE TABLESPACE " + _ROLE_NAME + rb" OWNER ")
_LOCATION = re.compile(rb" LOCATION '((?:[^']|'')*)'")


def is_cluster_file(path: Path) -> bool:
    """A pg_dumpall file (whole cluster or globals): its first lines say so."""
    try:
        with path.open("rb") as handle:
            return is_cluster_script(handle.read(1024))
    except OSError:
        return False


def tolerant_roles(path: Path, own_roles: frozenset[str] = frozenset()) -> Iterator[bytes]:
    """The file's bytes with each `CREATE ROLE x;` of its Roles section made tolerant of an existing
    role, and the `ALTER ROLE x WITH ...` of each of `own_roles` there left out, a line at a time;
    the rest of the file (databases, their data and function bodies, where such a line may well be
    text) passes as it is."""
    section = _RolesSection(own_roles)
    with path.open("rb") as handle:
        pending = b""
        while not section.is_over():
            block = handle.read(CHUNK)
            if not block:
                if pending:
                    yield section.line(pending)
                yield section.held()
                return
            lines = (pending + block).split(b"\n")
            pending = lines.pop()
            out = []
            for index, line in enumerate(lines):
                out.append(section.line(line + b"\n"))
                if section.is_over():  # the rest of the block as it is
                    out.extend(rest + b"\n" for rest in lines[index + 1:])
                    break
            yield b"".join(out)
        yield pending
        while block := handle.read(CHUNK):
            yield block


class _RolesSection:
    """Follows a pg_dumpall file line by line to its Roles section (`--` / `-- Roles` / `--`, one
    `CREATE ROLE x;` then its ALTER ROLE, COMMENT... per role) and to the next section's heading,
    where it is over. Quotes are followed across lines: a role's comment may hold any line,
    `CREATE ROLE x;` or `-- Tablespaces` among them, and is left alone."""

    def __init__(self, own_roles: frozenset[str] = frozenset()) -> None:
        # The roles the restore runs as (its login and its current role): their ALTER ROLE ... WITH is
        # left out. As bytes the file would hold them (a SQL_ASCII server's names may not be UTF-8).
        self.own_roles = {name.encode("utf-8", "surrogateescape") for name in own_roles}
        self.inside = False  # between `-- Roles` and the next heading
        self.over = False  # past the Roles section (or at the first \connect: there is none)
        self._quote: int | None = None  # the quote character an unfinished literal or identifier began with
        # A `CREATE ROLE "…` whose name goes on over lines (a line break in it), held until its quote
        # closes: made tolerant whole, as a one-line one is.
        self._held = b""

    def is_over(self) -> bool:
        return self.over

    def held(self) -> bytes:
        """What is held of an unfinished statement (the file ended inside it), to be passed on as it is."""
        held, self._held = self._held, b""
        return held

    def line(self, line: bytes) -> bytes:
        if self._held:
            self._held += line
            if self._follow_quotes(line):
                return b""
            statement = self.held()
            return _tolerant_line(statement) if _CREATE_ROLE.match(statement) else statement
        if self._quote is None:
            text = line.rstrip(b"\r\n")
            if text.startswith(b"\\connect"):
                self.over = True
                return line
            if text.startswith(b"-- ") and text[3:4].isupper():
                if self.inside:
                    self.over = True
                self.inside = text == b"-- Roles"
                return line
            if self.inside and _CREATE_ROLE.match(line):
                return _tolerant_line(line)
            if self.inside and line.startswith(b'CREATE ROLE "'):
                if self._follow_quotes(line):  # its name goes on on the next line
                    self._held = line
                    return b""
                return line
            if self.inside and self.own_roles:
                altered = _ALTER_ROLE_WITH.match(line)
                if altered and _role_name(altered.group(1)) in self.own_roles and line.rstrip().endswith(b";"):
                    self._follow_quotes(line)  # a password literal: whole on its line, the quotes even
                    return _own_role_line(altered.group(1))
        if self.inside:
            self._follow_quotes(line)
        return line

    def _follow_quotes(self, line: bytes) -> bool:
        """pg_dumpall doubles a quote inside a literal or identifier (E'' literals double backslashes
        too), so a quote character toggles, and a doubled one toggles twice. True: one is open at the
        line's end."""
        for char in line:
            if self._quote is None:
                if char in (0x27, 0x22):  # ' and "
                    self._quote = char
            elif char == self._quote:
                self._quote = None
        return self._quote is not None


def _role_name(ident: bytes) -> bytes:
    """The role's name as the catalog has it: a quoted identifier unquoted (pg_dumpall quotes only
    where it must, so an unquoted one is the name as it is)."""
    return ident[1:-1].replace(b'""', b'"') if ident.startswith(b'"') else ident


def _literal(ident: bytes) -> bytes:
    return b"'" + _role_name(ident).replace(b"'", b"''") + b"'"


def noticed_role(name: str) -> str:
    """The role's name a KEPT_ROLE or OWN_ROLE_KEPT line holds (a JSON string, on one line)."""
    try:
        found = json.loads(name)
    except ValueError:
        return name
    return found if isinstance(found, str) else name


def _tolerant_line(line: bytes) -> bytes:
    match = _CREATE_ROLE.match(line)
    assert match is not None
    ident = match.group(1)
    return (b"DO $pgbackup$ BEGIN CREATE ROLE " + ident + b"; EXCEPTION WHEN duplicate_object THEN "
            b"RAISE NOTICE 'pgbackup-tui: role % already exists: kept', to_json(" + _literal(ident)
            + b"::text); END $pgbackup$;\n")


def _own_role_line(ident: bytes) -> bytes:
    return (b"DO $pgbackup$ BEGIN RAISE NOTICE 'pgbackup-tui: role % is the role this restore connects as: "
            b"kept as it is', to_json(" + _literal(ident) + b"::text); END $pgbackup$;\n")


def altered_roles(path: Path) -> list[str]:
    """The roles whose attributes a pg_dumpall file sets (`ALTER ROLE x WITH NOSUPERUSER … NOBYPASSRLS`,
    one per role of its Roles section), as the catalog names them. A role's comment may hold such a
    line as text: quotes are followed, as the restore's own filter follows them."""
    names: list[str] = []
    section = _RolesSection()
    with path.open("rb") as handle:
        for line in handle:
            altered = _ALTER_ROLE_WITH.match(line) if section.inside and section._quote is None else None
            if altered:
                names.append(_role_name(altered.group(1)).decode("utf-8", "surrogateescape"))
            section.line(line)
            if section.is_over():
                break
    return names


def created_tablespaces(path: Path) -> dict[str, str]:
    """The tablespaces a pg_dumpall file creates (its `-- Tablespaces` section, before any database),
    as the catalog names them, each with its location (the directory on the server's host)."""
    names: dict[str, str] = {}
    inside = False
    with path.open("rb") as handle:
        for line in handle:
            text = line.rstrip(b"\r\n")
            if text.startswith(b"\\connect"):
                break
            if text.startswith(b"-- ") and text[3:4].isupper():
                if inside:
                    break
                inside = text == b"-- Tablespaces"
                continue
            created = _CREATE_TABLESPACE.match(line) if inside else None
            if created:
                located = _LOCATION.search(line)
                location = located.group(1).replace(b"''", b"'") if located else b""
                names[_role_name(created.group(1)).decode("utf-8", "surrogateescape")] = location.decode(
                    "utf-8", "surrogateescape")
    return names


def sql_major(manifest: dict[str, object]) -> int | None:
    """The oldest major a pg_dumpall file's SQL is for, from its manifest (None: not said). A
    roles-only or globals-only file holds its server's roles as that server has them (pg_dumpall
    writes role grants WITH INHERIT and SET for a 16+ server only): its server's major, whichever
    pg_dumpall wrote it (an 18's file of a 15's roles was refused on the 15 it came from). A file
    with databases, or a set, holds the pg_dump SQL of the pg_dumpall's major (SET transaction_timeout)."""
    made_by, source = manifest.get("pg_dump_major"), manifest.get("server_major")
    if (manifest.get("roles_only") or manifest.get("globals_only")) and isinstance(source, int):
        return min(source, made_by) if isinstance(made_by, int) else source
    return made_by if isinstance(made_by, int) else None


def check_cluster_file(path: Path, server_major: int, allow_older_server: bool) -> None:
    """Refuse, before anything runs, a pg_dumpall file that cannot restore whole: one cut short
    (it would restore part of a database and say nothing), one of pg_dumpall --clean (it begins
    by dropping every database and role it holds, which no stop can undo, and it stops at the
    first one in use: the current user's role), and one whose databases a newer pg_dump wrote
    (their SQL fails half way on an older server, as a plain dump's does: restore_archive.py)."""
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    if not ends_with_line(path, CLUSTER_TAIL):
        raise ArchiveError(f"{path}: truncated (it does not end with pg_dumpall's 'cluster dump complete' line); "
                           "nothing was restored")
    if _CLEAN_SECTION.search(head):
        raise UsageError(f"{path} was written by pg_dumpall --clean: it begins by dropping every database and role "
                         "it holds, which cannot be undone if it stops half way (and it stops at the current "
                         "user's role); make the file without --clean and restore it onto a server that lacks "
                         "its databases; nothing was restored")
    timescale = timescale_databases(path)
    if timescale:
        raise UsageError(
            f"{path}: database {timescale[0]} uses TimescaleDB, which restores only between "
            "timescaledb_pre_restore() and timescaledb_post_restore(), and a pg_dumpall file runs straight "
            "through psql; back the cluster up with `pgbackup-tui dumpall --set` (an archive per database, "
            "restored as Timescale documents); nothing was restored")
    if allow_older_server:
        return
    source: int | None = None  # the line before pg_dump's own says the server's
    with path.open("rb") as handle:
        for line in handle:
            dumped_from = _DUMPED_FROM.match(line)
            if dumped_from is not None:
                source = int(dumped_from.group(1))
                continue
            dumped_by = _DUMPED_BY.match(line)
            if dumped_by is None:
                continue
            major = int(dumped_by.group(1))
            if major > server_major:
                raise ArchiveError(
                    f"{path}: its databases were written by pg_dump {major}, newer than the server "
                    f"(PostgreSQL {server_major}), whose SQL would fail half way; "
                    f"{newer_source_advice(source, server_major)}, or add --allow-older-server if the file was made "
                    "to fit; nothing was restored")
            return


def newer_source_advice(source: object, server_major: int) -> str:
    """What to do with a pg_dumpall file or set too new for a server of `server_major`: dump again with
    that major's pg_dumpall -- which refuses a newer server, so not when the one dumped (`source`, its
    major where known) was newer itself: such a backup restores onto its own major or a newer one."""
    if isinstance(source, int) and source > server_major:
        return f"it was dumped from PostgreSQL {source}: restore it onto a server of PostgreSQL {source} or newer"
    return f"dump again with pg_dumpall {server_major}"


def timescale_databases(path: Path) -> list[str]:
    """The databases of a pg_dumpall file that create the timescaledb extension: from its manifest
    when it has the list (pgbackup-tui's own), else found in the file (a DBA's own)."""
    recorded = (read_manifest(path) or {}).get("timescaledb")
    if isinstance(recorded, list):
        return [str(name) for name in recorded]
    found: list[str] = []
    database, tail = "?", b"\n"
    longest = max(len(_CONNECT), len(_TIMESCALE_EXTENSION))
    with path.open("rb") as handle:
        while True:
            block = handle.read(CHUNK)
            text = tail + block
            cut = len(text) if not block else text.rfind(b"\n") + 1  # whole lines (the last at the end)
            for at, is_connect in _markers(text, cut):
                if is_connect:
                    end = text.find(b"\n", at + 1)
                    database = _connected_name(text[at + len(_CONNECT):end if end >= 0 else len(text)])
                elif database not in found:
                    found.append(database)
            if not block:
                return found
            # The unfinished line, from the newline before it, is carried to the next block -- unless it
            # is long and no marker can begin it (a COPY row of a big value): then nothing of it is
            # needed, and carrying it whole would copy it again with every block.
            tail = text[cut - 1:] if cut else text
            if len(tail) > longest and not (tail.startswith(_CONNECT) or tail.startswith(_TIMESCALE_EXTENSION)):
                tail = b""


def connected_databases(read: Callable[[int], bytes]) -> list[str]:
    """The databases a pg_dumpall script holds (`read`: its open binary stream's, a file's or gzip's):
    those its `\\connect` lines name, in order, each once; none for its globals alone. Read in blocks."""
    found: list[str] = []
    tail = b"\n"
    while True:
        block = read(CHUNK)
        text = tail + block
        cut = len(text) if not block else text.rfind(b"\n") + 1  # whole lines (the last at the end)
        at = text.find(_CONNECT, 0, cut)
        while at >= 0:
            end = text.find(b"\n", at + 1)
            name = _connected_name(text[at + len(_CONNECT):end if end >= 0 else len(text)])
            if name not in found:
                found.append(name)
            at = text.find(_CONNECT, at + 1, cut)
        if not block:
            return found
        # As in timescale_databases: the unfinished line is carried, unless it is long and cannot be one.
        tail = text[cut - 1:] if cut else text
        if len(tail) > len(_CONNECT) and not tail.startswith(_CONNECT):
            tail = b""


def created_in(path: Path, databases: set[str]) -> dict[str, set[QualifiedName | str]]:
    """The schemas (a name) and relations (a QualifiedName) the sections of `databases` in a pg_dumpall
    file create, from their `CREATE SCHEMA` / `CREATE TABLE`... lines (not COPY rows), read line by
    line in each section's own encoding: what would stop psql half way where the server's database
    has them already (its `postgres`, which the file fills)."""
    found: dict[str, set[QualifiedName | str]] = {}
    database, codec, in_rows = "", "utf-8", False
    # Which COPY has rows, in every database's section (a COMMENT's line that reads like a COPY has
    # none, and read as one it hid the rest of the file): copy_statement.CopyStatements.
    statements = CopyStatements()
    with path.open("rb") as handle:
        for raw in handle:
            if in_rows:
                in_rows = raw not in (b"\\.\n", b"\\.\r\n")
            elif statements.comment(raw) or (statement := statements.statement(raw)) is None:
                continue
            elif statements.rows_follow(statement):
                in_rows = True
            elif statement.startswith(b"\\connect "):
                database, codec = _connected_name(statement[len(b"\\connect "):].rstrip(b"\r\n")), "utf-8"
            elif database not in databases:
                continue
            elif statement.startswith(b"SET client_encoding = "):
                encoding = _SET_ENCODING.match(statement)
                codec = (python_codec(encoding.group(1).decode("ascii")) if encoding else None) or "utf-8"
            elif statement.startswith(b"CREATE "):
                line = statement.decode(codec, errors="surrogateescape")
                if match := _CREATED_SCHEMA.match(line):
                    found.setdefault(database, set()).add(split_name_parts(match.group(1))[0])
                elif match := _CREATED_RELATION.match(line):
                    found.setdefault(database, set()).add(parse_qualified_name(match.group(1)))
    return found


def _markers(text: bytes, cut: int) -> list[tuple[int, bool]]:
    """Where `\\connect` lines and timescaledb's CREATE EXTENSION lines begin (their newline) in
    text[:cut], in order; bytes.find, as a regular expression reads a big file ten times slower."""
    found = []
    for needle, is_connect in ((_CONNECT, True), (_TIMESCALE_EXTENSION, False)):
        at = text.find(needle, 0, cut)
        while at >= 0:
            if is_connect or text[at + len(needle):at + len(needle) + 1] in (b" ", b";"):  # not timescaledb_toolkit
                found.append((at, is_connect))
            at = text.find(needle, at + 1, cut)
    return sorted(found)


def _connected_name(argument: bytes) -> str:
    """The database of pg_dumpall's `\\connect` line: `"dbname='it\\'s'"` (newer) or a name (older)."""
    text = argument.decode("utf-8", "replace").strip().removeprefix("-reuse-previous=on ")
    quoted = re.fullmatch(r"\"dbname='(.*)'\"", text)
    if quoted:  # a connection-string value: \' and \\ escaped, and in psql's double quotes "" for "
        return re.sub(r"\\(.)", r"\1", quoted.group(1).replace('""', '"'))
    return text.strip('"')
