"""A data-only archive (`dump --data-only`) restores the way a DBA uses one: its rows into the
tables of a database that has them, in one transaction, so the target ends loaded or as it was.
Against the sample database, whose awkward names, foreign keys and sequences all take part."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cliutil import run_cli
from dbcompare import table_fingerprints, user_tables
from pgbackup_tui.core.archive_scan import count_rows_in_chunks
from pgbackup_tui.core.cluster_file import created_in
from pgbackup_tui.core.identifiers import QualifiedName
from pgbackup_tui.core.pgtools import find_client_tools
from pgbackup_tui.core.plain_script import (file_chunks, scan_script, script_relations, without_settings,
                                             without_transactions)

SOURCE = "shop"


def _dump(sandbox, *options: str) -> str:
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--progress", "none", *options)
    assert dumped.returncode == 0, dumped.stderr
    return dumped.stdout.strip()


def _restore(sandbox, archive: str, dbname: str, *options: str):
    return run_cli("restore", archive, "--dsn", sandbox.dsn(), "--db", dbname, "--progress", "none", *options)


def _tables(sandbox) -> list[str]:
    """The sample's tables (not its materialized views: their rows come from REFRESH, not from data)."""
    matviews = set(sandbox.psql("SELECT format('%I.%I', schemaname, matviewname) FROM pg_matviews", SOURCE).split())
    return [t for t in user_tables(sandbox, SOURCE) if t not in matviews]


@pytest.fixture
def schema_only_copy(sandbox, home, fresh_db_name) -> str:
    """The sample's tables, empty: what a data-only archive loads into."""
    made = _restore(sandbox, _dump(sandbox, "--schema-only"), fresh_db_name, "--create")
    assert made.returncode == 0, made.stderr
    return fresh_db_name


# Both majors and both kinds of file, in two runs (each loads the sample's 300,000 wide rows three times).
@pytest.mark.parametrize(("cluster", "fmt"), [("sandbox", "custom"), ("other_sandbox", "plain")])
def test_rows_load_into_empty_tables_then_clean_reloads_them_without_doubling(request, cluster, home, fmt):
    sandbox = request.getfixturevalue(cluster)
    schema_only_copy = "data_only_target"
    made = _restore(sandbox, _dump(sandbox, "--schema-only"), schema_only_copy, "--create")
    assert made.returncode == 0, made.stderr
    try:
        _load_then_reload(sandbox, schema_only_copy, fmt)
    finally:
        sandbox.drop_database(schema_only_copy)


def _load_then_reload(sandbox, schema_only_copy: str, fmt: str) -> None:
    archive = _dump(sandbox, "--data-only", "--format", fmt)
    source = table_fingerprints(sandbox, SOURCE, _tables(sandbox))

    refused = _restore(sandbox, archive, "new_from_data_only", "--create")
    assert refused.returncode == 2 and "data-only archive" in refused.stderr and "--create" in refused.stderr

    loaded = _restore(sandbox, archive, schema_only_copy)
    assert loaded.returncode == 0, loaded.stderr
    assert table_fingerprints(sandbox, schema_only_copy, list(source)) == source

    again = _restore(sandbox, archive, schema_only_copy)
    assert again.returncode == 2 and "already has rows" in again.stderr and "--clean" in again.stderr
    assert again.stderr.count("\n") == 1

    reloaded = _restore(sandbox, archive, schema_only_copy, "--clean")
    assert reloaded.returncode == 0, reloaded.stderr
    assert table_fingerprints(sandbox, schema_only_copy, list(source)) == source


