"""Exact selection: each awkward name selects itself and none of its decoys, and a selection of
tables restores into an EMPTY database with what it depends on brought along."""

from __future__ import annotations

import subprocess
import uuid

from pathlib import Path

import pytest
from psycopg.conninfo import make_conninfo

from cliutil import run_cli
from dbcompare import table_fingerprints, user_tables
from pgbackup_tui.core.catalog import read_manifest
from pgbackup_tui.core.connect import connect, target_from_dsn
from pgbackup_tui.core.identifiers import parse_qualified_name
from pgbackup_tui.core.sample import SAMPLE_AWKWARD_TABLES, SAMPLE_SELECTION_TABLES
from pgbackup_tui.core.selection import resolve_selection

SOURCE = "shop"


def canonical(name: str) -> str:
    """As format('%I.%I') writes it, to compare with dbcompare.user_tables."""
    qn = parse_qualified_name(name)
    return f"{_ident(qn.schema)}.{_ident(qn.name)}"


def _ident(part: str) -> str:
    import re

    return part if re.fullmatch(r"[a-z_][a-z0-9_$]*", part) else '"' + part.replace('"', '""') + '"'


@pytest.mark.parametrize("awkward", sorted(SAMPLE_AWKWARD_TABLES))
def test_awkward_name_selects_exactly_itself(sandbox, home, fresh_db_name, awkward):
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--table", awkward)
    assert dumped.returncode == 0, dumped.stderr
    restored = run_cli("restore", dumped.stdout.strip(), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    assert restored.returncode == 0, restored.stderr

    tables = user_tables(sandbox, fresh_db_name)
    assert tables == [canonical(awkward)]
    for decoy in SAMPLE_AWKWARD_TABLES[awkward]:
        assert canonical(decoy) not in tables
    assert table_fingerprints(sandbox, fresh_db_name) == table_fingerprints(sandbox, SOURCE, tables)


@pytest.mark.parametrize("fmt", ["custom", "plain"])
def test_selection_restores_into_an_empty_database(sandbox, home, empty_db, fmt):
    args = [arg for table in SAMPLE_SELECTION_TABLES for arg in ("--table", table)]
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--format", fmt, *args, "--progress", "none")
    assert dumped.returncode == 0, dumped.stderr
    # The output says what was brought along and why.
    assert 'added schema "Sales & Ops"' in dumped.stderr
    assert "added extension citext" in dumped.stderr
    assert "order_status" in dumped.stderr and "positive_amount" in dumped.stderr
    manifest = read_manifest(Path(dumped.stdout.strip()))
    assert manifest and manifest["added"] and manifest["selection"]["tables"]

    restored = run_cli("restore", dumped.stdout.strip(), "--dsn", sandbox.dsn(), "--db", empty_db)
    assert restored.returncode == 0, restored.stderr

    wanted = sorted(canonical(t) for t in SAMPLE_SELECTION_TABLES)
    assert user_tables(sandbox, empty_db) == wanted
    assert table_fingerprints(sandbox, empty_db) == table_fingerprints(sandbox, SOURCE, wanted)
    # The types came along as types, and the identity column still generates values.
    kinds = sandbox.psql(
        "SELECT t.typname, t.typtype FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = 'Sales & Ops' AND t.typtype IN ('e','d') ORDER BY 1", empty_db)
    assert "order_status|e" in kinds and "positive_amount|d" in kinds
    citext = sandbox.psql("SELECT extversion IS NOT NULL FROM pg_extension WHERE extname = 'citext'", empty_db)
    assert citext.strip() == "t"
    identity = sandbox.psql(
        "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'Sales & Ops' AND a.attidentity <> ''", empty_db)
    assert int(identity) >= 1


def test_restore_selected_table_from_a_full_archive(sandbox, home, fresh_db_name):
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE)
    assert dumped.returncode == 0, dumped.stderr
    restored = run_cli("restore", dumped.stdout.strip(), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create",
                       "--table", '"Sales & Ops"."Order Items"')
    assert restored.returncode == 0, restored.stderr
    assert user_tables(sandbox, fresh_db_name) == ['"Sales & Ops"."Order Items"']
    # What did not come with it is said: its foreign key to orders, a table not restored.
    dry = run_cli("restore", dumped.stdout.strip(), "--dsn", sandbox.dsn(), "--db", fresh_db_name + "x", "--create",
                  "--table", '"Sales & Ops"."Order Items"', "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "left out FK CONSTRAINT" in dry.stdout and "which is not restored" in dry.stdout, dry.stdout
    assert 'it needs TABLE "Sales & Ops".orders, which is not restored' in dry.stdout, dry.stdout  # SQL names


@pytest.mark.parametrize("fmt", ["custom", "directory", "tar"])
def test_tables_of_an_owner_whose_name_holds_a_space_restore_by_name(sandbox, home, empty_db, tmp_path, fmt):
    """pg_restore's listing joins namespace, tag and owner with spaces: with the owner taken to be
    the last word, a table of the role "Odd Owner" read as `"Sales & Ops"."Order Items Odd"`, so
    `restore --table` said it was not in the archive and a data-only load looked for a table of that
    name in the target (QA). The owner is read from the archive itself."""
    role = f"Odd Owner {uuid.uuid4().hex[:6]}"
    sandbox.create_role(role, login=False)
    try:
        sandbox.psql(f'CREATE SCHEMA "Sales & Ops" AUTHORIZATION "{role}";'
                     'CREATE TABLE "Sales & Ops"."Order Items" (id int PRIMARY KEY, what text);'
                     'INSERT INTO "Sales & Ops"."Order Items" SELECT g, \'x\' || g FROM generate_series(1, 7) g;'
                     f'ALTER TABLE "Sales & Ops"."Order Items" OWNER TO "{role}";'
                     'CREATE TABLE public.other (id int)', empty_db)
        archive, data_only = tmp_path / f"all.{fmt}", tmp_path / f"data.{fmt}"
        for path, extra in ((archive, []), (data_only, ["--data-only"])):
            dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", empty_db, "--format", fmt, *extra,
                             "--output", str(path), "--progress", "none")
            assert dumped.returncode == 0, dumped.stderr

        target = f"{empty_db}_x"
        restored = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", target, "--create",
                           "--table", '"Sales & Ops"."Order Items"', "--progress", "none")
        try:
            assert restored.returncode == 0, restored.stderr
            assert user_tables(sandbox, target) == ['"Sales & Ops"."Order Items"']
            rows_and_owner = sandbox.psql(
                'SELECT count(*), pg_get_userbyid(min(c.relowner)) FROM "Sales & Ops"."Order Items", pg_class c '
                'WHERE c.oid = \'"Sales & Ops"."Order Items"\'::regclass', target)
            assert rows_and_owner.strip() == f"7|{role}"
            # A data-only archive loads into the tables of that name in a database that has them.
            sandbox.psql('TRUNCATE "Sales & Ops"."Order Items"; CREATE TABLE public.other (id int)', target)
            loaded = run_cli("restore", str(data_only), "--dsn", sandbox.dsn(), "--db", target, "--progress", "none")
            assert loaded.returncode == 0, loaded.stderr
            assert sandbox.psql('SELECT count(*) FROM "Sales & Ops"."Order Items"', target).strip() == "7"
        finally:
            sandbox.drop_database(target)
    finally:
        sandbox.drop_database(empty_db)
        sandbox.psql(f'DROP ROLE "{role}"')


