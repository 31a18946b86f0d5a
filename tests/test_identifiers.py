"""Qualified names as SQL writes them -> exact pg_dump patterns.

The unit tests pin the parsing rules (fold unquoted ASCII, keep quoted parts, `""` is a quote,
`public` by default). The integration tests hold those rules against PostgreSQL itself: the
server's own parse_ident() must agree with us, str() must name the same table in real SQL, and
the real pg_dump, given `.pattern`, must dump exactly that table and none of the sample's decoys
(tables a naive pattern would also catch).
"""

from __future__ import annotations

import re
import subprocess

import pytest

from pgbackup_tui.core.connect import connect, target_from_dsn
from pgbackup_tui.core.errors import UsageError
from pgbackup_tui.core.identifiers import (
    QualifiedName,
    always_quote,
    parse_qualified_name,
    parse_schema_name,
    quote_ident,
)
from pgbackup_tui.core.pgtools import find_client_tools
from pgbackup_tui.core.sandbox import Sandbox
from pgbackup_tui.core.sample import SAMPLE_AWKWARD_TABLES

SAMPLE_DB = "shop"

PARSED = [
    ("public.orders", QualifiedName("public", "orders")),
    ("Orders", QualifiedName("public", "orders")),
    ("PUBLIC.ORDERS", QualifiedName("public", "orders")),
    ('"Sales & Ops"."Order Items"', QualifiedName("Sales & Ops", "Order Items")),
    ('public."star*name"', QualifiedName("public", "star*name")),
    ('"a""b"."x.y"', QualifiedName('a"b', "x.y")),
    ('"Mixed Case"', QualifiedName("public", "Mixed Case")),
    # PostgreSQL (UTF-8) folds ASCII letters only: É stays, C/A/F/X fold.
    ("café.Été", QualifiedName("café", "Été")),
    ("CAFÉ.X", QualifiedName("cafÉ", "x")),
    ("  public . orders  ", QualifiedName("public", "orders")),
    ('  "Sales & Ops" .\t"Order Items" ', QualifiedName("Sales & Ops", "Order Items")),
    ("inventory.stock_2$", QualifiedName("inventory", "stock_2$")),
]


@pytest.mark.parametrize(("text", "expected"), PARSED, ids=[t for t, _ in PARSED])
def test_parse_qualified_name(text: str, expected: QualifiedName) -> None:
    assert parse_qualified_name(text) == expected


def test_unqualified_name_uses_the_given_default_schema() -> None:
    assert parse_qualified_name("Orders", default_schema="Sales & Ops") == QualifiedName("Sales & Ops", "orders")


@pytest.mark.parametrize("text", ["a.b.c", 'shop."Sales & Ops"."Order Items"'])
def test_three_part_names_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_qualified_name(text)
    message = str(caught.value)
    assert "3 parts" in message
    assert "schema.table" in message and "--db" in message


@pytest.mark.parametrize(
    ("text", "quoted_hint"),
    [
        ("public.star*name", '"star*name"'),
        ("what?", '"what?"'),
        ("public.Sales&Ops", '"Sales&Ops"'),
    ],
)
def test_unquoted_wildcards_and_specials_are_refused_with_the_quoted_form(text: str, quoted_hint: str) -> None:
    """A wildcard left unquoted would select other tables; we say how to quote it instead."""
    with pytest.raises(UsageError) as caught:
        parse_qualified_name(text)
    message = str(caught.value)
    assert "double quotes" in message
    assert quoted_hint in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty name"),
        ("   ", "empty name"),
        ('"unterminated', "unterminated quote"),
        ('public."unterminated', "unterminated quote"),
        ("a..b", "missing identifier"),
        ("public.", "missing identifier"),
        (".orders", "missing identifier"),
        ('""', "empty quoted identifier"),
        ('a"b"', "unexpected"),
        ("public orders", "unexpected"),
    ],
)
def test_malformed_names_are_one_line_usage_errors(text: str, fragment: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_qualified_name(text)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        (QualifiedName("public", "orders"), '"public"."orders"'),
        (QualifiedName("Sales & Ops", "Order Items"), '"Sales & Ops"."Order Items"'),
        (QualifiedName("public", "star*name"), '"public"."star*name"'),
        (QualifiedName("public", 'quote"name'), '"public"."quote""name"'),
        (QualifiedName('a"b', "x.y"), '"a""b"."x.y"'),
        (QualifiedName("café", "Été"), '"café"."Été"'),
    ],
)
def test_pattern_always_double_quotes_and_doubles_inner_quotes(name: QualifiedName, pattern: str) -> None:
    assert name.pattern == pattern
    assert name.sql == pattern


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        (QualifiedName("public", "orders"), "public.orders"),
        (QualifiedName("public", "Orders"), 'public."Orders"'),
        (QualifiedName("Sales & Ops", "Order Items"), '"Sales & Ops"."Order Items"'),
        (QualifiedName("public", 'quote"name'), 'public."quote""name"'),
        (QualifiedName("dot", "name"), "dot.name"),
        (QualifiedName("public", "dot.name"), 'public."dot.name"'),
    ],
)
def test_str_is_sql_quoted_only_where_needed(name: QualifiedName, shown: str) -> None:
    assert str(name) == shown