def test_what_would_be_lost_is_refused_and_a_failed_load_leaves_the_tables_as_they_were(sandbox, schema_only_copy):
    archive = _dump(sandbox, "--data-only")
    assert _restore(sandbox, archive, schema_only_copy).returncode == 0
    db = schema_only_copy
    before = table_fingerprints(sandbox, db, _tables(sandbox))

    # A table outside the archive points at one of its tables: emptying that one would lose its rows.
    sandbox.psql('CREATE TABLE public.notes (customer_id int REFERENCES "Sales & Ops".customers (id));'
                 "INSERT INTO public.notes SELECT min(id) FROM \"Sales & Ops\".customers", db)
    refused = _restore(sandbox, archive, db, "--clean")
    assert refused.returncode == 2, refused.stderr
    assert "notes_customer_id_fkey on public.notes" in refused.stderr and "not in the archive" in refused.stderr
    sandbox.psql("DROP TABLE public.notes", db)

    # A load that fails half-way (a row the target's new constraint rejects) is rolled back whole,
    # the emptying with it.
    sandbox.psql('ALTER TABLE "Sales & Ops"."Order Items" ADD CONSTRAINT no_rows CHECK (false) NOT VALID', db)
    failed = _restore(sandbox, archive, db, "--clean")
    assert failed.returncode == 1, failed.stderr
    assert "is unchanged (one transaction, rolled back)" in failed.stderr
    assert table_fingerprints(sandbox, db, _tables(sandbox)) == before
    sandbox.psql('ALTER TABLE "Sales & Ops"."Order Items" DROP CONSTRAINT no_rows', db)

    # A large object that holds data is not overwritten without --clean (the tables are empty now).
    sandbox.psql("TRUNCATE " + ", ".join(_tables(sandbox)), db)
    kept = _restore(sandbox, archive, db)
    assert kept.returncode == 2 and "large object" in kept.stderr and "already holds data" in kept.stderr


def test_table_picks_rows_of_those_tables_only(sandbox, schema_only_copy):
    archive = _dump(sandbox, "--data-only")
    tables = _tables(sandbox)
    loaded = _restore(sandbox, archive, schema_only_copy, "--table", "inventory.warehouses", "--dry-run")
    assert loaded.returncode == 0, loaded.stderr
    assert "load rows into 1 table(s)" in loaded.stdout + loaded.stderr
    # psql loads it in one transaction whatever --jobs says: a --jobs 2 went unused without a word (README audit).
    loaded = _restore(sandbox, archive, schema_only_copy, "--table", "inventory.warehouses", "--jobs", "2")
    assert loaded.returncode == 0, loaded.stderr
    assert "--jobs 2 is not used: a data-only archive's rows are loaded in one psql transaction" in loaded.stderr
    now = table_fingerprints(sandbox, schema_only_copy, tables)
    source = table_fingerprints(sandbox, SOURCE, tables)
    assert now["inventory.warehouses"] == source["inventory.warehouses"] != "0:"
    assert [t for t, rows in now.items() if rows != "0:"] == ["inventory.warehouses"]
    missing = _restore(sandbox, archive, schema_only_copy, "--table", "public.nowhere")
    assert missing.returncode == 2 and "public.nowhere" in missing.stderr


def test_table_loads_whatever_other_schemas_the_target_lacks_and_its_sequences_go_on(sandbox, schema_only_copy):
    # QA: `--table` was refused over rows of tables not asked for ("whose schema is not in the
    # target"), and once loaded it left the sequences the tables own at 1: the application's next
    # insert failed on a duplicate key.
    archive = _dump(sandbox, "--data-only")
    db = schema_only_copy
    sandbox.psql('DROP SCHEMA "café" CASCADE', db)  # the archive still has its tables' rows
    customers = '"Sales & Ops".customers'
    loaded = _restore(sandbox, archive, db, "--table", customers)
    assert loaded.returncode == 0, loaded.stderr
    assert table_fingerprints(sandbox, db, [customers]) == table_fingerprints(sandbox, SOURCE, [customers])
    new_id = sandbox.psql(f"INSERT INTO {customers} (email, full_name, region, created_at) "
                          "VALUES ('new@example.com', 'New', 'north', now()) RETURNING id", db).split()[0]
    assert int(new_id) == int(sandbox.psql(f"SELECT max(id) FROM {customers}", SOURCE)) + 1
    # The sequences of tables not asked for keep their values: orders' rows are not loaded.
    assert sandbox.psql("SELECT last_value FROM \"Sales & Ops\".orders_id_seq", db).strip() == "1"