def test_a_partition_restored_alone_says_nothing_of_its_siblings_indexes(sandbox, home, empty_db, tmp_path):
    """`restore --table` of one partition said `left out INDEX public."p 1_at_idx": it needs TABLE
    public."p 1", which is not restored` for every index of every other partition (an index's
    listing names the index, not its table, so it was not seen to be that table's own) (QA)."""
    sandbox.psql('CREATE TABLE "p" (id int, at int, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);'
                 'CREATE TABLE "p 1" PARTITION OF "p" FOR VALUES FROM (0) TO (10);'
                 'CREATE TABLE "p 2" PARTITION OF "p" FOR VALUES FROM (10) TO (20);'
                 'CREATE INDEX ON "p" (at); INSERT INTO "p" SELECT g, g FROM generate_series(0, 19) g', empty_db)
    archive = tmp_path / "p.dump"
    subprocess.run([str(sandbox.bin_dir / "pg_dump"), "--format=c", f"--file={archive}",
                    f"--dbname={sandbox.dsn(empty_db)}"], check=True, capture_output=True)
    dry = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", f"{empty_db}_x", "--create",
                  "--table", 'public."p 2"', "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert [line for line in dry.stdout.splitlines() if "left out" in line] == [], dry.stdout
    # A dump of one partition names the parent it brings, as restore --table does; it said
    # "1 partition(s), child table(s) or partitioned parent(s) of the selected tables come along" (QA).
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", empty_db, "--table", 'public."p 2"',
                     "--output", str(tmp_path / "p2.dump"), "--progress", "none")
    assert dumped.returncode == 0, dumped.stderr
    assert "came along: public.p (partitions" in dumped.stderr, dumped.stderr


