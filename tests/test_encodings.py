"""Databases in other server encodings (SQL_ASCII, LATIN1, EUC_JP), on the real sandbox cluster.

Each case makes its own database with names and data written in that encoding's own bytes (for
SQL_ASCII: bytes that are not UTF-8 at all) and checks every place that reads catalog text:
inspect and the TUI's data layer, whole and selected dumps, and restores. "Exactly the same" is
judged by the server itself: names and rows as `convert_to(…, database encoding)` bytes, read over
a session that converts nothing.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from cliutil import run_cli

from pgbackup_tui.core import inspect
from pgbackup_tui.core.connect import connect, target_from_dsn
from pgbackup_tui.core.identifiers import QualifiedName, always_quote, parse_qualified_name, printable
from pgbackup_tui.core.pgtools import find_client_tools
from pgbackup_tui.core.sandbox import Sandbox
from pgbackup_tui.core.server_text import session_client_encoding
from pgbackup_tui.ui.inspection import inspect_database, inspect_server


@dataclass(frozen=True)
class Case:
    """One server encoding and what we store in it, as that encoding's bytes."""

    encoding: str
    codec: str  # Python's codec for the bytes; SQL_ASCII: what a session gives us (UTF-8 + surrogates)
    schema: bytes
    table: bytes  # the one a --table selects
    other: bytes  # a second table in the same schema, for exclusions
    values: tuple[bytes, ...]

    def text(self, raw: bytes) -> str:
        """What our sessions hand back for these stored bytes."""
        return raw.decode(self.codec, "surrogateescape")

    def qualified(self, raw_table: bytes) -> QualifiedName:
        return QualifiedName(self.text(self.schema), self.text(raw_table))


CASES = [
    Case("SQL_ASCII", "utf-8", b"s\xe9ma", b"t\xff\xfe", b"caf\xc3\xa9 \xe9",
         (b"bytes \xe9\xff\x80 and UTF-8 \xc3\xa9", b"\x81\xfe\"'\\ \xa0")),
    Case("LATIN1", "latin-1", "café".encode("latin-1"), "Été".encode("latin-1"),
         "Ölberg".encode("latin-1"), ("naïve façade ÿ ß".encode("latin-1"), "«»¤±".encode("latin-1"))),
    # SS2 (half-width katakana) and SS3 (JIS X 0212: 丂) characters as well as JIS X 0208.
    Case("EUC_JP", "euc_jp", "日本".encode("euc_jp"), "東京".encode("euc_jp"), "大阪".encode("euc_jp"),
         ("こんにちは ｶﾀｶﾅ 丂".encode("euc_jp"), "漢字テーブル".encode("euc_jp"))),
    # 0x81 and 0x8d are valid WIN1252 to the server but have no UTF8 equivalent: pg_dump must not convert.
    Case("WIN1252", "cp1252", "Ümlaut".encode("cp1252"), "€uro".encode("cp1252"), "Œuvre".encode("cp1252"),
         (b"dirty \x81 and \x8d", "€ ‰ œ".encode("cp1252"))),
]


def _quote(raw: bytes) -> bytes:
    return b'"' + raw.replace(b'"', b'""') + b'"'


def _literal(raw: bytes) -> bytes:
    return b"'" + raw.replace(b"'", b"''") + b"'"


def _raw_session(sandbox: Sandbox, dbname: str) -> psycopg.Connection:
    """A session that converts nothing: text in and out as the database's own bytes."""
    return psycopg.connect(sandbox.dsn(dbname), autocommit=True, client_encoding="SQL_ASCII")


def create_encoded_database(sandbox: Sandbox, name: str, encoding: str) -> None:
    sandbox.psql(f"CREATE DATABASE {always_quote(name)} ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C' "
                 "TEMPLATE template0")


def load_case(sandbox: Sandbox, dbname: str, case: Case) -> None:
    schema = _quote(case.schema)
    with _raw_session(sandbox, dbname) as conn:
        conn.execute(b"CREATE SCHEMA " + schema)
        for table in (case.table, case.other):
            qualified = schema + b"." + _quote(table)
            conn.execute(b"CREATE TABLE " + qualified + b" (id int PRIMARY KEY, t text, n varchar(40))")
            for i, value in enumerate(case.values, start=1):
                conn.execute(b"INSERT INTO " + qualified + b" VALUES (%d, " % i + _literal(value) + b", "
                             + _literal(table) + b")")
        conn.execute(b"COMMENT ON TABLE " + schema + b"." + _quote(case.table) + b" IS " + _literal(case.values[-1]))
        conn.execute(b"ANALYZE")


