"""Text from and to a server of any encoding: which client encoding we ask for, and how psycopg
turns its bytes into str.

PostgreSQL converts between the database's encoding and the session's `client_encoding` when
it can. Our own sessions ask for UTF8 on every database that can convert to it (LATIN1, EUC_JP,
WIN1252...), so that names are plain str. pg_dump, though, runs in the database's own encoding,
as it does by default: no conversion, so the archive holds the very bytes stored, even those a
conversion would refuse (WIN1252's 0x81, EUC_JP's user-defined area). Names on its argv are
therefore written in that encoding (`dump_encoding`, identifiers.in_encoding), and so are the
names in its messages and in the archive's table of contents (`archive_encoding`).

A SQL_ASCII database stores bytes without any encoding
(and the server converts nothing for it), so there we keep `client_encoding = SQL_ASCII` and
carry its bytes in str with the `surrogateescape` error handler: valid UTF-8 reads as text,
any other byte b becomes the lone surrogate U+DC00+b. Such a str goes back out as the very same
bytes, to the server (our str dumpers) and to a child's argv (os.fsencode uses surrogateescape
too), so a name that is not valid in any encoding still selects exactly its object.

A database whose encoding has no conversion to UTF8 (MULE_INTERNAL) is read the same way as
SQL_ASCII: its bytes as they are.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import psycopg
from psycopg import errors as pg_errors
from psycopg._encodings import pg2pyenc
from psycopg.adapt import Buffer
from psycopg.types import string as pg_string

# What pg_dump and our own sessions use, unless the server cannot give it (see above).
PREFERRED_CLIENT_ENCODING = "UTF8"
RAW_CLIENT_ENCODING = "SQL_ASCII"  # no conversion at all: the database's bytes as stored

_TEXT_TYPES = (0, "bpchar", "name", "text", "varchar", '"char"')  # 0: unknown oid, e.g. regclass


def _decode(data: Buffer) -> str:
    return bytes(data).decode("utf-8", "surrogateescape")


class _TextLoader(pg_string.TextLoader):
    """text/name/varchar... as str, whatever bytes they hold (see the module's docstring)."""

    def load(self, data: Buffer) -> str:
        return _decode(data)


class _TextBinaryLoader(pg_string.TextBinaryLoader):
    def load(self, data: Buffer) -> str:
        return _decode(data)


def _exact_bytes_dumper(base: type) -> type:
    """A subclass of psycopg's str dumper `base` that sends surrogate-escaped bytes back as they were."""

    def dump(self: object, obj: str) -> Buffer | None:
        if "\x00" in obj:
            raise pg_errors.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        return obj.encode("utf-8", "surrogateescape")

    return type(f"Exact{base.__name__}", (base,), {"dump": dump})


# In psycopg's own order: the last one registered for a format is the default for str.
_STR_DUMPERS = tuple(
    _exact_bytes_dumper(base)
    for base in (
        pg_string.StrBinaryDumperName, pg_string.StrBinaryDumperVarchar, pg_string.StrBinaryDumper,
        pg_string.StrDumperName, pg_string.StrDumperVarchar, pg_string.StrDumper, pg_string.StrDumperUnknown,
    )
)


def client_encoding_for(server_encoding: str) -> str:
    """The client encoding we ask for on a database of `server_encoding` (a PostgreSQL name)."""
    return RAW_CLIENT_ENCODING if server_encoding == "SQL_ASCII" else PREFERRED_CLIENT_ENCODING


def session_client_encoding(conn: psycopg.Connection) -> str:
    """The connection's client_encoding as PostgreSQL names it (after prepare_text: UTF8 or SQL_ASCII)."""
    return conn.info.parameter_status("client_encoding") or ""


def refuses_client_encoding(exc: psycopg.Error) -> bool:
    """Whether a connection failed because the database cannot convert to the client encoding asked for."""
    message = str(exc)
    return "conversion between" in message and "is not supported" in message


def prepare_text(conn: psycopg.Connection) -> None:
    """Set the session's client encoding (see the module's docstring) and psycopg's text adapters.

    Call it on an autocommit connection right after connecting: a SET inside a transaction that
    is rolled back later would be undone.
    """
    server = conn.info.parameter_status("server_encoding") or ""
    wanted = client_encoding_for(server)
    if session_client_encoding(conn) != wanted:
        try:
            conn.execute("SELECT set_config('client_encoding', %s, false)", (wanted,))
        except psycopg.errors.FeatureNotSupported:  # "conversion between X and UTF8 is not supported"
            conn.execute("SELECT set_config('client_encoding', %s, false)", (RAW_CLIENT_ENCODING,))
    # Both UTF8 and SQL_ASCII sessions get them: a UTF8 session can still be handed bytes that
    # are not UTF-8 (a role or database name created from a SQL_ASCII database).
    adapters = conn.adapters
    for oid in _TEXT_TYPES:
        adapters.register_loader(oid, _TextLoader)
        adapters.register_loader(oid, _TextBinaryLoader)
    for dumper in _STR_DUMPERS:
        adapters.register_dumper(str, dumper)



def python_codec(pg_encoding: str) -> str | None:
    """Python's codec for text in `pg_encoding` as our str carry it (SQL_ASCII: UTF-8 + surrogates);
    None when Python has none (EUC_TW, MULE_INTERNAL)."""
    if pg_encoding == "SQL_ASCII":
        return "utf-8"
    try:
        return pg2pyenc(pg_encoding.encode("ascii"))
    except psycopg.NotSupportedError:
        return None


def dump_encoding(conn: psycopg.Connection) -> tuple[str, str]:
    """(PGCLIENTENCODING for pg_dump, the codec its argv and messages use for our str), for the
    database `conn` is connected to (by connect(), so after prepare_text)."""
    server = conn.info.parameter_status("server_encoding") or ""
    if session_client_encoding(conn) == RAW_CLIENT_ENCODING:
        return server, "utf-8"  # our str carry the stored bytes already (prepare_text)
    codec = python_codec(server)
    if codec is None:  # no way to write a name in it ourselves: let the server convert to UTF8
        return PREFERRED_CLIENT_ENCODING, "utf-8"
    return server, codec


_SET_ENCODING = re.compile(rb"^SET client_encoding = '([^']+)';$", re.MULTILINE)


def archive_encoding(pg_restore: str | Path, archive: str | Path) -> str:
    """The encoding an archive's names and data are written in (its `SET client_encoding`).

    pg_restore prints the archive's fixed preamble, that line included, even for an empty list.
    UTF8 when it cannot say (the caller's own listing of the archive reports the real error).
    """
    try:
        result = subprocess.run([str(pg_restore), "--file=-", "--use-list=/dev/null", str(archive)],
                                capture_output=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return PREFERRED_CLIENT_ENCODING
    match = _SET_ENCODING.search(result.stdout)
    return match.group(1).decode("ascii") if match else PREFERRED_CLIENT_ENCODING


def decode_listing(data: bytes, pg_encoding: str) -> str:
    """`pg_restore --list` output, written in `pg_encoding`, as str whose names match the catalog's."""
    return data.decode(python_codec(pg_encoding) or "utf-8", "surrogateescape")