def test_a_failure_after_the_large_objects_still_rolls_back_everything(sandbox, home, fresh_db_name):
    """pg_restore's script (and a plain file) wraps large objects in BEGIN/COMMIT of its own: that
    COMMIT must not end the load's one transaction. The archive here has no manifest (a foreign
    one): it is known as data-only from its TOC. Its last statement, a grant to a role that is gone
    by restore time, fails after the large objects: the target keeps its own rows."""
    role = f"r_{fresh_db_name}"
    sandbox.create_database(fresh_db_name)
    sandbox.psql(f"CREATE ROLE {role}; CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);"
                 f"SELECT lo_from_bytea(0, 'archived'); "
                 f"DO $$ BEGIN EXECUTE format('GRANT SELECT ON LARGE OBJECT %s TO {role}', "
                 "(SELECT max(oid) FROM pg_largeobject_metadata)); END $$", fresh_db_name)
    archive = Path(run_cli("dump", "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--data-only",
                           "--progress", "none").stdout.strip())
    Path(f"{archive}.manifest.json").unlink()
    sandbox.psql(f"DROP OWNED BY {role}; DROP ROLE {role}", fresh_db_name)
    sandbox.psql("TRUNCATE t; INSERT INTO t VALUES (42); SELECT lo_unlink(oid) FROM pg_largeobject_metadata",
                 fresh_db_name)

    failed = _restore(sandbox, str(archive), fresh_db_name, "--clean")
    assert failed.returncode == 1, failed.stderr
    assert role in failed.stderr and "unchanged (one transaction, rolled back)" in failed.stderr
    assert sandbox.psql("SELECT string_agg(x::text, ',') FROM t", fresh_db_name).strip() == "42"
    assert sandbox.psql("SELECT count(*) FROM pg_largeobject_metadata", fresh_db_name).strip() == "0"


def test_a_foreign_plain_data_only_file_loads_through_a_partitioned_root(sandbox, home, fresh_db_name):
    """pg_dump --data-only --load-via-partition-root, plain, by hand (no manifest): known as
    data-only by its first entry; its COPY goes into the partitioned root, whose rows (its
    partitions') count for "already has rows", and --clean empties the partitions too."""
    sandbox.create_database(fresh_db_name)
    sandbox.psql("CREATE TABLE m (day date, v int) PARTITION BY RANGE (day);"
                 "CREATE TABLE m_1 PARTITION OF m FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');"
                 "CREATE TABLE m_2 PARTITION OF m FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');"
                 "INSERT INTO m SELECT '2026-01-01'::date + g, g FROM generate_series(0, 50) g", fresh_db_name)
    script = home / "m.sql"
    subprocess.run([find_client_tools(sandbox.major).pg_dump, "--data-only", "--load-via-partition-root",
                    "--file", str(script), "--dbname", sandbox.dsn(fresh_db_name)], check=True)
    assert b"COPY public.m " in script.read_bytes()
    count = "SELECT count(*) || ':' || sum(v) FROM m"
    source = sandbox.psql(count, fresh_db_name).strip()

    refused = _restore(sandbox, str(script), fresh_db_name)
    assert refused.returncode == 2 and "table public.m" in refused.stderr and "already has rows" in refused.stderr
    reloaded = _restore(sandbox, str(script), fresh_db_name, "--clean")
    assert reloaded.returncode == 0, reloaded.stderr
    assert sandbox.psql(count, fresh_db_name).strip() == source  # emptied first: not doubled


