"""A database created as the archive describes it: encoding, locale, owner, comment, settings, grants.

`pg_restore --create` keeps what the database itself was, but only under the archive's own name
and in the same run as the restore. We ask pg_restore for exactly those entries as SQL
(DATABASE, DATABASE PROPERTIES, and the COMMENT / ACL / SECURITY LABEL of the DATABASE), put the
target's name where the archive's stands, and run the statements ourselves, one at a time:

- `CREATE DATABASE` and its owner before the restore (the owner matters then: in 15+ the
  `public` schema belongs to the database's owner);
- the rest after the restore has succeeded: settings (`ALTER DATABASE … SET`, `ALTER ROLE … IN
  DATABASE … SET`), comment, grants. Applied before, a setting such as
  `default_transaction_read_only` or `statement_timeout` would act on the restore itself.

`CREATE DATABASE` failing (a locale the server lacks, say) stops the restore before anything is
created. Any other statement that fails (an owner or grantee role that does not exist on this
server) is reported as not kept, with the server's reason, and the restore goes on.

The script is handled as bytes: it is written in the archive's client encoding (LATIN1, EUC_JP…),
and only the database's name, found by its exact quoted or bare spelling, is replaced.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from .errors import TargetError
from .identifiers import always_quote
from .toc import Toc

# The archive's entries that describe the database itself (listed only with `pg_restore --create`).
DATABASE_DESCS = frozenset({"DATABASE", "DATABASE PROPERTIES"})
_ABOUT_DATABASE = re.compile(r"^(COMMENT|ACL|SECURITY LABEL) - DATABASE ")
_NAME_LINE = re.compile(rb"^-- Name: (.*); Type: DATABASE; Schema: -; Owner: .*$", re.MULTILINE)
_CLIENT_ENCODING = re.compile(rb"^SET client_encoding = '([^']+)';$", re.MULTILINE)


def database_entry_ids(toc: Toc) -> list[int]:
    """Dump ids of the entries about the database itself, from a `pg_restore --create -l` listing."""
    ids = []
    for entry in toc.entries:
        if entry.desc in DATABASE_DESCS or _ABOUT_DATABASE.match(f"{entry.desc} {entry.rest}"):
            ids.append(entry.dump_id)
    return ids


@dataclass
class DatabaseScript:
    """The statements that make the database, split by when they run."""

    session: list[bytes] = field(default_factory=list)  # SET client_encoding … for our own session
    create: bytes | None = None
    owner: list[bytes] = field(default_factory=list)
    after: list[bytes] = field(default_factory=list)  # settings, comment, grants
    source_name: bytes = b""
    encoding: str = "UTF8"

    def summary(self) -> str:
        """One line for logs and dry runs: what the new database keeps from the archive."""
        create = _text(self.create or b"")
        match = re.search(r"WITH (.*?);?$", create, re.DOTALL)
        props = match.group(1).replace("TEMPLATE = template0 ", "").strip() if match else "the server's defaults"
        extras = f"; then {len(self.after)} setting(s), comment and grant(s)" if self.after else ""
        owner = "; its owner kept" if self.owner else ""  # the archive's, or (a plain --clean) the replaced one's
        return f"{props}{owner}{extras}"


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def split_statements(script: bytes) -> list[bytes]:
    """SQL statements of a pg_dump script, without comments and psql meta-commands.

    pg_dump writes literals as '…' with '' for a quote (standard_conforming_strings is on in its
    preamble) and identifiers as "…" with "" for a quote; a statement ends at a `;` outside both.
    """
    statements: list[bytes] = []
    current = bytearray()
    quote: int | None = None
    i, size = 0, len(script)
    while i < size:
        char = script[i]
        if quote is not None:
            current.append(char)
            if char == quote:
                quote = None
            i += 1
            continue
        at_line_start = i == 0 or script[i - 1] == 0x0A
        if not current.strip() and at_line_start and script.startswith((b"\\", b"--"), i):
            end = script.find(b"\n", i)
            i = size if end < 0 else end + 1  # a meta-command or a comment: the whole line
            continue
        if char in (0x27, 0x22):  # ' or "
            quote = char
        if char == 0x3B:  # ;
            current.append(char)
            statements.append(bytes(current).strip())
            current.clear()
        else:
            current.append(char)
        i += 1
    if current.strip():
        statements.append(bytes(current).strip())
    return statements


def _python_codec(pg_encoding: str) -> str:
    """Python's codec for a PostgreSQL encoding name (utf-8 for SQL_ASCII: bytes pass through)."""
    try:
        from psycopg._encodings import pg2pyenc  # the mapping psycopg itself uses

        return pg2pyenc(pg_encoding.encode())
    except (ImportError, psycopg.NotSupportedError, KeyError):
        return "utf-8"