def test_a_role_dumps_its_own_tables_beside_a_sequence_it_may_not_read(sandbox, home, empty_db, tmp_path):
    """The selection kept every sequence of no table's for pg_dump, which reads each one it keeps:
    the owner of the selected table, who may not use another schema, failed with `permission denied
    for schema locked` where `pg_dump -t` succeeds; the archive's closure left it out anyway (QA)."""
    role = f"app {uuid.uuid4().hex[:6]}"
    sandbox.create_role(role)
    try:
        sandbox.psql(f'CREATE SCHEMA locked; CREATE SEQUENCE locked.ids; CREATE TABLE public.mine (id int);'
                     f'INSERT INTO public.mine VALUES (1), (2); ALTER TABLE public.mine OWNER TO "{role}"', empty_db)
        as_role = make_conninfo(sandbox.dsn(), user=role)
        archive = tmp_path / "mine.dump"
        dumped = run_cli("dump", "--dsn", as_role, "--db", empty_db, "--table", "public.mine",
                         "--output", str(archive), "--progress", "none")
        assert dumped.returncode == 0, dumped.stderr
        restored = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", f"{empty_db}_x", "--create",
                           "--progress", "none")
        assert restored.returncode == 0, restored.stderr
        assert sandbox.psql("SELECT count(*) FROM public.mine", f"{empty_db}_x").strip() == "2"
        # A sequence of a selected schema still comes with it.
        whole = tmp_path / "locked.dump"
        dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", empty_db, "--schema", "locked",
                         "--output", str(whole), "--progress", "none")
        assert dumped.returncode == 0, dumped.stderr
        listed = subprocess.run([str(sandbox.bin_dir / "pg_restore"), "--list", str(whole)], capture_output=True,
                                text=True, check=True).stdout
        assert "SEQUENCE locked ids" in listed, listed
    finally:
        sandbox.drop_database(f"{empty_db}_x")
        sandbox.drop_database(empty_db)
        sandbox.psql(f'DROP ROLE "{role}"')


def test_a_table_clean_quotes_the_foreign_keys_it_drops_as_sql_writes_them(sandbox, home, empty_db, tmp_path):
    """The dry run said `drop foreign key Order Items_order_fkey on "Sales Team"."Order Items"`: the
    table quoted, the constraint's name not, as the notes' names are (QA)."""
    sandbox.psql('CREATE SCHEMA "Sales Team"; CREATE TABLE "Sales Team".orders (id int PRIMARY KEY);'
                 'CREATE TABLE "Sales Team"."Order Items" (n int, "order" int REFERENCES "Sales Team".orders)',
                 empty_db)
    archive = tmp_path / "all.dump"
    subprocess.run([str(sandbox.bin_dir / "pg_dump"), "--format=c", f"--file={archive}",
                    f"--dbname={sandbox.dsn(empty_db)}"], check=True, capture_output=True)
    dry = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", empty_db, "--clean",
                  "--table", '"Sales Team".orders', "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert 'drop foreign key "Order Items_order_fkey" on "Sales Team"."Order Items"' in dry.stdout, dry.stdout