ROUND_TRIP = [
    QualifiedName("public", "orders"),
    QualifiedName("Sales & Ops", "Order Items"),
    QualifiedName("public", "star*name"),
    QualifiedName("public", "what?"),
    QualifiedName("public", 'quote"name'),
    QualifiedName('a"b', "x.y"),
    QualifiedName("café", "Été"),
    QualifiedName("café", "été"),
    QualifiedName("public", "Mixed Case"),
    QualifiedName("public", " leading space"),
    QualifiedName("public", "1starts_with_digit"),
    QualifiedName("public", "has$dollar"),
]


@pytest.mark.parametrize("name", ROUND_TRIP, ids=[name.pattern for name in ROUND_TRIP])
def test_str_round_trips_through_parse(name: QualifiedName) -> None:
    assert parse_qualified_name(str(name)) == name
    assert parse_qualified_name(name.pattern) == name


def test_quote_helpers() -> None:
    assert quote_ident("orders") == "orders"
    assert quote_ident("Orders") == '"Orders"'
    assert quote_ident("été") == '"été"'  # non-ASCII is quoted: exact on any server encoding
    assert always_quote("orders") == '"orders"'
    assert always_quote('a"b') == '"a""b"'


def test_parse_schema_name() -> None:
    assert parse_schema_name('"Sales & Ops"') == "Sales & Ops"
    assert parse_schema_name("Inventory") == "inventory"
    with pytest.raises(UsageError):
        parse_schema_name("a.b")
    # `--schema ""` was told to "write a table as schema.table" (QA).
    with pytest.raises(UsageError, match="empty schema name") as refused:
        parse_schema_name(" ")
    assert "table" not in str(refused.value)


# -- against the real server --------------------------------------------------------------------

AWKWARD_AND_DECOYS = sorted({name for awkward, decoys in SAMPLE_AWKWARD_TABLES.items() for name in [awkward, *decoys]})

_CREATE_TABLE = re.compile(r"^CREATE TABLE (.+) \($")