def fingerprint(sandbox: Sandbox, dbname: str) -> dict[tuple[bytes, bytes], tuple[int, str, bytes | None]]:
    """(schema, table) bytes -> (rows, md5 of the rows' bytes, comment bytes), for every user table."""
    with _raw_session(sandbox, dbname) as conn:
        tables = conn.execute(
            """SELECT convert_to(n.nspname, getdatabaseencoding()), convert_to(c.relname, getdatabaseencoding()),
                      convert_to(obj_description(c.oid, 'pg_class'), getdatabaseencoding())
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')""").fetchall()
        result = {}
        for schema, table, comment in tables:
            counted = conn.execute(
                b"SELECT count(*), md5(coalesce(string_agg(convert_to(r::text, getdatabaseencoding()), '\\x0a'::bytea"
                b" ORDER BY r.id), ''::bytea)) FROM " + _quote(schema) + b"." + _quote(table) + b" r").fetchone()
            assert counted is not None  # an aggregate without GROUP BY returns one row
            rows, digest = counted
            result[(bytes(schema), bytes(table))] = (rows, digest.decode() if isinstance(digest, bytes) else digest,
                                                     bytes(comment) if comment is not None else None)
        return result


@pytest.fixture(params=CASES, ids=[case.encoding for case in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


@pytest.fixture
def encoded_dbs(sandbox: Sandbox, case: Case) -> Iterator[tuple[str, str]]:
    """(source database loaded with the case, an empty database of the same encoding), dropped afterwards."""
    names = ["t_" + uuid.uuid4().hex[:8], "t_" + uuid.uuid4().hex[:8]]
    try:
        for name in names:
            create_encoded_database(sandbox, name, case.encoding)
        load_case(sandbox, names[0], case)
        yield names[0], names[1]
    finally:
        for name in names:
            sandbox.drop_database(name)


def dump(sandbox: Sandbox, dbname: str, *options: str, env: dict[str, str] | None = None) -> Path:
    result = run_cli("dump", "--dsn", sandbox.dsn(), "--db", dbname, "--progress", "none", *options, env=env)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def restore(sandbox: Sandbox, archive: Path, dbname: str, *options: str) -> None:
    result = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", dbname, "--progress", "none", *options)
    assert result.returncode == 0, result.stderr


# -- reading catalog text ------------------------------------------------------------------------

def test_inspect_reads_names_and_data_as_stored(sandbox: Sandbox, case: Case, encoded_dbs: tuple[str, str]) -> None:
    source, _ = encoded_dbs
    target = target_from_dsn(sandbox.dsn())
    with connect(target) as conn:
        databases = {db.name: db for db in inspect.list_databases(conn)}
    assert databases[source].encoding == case.encoding
    with connect(target, source) as conn:
        # Our sessions: converted to UTF8 where the server can; SQL_ASCII's bytes as they are.
        assert session_client_encoding(conn) == ("SQL_ASCII" if case.encoding == "SQL_ASCII" else "UTF8")
        schemas = {s.name: s for s in inspect.list_schemas(conn)}
        assert schemas[case.text(case.schema)].table_count == 2
        tables = {t.qualified for t in inspect.list_tables(conn, schema=case.text(case.schema))}
        assert tables == {case.qualified(case.table), case.qualified(case.other)}
        # A name as a user writes it on the command line finds exactly its table.
        written = str(case.qualified(case.table))
        found, missing = inspect.find_tables(conn, [parse_qualified_name(written)])
        assert [t.qualified for t in found] == [case.qualified(case.table)] and missing == []
        # Text other than names, and a str sent back as a parameter, are the stored bytes too.
        comment = conn.execute("SELECT obj_description(c.oid, 'pg_class') FROM pg_class c WHERE c.relname = %s",
                               (case.text(case.table),)).fetchone()
        assert comment == (case.text(case.values[-1]),)


def test_tui_data_layer_lists_the_names(sandbox: Sandbox, case: Case, encoded_dbs: tuple[str, str]) -> None:
    source, _ = encoded_dbs
    target = target_from_dsn(sandbox.dsn())
    server = inspect_server(target)
    assert source in {db.name for db in server.databases}
    snapshot = inspect_database(target, source)
    schema = case.text(case.schema)
    assert schema in {s.name for s in snapshot.schemas}
    assert {t.name for t in snapshot.tables_in(schema)} == {case.text(case.table), case.text(case.other)}


# -- dump and restore ----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["custom", "plain"])
def test_whole_dump_restores_the_same_bytes(sandbox: Sandbox, home: Path, case: Case,
                                            encoded_dbs: tuple[str, str], fmt: str) -> None:
    source, copy = encoded_dbs
    archive = dump(sandbox, source, "--format", fmt)
    restore(sandbox, archive, copy)
    expected = fingerprint(sandbox, source)
    assert (case.schema, case.table) in expected and expected[(case.schema, case.table)][0] == len(case.values)
    assert fingerprint(sandbox, copy) == expected


def test_table_selection_dumps_exactly_that_table(sandbox: Sandbox, home: Path, case: Case,
                                                  encoded_dbs: tuple[str, str]) -> None:
    source, copy = encoded_dbs
    # The user's own client encoding must not change what the name means.
    env = {**os.environ, "PGCLIENTENCODING": "LATIN1"}
    archive = dump(sandbox, source, "--table", str(case.qualified(case.table)), env=env)
    restore(sandbox, archive, copy)
    key = (case.schema, case.table)
    assert fingerprint(sandbox, copy) == {key: fingerprint(sandbox, source)[key]}


def test_exclude_table_leaves_out_that_table(sandbox: Sandbox, home: Path, case: Case,
                                             encoded_dbs: tuple[str, str]) -> None:
    source, copy = encoded_dbs
    archive = dump(sandbox, source, "--exclude-table", str(case.qualified(case.other)))
    restore(sandbox, archive, copy)
    expected = fingerprint(sandbox, source)
    del expected[(case.schema, case.other)]
    assert fingerprint(sandbox, copy) == expected


def test_restore_table_from_a_whole_archive(sandbox: Sandbox, home: Path, case: Case,
                                            encoded_dbs: tuple[str, str]) -> None:
    source, copy = encoded_dbs
    archive = dump(sandbox, source)
    restore(sandbox, archive, copy, "--table", str(case.qualified(case.table)))
    key = (case.schema, case.table)
    assert fingerprint(sandbox, copy) == {key: fingerprint(sandbox, source)[key]}


def test_restore_table_from_an_archive_pg_dump_wrote(sandbox: Sandbox, home: Path, case: Case,
                                                     encoded_dbs: tuple[str, str], tmp_path: Path) -> None:
    """An archive from anyone's pg_dump, in the database's own encoding: --table still finds its names."""
    source, copy = encoded_dbs
    archive = tmp_path / "native.dump"
    tools = find_client_tools(sandbox.major)
    env = {**os.environ, "PGCLIENTENCODING": case.encoding}
    subprocess.run([tools.pg_dump, "--format=custom", f"--file={archive}", f"--dbname={sandbox.dsn(source)}"],
                   check=True, env=env, capture_output=True)
    restore(sandbox, archive, copy, "--table", str(case.qualified(case.table)))
    key = (case.schema, case.table)
    assert fingerprint(sandbox, copy) == {key: fingerprint(sandbox, source)[key]}


# -- showing such names ----------------------------------------------------------------------------

def test_printable_shows_bytes_that_are_not_utf8() -> None:
    name = b'"s\xe9"."caf\xc3\xa9"'.decode("utf-8", "surrogateescape")
    assert printable(name) == '"s\\xe9"."café"'
    assert printable(name).encode("utf-8")  # safe for any log or terminal
    assert printable("日本.東京") == "日本.東京"


@pytest.mark.parametrize("case", [CASES[0]], ids=["SQL_ASCII"])  # only SQL_ASCII names hold non-text bytes
def test_names_that_are_not_utf8_print_as_escapes(sandbox: Sandbox, home: Path, encoded_dbs: tuple[str, str],
                                                  case: Case) -> None:
    """A terminal that takes only UTF-8 gets \\xNN for a SQL_ASCII name's other bytes, never a traceback."""
    source, copy = encoded_dbs
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    table = str(case.qualified(case.table))
    archive = dump(sandbox, source, "--table", table, env=env)
    assert printable(table) == '"s\\xe9ma"."t\\xff\\xfe"'
    result = run_cli("dump", "--dsn", sandbox.dsn(), "--db", source, "--progress", "none", "--table", table, env=env)
    assert result.returncode == 0 and 'added schema "s\\xe9ma"' in result.stderr, result.stderr
    restore(sandbox, archive, copy)
    key = (case.schema, case.table)
    assert fingerprint(sandbox, copy) == {key: fingerprint(sandbox, source)[key]}


# -- the other major -----------------------------------------------------------------------------

def test_the_other_major_round_trips_every_encoding_with_create(other_sandbox: Sandbox, home: Path,
                                                                  case: Case) -> None:
    """On the second installed major: a whole dump and a --table selection of each encoding's
    database come back byte for byte, through `restore --create` (which keeps the encoding)."""
    source = "t_" + uuid.uuid4().hex[:8]
    copies = ["t_" + uuid.uuid4().hex[:8], "t_" + uuid.uuid4().hex[:8]]
    create_encoded_database(other_sandbox, source, case.encoding)
    try:
        load_case(other_sandbox, source, case)
        for copy, options in zip(copies, ((), ("--table", str(case.qualified(case.table)))), strict=True):
            result = run_cli("dump", "--dsn", other_sandbox.dsn(), "--bin-dir", str(other_sandbox.bin_dir),
                             "--db", source, "--progress", "none", *options)
            assert result.returncode == 0, result.stderr
            archive = Path(result.stdout.strip().splitlines()[-1])
            restored = run_cli("restore", str(archive), "--dsn", other_sandbox.dsn(), "--bin-dir",
                               str(other_sandbox.bin_dir), "--db", copy, "--create", "--progress", "none")
            assert restored.returncode == 0, restored.stderr
            encoding = other_sandbox.psql(f"SELECT pg_encoding_to_char(encoding) FROM pg_database "
                                          f"WHERE datname = '{copy}'").strip()
            assert encoding == case.encoding
        expected = fingerprint(other_sandbox, source)
        assert fingerprint(other_sandbox, copies[0]) == expected
        key = (case.schema, case.table)
        assert fingerprint(other_sandbox, copies[1]) == {key: expected[key]}
    finally:
        for name in [source, *copies]:
            other_sandbox.drop_database(name)


def test_a_server_error_in_the_database_s_encoding_reads_as_its_words(sandbox: Sandbox, home: Path) -> None:
    """A server error naming a LATIN1 table reads as its name. (A QA run saw "Caf\ufffd" from a
    set's member; here pg_dump's lines come in UTF-8, so this checks the outcome, not the
    fallback to the database's encoding that Job.run_process now has for lines that are not.)"""
    name, role = "l1_" + uuid.uuid4().hex[:6], "nopriv_" + uuid.uuid4().hex[:6]
    sandbox.psql(f"CREATE DATABASE {name} ENCODING 'LATIN1' LOCALE 'C' TEMPLATE template0")
    try:
        sandbox.psql(f'CREATE TABLE "Café" (x int); CREATE ROLE {role} LOGIN', name)
        dumped = run_cli("dump", "--dsn", sandbox.dsn(name) + f" user={role}", "--db", name, "--progress", "none")
        assert dumped.returncode == 1, dumped.stderr
        assert "permission denied for table Café" in dumped.stderr, dumped.stderr
    finally:
        sandbox.drop_database(name)
        sandbox.psql(f"DROP ROLE IF EXISTS {role}")


def test_a_plain_dump_verifies_with_its_names_in_its_encoding(sandbox: Sandbox, home: Path, case: Case,
                                                              encoded_dbs: tuple[str, str]) -> None:
    """The dump records a plain dump's rows by names read in the database's encoding; `backups verify`
    (and adopt, and a drill's expected rows) counted them again reading the names as UTF-8: a sound
    plain dump of a LATIN1, EUC_JP or WIN1252 database with a non-ASCII table FAILED its verification,
    its tables "not in the archive". Both read the script's own `SET client_encoding`."""
    source, _ = encoded_dbs
    archive = dump(sandbox, source, "--format", "plain")
    verified = run_cli("backups", "verify", str(archive))
    assert verified.returncode == 0, verified.stdout + verified.stderr