def test_a_script_is_read_in_its_own_encoding_and_its_transactions_left_out_but_not_its_rows(tmp_path):
    script = tmp_path / "rows.sql"
    script.write_bytes(b"SET client_encoding = 'LATIN1';\n"
                       b'COPY public."caf\xe9" (a) FROM stdin;\nBEGIN;\nCOMMIT;\n\\.\n'
                       b"INSERT INTO public.t VALUES (1);\nINSERT INTO public.t VALUES (2);\n"
                       b"BEGIN;\nSELECT pg_catalog.lo_create('123');\nCOMMIT;\n")
    found = scan_script(script)
    assert [str(t) for t in found.tables] == ['public."café"', "public.t"]
    assert found.large_objects == [123] and found.has_transactions
    fed = b"".join(without_transactions(script))
    # The rows of COPY pass as they are, even one that reads "BEGIN;"; the file's own BEGIN/COMMIT do not.
    assert fed == script.read_bytes().replace(b"BEGIN;\nSELECT", b"SELECT").replace(b"');\nCOMMIT;\n", b"');\n")
    # In batches of whole lines, not one line at a time (each a hop to a thread and a write to psql's
    # pipe: a load of 1.5M rows took 150 s where psql alone takes 8).
    many = tmp_path / "many.sql"
    many.write_bytes(b"BEGIN;\nCOPY public.t (a) FROM stdin;\n" + b"1\n" * 200_000 + b"\\.\nCOMMIT;\n")
    batches = list(without_transactions(many))
    assert len(batches) == 1 and batches[0] == many.read_bytes().removeprefix(b"BEGIN;\n").removesuffix(b"COMMIT;\n")


def test_a_copy_statement_over_lines_is_one_statement_and_its_rows_pass_untouched(tmp_path):
    """A newline in a quoted table or column name puts pg_dump's COPY statement on several lines. Read
    a line at a time, it was not seen: a data-only load neither found the table (not checked for
    rows, not emptied by --clean: its rows were doubled) nor let its rows pass untouched (a row
    reading "COMMIT;" was left out as the file's own) (QA)."""
    script = tmp_path / "rows.sql"
    script.write_bytes(b'BEGIN;\nCOPY public."a\nb" ("x\n""y") FROM stdin;\nCOMMIT;\n'
                       b'SET transaction_timeout = 0;\n\\.\nCOPY public.c ("p\nq") FROM stdin;\n1\n\\.\nCOMMIT;\n')
    found = scan_script(script)
    assert [str(t) for t in found.tables] == ['public."a\nb"', "public.c"] and found.has_transactions
    fed = b"".join(without_transactions(script))
    assert fed == script.read_bytes().removeprefix(b"BEGIN;\n").removesuffix(b"COMMIT;\n")
    skipped = [0]
    assert b"".join(without_settings(file_chunks(script, 5), frozenset({b"SET transaction_timeout = 0;"}),
                                     skipped)) == script.read_bytes() and skipped == [0]
    # Nor are the tables a whole plain dump creates missed (a --clean without its manifest was refused for
    # "a table it does not hold"), nor a row read as one.
    whole = tmp_path / "whole.sql"
    whole.write_bytes(b'CREATE DOMAIN public.q AS text CHECK (VALUE <> \'"\');\n'
                      b'CREATE TABLE public."a\nb" (\n    x integer\n);\nCOPY public."a\nb" (x) FROM stdin;\n'
                      b'CREATE TABLE public."fake (\n\\.\n')
    assert script_relations(whole) == {("public", "a\nb")}
    # pg_dump's: a COMMENT's line that reads like a COPY is not one (what follows it is SQL, not rows).
    commented = tmp_path / "commented.sql"
    commented.write_bytes(b"--\n-- Name: TABLE t; Type: COMMENT; Schema: public; Owner: o\n--\n\n"
                          b"COMMENT ON TABLE public.t IS 'Load it with:\nCOPY public.t (a) FROM stdin;\nthen';\n\n"
                          b"--\n-- Name: u; Type: TABLE; Schema: public; Owner: o\n--\n\nCREATE TABLE public.u (\n);\n"
                          b"--\n-- Data for Name: u; Type: TABLE DATA; Schema: public; Owner: o\n--\n\n"
                          b"COPY public.u FROM stdin;\nCREATE TABLE public.row_of_ddl (\n\\.\n")
    assert script_relations(commented) == {("public", "u")}
    # Nor, in a pg_dumpall file, is such a table's row read as a CREATE of the database it restores into.
    cluster = tmp_path / "all.sql"
    cluster.write_bytes(b'\\connect shop\nCOPY public."a\nb" (x) FROM stdin;\nCREATE TABLE public.t (\n\\.\n'
                        b"CREATE TABLE public.u (x int);\n")
    assert created_in(cluster, {"shop"}) == {"shop": {QualifiedName("public", "u")}}