def test_only_what_a_restored_table_loses_is_said_left_out(sandbox, home, empty_db, tmp_path):
    """Restoring a referenced table alone: the foreign key of the table that references it (not
    restored either) is no news. Restoring the referencing one alone: its foreign key is."""
    sandbox.psql("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int, a_id int REFERENCES a);", empty_db)
    archive = tmp_path / "ab.dump"
    subprocess.run([str(sandbox.bin_dir / "pg_dump"), "--format=c", f"--file={archive}",
                    f"--dbname={sandbox.dsn(empty_db)}"], check=True, capture_output=True)

    def left_out(table: str) -> list[str]:
        dry = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", f"{empty_db}_x", "--create",
                      "--table", table, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        return [line for line in dry.stdout.splitlines() if "left out" in line]

    assert left_out("public.a") == []
    [said] = left_out("public.b")
    assert "b_a_id_fkey" in said and "it needs TABLE public.a" in said, said


def test_a_publication_that_comes_along_is_said_to_come_with_the_selected_tables_only(sandbox, home, empty_db,
                                                                                       tmp_path):
    """A selection's log said "added publication pub1: needed by table public.t", which reads as
    the whole publication; it comes back with the selected tables of it only (QA)."""
    sandbox.psql("CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE u (id int PRIMARY KEY);"
                 "CREATE PUBLICATION pub1 FOR TABLE t, u", empty_db)
    archive = tmp_path / "t.dump"
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", empty_db, "--table", "public.t",
                     "--output", str(archive), "--progress", "none")
    assert dumped.returncode == 0, dumped.stderr
    assert "added publication pub1, with only the selected tables of it: needed by table public.t" in dumped.stderr, \
        dumped.stderr
    whole = tmp_path / "all.dump"
    subprocess.run([str(sandbox.bin_dir / "pg_dump"), "--format=c", f"--file={whole}",
                    f"--dbname={sandbox.dsn(empty_db)}"], check=True, capture_output=True)
    dry = run_cli("restore", str(whole), "--dsn", sandbox.dsn(), "--db", f"{empty_db}_x", "--create",
                  "--table", "public.t", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "added PUBLICATION pub1, with only the selected tables of it" in dry.stdout, dry.stdout


def test_schema_and_exclusion(sandbox, home, fresh_db_name):
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--schema", '"Sales & Ops"',
                     "--exclude-table", '"Sales & Ops"."order items"')
    assert dumped.returncode == 0, dumped.stderr
    restored = run_cli("restore", dumped.stdout.strip(), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    assert restored.returncode == 0, restored.stderr
    assert "added extension citext" in dumped.stderr  # it lives in public, outside the schema
    tables = user_tables(sandbox, fresh_db_name)
    assert '"Sales & Ops"."Order Items"' in tables
    assert '"Sales & Ops"."order items"' not in tables
    assert all(t.startswith('"Sales & Ops".') for t in tables)


@pytest.mark.parametrize(
    ("option", "name"),
    [("--table", 'public."no such"'), ("--table", "public.starname2"), ("--exclude-table", "public.nope"),
     ("--schema", "nowhere"),
     # There, but pg_dump never dumps them: the backup was "complete", holding pg_catalog.pg_class,
     # and restored nothing of it (QA).
     ("--table", "pg_catalog.pg_class"), ("--schema", "information_schema")],
)
def test_a_missing_name_is_an_error_before_anything_runs(sandbox, home, option, name):
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, option, name)
    assert dumped.returncode == 2
    assert dumped.stderr.count("\n") == 1 and "Traceback" not in dumped.stderr
    assert name.split(".")[-1].strip('"') in dumped.stderr
    assert not (home / "backups").exists() or not any((home / "backups").rglob("*.dump*"))


