"""core/inspect.py against the real sandbox cluster and its sample database `shop`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from pgbackup_tui.core import database_contents, inspect
from pgbackup_tui.core.identifiers import QualifiedName, parse_qualified_name
from pgbackup_tui.core.sandbox import Sandbox
from pgbackup_tui.core.sample import SAMPLE_AWKWARD_TABLES

SAMPLE_DB = "shop"  # loaded by the session fixture in conftest.py


@pytest.fixture(scope="module")
def shop(sandbox: Sandbox) -> Iterator[psycopg.Connection]:
    with psycopg.connect(sandbox.dsn(SAMPLE_DB), autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def shop_tables(shop: psycopg.Connection) -> dict[QualifiedName, inspect.TableInfo]:
    return {table.qualified: table for table in inspect.list_tables(shop)}


def q(text: str) -> QualifiedName:
    return parse_qualified_name(text)


def test_server_info_matches_the_sandbox(sandbox: Sandbox, shop: psycopg.Connection) -> None:
    info = inspect.server_info(shop)
    assert info.major == sandbox.major
    assert info.version_num // 10000 == sandbox.major
    assert info.version.startswith(f"{sandbox.major}.")
    assert (info.current_user, info.is_superuser, info.in_recovery) == ("postgres", True, False)


def test_list_databases_sizes_owners_and_templates(shop: psycopg.Connection) -> None:
    databases = {db.name: db for db in inspect.list_databases(shop)}
    assert (databases[SAMPLE_DB].size_bytes or 0) > 1_000_000
    assert databases[SAMPLE_DB].owner == "postgres"
    assert databases[SAMPLE_DB].encoding == "UTF8"
    assert databases[SAMPLE_DB].allow_connections and not databases[SAMPLE_DB].is_template
    assert "template0" not in databases and "template1" not in databases

    with_templates = {db.name: db for db in inspect.list_databases(shop, include_templates=True)}
    assert with_templates["template0"].is_template
    assert not with_templates["template0"].allow_connections
    assert json.loads(json.dumps(databases[SAMPLE_DB].as_dict()))["name"] == SAMPLE_DB


def test_database_size_is_none_without_connect_privilege(sandbox: Sandbox, empty_db: str) -> None:
    role, password = "r_" + uuid.uuid4().hex[:8], uuid.uuid4().hex
    sandbox.create_role(role, password)
    try:
        sandbox.psql(f'REVOKE CONNECT ON DATABASE "{empty_db}" FROM PUBLIC;')
        with psycopg.connect(sandbox.dsn("postgres", tcp=True), user=role, password=password,
                             autocommit=True) as conn:
            databases = {db.name: db for db in inspect.list_databases(conn)}
            assert inspect.server_info(conn).is_superuser is False
        assert databases[empty_db].size_bytes is None
        assert (databases[SAMPLE_DB].size_bytes or 0) > 0
    finally:
        sandbox.psql(f'DROP ROLE "{role}";')


def test_list_schemas_shows_user_schemas_only(shop: psycopg.Connection) -> None:
    schemas = {schema.name: schema for schema in inspect.list_schemas(shop)}
    assert {"Sales & Ops", "café", "inventory", "dot", "public"} <= set(schemas)
    assert not {name for name in schemas if name.startswith("pg_") or name == "information_schema"}
    # Tables, partitioned tables, partitions and matviews count; views do not.
    assert schemas["café"].table_count == 2
    assert schemas["Sales & Ops"].table_count == 4  # customers, orders, "Order Items", "order items"
    assert schemas["public"].owner == "pg_database_owner"


def test_list_tables_kinds_partitions_and_matview(shop_tables: dict) -> None:
    measurements = shop_tables[q("public.measurements")]
    assert measurements.kind == "partitioned" and measurements.parent is None
    partitions = [t for t in shop_tables.values() if t.parent == "public.measurements"]
    assert sorted(t.name for t in partitions) == [
        "measurements_2024_q1", "measurements_2024_q2", "measurements_2024_q3", "measurements_default",
    ]
    assert {t.kind for t in partitions} == {"partition"}
    assert partitions[0].parent_qualified == q("public.measurements")
    assert shop_tables[q("public.daily_totals")].kind == "matview"
    assert shop_tables[q("public.events")].kind == "table"
    # Views are not tables.
    assert q("public.recent_events") not in shop_tables
    assert q('"Sales & Ops".open_orders') not in shop_tables


def test_list_tables_returns_awkward_names_exactly(shop_tables: dict) -> None:
    names = {(t.schema, t.name) for t in shop_tables.values()}
    assert {("public", "star*name"), ("public", 'quote"name'), ("café", "Été"), ("café", "été"),
            ("public", "dot.name"), ("dot", "name"), ("Sales & Ops", "Order Items")} <= names
    for awkward, decoys in SAMPLE_AWKWARD_TABLES.items():
        for name in [awkward, *decoys]:
            assert q(name) in shop_tables, name


def test_sizes_and_row_estimates(sandbox: Sandbox, shop_tables: dict) -> None:
    event_rows = int(sandbox.psql("SELECT count(*) FROM public.events", SAMPLE_DB))
    events = shop_tables[q("public.events")]
    assert events.data_bytes > 0
    assert events.total_bytes > events.data_bytes  # it has a primary key and two indexes
    assert events.rows_known
    assert abs(events.estimated_rows - event_rows) <= event_rows // 10

    # A partitioned table reports what its partitions hold.
    parent = shop_tables[q("public.measurements")]
    partitions = [t for t in shop_tables.values() if t.parent == "public.measurements"]
    assert parent.data_bytes == sum(t.data_bytes for t in partitions) > 0
    assert parent.total_bytes == sum(t.total_bytes for t in partitions)
    assert parent.estimated_rows == sum(t.estimated_rows for t in partitions)
    assert 5000 <= parent.estimated_rows <= 7000


def test_never_analyzed_table_reports_unknown_rows(sandbox: Sandbox, empty_db: str) -> None:
    # Autovacuum off for it: its 100 new rows are past the autoanalyze threshold (50 + 10 %), and an
    # autoanalyze between the INSERT and the look (CI, once) made it an analyzed table.
    sandbox.psql("CREATE TABLE fresh (id int) WITH (autovacuum_enabled = off); "
                 "INSERT INTO fresh SELECT generate_series(1, 100);", empty_db)
    with psycopg.connect(sandbox.dsn(empty_db), autocommit=True) as conn:
        (fresh,) = inspect.list_tables(conn)
        assert (fresh.estimated_rows, fresh.rows_known) == (0, False)
        assert fresh.data_bytes > 0
        conn.execute("ANALYZE fresh")
        (fresh,) = inspect.list_tables(conn)
    assert (fresh.estimated_rows, fresh.rows_known) == (100, True)


def test_list_tables_of_one_schema_is_exact(shop: psycopg.Connection) -> None:
    assert [t.name for t in inspect.list_tables(shop, "café")] == sorted(["Été", "été"], key=str.encode)
    assert inspect.list_tables(shop, "Café") == []
    tables = inspect.list_tables(shop, "Sales & Ops")
    assert {t.schema for t in tables} == {"Sales & Ops"} and len(tables) == 4


def test_list_tables_order_groups_schemas(shop: psycopg.Connection) -> None:
    schemas_in_order = [t.schema for t in inspect.list_tables(shop)]
    blocks = [s for i, s in enumerate(schemas_in_order) if i == 0 or schemas_in_order[i - 1] != s]
    assert len(blocks) == len(set(blocks))


def test_find_tables_reports_missing_exactly(shop: psycopg.Connection) -> None:
    wanted = [
        q('public."star*name"'),
        q('public."star?name"'),  # would match starxname etc. as a pattern; does not exist
        q("public.no_such_table"),
        q('"café"."Été"'),
        q("public.recent_events"),  # a view: not a table
        q('public."star*name"'),  # duplicate: collapsed
        q("public.measurements_2024_q1"),
    ]
    found, missing = inspect.find_tables(shop, wanted)
    assert [t.qualified for t in found] == [q('public."star*name"'), q('"café"."Été"'),
                                            q("public.measurements_2024_q1")]
    assert found[0].name == "star*name" and found[1].name == "Été"
    assert missing == [q('public."star?name"'), q("public.no_such_table"), q("public.recent_events")]
    assert inspect.find_tables(shop, []) == ([], [])


def test_find_tables_does_not_fold_case(shop: psycopg.Connection) -> None:
    found, missing = inspect.find_tables(shop, [QualifiedName("public", "Events"), QualifiedName("Public", "events")])
    assert found == [] and len(missing) == 2


def test_extensions_include_citext(shop: psycopg.Connection) -> None:
    extensions = {ext.name: ext for ext in inspect.list_extensions(shop)}
    assert extensions["citext"].schema == "public"
    assert extensions["citext"].version[0].isdigit()
    assert "plpgsql" in extensions


def test_database_exists(shop: psycopg.Connection) -> None:
    assert inspect.database_exists(shop, SAMPLE_DB)
    assert not inspect.database_exists(shop, SAMPLE_DB.upper())
    assert not inspect.database_exists(shop, "no_such_database")


def test_database_is_empty(sandbox: Sandbox, shop: psycopg.Connection, empty_db: str) -> None:
    assert not database_contents.database_is_empty(shop)
    counts = database_contents.user_object_counts(shop)
    assert counts["relations"] > 0 and counts["extensions"] == 1 and counts["large objects"] == 1

    with psycopg.connect(sandbox.dsn(empty_db), autocommit=True) as conn:
        assert database_contents.database_is_empty(conn)
        assert database_contents.user_object_counts(conn) == {}
        # Our own temp table is not part of the database.
        conn.execute("CREATE TEMP TABLE scratch (id int)")
        assert database_contents.database_is_empty(conn)
        conn.execute("CREATE SCHEMA lonely")
        assert database_contents.user_object_counts(conn) == {"schemas": 1}
        conn.execute("DROP SCHEMA lonely")
        conn.execute("DROP SCHEMA public; CREATE SCHEMA public")
        assert database_contents.database_is_empty(conn)
        conn.execute("CREATE FUNCTION public.f() RETURNS int LANGUAGE sql RETURN 1")
        assert database_contents.user_object_counts(conn) == {"functions": 1}
        conn.execute("DROP FUNCTION public.f()")
        # An extension (from template1, often) and its members are no collision for a restore: hstore
        # has functions, types (an array type), operators; citext too, and casts.
        conn.execute("CREATE EXTENSION citext; CREATE EXTENSION hstore")
        assert database_contents.database_is_empty(conn) and database_contents.restore_collisions(conn) == {}
        counts = database_contents.user_object_counts(conn)
        assert counts["extensions"] == 2 and counts["functions"] > 10 and counts["types"] >= 4, counts
        assert database_contents.extension_names(conn)[0].startswith("citext ")
        # A schema made for an extension is the user's (not a member): a restore's CREATE SCHEMA would collide.
        conn.execute("DROP EXTENSION hstore; CREATE SCHEMA store; CREATE EXTENSION hstore SCHEMA store")
        assert database_contents.restore_collisions(conn) == {"schemas": 1}
        conn.execute("DROP EXTENSION hstore; DROP SCHEMA store")
        # What the user made beside them still counts, even on an extension's type or in its schema.
        conn.execute("CREATE TABLE public.t (v citext)")
        assert set(database_contents.restore_collisions(conn)) == {"relations", "types"}, \
            database_contents.restore_collisions(conn)  # the table (its TOAST too), its row and array types


def test_table_info_as_dict_is_json(shop_tables: dict) -> None:
    data = json.loads(json.dumps(shop_tables[q('public."quote""name"')].as_dict()))
    assert data["name"] == 'quote"name' and data["qualified"] == 'public."quote""name"'


# TimescaleDB is not installed here. We rebuild the shape it gives a database (a hypertable
# whose chunks inherit from it in _timescaledb_internal, the timescaledb_information view) and
# stand in only for the pg_extension check; everything else runs on the real server.
_FAKE_TIMESCALE = """
CREATE SCHEMA timescaledb_information;
CREATE VIEW timescaledb_information.hypertables AS
    SELECT 'public'::name AS hypertable_schema, 'metrics'::name AS hypertable_name;