def test_a_string_with_a_line_like_a_copy_over_lines_is_no_statement(sandbox, empty_db, tmp_path):
    """A COMMENT (any string) holding a line `COPY public."t …` (one double quote) was taken for a COPY
    whose quoted name goes on, and the rest of the file gathered into it (at the square of its length:
    ~40 s for a 2 MB script): a data-only load's reading found no table nor large object and passed
    the file's COMMIT; to psql, the manifest counted no rows, a pg_dumpall file's later databases went
    unseen and their settings unknown to an older server stayed (QA). Where the text has pg_dump's
    entry comments, only a TABLE DATA entry's COPY is one; and a statement over lines ends at 1 MiB."""
    sandbox.psql("CREATE TABLE t (a int); INSERT INTO t VALUES (1), (2);\n"
                 "COMMENT ON TABLE t IS E'Load it with:\\nCOPY public.\"t (a) FROM stdin;\\nthen check';\n"
                 "SELECT lo_from_bytea(0, 'a large object');", empty_db)
    tools = find_client_tools(sandbox.major)
    plain = tmp_path / "plain.sql"
    subprocess.run([tools.pg_dump, f"--dbname={sandbox.dsn(empty_db)}", f"--file={plain}"], check=True)
    assert b'\nCOPY public."t (a) FROM stdin;\nthen check' in plain.read_bytes()
    found = scan_script(plain)
    assert [str(t) for t in found.tables] == ["public.t"] and len(found.large_objects) == 1 and found.has_transactions
    fed = b"".join(without_transactions(plain))
    assert b"\nBEGIN;\n" not in fed and b"\nCOMMIT;\n" not in fed
    assert count_rows_in_chunks(file_chunks(plain)).rows == {"public.t": 2}
    # A pg_dumpall file: its globals (a role's COMMENT there, where no COPY is, reads like one too),
    # then each database's pg_dump text after its \connect line.
    globals_only = subprocess.run([tools.pg_dumpall, "--globals-only", f"--dbname={sandbox.dsn()}"],
                                  check=True, capture_output=True).stdout + b"COMMENT ON ROLE o IS 'Its\nCOPY \"r';\n"
    cluster = tmp_path / "all.sql"
    cluster.write_bytes(globals_only + b"\\connect a\n" + plain.read_bytes() + b"\\connect b\n" + plain.read_bytes())
    assert created_in(cluster, {"b"}) == {"b": {QualifiedName("public", "t")}}
    skipped = [0]
    assert b"".join(without_settings(file_chunks(cluster), frozenset({b"SET row_security = off;"}), skipped))
    assert skipped == [2]
    # A dump with --inserts: a TABLE DATA entry of INSERTs, one of whose values holds such a line
    # (the entry's COPY was still awaited after its INSERTs, so the line opened a statement; review).
    sandbox.psql("CREATE TABLE u (v text); INSERT INTO u VALUES (E'x\\nCOPY public.\"u\\ny');", empty_db)
    inserts = tmp_path / "inserts.sql"
    subprocess.run([tools.pg_dump, "--inserts", f"--dbname={sandbox.dsn(empty_db)}", f"--file={inserts}"], check=True)
    assert b'\nCOPY public."u\ny' in inserts.read_bytes()
    assert scan_script(inserts).has_transactions
    fed = b"".join(without_transactions(inserts))
    assert b"\nBEGIN;\n" not in fed and b"\nCOMMIT;\n" not in fed
    # A script without pg_dump's comments (by hand): such a line is read with those after it up to 1 MiB.
    by_hand = tmp_path / "by_hand.sql"
    by_hand.write_bytes(b'COPY public."t\n' + (b"x" * 1023 + b"\n") * 1100 + b"BEGIN;\nSELECT 1;\nCOMMIT;\n")
    assert b"".join(without_transactions(by_hand)).endswith(b"x\nSELECT 1;\n")