def parse_database_script(script: bytes, target_name: str) -> DatabaseScript:
    """Split pg_restore's `--create` SQL for the database entries and rename the database to
    `target_name` (only where a statement names the database, never inside a literal)."""
    result = DatabaseScript()
    name_match = _NAME_LINE.search(script)
    encoding_match = _CLIENT_ENCODING.search(script)
    if encoding_match:
        result.encoding = encoding_match.group(1).decode("ascii", errors="replace")
    if name_match is None:
        return result
    result.source_name = name_match.group(1)
    source = result.source_name
    spelled = [b'"' + source.replace(b'"', b'""') + b'"']
    if re.fullmatch(rb"[a-z_][a-z0-9_$]*", source):
        spelled.append(source)
    codec = _python_codec(result.encoding) if result.encoding != "SQL_ASCII" else "utf-8"
    try:
        new_ident = always_quote(target_name).encode(codec)
    except UnicodeEncodeError:
        raise TargetError(f"database name '{target_name}' cannot be written in the archive's encoding "
                          f"{result.encoding}; pick a name in that encoding") from None
    names = b"|".join(re.escape(s) for s in spelled)
    in_statement = re.compile(rb"\bDATABASE (?:" + names + rb")(?=[\s;])")
    for statement in split_statements(script):
        upper = statement[:40].upper()
        if upper.startswith((b"SET ", b"SELECT PG_CATALOG.SET_CONFIG")):
            result.session.append(statement)
            continue
        renamed = in_statement.sub(lambda _m: b"DATABASE " + new_ident, statement, count=1)
        if upper.startswith(b"CREATE DATABASE"):
            result.create = renamed
        elif upper.startswith(b"ALTER DATABASE") and re.search(rb"\sOWNER TO\s", renamed):
            result.owner.append(renamed)
        else:
            result.after.append(renamed)
    return result


class DatabaseMaker:
    """Runs a DatabaseScript on a maintenance connection and remembers what it could not keep."""

    def __init__(self, script: DatabaseScript) -> None:
        self.script = script
        self.not_kept: list[str] = []

    def _session(self, conn: psycopg.Connection) -> None:
        # pg_dump's preamble for its own session. Only client_encoding matters here; a newer
        # pg_dump's settings (transaction_timeout, 17+) do not exist on an older server: skip those.
        for statement in self.script.session:
            with contextlib.suppress(psycopg.errors.UndefinedObject):
                conn.execute(statement)

    def create(self, conn: psycopg.Connection, target_name: str) -> None:
        """CREATE DATABASE as dumped, then its owner. Raises TargetError if the database cannot be made."""
        assert self.script.create is not None
        self._session(conn)
        try:
            conn.execute(self.script.create)
        except psycopg.Error as exc:
            raise TargetError(
                f"could not create database '{target_name}' as it was dumped "
                f"({_text(self.script.create)[len('CREATE DATABASE '):]}): {_first_line(exc)}; nothing was restored"
            ) from None
        self._run_each(conn, self.script.owner)

    def own(self, conn: psycopg.Connection) -> None:
        """The owner alone, for a database that exists already (nothing to create)."""
        self._session(conn)
        self._run_each(conn, self.script.owner)

    def finish(self, conn: psycopg.Connection, stopped: Callable[[], bool] = lambda: False) -> None:
        """Settings, comment and grants, once the restore has succeeded; no further once `stopped()`
        (the job's cancel, which also interrupts the statement running: restore_target.StatementCanceller)."""
        self._session(conn)
        self._run_each(conn, self.script.after, stopped)

    def _run_each(self, conn: psycopg.Connection, statements: list[bytes],
                  stopped: Callable[[], bool] = lambda: False) -> None:
        for statement in statements:
            if stopped():
                return
            try:
                conn.execute(statement)
            except psycopg.Error as exc:
                if stopped():
                    return  # interrupted by the cancel: not a statement the server refused
                self.not_kept.append(f"{_text(statement).splitlines()[0][:120]}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or ["?"])[0]