def test_a_whole_database_dump_refuses_to_leave_out_what_it_keeps_needs(sandbox, home, fresh_db_name):
    """pg_dump --exclude-table writes a view, a foreign key or a function that needs the table it
    leaves out, and the backup does not restore: refused before anything runs, naming both; once
    what needs it is left out too, the backup restores."""
    sandbox.create_database(fresh_db_name)
    sandbox.psql(
        "CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a VALUES (1);"
        "CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a); INSERT INTO b VALUES (1, 1);"
        "CREATE VIEW v AS SELECT * FROM a;"
        'CREATE SCHEMA "Odd S"; CREATE TABLE "Odd S"."T 1" (x int);'
        'CREATE FUNCTION "Odd S".f() RETURNS SETOF "Odd S"."T 1" LANGUAGE sql AS $$ SELECT * FROM "Odd S"."T 1" $$;'
        "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7);"
        "CREATE TABLE p (x int) PARTITION BY RANGE (x); CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (9);",
        fresh_db_name)

    def dump(*left_out: str, options: tuple[str, ...] = ()):
        return run_cli("dump", "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--progress", "none", *options,
                       *[arg for name in left_out for arg in ("--exclude-table", name)])

    refusals = {
        ("public.a",): "constraint b_a_id_fkey on public.b needs it",
        ("public.a", "public.b"): "view public.v needs it",
        ('"Odd S"."T 1"',): 'function "Odd S".f() needs it',
        ("public.p",): "its partition (or child table) public.p1 is kept",
    }
    for left_out, reason in refusals.items():
        refused = dump(*left_out)
        assert refused.returncode == 2, refused.stderr
        assert reason in refused.stderr and left_out[0] in refused.stderr
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert not (home / "backups").exists() or not any(p.is_file() for p in (home / "backups").rglob("*"))

    dumped = dump("public.a", "public.v", "public.b")
    assert dumped.returncode == 0, dumped.stderr
    target = f"{fresh_db_name}_r"
    try:
        restored = run_cli("restore", dumped.stdout.strip(), "--dsn", sandbox.dsn(), "--db", target, "--create")
        assert restored.returncode == 0, restored.stderr
        assert user_tables(sandbox, target) == ['"Odd S"."T 1"', "public.kept", "public.p", "public.p1"]
    finally:
        sandbox.drop_database(target)
    # Only definitions can miss what they need: the same data-only dump is not refused.
    assert dump("public.a", options=("--data-only",)).returncode == 0


def test_owned_sequences_leave_with_their_tables(sandbox, home, fresh_db_name):
    """Serial and identity sequences of the tables left out are left out with them, so the
    exclusion patterns follow the selection even where every table has its own sequence (each
    kept sequence used to be one more name to spare: hundreds of patterns, pg_dump as slow as
    with one --exclude-table per table); the selected tables' sequences, and one a kept table's
    default takes from a table left out, still restore and go on counting."""
    source = fresh_db_name + "_src"
    sandbox.create_database(source)
    try:
        sandbox.psql(
            "DO $$ BEGIN FOR i IN 1..300 LOOP EXECUTE format('CREATE TABLE t_%s (id %s, note text)', "
            "lpad(i::text, 5, '0'), CASE WHEN i % 2 = 0 THEN 'bigserial PRIMARY KEY' "
            "ELSE 'int GENERATED ALWAYS AS IDENTITY PRIMARY KEY' END); END LOOP; END $$;"
            "INSERT INTO t_00001 (note) SELECT 'a' FROM generate_series(1, 5);"
            "INSERT INTO t_00150 (note) SELECT 'b' FROM generate_series(1, 7);"
            "INSERT INTO t_00002 (note) SELECT 'c' FROM generate_series(1, 9);"
            "CREATE TABLE keeper (n bigint DEFAULT nextval('t_00002_id_seq'), note text);"
            "INSERT INTO keeper (note) VALUES ('k');"
            "CREATE SEQUENCE free_standing;", source)
        selected = ["public.t_00001", "public.t_00150", "public.keeper"]
        with connect(target_from_dsn(sandbox.dsn()), source) as conn:
            resolved = resolve_selection(conn, [parse_qualified_name(name) for name in selected], source)
        assert len(resolved.exclude) < 40, resolved.exclude  # 300 sequences to spare made it over 300

        dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", source, "--progress", "none",
                         *[arg for name in selected for arg in ("--table", name)])
        assert dumped.returncode == 0, dumped.stderr
        restored = run_cli("restore", dumped.stdout.strip(), "--dsn", sandbox.dsn(), "--db", fresh_db_name,
                           "--create", "--progress", "none")
        assert restored.returncode == 0, restored.stderr
        assert user_tables(sandbox, fresh_db_name) == ["public.keeper", "public.t_00001", "public.t_00150"]
        next_values = sandbox.psql(
            "INSERT INTO t_00001 (note) VALUES ('new') RETURNING id;"
            "INSERT INTO t_00150 (note) VALUES ('new') RETURNING id;"
            "INSERT INTO keeper (note) VALUES ('new') RETURNING n;", fresh_db_name)
        assert next_values.split() == ["6", "8", "11"], next_values
    finally:
        sandbox.drop_database(source)