def test_a_load_names_the_materialized_views_it_did_not_fill(sandbox, schema_only_copy):
    """pg_dump writes a materialized view's rows as a post-data REFRESH, which a data-only archive
    lacks: after a schema-only restore and the load, the sample's view is still empty. The restore
    says so, naming it, and leaves the REFRESH to the DBA."""
    loaded = _restore(sandbox, _dump(sandbox, "--data-only"), schema_only_copy)
    assert loaded.returncode == 0, loaded.stderr
    populated = "SELECT ispopulated FROM pg_matviews WHERE matviewname = 'daily_totals'"
    assert sandbox.psql(populated, schema_only_copy).strip() == "f"
    assert "REFRESH MATERIALIZED VIEW" in loaded.stderr
    assert "public.daily_totals (not populated)" in loaded.stderr


TRIGGERED_SQL = """
CREATE TABLE audit (at text, what text);
CREATE TABLE orders (id int PRIMARY KEY, note text, updated timestamptz) ;
CREATE TABLE readings (at date, v int) PARTITION BY RANGE (at);
CREATE TABLE readings_2024 PARTITION OF readings FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.updated := clock_timestamp(); RETURN NEW; END$$;
CREATE FUNCTION audited() RETURNS trigger LANGUAGE plpgsql
  AS $$BEGIN INSERT INTO public.audit VALUES (TG_TABLE_NAME, TG_OP); RETURN NULL; END$$;
CREATE FUNCTION doubled() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.v := NEW.v * 2; RETURN NEW; END$$;
CREATE TRIGGER stamp BEFORE INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION stamp();
CREATE TRIGGER "Audit it" AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION audited();
CREATE TRIGGER on_truncate AFTER TRUNCATE ON orders FOR EACH STATEMENT EXECUTE FUNCTION audited();
CREATE TRIGGER doubled BEFORE INSERT ON readings FOR EACH ROW EXECUTE FUNCTION doubled();
CREATE TRIGGER kept_off BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION stamp();
ALTER TABLE audit DISABLE TRIGGER kept_off;
ALTER TABLE orders ENABLE ALWAYS TRIGGER "Audit it";
INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 50) g;
INSERT INTO readings SELECT date '2024-01-01' + g, g FROM generate_series(1, 20) g;
"""
TRIGGER_STATES = "SELECT tgrelid::regclass, tgname, tgenabled FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2"