def _tables_created_by_pg_dump(sandbox: Sandbox, *pattern_args: str) -> set[QualifiedName]:
    """Run the real pg_dump --schema-only with the given -t arguments; the tables it creates."""
    pg_dump = find_client_tools(sandbox.major).pg_dump
    argv = [pg_dump, f"--dbname={sandbox.dsn(SAMPLE_DB)}", "--schema-only", *pattern_args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    created = set()
    for line in result.stdout.splitlines():
        match = _CREATE_TABLE.match(line)
        if match:
            created.add(parse_qualified_name(match.group(1)))
    return created


@pytest.mark.parametrize("text", AWKWARD_AND_DECOYS)
def test_pg_dump_pattern_selects_exactly_that_table(sandbox: Sandbox, text: str) -> None:
    """The heart of "exact names": the real pg_dump with our pattern creates that one table."""
    name = parse_qualified_name(text)
    created = _tables_created_by_pg_dump(sandbox, f"--table={name.pattern}")
    assert created == {name}
    decoys = {parse_qualified_name(d) for d in SAMPLE_AWKWARD_TABLES.get(text, [])}
    assert not created & decoys


def test_naive_patterns_would_catch_the_decoys(sandbox: Sandbox) -> None:
    """Control: the decoys are real traps, so the exact-selection test above can fail."""
    star = _tables_created_by_pg_dump(sandbox, "--table=public.star*name")
    assert {parse_qualified_name(d) for d in SAMPLE_AWKWARD_TABLES['public."star*name"']} <= star
    what = _tables_created_by_pg_dump(sandbox, "--table=public.what?")
    assert parse_qualified_name("public.whatx") in what


@pytest.mark.parametrize("text", sorted(SAMPLE_AWKWARD_TABLES))
def test_str_and_sql_name_the_same_table_in_real_sql(sandbox: Sandbox, text: str) -> None:
    """Each sample table stores, in source_table, its own name as SQL writes it."""
    name = parse_qualified_name(text)
    with connect(target_from_dsn(sandbox.dsn(SAMPLE_DB)), SAMPLE_DB) as conn:
        for spelling in (str(name), name.sql):
            rows = conn.execute(f"SELECT DISTINCT source_table FROM {spelling}").fetchall()
            assert rows == [(text,)], spelling


SERVER_AGREES = [
    "public.orders",
    "Orders",
    "PUBLIC.Orders",
    '"Sales & Ops"."Order Items"',
    'public."star*name"',
    '"a""b"."x.y"',
    "café.Été",
    "CAFÉ.X",
    "  public . orders ",
    'public."quote""name"',
]


def test_parsing_agrees_with_postgresql_parse_ident(sandbox: Sandbox) -> None:
    """PostgreSQL's own parse_ident() folds and unquotes the same way (UTF-8 database)."""
    with connect(target_from_dsn(sandbox.dsn(SAMPLE_DB)), SAMPLE_DB) as conn:
        for text in SERVER_AGREES:
            row = conn.execute("SELECT parse_ident(%s)", (text,)).fetchone()
            assert row is not None
            server_parts = row[0]
            ours = parse_qualified_name(text)
            expected = [ours.schema, ours.name] if len(server_parts) == 2 else [ours.name]
            assert server_parts == expected, text


def test_quote_ident_agrees_with_postgresql(sandbox: Sandbox) -> None:
    """Where we quote, PostgreSQL's quote_ident() quotes too (keywords aside: see below)."""
    names = ["orders", "_x", "x1", "Mixed", "café", "9lives", "with space", 'q"uote', "star*name", "dot.name"]
    with connect(target_from_dsn(sandbox.dsn(SAMPLE_DB)), SAMPLE_DB) as conn:
        for name in names:
            row = conn.execute("SELECT quote_ident(%s)", (name,)).fetchone()
            assert row is not None
            assert quote_ident(name) == row[0], name


def test_str_of_keyword_names_is_valid_sql(sandbox: Sandbox, empty_db: str) -> None:
    sandbox.psql('CREATE SCHEMA "order"; CREATE TABLE "order"."select" (x integer);', empty_db)
    name = QualifiedName("order", "select")
    with connect(target_from_dsn(sandbox.dsn(empty_db)), empty_db) as conn:
        assert conn.execute(f"SELECT count(*) FROM {name}").fetchone() == (0,)


def test_one_line_escapes_every_control_character() -> None:
    """A name is shown on one line, and never as a terminal's command: C0 (a line break, ESC) and
    DEL were escaped, C1 (U+009B, CSI: some terminals obey it as ESC [) went through (review)."""
    from pgbackup_tui.core.identifiers import one_line

    assert one_line("a\nb\tc\x1b[31m\x7f") == "a\\nb\\tc\\x1b[31m\\x7f"
    assert one_line("a\x9b31m\x85z") == "a\\x9b31m\\x85z"
    assert one_line("café ß €") == "café ß €"  # printable text stays as it is