CREATE SCHEMA _timescaledb_internal;
CREATE TABLE public.metrics (at timestamptz NOT NULL, v int);
CREATE TABLE _timescaledb_internal._hyper_1_1_chunk () INHERITS (public.metrics);
CREATE TABLE _timescaledb_internal._hyper_1_2_chunk () INHERITS (public.metrics);
INSERT INTO _timescaledb_internal._hyper_1_1_chunk SELECT now(), g FROM generate_series(1, 500) g;
INSERT INTO _timescaledb_internal._hyper_1_2_chunk SELECT now(), g FROM generate_series(1, 700) g;
ANALYZE;
"""


def test_hypertables_are_detected_and_total_their_chunks(
    sandbox: Sandbox, empty_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.psql(_FAKE_TIMESCALE, empty_db)
    with psycopg.connect(sandbox.dsn(empty_db), autocommit=True) as conn:
        (plain,) = inspect.list_tables(conn)
        assert not plain.is_hypertable  # no extension: the view is not even read

        real_has_extension = inspect._has_extension
        monkeypatch.setattr(inspect, "_has_extension",
                            lambda c, name: name == "timescaledb" or real_has_extension(c, name))
        (metrics,) = inspect.list_tables(conn)  # chunks live in a hidden schema
        row = conn.execute(
            "SELECT sum(pg_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = '_timescaledb_internal' AND c.relkind = 'r'"
        ).fetchone()
        assert row is not None
        chunk_bytes = row[0]
        schemas = [s.name for s in inspect.list_schemas(conn)]
    assert metrics.is_hypertable and metrics.kind == "table"
    assert metrics.data_bytes == chunk_bytes > 0
    assert metrics.estimated_rows == 1200
    assert schemas == ["public"]


def test_broken_timescale_view_does_not_break_a_transaction(
    sandbox: Sandbox, empty_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.psql("CREATE TABLE t (id int);", empty_db)
    monkeypatch.setattr(inspect, "_has_extension", lambda c, name: True)
    with psycopg.connect(sandbox.dsn(empty_db)) as conn:  # not autocommit: one open transaction
        conn.execute("SELECT 1")
        (table,) = inspect.list_tables(conn)  # the view is missing: reading it fails inside
        assert table.name == "t" and not table.is_hypertable
        assert conn.execute("SELECT 2").fetchone() == (2,)  # the transaction is still usable


def test_a_locked_table_does_not_hold_up_the_listing(sandbox: Sandbox, empty_db: str) -> None:
    """pg_relation_size & co wait behind a table's exclusive lock: the tree said "loading…" until
    a long ALTER TABLE ended. The listing comes at once, its sizes from the catalog."""
    sandbox.psql("CREATE TABLE busy (i int, t text); INSERT INTO busy SELECT g, repeat('x', 500) "
                 "FROM generate_series(1, 2000) g; VACUUM ANALYZE busy", empty_db)
    with psycopg.connect(sandbox.dsn(empty_db), autocommit=True) as reader:
        exact = {t.name: t for t in inspect.list_tables(reader)}["busy"]
        with psycopg.connect(sandbox.dsn(empty_db)) as holder:
            holder.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
            reader.execute("SET statement_timeout = '20s'")  # without the fallback: an error, not a hang
            listed = {t.name: t for t in inspect.list_tables(reader)}["busy"]
            holder.rollback()
    assert listed.estimated_rows == exact.estimated_rows == 2000
    assert listed.data_bytes == exact.data_bytes > 0  # relpages after the VACUUM: the same pages