@pytest.mark.parametrize("cluster", ["sandbox", "other_sandbox"])
def test_the_tables_triggers_do_not_rewrite_the_rows_loaded_and_end_as_they_were(request, cluster, home, tmp_path):
    # A data-only load through psql fired the target's triggers: every orders.updated was the
    # restore's own time, the audit table got a row per row loaded (on top of its own rows from the
    # archive), a partitioned table's values doubled -- exit 0, rows differing from the archive.
    sandbox = request.getfixturevalue(cluster)
    source, target = "trig_src", "trig_dst"
    sandbox.create_database(source)
    try:
        sandbox.psql(TRIGGERED_SQL, source)
        tables = ["public.audit", "public.orders", "public.readings_2024"]
        before = table_fingerprints(sandbox, source, tables)
        dump = ["dump", "--dsn", sandbox.dsn(), "--db", source, "--progress", "none"]
        schema = run_cli(*dump, "--schema-only", "--output", str(tmp_path / "schema.dump"))
        rows = run_cli(*dump, "--data-only", "--output", str(tmp_path / "rows.dump"))
        assert schema.returncode == 0 and rows.returncode == 0, (schema.stderr, rows.stderr)
        made = _restore(sandbox, str(tmp_path / "schema.dump"), target, "--create")
        assert made.returncode == 0, made.stderr
        states = sandbox.psql(TRIGGER_STATES, target)
        assert "audit|kept_off|D" in states and "orders|Audit it|A" in states

        dry = _restore(sandbox, str(tmp_path / "rows.dump"), target, "--dry-run")
        assert dry.returncode == 0 and "triggers off while the rows go in" in dry.stdout + dry.stderr
        for clean in ((), ("--clean",)):  # --clean's TRUNCATE fires no trigger either
            loaded = _restore(sandbox, str(tmp_path / "rows.dump"), target, *clean)
            assert loaded.returncode == 0, loaded.stderr
            assert table_fingerprints(sandbox, target, tables) == before
            assert sandbox.psql(TRIGGER_STATES, target) == states  # each as it was: on, always, off

        # Switching a trigger off needs the table's owner: another role is refused before anything.
        sandbox.psql("CREATE ROLE trig_loader LOGIN; GRANT ALL ON ALL TABLES IN SCHEMA public TO trig_loader", target)
        try:
            refused = run_cli("restore", str(tmp_path / "rows.dump"), "--dsn", sandbox.dsn() + " user=trig_loader",
                              "--db", target, "--clean", "--progress", "none")
            assert refused.returncode == 2, refused.stderr
            assert "only the table's owner can switch it off" in refused.stderr and refused.stderr.count("\n") == 1
            assert table_fingerprints(sandbox, target, tables) == before
        finally:
            sandbox.psql("DROP OWNED BY trig_loader; DROP ROLE trig_loader", target)
    finally:
        sandbox.drop_database(target)
        sandbox.drop_database(source)


def test_a_deferred_foreign_key_with_a_trigger_on_its_table_loads(sandbox, home, tmp_path, fresh_db_name):
    # The rows of a table with a DEFERRABLE INITIALLY DEFERRED foreign key leave its checks pending
    # until the commit; turning the table's trigger back on before it failed the whole load
    # ("cannot ALTER TABLE "people" because it has pending trigger events"), exit 1.
    source = f"{fresh_db_name}_src"
    sandbox.create_database(source)
    try:
        sandbox.psql("CREATE TABLE public.people (id int PRIMARY KEY, boss int REFERENCES public.people "
                     "DEFERRABLE INITIALLY DEFERRED, bio text);"
                     "CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$BEGIN NEW.bio := NEW.bio || '*'; RETURN NEW; END$$;"
                     "CREATE TRIGGER people_touch BEFORE INSERT ON public.people FOR EACH ROW EXECUTE FUNCTION touch();"
                     "INSERT INTO public.people SELECT g, nullif(1, g), 'p' FROM generate_series(1, 50) g",
                     source)
        before = table_fingerprints(sandbox, source, ["public.people"])
        dump = ["dump", "--dsn", sandbox.dsn(), "--db", source, "--progress", "none"]
        schema = run_cli(*dump, "--schema-only", "--output", str(tmp_path / "schema.dump"))
        rows = run_cli(*dump, "--data-only", "--output", str(tmp_path / "rows.dump"))
        assert schema.returncode == 0 and rows.returncode == 0, (schema.stderr, rows.stderr)
        made = _restore(sandbox, str(tmp_path / "schema.dump"), fresh_db_name, "--create")
        assert made.returncode == 0, made.stderr
        loaded = _restore(sandbox, str(tmp_path / "rows.dump"), fresh_db_name)
        assert loaded.returncode == 0, loaded.stderr
        assert table_fingerprints(sandbox, fresh_db_name, ["public.people"]) == before
        state = sandbox.psql("SELECT tgenabled FROM pg_trigger WHERE tgname = 'people_touch'", fresh_db_name)
        assert state.strip() == "O"
    finally:
        sandbox.drop_database(source)


