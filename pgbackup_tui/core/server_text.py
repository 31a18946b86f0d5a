"""Text from and to a server of any encoding: which client encoding we ask for, and how psycopg
turns its bytes into str.

PostgreSQL converts between the database's encoding and the session's `client_encoding` when
it can. We ask for UTF8 on every database that can convert to it (LATIN1, EUC_JP, WIN1252...),
so that names and data reach Python, pg_dump's argv (which Python encodes as UTF-8) and
pg_dump's messages in one encoding. A SQL_ASCII database stores bytes without any encoding
(and the server converts nothing for it), so there we keep `client_encoding = SQL_ASCII` and
carry its bytes in str with the `surrogateescape` error handler: valid UTF-8 reads as text,
any other byte b becomes the lone surrogate U+DC00+b. Such a str goes back out as the very same
bytes, to the server (our str dumpers) and to a child's argv (os.fsencode uses surrogateescape
too), so a name that is not valid in any encoding still selects exactly its object.

A database whose encoding has no conversion to UTF8 (MULE_INTERNAL) is read the same way as
SQL_ASCII: its bytes as they are.
"""

from __future__ import annotations

import psycopg
from psycopg import errors as pg_errors
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

