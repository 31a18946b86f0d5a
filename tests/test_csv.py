"""CSV copies (csv export / csv import) through the real CLI, on real sandbox clusters."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import uuid
from pathlib import Path

import pytest

from cliutil import run_cli

TRICKY = r'''
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."we.ird/Name ""q""" (
    id int PRIMARY KEY, t text, b bytea, arr text[], ia int[], j json, jb jsonb, n numeric,
    ts timestamptz, plain varchar(20), twice int GENERATED ALWAYS AS (id * 2) STORED);
INSERT INTO "Odd Schema"."we.ird/Name ""q""" (id, t, b, arr, ia, j, jb, n, ts, plain) VALUES
 (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (2, '', '\x', '{}', '{}', '""', '{}', 0, '2024-02-29 23:59:59.999999+00', ''),
 (3, E'quote " and ,comma', '\x00ff0a0d22', ARRAY['a,b', 'c"d', NULL, '', E'e\nf'], ARRAY[1, NULL, 3],
  '{"k": "v\"w", "n": null}', '{"a": [1, 2, {"b": "\\u00e9"}]}', 'NaN', '1999-12-31 23:00:00-08', 'x'),
 (4, E'line1\nline2\r\nline3\ttab\\backslash', '\x5c30', '{"\\\\"}', '{-2147483648}',
  '[]', '"str"', 123456789012345678901234567890.123456789, '-infinity', E'\\N'),
 (5, 'żółć 🎉 ∑ 日本語', '\x', '{"NULL"}', '{0}', 'null', 'null', -0.000000000000000001,
  '2038-01-19 03:14:08+05:30', '"');
CREATE TABLE public.ids (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, s serial, note text);
INSERT INTO public.ids (note) SELECT 'n' || g FROM generate_series(1, 50) g;
'''


@pytest.fixture
def target_db(sandbox):
    """A second database name nobody uses (empty_db takes fresh_db_name); dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:8]
    yield name
    sandbox.drop_database(name)


ODD = '"Odd Schema"."we.ird/Name ""q"""'


def fingerprint(sandbox, db: str, table: str, order: str = "1") -> str:
    """rows:md5 of every row's text (NULL and '' differ in a row's text), in a stable order."""
    return sandbox.psql(f"SELECT count(*) || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY {order}), '')) "
                        f"FROM {table} x", db).strip()


def import_job_state(home: Path) -> dict:
    """The state of the one csv import job in the store."""
    [state] = [json.loads(path.read_text()) for path in (home / "state" / "jobs").glob("*/state.json")
               if json.loads((path.parent / "spec.json").read_text())["kind"] == "csv-import"]
    return state


def export(sandbox, db: str, out: Path, *names: str, extra: tuple[str, ...] = ()):
    args = [a for name in names for a in ("--table", name)]
    return run_cli("csv", "export", "--dsn", sandbox.dsn(), "--db", db, *args, "--output", str(out), *extra)


def test_tricky_values_round_trip_across_majors(sandbox, other_sandbox, home, empty_db, other_fresh_db_name,
                                                tmp_path):
    sandbox.psql(TRICKY, empty_db)
    out = tmp_path / "copy"
    done = export(sandbox, empty_db, out, ODD, "public.ids")
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == out
    assert not (tmp_path / "copy.partial").exists()
    assert out.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in out.iterdir()} == {0o600}
    manifest = json.loads((out / "manifest.json").read_text())
    by_name = {t["qualified"]: t for t in manifest["tables"]}
    odd = by_name[ODD]
    assert (odd["schema"], odd["name"]) == ("Odd Schema", 'we.ird/Name "q"')
    assert "/" not in odd["file"] and odd["file"].endswith(".csv")
    assert odd["rows"] == 5 and by_name["public.ids"]["rows"] == 50
    assert "twice" not in odd["columns"]  # generated: computed again by the target
    for name, facts in manifest["files"].items():
        data = (out / name).read_bytes()
        assert facts["bytes"] == len(data) and facts["sha256"] == hashlib.sha256(data).hexdigest()
    assert (out / odd["file"]).read_text(encoding="utf-8").startswith("id,t,b,arr,ia,j,jb,n,ts,plain\n")

    # Into the other major, a database the import creates.
    done = run_cli("csv", "import", str(out), "--dsn", other_sandbox.dsn(), "--db", other_fresh_db_name, "--create")
    assert done.returncode == 0, done.stderr
    for table in (ODD, "public.ids"):
        assert fingerprint(other_sandbox, other_fresh_db_name, table) == fingerprint(sandbox, empty_db, table)
    # The sequences go on where the source's were, the primary key is back (schema-post.sql).
    next_ids = other_sandbox.psql("INSERT INTO public.ids (note) VALUES ('new') RETURNING id, s", other_fresh_db_name)
    assert next_ids.strip() == "51|51"
    keys = other_sandbox.psql(f"SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conrelid = "
                              f"'{ODD.replace(chr(39), chr(39) * 2)}'::regclass", other_fresh_db_name)
    assert keys.strip() == "1"


def test_a_schema_that_fails_on_an_older_server_says_the_export_is_newer(sandbox, other_sandbox, home, tmp_path):
    """A copy of an 18 server into a 15 one whose schema.sql used what 15 lacks (a virtual generated
    column) failed with psql's `syntax error at or near ","` alone (QA): the failure says that the
    export's server is newer. Made to fail here by a name the target has already, on any majors."""
    newer, older = sorted((sandbox, other_sandbox), key=lambda cluster: cluster.major, reverse=True)
    source, target = "t_" + uuid.uuid4().hex[:8], "t_" + uuid.uuid4().hex[:8]
    newer.create_database(source)
    older.create_database(target)
    try:
        newer.psql("CREATE TABLE t (id serial PRIMARY KEY)", source)
        out = tmp_path / "copy"
        assert export(newer, source, out, "t").returncode == 0
        version = json.loads((out / "manifest.json").read_text())["server_version"]
        older.psql("CREATE SEQUENCE t_id_seq", target)
        failed = run_cli("csv", "import", str(out), "--dsn", older.dsn(), "--db", target)
        assert failed.returncode == 1, failed.stderr
        assert f"(the export is of PostgreSQL {version} and " in failed.stderr, failed.stderr
        assert f" runs {older.major}: its schema may use what this server does not have)" in failed.stderr
        # Into a server as new as the export's, nothing of the kind is said.
        newer.create_database(target)
        newer.psql("CREATE SEQUENCE t_id_seq", target)
        same = run_cli("csv", "import", str(out), "--dsn", newer.dsn(), "--db", target)
        assert same.returncode == 1 and "the export is of" not in same.stderr, same.stderr
    finally:
        newer.drop_database(source)
        newer.drop_database(target)
        older.drop_database(target)


def test_a_bad_row_names_file_and_line_and_leaves_its_table_as_it_was(sandbox, home, empty_db, target_db,
                                                                      tmp_path):
    sandbox.psql("CREATE TABLE a (id int PRIMARY KEY, v text);"
                 "INSERT INTO a SELECT g, 'a' || g FROM generate_series(1, 10) g;"
                 "CREATE TABLE b (id int PRIMARY KEY, v text);"
                 "INSERT INTO b VALUES (1, E'two\\nlines'), (2, 'ok'), (3, 'ok');", empty_db)
    out = tmp_path / "copy"
    assert export(sandbox, empty_db, out, "a", "b").returncode == 0
    manifest = json.loads((out / "manifest.json").read_text())
    b_file = out / next(t["file"] for t in manifest["tables"] if t["qualified"] == "public.b")
    lines = b_file.read_text().splitlines(keepends=True)
    assert lines[4].startswith("3,")  # header, two lines of row 1, row 2, row 3
    lines[4] = "x3,ok\n"
    b_file.write_text("".join(lines))
    sandbox.create_database(target_db)

    failed = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db)
    assert failed.returncode == 1
    last = failed.stderr.strip().splitlines()[-1]
    assert f"{b_file.name}, line 5:" in last and "invalid input syntax" in last
    assert "imported before it: public.a" in last and "--table public.b" in last
    assert fingerprint(sandbox, target_db, "a") == fingerprint(sandbox, empty_db, "a")
    assert sandbox.psql("SELECT count(*) FROM b", target_db).strip() == "0"

    # Fixed, the rest goes in: the schema is there, so only the data and what comes after it run.
    lines[4] = "3,ok\n"
    b_file.write_text("".join(lines))
    done = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db, "--table", "b")
    assert done.returncode == 0, done.stderr
    assert fingerprint(sandbox, target_db, "b") == fingerprint(sandbox, empty_db, "b")
    assert sandbox.psql("SELECT count(*) FROM pg_index WHERE indrelid IN ('a'::regclass, 'b'::regclass)",
                        target_db).strip() == "2"


def test_a_failed_create_import_drops_its_database(sandbox, home, empty_db, target_db, tmp_path):
    sandbox.psql("CREATE TABLE c (id int); INSERT INTO c VALUES (1), (2);", empty_db)
    out = tmp_path / "copy"
    assert export(sandbox, empty_db, out, "c").returncode == 0
    (out / "public.c.csv").write_text("id\n1\nnot a number\n")
    failed = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db, "--create")
    assert failed.returncode == 1
    assert "public.c.csv, line 3:" in failed.stderr and failed.stderr.count("dropped") == 1, failed.stderr
    # The database goes, and every table in it: no "tables imported before it" nor "as it was" (QA).
    assert "imported before it" not in failed.stderr and "as it was before" not in failed.stderr, failed.stderr
    assert "fix the file and run the import again; the database" in failed.stderr, failed.stderr
    # A header whose column name holds a newline: the server counts it as one line, the file as two.
    sandbox.psql('CREATE TABLE "two\nlines" ("a\nb" int);', empty_db)
    odd = tmp_path / "odd"
    assert export(sandbox, empty_db, odd, 'public."two\nlines"').returncode == 0
    odd_file = next(odd.glob("*.csv"))
    odd_file.write_text('"a\nb"\n1\nnot a number\n')
    failed = run_cli("csv", "import", str(odd), "--dsn", sandbox.dsn(), "--db", target_db, "--create")
    assert failed.returncode == 1 and f"{odd_file.name}, line 4:" in failed.stderr, failed.stderr
    assert sandbox.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{target_db}'").strip() == "0"
    # Failing after the data (schema-post.sql): the line does not say the data stays, as it goes too.
    (out / "public.c.csv").write_text("id\n1\n2\n")
    with (out / "schema-post.sql").open("a") as post:
        post.write("SELECT 1/0;\n")
    failed = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db, "--create")
    assert failed.returncode == 1 and "division by zero" in failed.stderr, failed.stderr
    assert "stays" not in failed.stderr and failed.stderr.count("dropped") == 1, failed.stderr
    assert sandbox.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{target_db}'").strip() == "0"


def test_selection_with_dependencies_elsewhere_imports_into_an_empty_database(sandbox, home, empty_db,
                                                                              target_db, tmp_path):
    sandbox.psql("""
        CREATE SCHEMA kinds; CREATE SCHEMA counters; CREATE SCHEMA app;
        CREATE TYPE kinds.mood AS ENUM ('sad', 'ok', 'happy');
        CREATE DOMAIN kinds.positive AS int CHECK (VALUE > 0);
        CREATE SEQUENCE counters.ticket START 1000;
        CREATE FUNCTION kinds.shout(text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT upper($1)';
        CREATE TABLE app.tickets (no int DEFAULT nextval('counters.ticket') PRIMARY KEY, mood kinds.mood,
                                  qty kinds.positive, loud text GENERATED ALWAYS AS (kinds.shout(qty::text)) STORED);
        CREATE TABLE app.lines (ticket int REFERENCES app.tickets, pos int);
        CREATE TABLE app.unrelated (x int);
        INSERT INTO app.tickets (mood, qty) SELECT (ARRAY['sad','ok','happy']::kinds.mood[])[1 + g % 3], g
          FROM generate_series(1, 30) g;
        INSERT INTO app.lines SELECT no, 1 FROM app.tickets;
    """, empty_db)
    out = tmp_path / "copy"
    done = export(sandbox, empty_db, out, "app.tickets", "app.lines", extra=("--progress", "jsonl"))
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[-1]["event"] == "finished" and events[-1]["status"] == "succeeded"
    last = [e for e in events if e["event"] == "progress"][-1]
    assert (last["percent"], last["tables_done"], last["tables_total"]) == (100, 2, 2)
    schema = (out / "schema.sql").read_text()
    assert "kinds.mood" in schema and "counters.ticket" in schema and "unrelated" not in schema

    done = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db, "--create")
    assert done.returncode == 0, done.stderr
    for table in ("app.tickets", "app.lines"):
        assert fingerprint(sandbox, target_db, table) == fingerprint(sandbox, empty_db, table)
    assert sandbox.psql("SELECT nextval('counters.ticket')", target_db).strip() == "1030"


def test_bad_input_is_refused_before_anything_runs(sandbox, home, empty_db, tmp_path):
    sandbox.psql("CREATE VIEW v AS SELECT 1 AS one", empty_db)
    view = run_cli("csv", "export", "--dsn", sandbox.dsn(), "--db", empty_db, "--table", "v",
                   "--output", str(tmp_path / "v"))
    assert view.returncode == 2 and "is a view" in view.stderr
    missing = run_cli("csv", "export", "--dsn", sandbox.dsn(), "--db", empty_db, "--table", "nope",
                      "--output", str(tmp_path / "n"))
    assert missing.returncode == 2 and "public.nope" in missing.stderr
    # QA: a sequence's refusal said "--table takes tables, views and materialized views", and the view
    # named next was refused; a missing name was "no such table, view or materialized view".
    assert "no such table in" in missing.stderr, missing.stderr
    sandbox.psql("CREATE SEQUENCE sq", empty_db)
    sequence = run_cli("csv", "export", "--dsn", sandbox.dsn(), "--db", empty_db, "--table", "sq",
                       "--output", str(tmp_path / "s"))
    assert sequence.returncode == 2 and "is a sequence" in sequence.stderr, sequence.stderr
    assert "views" not in sequence.stderr, sequence.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["pgbackup-home"]
    nothing = run_cli("csv", "import", str(tmp_path), "--dsn", sandbox.dsn(), "--db", empty_db)
    assert nothing.returncode == 2 and "manifest.json" in nothing.stderr


def test_a_hypertable_is_made_again_before_its_data(sandbox, home, empty_db, target_db, tmp_path):
    from timescale_standin import held

    with held([sandbox]) as standin:
        sandbox.psql("CREATE EXTENSION timescaledb;"
                     "CREATE TABLE metrics (ts timestamptz NOT NULL, v float8);"
                     "SELECT create_hypertable('metrics', 'ts', chunk_time_interval => interval '1 day');"
                     "CREATE TABLE plain (ts timestamptz);"
                     "INSERT INTO metrics SELECT '2024-01-01'::timestamptz + g * interval '1 hour', g "
                     "FROM generate_series(1, 100) g;", empty_db)
        out = tmp_path / "copy"
        exported = export(sandbox, empty_db, out, "metrics", "plain")
        assert exported.returncode == 0, exported.stderr
        # The schema's selection dump is csv export's own: no "copy hypertables with csv export instead".
        assert "hypertable" not in exported.stderr, exported.stderr
        tables = {t["qualified"]: t for t in json.loads((out / "manifest.json").read_text())["tables"]}
        assert tables["public.metrics"]["hypertable"] == {"time_column": "ts", "chunk_interval": "1 day"}
        assert tables["public.plain"]["hypertable"] is None

        wrong = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db, "--create",
                        "--time-column", "plain=t")
        assert wrong.returncode == 2 and "public.plain has no column 't'" in wrong.stderr, wrong.stderr
        assert sandbox.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{target_db}'").strip() == "0"

        done = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db, "--create",
                       "--time-column", "plain=ts")
        assert done.returncode == 0, done.stderr
        made = sandbox.psql("SELECT hypertable_name, column_name, time_interval "
                            "FROM timescaledb_information.dimensions ORDER BY 1", target_db)
        assert made.split() == ["metrics|ts|1", "day", "plain|ts|7", "days"]
        assert fingerprint(sandbox, target_db, "metrics") == fingerprint(sandbox, empty_db, "metrics")
        assert sandbox.psql("SELECT count(*) FROM metrics", target_db).strip() == "100"
        # A server without TimescaleDB: said before a database is made. Still under the stand-in's
        # lock, removed: outside it, another test process could have it installed on this server.
        standin.remove()
        elsewhere = f"{target_db}_2"
        refused = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", elsewhere, "--create")
        assert refused.returncode != 0 and "public.metrics is a hypertable" in refused.stderr, refused.stderr
        assert "has no TimescaleDB" in refused.stderr and "created" not in refused.stderr, refused.stderr
        assert sandbox.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{elsewhere}'").strip() == "0"


def test_a_file_whose_header_is_not_the_export_s_columns_is_refused(sandbox, home, empty_db, target_db, tmp_path):
    """COPY … HEADER skips the first line whatever it says: columns moved by hand (header and all)
    went into the wrong columns, and a file written again without its header lost its first row,
    both with exit 0. The header must name the export's columns, in order."""
    sandbox.psql("CREATE TABLE t (id int, order_id int, name text);"
                 "INSERT INTO t SELECT g, 100 + g, 'n' || g FROM generate_series(1, 5) g;", empty_db)
    out = tmp_path / "copy"
    assert export(sandbox, empty_db, out, "t").returncode == 0
    manifest = json.loads((out / "manifest.json").read_text())
    csv_file = out / manifest["tables"][0]["file"]
    exported = csv_file.read_text()
    swapped = "".join(",".join([f[1], f[0], f[2]]) + "\n" for f in (line.split(",") for line in exported.splitlines()))
    for changed, words in ((swapped, "its header (order_id, id, name) is not the export's columns in order"),
                           ("".join(exported.splitlines(keepends=True)[1:]), "its header (1, 101, n1)")):
        csv_file.write_text(changed)
        refused = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db, "--create")
        # Bad input: one line, exit 2, before the database is made (it was made, then dropped: exit 1).
        assert refused.returncode == 2 and words in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and "dropped" not in refused.stderr, refused.stderr
        assert sandbox.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{target_db}'").strip() == "0"
    csv_file.write_text(exported)
    (out / "schema.sql").rename(out / "schema.sql.away")
    refused = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db, "--create")
    assert refused.returncode == 2 and "schema.sql: missing" in refused.stderr, refused.stderr
    (out / "schema.sql.away").rename(out / "schema.sql")
    done = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db, "--create")
    assert done.returncode == 0, done.stderr
    assert fingerprint(sandbox, target_db, "t") == fingerprint(sandbox, empty_db, "t")


def test_a_partition_beside_its_table_and_a_schema_s_own_sequence(sandbox, home, empty_db, target_db, tmp_path):
    """A partition named beside its partitioned table is copied once (the table's file holds its
    rows: both files imported gave every row twice); a sequence of an exported schema that no
    table uses goes on from its value (schema.sql made it, and it started over); and the export's
    working schema archive is not left behind in the backup catalog as a missing backup."""
    sandbox.psql("""
        CREATE TABLE meas (at date, v int) PARTITION BY RANGE (at);
        CREATE TABLE meas_2024 PARTITION OF meas FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        CREATE TABLE meas_2025 PARTITION OF meas FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        CREATE SCHEMA parts;
        CREATE TABLE parts.meas_2026 PARTITION OF meas FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
        INSERT INTO meas SELECT date '2024-06-01' + g, g FROM generate_series(1, 300) g;
        INSERT INTO meas SELECT date '2026-01-01' + g, g FROM generate_series(1, 7) g;
        CREATE SEQUENCE public.invoice_no START 100;
        SELECT nextval('invoice_no'), nextval('invoice_no');
    """, empty_db)
    out = tmp_path / "part"
    done = export(sandbox, empty_db, out, "public.meas", "public.meas_2024")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert [t["qualified"] for t in manifest["tables"]] == ["public.meas"]
    done = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db, "--create")
    assert done.returncode == 0, done.stderr
    for table in ("meas", "meas_2024", "meas_2025"):
        assert fingerprint(sandbox, target_db, table) == fingerprint(sandbox, empty_db, table)

    whole = tmp_path / "whole"
    done = run_cli("csv", "export", "--dsn", sandbox.dsn(), "--db", empty_db, "--schema", "public",
                   "--output", str(whole))
    assert done.returncode == 0, done.stderr
    again = target_db + "_2"
    try:
        done = run_cli("csv", "import", str(whole), "--dsn", sandbox.dsn(), "--db", again, "--create")
        assert done.returncode == 0, done.stderr
        assert sandbox.psql("SELECT nextval('invoice_no')", again).strip() == "102"
    finally:
        sandbox.drop_database(again)
    # QA: a schema of partitions whose partitioned table lives elsewhere exported 0 tables (they
    # were left to a parent not exported), and its schema.sql made them: they came back empty.
    parts = tmp_path / "parts"
    done = run_cli("csv", "export", "--dsn", sandbox.dsn(), "--db", empty_db, "--schema", "parts",
                   "--output", str(parts))
    assert done.returncode == 0, done.stderr
    manifest = json.loads((parts / "manifest.json").read_text())
    assert [(t["qualified"], t["rows"]) for t in manifest["tables"]] == [("parts.meas_2026", 7)]
    # QA: a plain table's inheritance child came along in schema.sql (as with dump --table), but
    # the table's COPY reads it alone (ONLY): the child's rows were not exported, and came back empty.
    sandbox.psql("CREATE TABLE par (id int); CREATE TABLE parts.kid (extra text) INHERITS (par);"
                 "INSERT INTO par VALUES (1); INSERT INTO parts.kid VALUES (2, 'k');", empty_db)
    inherited = tmp_path / "inherited"
    assert export(sandbox, empty_db, inherited, "public.par").returncode == 0
    manifest = json.loads((inherited / "manifest.json").read_text())
    assert [(t["qualified"], t["rows"]) for t in manifest["tables"]] == [("parts.kid", 1), ("public.par", 1)]
    listed = run_cli("backups", "list", "--json")
    assert listed.returncode == 0 and ".schema.dump" not in listed.stdout, listed.stdout


def test_the_files_do_not_depend_on_the_session_s_settings_and_hide_no_row(sandbox, home, empty_db, target_db,
                                                                           tmp_path):
    """pg_dump fixes its session's DateStyle, IntervalStyle and float digits; an export that took
    the DBA's (here PGDATESTYLE, PGTZ, PGOPTIONS; ALTER ROLE ... SET does the same) wrote 10/03/2024
    and `IST` and 1.23457, imported as another day, Israel's time and fewer digits, exit 0. And a
    row-level security policy hid rows from the export without a word: it fails, as pg_dump does."""
    sandbox.psql("CREATE TABLE s (id int PRIMARY KEY, d date, ts timestamptz, r real, f float8, i interval);"
                 "INSERT INTO s VALUES (1, '2024-03-10', '2024-03-10 12:00:00+00', 1.2345678, 0.1::float8 + 0.2,"
                 " '-3 days -04:00:00')", empty_db)
    hostile = dict(os.environ, PGDATESTYLE="SQL, DMY", PGTZ="Asia/Kolkata",
                   PGOPTIONS="-c extra_float_digits=0 -c intervalstyle=sql_standard")
    out = tmp_path / "copy"
    done = run_cli("csv", "export", "--dsn", sandbox.dsn(), "--db", empty_db, "--table", "s", "--output", str(out),
                   env=hostile)
    assert done.returncode == 0, done.stderr
    assert "2024-03-10 12:00:00+00" in (out / "public.s.csv").read_text()
    done = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db, "--create")
    assert done.returncode == 0, done.stderr
    exact = "SET extra_float_digits = 3; SELECT d, ts AT TIME ZONE 'UTC', r, f, i FROM s"
    assert sandbox.psql(exact, target_db) == sandbox.psql(exact, empty_db)

    reader = "r_" + uuid.uuid4().hex[:8]
    sandbox.psql(f"CREATE ROLE {reader} LOGIN; GRANT SELECT ON s TO {reader}; ALTER TABLE s ENABLE ROW LEVEL SECURITY;"
                 f"CREATE POLICY only_none ON s FOR SELECT USING (false)", empty_db)
    try:
        hidden = run_cli("csv", "export", "--dsn", f"{sandbox.dsn()} user={reader}", "--db", empty_db, "--table", "s",
                         "--output", str(tmp_path / "hidden"))
        assert hidden.returncode == 1, hidden.stdout + hidden.stderr
        assert "row-level security" in hidden.stderr
        assert not (tmp_path / "hidden").exists() and not (tmp_path / "hidden.partial").exists()
    finally:
        sandbox.psql(f"DROP POLICY only_none ON s; REVOKE ALL ON s FROM {reader}; DROP ROLE {reader}", empty_db)


def test_a_second_import_goes_parents_first_and_moves_no_other_table_s_sequence(sandbox, home, empty_db, target_db,
                                                                                tmp_path):
    """Into tables that exist with their foreign keys, name order loaded `child` before `parent`,
    and every retry failed the same way. And every sequence of the export was set back to its
    exported value, the sequences of tables the run did not load included, under rows the
    application had added since: its next insert hit a duplicate key."""
    sandbox.psql("CREATE TABLE parent (id int PRIMARY KEY); CREATE TABLE child (pid int REFERENCES parent);"
                 "CREATE TABLE live (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);"
                 "INSERT INTO parent SELECT generate_series(1, 3); INSERT INTO child VALUES (1), (3);"
                 "INSERT INTO live (v) SELECT 'v' || g FROM generate_series(1, 5) g", empty_db)
    out = tmp_path / "copy"
    assert export(sandbox, empty_db, out, "parent", "child", "live").returncode == 0
    done = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db, "--create")
    assert done.returncode == 0, done.stderr
    sandbox.psql("INSERT INTO live (v) VALUES ('added by the application')", target_db)  # id 6
    sandbox.psql("TRUNCATE child, parent", target_db)

    again = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db,
                    "--table", "child", "--table", "parent")
    assert again.returncode == 0, again.stderr
    assert fingerprint(sandbox, target_db, "child") == fingerprint(sandbox, empty_db, "child")
    assert sandbox.psql("INSERT INTO live (v) VALUES ('next') RETURNING id", target_db).strip() == "7"


def test_a_retry_after_a_failed_import_sets_the_sequences_of_the_first_run_s_tables(sandbox, home, empty_db,
                                                                                   target_db, tmp_path):
    """The first run loaded `a` and failed on `b`, before any sequence was set; the retry it
    advises (`--table b`) set b's only, and the application's next insert into `a` took an id
    its rows had."""
    sandbox.psql("CREATE TABLE a (id serial PRIMARY KEY, v text);"
                 "INSERT INTO a (v) SELECT 'a' FROM generate_series(1, 5);"
                 "CREATE TABLE b (id int PRIMARY KEY, v text); INSERT INTO b VALUES (1, 'ok')", empty_db)
    out = tmp_path / "copy"
    assert export(sandbox, empty_db, out, "a", "b").returncode == 0
    b_file = out / "public.b.csv"
    good = b_file.read_text()
    b_file.write_text(good.replace("1,ok", "x1,ok"))
    sandbox.create_database(target_db)
    assert run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db).returncode == 1
    b_file.write_text(good)
    retried = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db, "--table", "b")
    assert retried.returncode == 0, retried.stderr
    assert sandbox.psql("INSERT INTO a (v) VALUES ('new') RETURNING id", target_db).strip() == "6"


@pytest.mark.parametrize("stop", ["session ended", "cancelled", "runner killed"])
def test_an_import_stopped_half_way_says_which_tables_stay(sandbox, home, empty_db, target_db, tmp_path, stop):
    """Into a database that exists, each table is its own transaction: a lost session was said as
    "internal error: OperationalError(...)" (a traceback in the log), and a cancel or a killed
    runner did not say that the tables loaded before it stay (QA). The `--table`s to import the rest
    are quoted for the shell they are pasted into (`"slow & co"` lost its quotes there, and `&` sent
    half the command to the background) (QA)."""
    from test_job_faults import start_cli, wait_for

    slow, rest = 'public."slow & co"', """--table 'public."slow & co"'"""

    sandbox.psql("CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 10);"
                 f"CREATE TABLE {slow} (id int PRIMARY KEY); INSERT INTO {slow} SELECT generate_series(1, 400);",
                 empty_db)
    out = tmp_path / "copy"
    assert export(sandbox, empty_db, out, "a", slow).returncode == 0
    sandbox.create_database(target_db)
    sandbox.psql("CREATE FUNCTION slowly(int) RETURNS boolean LANGUAGE sql AS 'SELECT pg_sleep(0.01) IS NOT NULL';"
                 f"CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE {slow} (id int PRIMARY KEY CHECK (slowly(id)));",
                 target_db)
    cli = start_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db)
    copying = (f"SELECT pid FROM pg_stat_activity WHERE datname = '{target_db}' AND query LIKE 'COPY%slow & co%' "
               "AND state = 'active'")
    wait_for(lambda: sandbox.psql(copying).strip() != "", "the import to load the slow table")
    if stop == "session ended":
        sandbox.psql(f"SELECT pg_terminate_backend(pid) FROM ({copying}) AS copy")
    elif stop == "cancelled":
        cli.send_signal(signal.SIGTERM)
    else:
        state = import_job_state(home)
        os.kill(state["runner_pid"], signal.SIGKILL)
    _, stderr = cli.communicate(timeout=60)
    assert cli.returncode == (130 if stop == "cancelled" else 1), stderr
    assert "internal error" not in stderr and "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    if stop == "session ended":
        assert "terminating connection" in last and "imported before it: public.a" in last, last
        # The server ended it, not a bad line: nothing in the file to fix (QA).
        assert "fix the file" not in last and f"import the rest with {rest}" in last, last
    elif stop == "cancelled":
        assert "stay (each is its own transaction): public.a" in last and rest in last, last
    else:
        # Named by the record (each table on it once its transaction committed), not left to the log.
        assert f"the tables imported into '{target_db}' before it stopped stay" in last, last
        assert "committed): public.a;" in last and rest in last, last
        assert "--table public.a" not in last, last
    assert sandbox.psql(f"SELECT (SELECT count(*) FROM a) || '/' || (SELECT count(*) FROM {slow})",
                        target_db).strip() == "10/0"
    logged = "".join(path.read_text() for path in (home / "logs").glob("*.log"))
    assert "Traceback" not in logged
    # The log says which tables went in (a line once each one's transaction committed), not only which began.
    assert "imported public.a: 10 rows" in logged and f"imported {slow}" not in logged, logged
    state = import_job_state(home)
    assert state["owned"] == [], state  # nothing left for a later start to look at


def test_a_runner_killed_after_a_table_s_commit_names_that_table(sandbox, home, empty_db, target_db, tmp_path):
    """Killed after a table's COMMIT, before the table went on record as imported, the runner left it
    unnamed: its recovery said no table's import had committed, over a table holding its rows. The
    transaction is on record before its COMMIT now, and the recovery asks the server about it."""
    from test_job_faults import start_cli, wait_for

    sandbox.psql("CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 10);"
                 "CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b SELECT generate_series(1, 10);", empty_db)
    out = tmp_path / "copy"
    assert export(sandbox, empty_db, out, "a", "b").returncode == 0
    sandbox.create_database(target_db)
    # a's COMMIT takes a while: its deferred trigger sleeps once, at commit time.
    sandbox.psql("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY);"
                 "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
                 "$$BEGIN IF NEW.id = 1 THEN PERFORM pg_sleep(1); END IF; RETURN NULL; END$$;"
                 "CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON a DEFERRABLE INITIALLY DEFERRED "
                 "FOR EACH ROW EXECUTE FUNCTION slow_commit()", target_db)
    cli = start_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db, "--table", "a",
                    "--table", "b")
    committing = (f"SELECT pid FROM pg_stat_activity WHERE datname = '{target_db}' AND query = 'COMMIT' "
                  "AND wait_event = 'PgSleep'")
    wait_for(lambda: sandbox.psql(committing).strip() != "", "a's commit to begin")
    backend = sandbox.psql(committing).strip()
    state = import_job_state(home)
    cli.kill()  # the terminal and the runner go; the server finishes the COMMIT it was running
    os.kill(state["runner_pid"], signal.SIGKILL)
    cli.communicate(timeout=30)
    wait_for(lambda: sandbox.psql(f"SELECT 1 FROM pg_stat_activity WHERE pid = {backend}").strip() == "",
             "the session of a's commit to end")
    assert sandbox.psql("SELECT count(*) FROM a", target_db).strip() == "10"
    listed = run_cli("jobs", "list")  # every command starts by finishing what dead runners left
    assert listed.returncode == 0, listed.stderr
    [job] = [j for j in json.loads(run_cli("jobs", "list", "--json").stdout) if j["kind"] == "csv-import"]
    message = job["message"]
    assert f"the tables imported into '{target_db}' before it stopped stay" in message, message
    assert "committed): public.a;" in message and "--table public.b" in message, message
    assert "--table public.a" not in message, message


def test_an_export_whose_session_is_ended_says_so_in_one_line(sandbox, home, empty_db, tmp_path):
    """A terminated session left the export as "internal error: OperationalError(...)" over several lines (QA)."""
    import subprocess

    from test_job_faults import start_cli, wait_for

    sandbox.psql("CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 10);", empty_db)
    holder = subprocess.Popen([str(sandbox.bin_dir / "psql"), "-X", "-q", "-d", sandbox.dsn(empty_db)],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    assert holder.stdin is not None
    holder.stdin.write("BEGIN; LOCK TABLE a IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60);\n")
    holder.stdin.flush()
    waiting = (f"SELECT pid FROM pg_stat_activity WHERE datname = '{empty_db}' AND wait_event_type = 'Lock' "
               "AND application_name LIKE 'pgbackup-tui%'")
    try:
        wait_for(lambda: sandbox.psql("SELECT count(*) FROM pg_locks WHERE relation = 'a'::regclass AND granted",
                                      empty_db).strip() != "0", "the holder's lock")
        cli = start_cli("csv", "export", "--dsn", sandbox.dsn(), "--db", empty_db, "--table", "a",
                        "--output", str(tmp_path / "copy"))
        wait_for(lambda: sandbox.psql(waiting).strip() != "", "the export to wait for the lock")
        sandbox.psql(f"SELECT pg_terminate_backend(pid) FROM ({waiting}) AS w")
        _, stderr = cli.communicate(timeout=60)
    finally:
        holder.kill()
        holder.wait()
    assert cli.returncode == 1, stderr
    lines = stderr.strip().splitlines()
    assert "internal error" not in stderr and "Traceback" not in stderr, stderr
    assert "terminating connection" in lines[-1] or "lost" in lines[-1], stderr
    assert not (tmp_path / "copy").exists()


def test_a_cancelled_export_does_not_wait_for_a_lock(sandbox, home, empty_db, tmp_path):
    """Another session's ACCESS EXCLUSIVE lock on a table held the cancel of an export until it was
    let go: the look-up's sizes (pg_relation_size) wait for it, and only the pg_dump child was
    cancelled (QA: exit 130 34 s after the SIGTERM). The statement waiting is cancelled on the
    server, the export ends at once and leaves no folder. (Once the data's snapshot has begun, the
    export holds ACCESS SHARE on every table: see the TRUNCATE test below.)"""
    import subprocess
    import time

    from test_job_faults import start_cli, wait_for

    sandbox.psql("CREATE TABLE awk (id int); CREATE TABLE gen (id int); INSERT INTO gen SELECT generate_series(1, 50);",
                 empty_db)
    holder = subprocess.Popen([str(sandbox.bin_dir / "psql"), "-X", "-q", "-d", sandbox.dsn(empty_db)],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    assert holder.stdin is not None
    ours = f"datname = '{empty_db}' AND application_name LIKE 'pgbackup-tui%'"
    waiting = f"SELECT count(*) FROM pg_stat_activity WHERE {ours} AND wait_event_type = 'Lock'"
    locked = ("SELECT count(*) FROM pg_locks WHERE relation = 'gen'::regclass AND granted "
              "AND mode = 'AccessExclusiveLock'")
    out = tmp_path / "copy"
    cli: subprocess.Popen[str] | None = None
    try:
        holder.stdin.write("BEGIN; LOCK TABLE gen IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60);\n")
        holder.stdin.flush()
        wait_for(lambda: sandbox.psql(locked, empty_db).strip() != "0", "the holder's lock")
        cli = start_cli("csv", "export", "--dsn", sandbox.dsn(), "--db", empty_db, "--table", "public.awk",
                        "--table", "public.gen", "--output", str(out), "--progress", "plain")
        wait_for(lambda: sandbox.psql(waiting).strip() != "0", "the export to wait for the lock", timeout=60)
        started = time.monotonic()
        cli.send_signal(signal.SIGTERM)
        _, stderr = cli.communicate(timeout=60)
        took = time.monotonic() - started
        assert cli.returncode == 130, stderr
        assert took < 10, f"the cancel took {took:.1f}s"
        wait_for(lambda: sandbox.psql(waiting).strip() == "0", "the waiting statement to be cancelled", 5)
        assert not out.exists() and not (tmp_path / "copy.partial").exists()
    finally:
        holder.kill()
        holder.wait()
        if cli is not None and cli.poll() is None:
            cli.kill()
            cli.wait()


def test_a_truncate_during_the_export_waits_for_it(sandbox, home, empty_db, tmp_path, monkeypatch):
    """QA: a table TRUNCATEd (and filled again) by another session while an earlier table was being
    copied went into the export as an empty file, neither its rows before nor after (TRUNCATE is
    not MVCC-safe: the snapshot sees the new, empty file), and the export succeeded. It locks every
    table ACCESS SHARE before its snapshot, as pg_dump does: the TRUNCATE waits for it to end."""
    import subprocess

    from test_job_faults import start_cli, wait_for
    from throttle_proxy import ThrottleProxy

    sandbox.psql("CREATE TABLE awk (id int, pad text);"
                 "INSERT INTO awk SELECT g, repeat('x', 100) FROM generate_series(1, 4000) g;"
                 "CREATE TABLE gen (id int); INSERT INTO gen SELECT generate_series(1, 50);", empty_db)
    ours = f"datname = '{empty_db}' AND application_name LIKE 'pgbackup-tui%'"
    out = tmp_path / "copy"
    # Behind a slow link awk's COPY takes a couple of seconds: time for the TRUNCATE before gen's COPY.
    with ThrottleProxy(sandbox.port, 0.5e6, lifetime_s=120) as proxy:
        monkeypatch.setenv("PGPASSWORD", sandbox.password)
        cli = start_cli("csv", "export", "--dsn", f"host=127.0.0.1 port={proxy.port} user={sandbox.superuser}",
                        "--db", empty_db, "--table", "public.awk", "--table", "public.gen", "--output", str(out))
        try:
            wait_for(lambda: sandbox.psql(f"SELECT count(*) FROM pg_stat_activity WHERE {ours} "
                                          "AND query LIKE 'COPY%awk%'").strip() != "0", "awk's COPY")
            truncate = subprocess.Popen(
                [str(sandbox.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", sandbox.dsn(empty_db),
                 "-c", "BEGIN; TRUNCATE gen; INSERT INTO gen VALUES (-1); COMMIT;"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            _, stderr = cli.communicate(timeout=60)
            assert truncate.wait(timeout=30) == 0
        finally:
            if cli.poll() is None:
                cli.kill()
                cli.wait()
    assert cli.returncode == 0, stderr
    assert (out / "public.gen.csv").read_text().splitlines() == ["id", *(str(i) for i in range(1, 51))]
    assert sandbox.psql("SELECT array_agg(id) FROM gen", empty_db).strip() == "{-1}"


def test_a_refusal_before_the_job_ends_jsonl_with_finished(sandbox, home, empty_db, tmp_path):
    """An --output that exists is refused by the plan's checks, before a job begins: with --progress
    jsonl stdout was empty (exit 2), where a refusal inside the job ends with `finished` (QA)."""
    sandbox.psql("CREATE TABLE a (id int)", empty_db)
    there = tmp_path / "there"
    there.mkdir()
    for command in (("csv", "export", "--table", "a", "--output", str(there)),
                    ("csv", "import", str(tmp_path / "nope")),
                    ("dump", "--output", str(there))):
        done = run_cli(*command, "--dsn", sandbox.dsn(), "--db", empty_db, "--progress", "jsonl")
        assert done.returncode == 2, done.stderr
        assert [json.loads(line) for line in done.stdout.splitlines()] == [
            {"event": "finished", "status": "failed", "exit_code": 2, "path": None, "duration_s": 0.0, "bytes": 0}
        ], done.stdout
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_manifest_edited_by_hand_is_refused_in_one_line(sandbox, home, empty_db, target_db, tmp_path):
    """A manifest whose field is not what csv export writes gave "internal error: TypeError(...)"
    (exit 1), and a table's file "../e1/public.awk.csv" was read from outside the folder and
    imported (QA). Both are the folder's faults: one line naming the manifest and the field, exit 2,
    before anything is made."""
    sandbox.psql("CREATE TABLE awk (id int, v text); INSERT INTO awk SELECT g, 'v' || g FROM generate_series(1, 5) g",
                 empty_db)
    for name in ("e1", "e2"):
        assert export(sandbox, empty_db, tmp_path / name, "awk").returncode == 0
    manifest_path = tmp_path / "e2" / "manifest.json"
    exported = json.loads(manifest_path.read_text())
    for field, value, words in (("columns", None, "tables[0].columns is not a list of column names (null)"),
                                ("file", "../e1/public.awk.csv", "tables[0].file \"../e1/public.awk.csv\" is not a "
                                 "file name in the export's folder"),
                                ("file", str(tmp_path / "e1" / "public.awk.csv"), "tables[0].file"),
                                ("rows", "5", "tables[0].rows is not a count of rows (\"5\")")):
        edited = json.loads(json.dumps(exported))
        edited["tables"][0][field] = value
        if field == "file":  # only the other folder's file is there to read
            (tmp_path / "e2" / "public.awk.csv").unlink(missing_ok=True)
        manifest_path.write_text(json.dumps(edited))
        refused = run_cli("csv", "import", str(tmp_path / "e2"), "--dsn", sandbox.dsn(), "--db", target_db,
                          "--create")
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and str(manifest_path) in lines[0] and words in lines[0], refused.stderr
        assert "internal error" not in refused.stderr
        assert sandbox.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{target_db}'").strip() == "0"
    edited = json.loads(json.dumps(exported))
    edited["sequences"] = [{"schema": "public", "name": "s", "last_value": "1", "is_called": True}]
    manifest_path.write_text(json.dumps(edited))
    refused = run_cli("csv", "import", str(tmp_path / "e2"), "--dsn", sandbox.dsn(), "--db", target_db, "--create")
    assert refused.returncode == 2 and "sequences[0].last_value is not a number" in refused.stderr, refused.stderr


def test_a_file_changed_or_cut_short_is_said_in_every_mode(sandbox, home, empty_db, target_db, tmp_path):
    """A CSV cut short at a line boundary imported with exit 0, and the warning that it changed since
    the export was only in the log and --progress plain: not on stderr with --progress none (cron),
    not in jsonl's `finished`, not in `jobs show` (QA). Rows loaded that differ from the manifest's
    count: exit 3 (partial), the data is in but not what was exported."""
    sandbox.psql("CREATE TABLE gen (id int, v text); INSERT INTO gen SELECT g, 'v' || g FROM generate_series(1, 50) g",
                 empty_db)
    out = tmp_path / "copy"
    assert export(sandbox, empty_db, out, "gen").returncode == 0
    gen = out / "public.gen.csv"
    exported = gen.read_text()
    changed = "public.gen.csv changed since the export (its sha256 differs)"
    short = "public.gen: 29 rows loaded from public.gen.csv, but the export wrote 50"
    gen.write_text("".join(exported.splitlines(keepends=True)[:30]))  # head -n 30: the header and 29 rows
    for mode in ("none", "jsonl", "plain"):
        db = f"{target_db}_{mode}"
        try:
            done = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", db, "--create",
                           "--progress", mode)
            assert done.returncode == 3, done.stderr
            assert changed in done.stderr and short in done.stderr, done.stderr
            assert done.stderr.count(short) == (1 if mode != "plain" else 2), done.stderr  # plain: its log too
            assert sandbox.psql("SELECT count(*) FROM gen", db).strip() == "29"
            if mode == "jsonl":
                finished = json.loads(done.stdout.splitlines()[-1])
                assert (finished["status"], finished["exit_code"]) == ("partial", 3), finished
                assert any(changed in line for line in finished["warnings"]), finished
                assert any(short in line for line in finished["warnings"]), finished
        finally:
            sandbox.drop_database(db)
    shown = run_cli("jobs", "list", "--json")
    jobs = [job for job in json.loads(shown.stdout) if job["kind"] == "csv-import"]
    assert len(jobs) == 3 and all(job["state"] == "partial" for job in jobs), jobs
    show = run_cli("jobs", "show", jobs[0]["id"])
    assert changed in show.stdout and short in show.stdout, show.stdout

    # The same count of rows, one value changed: in (exit 0), and said on stderr with --progress none.
    gen.write_text(exported.replace("7,v7\n", "7,seven\n"))
    done = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db, "--create")
    assert done.returncode == 0, done.stderr
    assert changed in done.stderr and "not as exported" not in done.stderr, done.stderr


def test_an_inheritance_parent_s_progress_counts_its_own_rows_only(sandbox, home, empty_db, tmp_path):
    # QA: the export copies a plain parent alone (ONLY: its children are tables of their own), but its
    # row estimate counted the children too: the last progress said 100,096 rows for 100,095 copied.
    sandbox.psql("""
        CREATE TABLE public.parent_t (id int);
        CREATE TABLE public.child_t (extra int) INHERITS (public.parent_t);
        INSERT INTO public.parent_t SELECT g FROM generate_series(1, 500) g;
        INSERT INTO public.child_t SELECT g, g FROM generate_series(1, 300) g;
        ANALYZE;
    """, empty_db)
    done = export(sandbox, empty_db, tmp_path / "copy", "public.parent_t", extra=("--progress", "jsonl"))
    assert done.returncode == 0, done.stderr
    last = [json.loads(line) for line in done.stdout.splitlines() if '"progress"' in line][-1]
    # The child is copied too, to a file of its own (schema.sql makes it): each row counted once.
    assert last["rows_done"] == 800, last
    manifest = json.loads((tmp_path / "copy" / "manifest.json").read_text())
    assert [(t["qualified"], t["rows"]) for t in manifest["tables"]] == [("public.child_t", 300),
                                                                        ("public.parent_t", 500)]


def test_an_import_s_progress_counts_the_rows_it_loaded(sandbox, home, empty_db, target_db, tmp_path):
    # QA: an import's progress measures its files' bytes, and its rows_done stayed 0 to the end.
    sandbox.psql("CREATE TABLE public.a (id int); INSERT INTO public.a SELECT generate_series(1, 120);"
                 "CREATE TABLE public.b (id int); INSERT INTO public.b SELECT generate_series(1, 30);", empty_db)
    out = tmp_path / "copy"
    assert export(sandbox, empty_db, out, "public.a", "public.b").returncode == 0
    done = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db, "--create",
                   "--progress", "jsonl")
    assert done.returncode == 0, done.stderr
    last = [json.loads(line) for line in done.stdout.splitlines() if '"progress"' in line][-1]
    assert last["rows_done"] == 150, last


def test_an_import_of_one_table_says_one_table(sandbox, home, empty_db, target_db, tmp_path):
    # QA: the Jobs tab and the CLI ended "imported 1 tables into 'shop_csv'".
    sandbox.psql("CREATE TABLE lone (x int); INSERT INTO lone VALUES (1);", empty_db)
    out = tmp_path / "copy"
    assert export(sandbox, empty_db, out, "public.lone").returncode == 0
    done = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target_db, "--create",
                   "--progress", "none")
    assert done.returncode == 0, done.stderr
    assert f"imported 1 table into '{target_db}'" in done.stdout + done.stderr, (done.stdout, done.stderr)