def test_table_of_a_partitioned_table_loads_its_partitions_rows(sandbox, home, empty_db):
    """A partitioned table has no rows of its own in a data-only archive, its partitions have them:
    `--table` of it said "no rows for it in data-only archive", where a restore --table of a whole
    archive brings its partitions (QA)."""
    sandbox.psql('CREATE TABLE "Events" (id int, at int) PARTITION BY RANGE (at);'
                 'CREATE TABLE "Events 1" PARTITION OF "Events" FOR VALUES FROM (0) TO (10);'
                 'CREATE TABLE "Events 2" PARTITION OF "Events" FOR VALUES FROM (10) TO (20)'
                 ' PARTITION BY RANGE (at);'
                 'CREATE TABLE "Events 2a" PARTITION OF "Events 2" FOR VALUES FROM (10) TO (20);'
                 'CREATE TABLE other (x int); INSERT INTO other VALUES (1);'
                 'INSERT INTO "Events" SELECT g, g FROM generate_series(0, 19) g', empty_db)
    dumped = [run_cli("dump", "--dsn", sandbox.dsn(), "--db", empty_db, "--progress", "none", *extra)
              for extra in (["--data-only"], ["--schema-only"])]
    assert all(d.returncode == 0 for d in dumped), [d.stderr for d in dumped]
    target = f"{empty_db}_x"
    try:
        made = _restore(sandbox, dumped[1].stdout.strip(), target, "--create")
        assert made.returncode == 0, made.stderr
        loaded = _restore(sandbox, dumped[0].stdout.strip(), target, "--table", 'public."Events"')
        assert loaded.returncode == 0, loaded.stderr
        assert sandbox.psql('SELECT count(*) FROM "Events"', target).strip() == "20"
        assert sandbox.psql("SELECT count(*) FROM other", target).strip() == "0"
        missing = _restore(sandbox, dumped[0].stdout.strip(), target, "--table", "public.nowhere")
        assert missing.returncode == 2 and "public.nowhere" in missing.stderr, missing.stderr
        # A partition the target lacks: its rows were left out with no word, exit 0 and 10 rows of
        # the archive's 20 (QA). Refused before anything runs, naming it; the target as it was.
        sandbox.psql('DROP TABLE "Events 2a"', target)
        lacking = _restore(sandbox, dumped[0].stdout.strip(), target, "--clean", "--table", 'public."Events"')
        assert lacking.returncode == 2, lacking.stderr
        assert 'public."Events 2a"' in lacking.stderr and "lacks" in lacking.stderr, lacking.stderr
        assert sandbox.psql('SELECT count(*) FROM "Events"', target).strip() == "10"
        # An archive whose manifest does not record the tables' parents (adopted, older): loaded, and
        # the rows it holds of tables the target lacks are named as a warning.
        manifest = Path(dumped[0].stdout.strip() + ".manifest.json")
        record = json.loads(manifest.read_text())
        del record["parents"]
        manifest.write_text(json.dumps(record))
        warned = _restore(sandbox, dumped[0].stdout.strip(), target, "--clean", "--table", 'public."Events"')
        assert warned.returncode == 0, warned.stderr
        assert 'not loaded: public."Events 2a"' in warned.stderr, warned.stderr
    finally:
        sandbox.drop_database(target)


def test_a_refused_clean_names_the_foreign_key_as_sql_writes_it(sandbox, home, empty_db):
    """`foreign key Order Items_order_fkey on "Sales Team"."Order Items" …`: the table quoted, the
    constraint's own name not (QA)."""
    sandbox.psql('CREATE SCHEMA "Sales Team"; CREATE TABLE "Sales Team".orders (id int PRIMARY KEY);'
                 'CREATE TABLE "Sales Team"."Order Items" ("order" int REFERENCES "Sales Team".orders);'
                 'INSERT INTO "Sales Team".orders VALUES (1); INSERT INTO "Sales Team"."Order Items" VALUES (1)',
                 empty_db)
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", empty_db, "--progress", "none", "--data-only")
    assert dumped.returncode == 0, dumped.stderr
    refused = _restore(sandbox, dumped.stdout.strip(), empty_db, "--clean", "--table", '"Sales Team".orders')
    assert refused.returncode == 2, refused.stderr
    assert 'foreign key "Order Items_order_fkey" on "Sales Team"."Order Items"' in refused.stderr, refused.stderr
