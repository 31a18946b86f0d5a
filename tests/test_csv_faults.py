"""CSV copies: what a DBA's odd sources and slips of the hand must not turn into bad data (QA)."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from cliutil import run_cli
from held_session import end_session, session_left_open


@pytest.fixture
def names(request, sandbox):
    """Database names a test makes (dropped afterwards, on other_sandbox too when the test uses it)."""
    made: list[str] = []

    def new() -> str:
        made.append("t_" + uuid.uuid4().hex[:8])
        return made[-1]

    yield new
    clusters = [sandbox] + ([request.getfixturevalue("other_sandbox")] if "other_sandbox" in request.fixturenames
                            else [])
    for cluster in clusters:
        for name in made:
            cluster.drop_database(name)


def export(sandbox, db, out, *args):
    return run_cli("csv", "export", "--dsn", sandbox.dsn(), "--db", db, "--output", str(out), *args)


def test_a_sql_ascii_export_s_bytes_are_checked_by_a_utf8_target(sandbox, home, names, tmp_path):
    # QA: COPY with client_encoding SQL_ASCII checks nothing: the byte 0xe9 of a SQL_ASCII database
    # (LATIN1 text an old application wrote) went into a UTF8 database as it was, invalid there.
    source, target, fine = names(), names(), names()
    sandbox.psql(f"CREATE DATABASE {source} ENCODING 'SQL_ASCII' TEMPLATE template0 LOCALE 'C'")
    sandbox.psql("CREATE TABLE raw (id int, t text);"
                 "INSERT INTO raw VALUES (1, convert_from('\\xc3a9'::bytea, 'SQL_ASCII')),"
                 " (2, convert_from('\\x6361666533e9'::bytea, 'SQL_ASCII'));", source)
    out = tmp_path / "copy"
    assert export(sandbox, source, out, "--table", "raw").returncode == 0

    failed = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target, "--create")
    assert failed.returncode == 1, failed.stderr
    line = failed.stderr.strip().splitlines()[-1]
    assert "public.raw.csv, line 3: invalid byte sequence" in line and "SQL_ASCII database" in line, line
    assert sandbox.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{target}'").strip() == "0"

    # Valid UTF-8 (what most SQL_ASCII databases hold) goes in unchanged.
    sandbox.psql("DELETE FROM raw WHERE id = 2", source)
    assert export(sandbox, source, tmp_path / "valid", "--table", "raw").returncode == 0
    done = run_cli("csv", "import", str(tmp_path / "valid"), "--dsn", sandbox.dsn(), "--db", fine, "--create")
    assert done.returncode == 0, done.stderr
    assert sandbox.psql("SELECT t::bytea FROM raw", fine).strip() == "\\xc3a9"


def test_a_system_catalog_is_never_copied(sandbox, home, empty_db, names, tmp_path):
    # QA: `csv export --table pg_catalog.pg_largeobject` (or --schema pg_catalog) wrote the catalog's
    # rows, with no schema for them (pg_dump -t makes none), and the import COPYed them straight into
    # the target's own catalog.
    for args in (("--table", "pg_catalog.pg_largeobject"), ("--schema", "information_schema")):
        refused = export(sandbox, empty_db, tmp_path / "sys", *args)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.count("\n") == 1 and f"{args[1]} is a system" in refused.stderr, refused.stderr
        assert not (tmp_path / "sys").exists() and not (tmp_path / "sys.partial").exists()

    # An export made before that was refused: its catalog table is not imported either.
    sandbox.psql("CREATE TABLE lo (loid oid, pageno int, data bytea); INSERT INTO lo VALUES (4242, 0, '\\x01');",
                 empty_db)
    out = tmp_path / "copy"
    assert export(sandbox, empty_db, out, "--table", "lo").returncode == 0
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["tables"][0].update(schema="pg_catalog", name="pg_largeobject", qualified="pg_catalog.pg_largeobject")
    (out / "manifest.json").write_text(json.dumps(manifest))
    target = names()
    refused = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target, "--create")
    assert refused.returncode == 2, refused.stderr
    assert "pg_catalog.pg_largeobject: a system catalog" in refused.stderr, refused.stderr
    assert sandbox.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{target}'").strip() == "0"


def test_a_table_named_twice_is_copied_once(sandbox, home, empty_db, names, tmp_path):
    # QA: `--table t --table public.t` exported t's rows twice (a second file); `csv import
    # --table t --table t` stopped on "internal error: ValueError('two work items have one key')".
    sandbox.psql("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 5);", empty_db)
    out = tmp_path / "copy"
    done = export(sandbox, empty_db, out, "--table", "t", "--table", "public.t", "--schema", "public",
                  "--schema", "public")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert [t["qualified"] for t in manifest["tables"]] == ["public.t"]
    assert sorted(p.name for p in out.glob("*.csv")) == ["public.t.csv"]

    target = names()
    done = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target, "--create",
                   "--table", "t", "--table", "public.t")
    assert done.returncode == 0, done.stderr
    assert "imported 1 table" in done.stderr
    assert sandbox.psql("SELECT count(*) FROM t", target).strip() == "5"


def test_a_newer_server_s_copy_goes_into_an_older_one(sandbox, other_sandbox, home, names, tmp_path):
    # QA: pg_restore 17+ writes `SET transaction_timeout = 0;` at the head of schema.sql whatever the
    # server it will meet: a 15 server stopped there ("unrecognized configuration parameter"), so no
    # CSV copy of an 18 server (nor one written with 17+'s client tools) could go into it.
    # (Debian's 15 and the wheel's 18 here; on a machine with the wheels' 17 and 18 only, 18 into 17.)
    newer, older = (other_sandbox, sandbox) if other_sandbox.major > sandbox.major else (sandbox, other_sandbox)
    source, target = names(), names()
    newer.create_database(source)
    newer.psql("CREATE TABLE t (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);"
               "INSERT INTO t (v) VALUES ('a'), ('b');", source)
    out = tmp_path / "copy"
    assert export(newer, source, out, "--table", "t").returncode == 0
    assert b"SET transaction_timeout" in (out / "schema.sql").read_bytes()  # what made it fail

    done = run_cli("csv", "import", str(out), "--dsn", older.dsn(), "--db", target, "--create")
    assert done.returncode == 0, done.stderr
    assert older.psql("INSERT INTO t (v) VALUES ('c') RETURNING id", target).splitlines()[0] == "3"
    assert older.psql("SELECT count(*) FROM pg_index WHERE indrelid = 't'::regclass", target).strip() == "1"


def test_a_role_s_or_database_s_timeout_does_not_stop_an_import(sandbox, home, empty_db, names, tmp_path):
    # QA: the import's COPY ran under the target's statement_timeout (ALTER ROLE/DATABASE ... SET,
    # common in production): a table that took longer failed, said as a bad line of its file
    # ("line 294678: canceling statement due to statement timeout ... fix the file"). pg_restore sets 0.
    sandbox.psql("CREATE FUNCTION slow_ok(int) RETURNS bool LANGUAGE sql AS 'SELECT pg_sleep(0.002) IS NOT NULL';"
                 "CREATE TABLE t (id int CHECK (slow_ok(id)));"
                 "INSERT INTO t SELECT generate_series(1, 200);", empty_db)
    out = tmp_path / "copy"
    assert export(sandbox, empty_db, out, "--table", "t").returncode == 0
    target = names()
    sandbox.create_database(target)
    sandbox.psql(f"ALTER DATABASE {target} SET statement_timeout = '100ms'")
    done = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target)
    assert done.returncode == 0, done.stderr
    assert sandbox.psql("SELECT count(*) FROM t", target).strip() == "200"


def test_a_value_utf8_cannot_hold_names_its_table(sandbox, home, names, tmp_path):
    # QA: a WIN1252 database's 0x81 (no character in UTF8, the files' encoding) failed the export
    # with "server refused a statement (character with byte sequence 0x81 ...)": which table, and
    # what then?
    source = names()
    sandbox.psql(f"CREATE DATABASE {source} ENCODING 'WIN1252' TEMPLATE template0 LOCALE 'C'")
    sandbox.psql("CREATE TABLE fine (id int); CREATE TABLE w (id int, t text);"
                 "INSERT INTO w VALUES (1, convert_from('\\x6f6b81'::bytea, 'WIN1252'));", source)
    out = tmp_path / "copy"
    failed = export(sandbox, source, out, "--table", "fine", "--table", "w")
    assert failed.returncode == 1, failed.stderr
    line = failed.stderr.strip()
    assert line.count("\n") == 0 and "copying public.w failed" in line and "0x81" in line, line
    assert "pgbackup-tui dump" in line, line
    assert not out.exists() and not (tmp_path / "copy.partial").exists()


def test_a_full_disk_is_named(sandbox, home, empty_db, tmp_path):
    # QA: the export's CSV written into a full disk said "the disk is full (No space left on
    # device); the job was stopped": which disk? (the file is opened from its descriptor)
    from small_disk import small_filesystem

    sandbox.psql("CREATE TABLE big (id int, t text);"
                 "INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;", empty_db)
    with small_filesystem(tmp_path / "small", 1024) as small:
        failed = export(sandbox, empty_db, small / "copy", "--table", "big")
        assert failed.returncode == 1, failed.stderr
        line = failed.stderr.strip()
        assert "the disk is full" in line and f"writing {small}/copy.partial/public.big.csv" in line, line
        assert list(small.iterdir()) == []


def _t_exported_and_a_role(sandbox, empty_db, tmp_path, names, rows: str, prefix: str) -> tuple[Path, str, str]:
    """Table t of `rows` exported from `empty_db` to tmp_path/copy; a new role (no rights) and a free
    database name: (the export, the role, the name)."""
    sandbox.psql(f"CREATE TABLE t (id int); INSERT INTO t VALUES {rows};", empty_db)
    out = tmp_path / "copy"
    assert export(sandbox, empty_db, out, "--table", "t").returncode == 0
    role, target = prefix + uuid.uuid4().hex[:6], names()
    sandbox.create_role(role)
    return out, role, target


def test_a_create_that_failed_leaves_no_database_to_drop(sandbox, home, empty_db, names, tmp_path):
    # QA: `csv import --create` as a role without CREATEDB failed, but left the name on the job's
    # record as its own: the next command of any kind dropped the database the DBA then made of that
    # name ("undone: database x"), their rows with it.
    out, role, target = _t_exported_and_a_role(sandbox, empty_db, tmp_path, names, "(1)", "nocreate_")
    try:
        failed = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn().replace("user=postgres", f"user={role}"),
                         "--db", target, "--create")
        assert failed.returncode == 1 and "permission denied to create database" in failed.stderr, failed.stderr
        sandbox.create_database(target, owner=role)  # made for that role by hand, with something in it
        sandbox.psql("CREATE TABLE precious (id int); INSERT INTO precious VALUES (42);", target)
        listed = run_cli("jobs", "list")  # any start looks at the jobs that ended
        assert "undone" not in listed.stderr, listed.stderr
        assert sandbox.psql("SELECT id FROM precious", target).strip() == "42"
    finally:
        sandbox.drop_database(target)
        sandbox.psql(f"DROP ROLE {role}")


def _a_and_b_exported_into_a_new_database(sandbox, empty_db: str, names, tmp_path: Path, source_sql: str,
                                           target_sql: str) -> tuple[Path, str]:
    """Tables a and b made in `empty_db` by `source_sql`, exported; a new database where `target_sql`
    ran: (the CSV folder, the new database)."""
    sandbox.psql(source_sql, empty_db)
    out = tmp_path / "copy"
    assert export(sandbox, empty_db, out, "--table", "a", "--table", "b").returncode == 0
    target = names()
    sandbox.create_database(target)
    sandbox.psql(target_sql, target)
    return out, target


def _importing_a_slowly(sandbox, empty_db: str, names, tmp_path: Path) -> tuple[subprocess.Popen[str], Path, str]:
    """A csv import of tables a (300 rows, each checked slowly) and b into a new database, its front
    returned once it loads a: (the front, the CSV folder, the target database)."""
    from test_job_faults import start_cli, wait_for

    out, target = _a_and_b_exported_into_a_new_database(
        sandbox, empty_db, names, tmp_path,
        "CREATE TABLE a (id int); INSERT INTO a SELECT generate_series(1, 300);"
        "CREATE TABLE b (id int); INSERT INTO b SELECT generate_series(1, 5);",
        "CREATE FUNCTION slowly(int) RETURNS boolean LANGUAGE sql AS 'SELECT pg_sleep(0.01) IS NOT NULL';"
        "CREATE TABLE a (id int CHECK (slowly(id))); CREATE TABLE b (id int);")
    cli = start_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target)
    wait_for(lambda: sandbox.psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{target}' "
                                  "AND query LIKE 'COPY \"public\".\"a\"%' AND state = 'active'").strip() == "1",
             "the import to load a")
    return cli, out, target


def test_a_table_written_to_while_the_import_ran_is_left_as_it_is(sandbox, home, empty_db, names, tmp_path):
    # QA: each table's emptiness was checked once, before the import began: rows an application
    # wrote into a later table while an earlier one loaded got the exported rows on top, and the
    # import said it succeeded.
    cli, out, target = _importing_a_slowly(sandbox, empty_db, names, tmp_path)
    sandbox.psql("INSERT INTO b VALUES (1000)", target)  # the application, meanwhile
    _, stderr = cli.communicate(timeout=60)
    assert cli.returncode == 1, stderr
    assert "public.b in" in stderr and "has rows now" in stderr, stderr
    assert sandbox.psql("SELECT string_agg(id::text, ',') FROM b", target).strip() == "1000"
    assert sandbox.psql("SELECT count(*) FROM a", target).strip() == "300"


def test_a_file_gone_half_way_is_named(sandbox, home, empty_db, names, tmp_path):
    # QA: a CSV file that went after the import began (the folder moved, a mount gone) stopped it
    # with "internal error: FileNotFoundError(2, 'No such file or directory') (see the log)".
    cli, out, target = _importing_a_slowly(sandbox, empty_db, names, tmp_path)
    (out / "public.b.csv").rename(tmp_path / "moved.csv")
    _, stderr = cli.communicate(timeout=60)
    assert cli.returncode == 1, stderr
    line = stderr.strip().splitlines()[-1]
    assert "internal error" not in line and f"{out / 'public.b.csv'}: cannot be read" in line, line
    assert "stay (each is its own transaction): public.a; import the rest with --table public.b" in line, line


def test_a_table_without_columns_to_copy_round_trips(sandbox, home, empty_db, names, tmp_path):
    # QA: a table with no columns (all dropped) or generated ones only exported, but its import
    # stopped: "syntax error at or near ")"" (COPY t () FROM STDIN).
    sandbox.psql("CREATE TABLE nocols (); INSERT INTO nocols DEFAULT VALUES; INSERT INTO nocols DEFAULT VALUES;"
                 "CREATE TABLE onlygen (a int GENERATED ALWAYS AS (7) STORED); INSERT INTO onlygen DEFAULT VALUES;",
                 empty_db)
    out = tmp_path / "copy"
    assert export(sandbox, empty_db, out, "--table", "nocols", "--table", "onlygen").returncode == 0
    target = names()
    done = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target, "--create")
    assert done.returncode == 0, done.stderr
    assert sandbox.psql("SELECT (SELECT count(*) FROM nocols) || '/' || (SELECT string_agg(a::text, ',') "
                        "FROM onlygen)", target).strip() == "2/7"


def test_a_failed_schema_post_leaves_the_sequences_set_and_says_how_to_finish(sandbox, home, empty_db, names,
                                                                              tmp_path):
    # QA: schema-post.sql failing after the data (a row added by hand repeats a key) left the data
    # in, a retry refused (the tables have rows), and the sequences at 1 (set after schema-post.sql):
    # the application's next insert took a key the rows had. Nothing said how to finish.
    sandbox.psql("CREATE TABLE t (id serial PRIMARY KEY, v text);"
                 "INSERT INTO t (v) SELECT 'v' FROM generate_series(1, 9);", empty_db)
    out = tmp_path / "copy"
    assert export(sandbox, empty_db, out, "--table", "t").returncode == 0
    with open(out / "public.t.csv", "a") as csv_file:
        csv_file.write("9,again\n")
    target = names()
    sandbox.create_database(target)
    failed = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target)
    assert failed.returncode == 1, failed.stderr
    line = failed.stderr.strip().splitlines()[-1]
    assert "schema-post.sql) failed" in line and f"dbname={target}' -f {out / 'schema-post.sql'}" in line, line
    sandbox.psql("DELETE FROM t WHERE v = 'again'", target)
    assert sandbox.psql("SELECT nextval('t_id_seq')", target).strip() == "10"


def test_a_role_that_may_only_insert_imports(sandbox, home, empty_db, names, tmp_path):
    # QA: the lock that holds a table empty until its rows commit needs UPDATE, DELETE or TRUNCATE:
    # a loading role granted SELECT and INSERT only was refused "permission denied for table t".
    out, role, target = _t_exported_and_a_role(sandbox, empty_db, tmp_path, names, "(1), (2)", "loader_")
    sandbox.create_database(target)
    try:
        sandbox.psql(f"CREATE TABLE t (id int); GRANT SELECT, INSERT ON t TO {role};", target)
        done = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn().replace("user=postgres", f"user={role}"),
                       "--db", target)
        assert done.returncode == 0, done.stderr
        assert sandbox.psql("SELECT count(*) FROM t", target).strip() == "2"
    finally:
        sandbox.drop_database(target)
        sandbox.psql(f"DROP ROLE {role}")


def test_a_schema_writer_killed_by_a_signal_is_said_so(sandbox, home, empty_db, tmp_path):
    """The export's pg_restore writing schema_pre.sql, killed by SIGKILL (the OOM killer), was said with
    the last line any child of the job had printed (pg_dump's, of another step), as if that were why
    (faults QA): said as killed, and nothing of the export is left."""
    from test_job_faults import _tools_whose_pg_restore_is_killed

    tools = _tools_whose_pg_restore_is_killed(sandbox, tmp_path / "bin", '*"--section=pre-data"*')
    sandbox.psql("CREATE TABLE t (id int); INSERT INTO t VALUES (1);", empty_db)
    out = tmp_path / "copy"
    failed = export(sandbox, empty_db, out, "--table", "t", "--bin-dir", str(tools))
    assert failed.returncode == 1, failed.stderr
    assert "killed by signal 9 (SIGKILL)" in failed.stderr and "pg_dump:" not in failed.stderr, failed.stderr
    assert not out.exists() and not list(tmp_path.glob("copy*")), list(tmp_path.iterdir())


@pytest.mark.parametrize("stop", ["runner killed", "cancelled"])
def test_an_import_stopped_after_the_data_says_how_to_finish(sandbox, home, empty_db, names, tmp_path, stop):
    # QA: a runner killed while schema-post.sql ran (every table's data in) was said as "the tables
    # imported ... stay: public.a, public.b; import the rest with --table (the tables not named
    # here)", and a cancel there as the tables that stay, no more: none were left to import, a retry
    # is refused (the tables have rows), and the primary and foreign keys never came. It says what
    # is (or may be) missing, and the psql line that makes it.
    import os
    import re
    import shlex
    import signal

    from test_job_faults import start_cli, wait_for

    out, target = _a_and_b_exported_into_a_new_database(
        sandbox, empty_db, names, tmp_path,
        "CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 3);"
        "CREATE TABLE b (id int REFERENCES a); INSERT INTO b VALUES (1);",
        "CREATE TABLE a (id int); CREATE TABLE b (id int);")  # bare: schema-post.sql runs
    # A reader of a: the COPY goes on beside it, schema-post.sql's ALTER TABLE waits for it.
    holder = session_left_open(sandbox, sandbox.dsn(target),
                               "BEGIN; LOCK TABLE a IN ACCESS SHARE MODE; SELECT pg_sleep(60);")
    try:
        wait_for(lambda: sandbox.psql("SELECT count(*) FROM pg_locks WHERE relation = 'a'::regclass AND granted",
                                      target).strip() != "0", "the reader's lock")
        cli = start_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", target)
        wait_for(lambda: sandbox.psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{target}' "
                                      "AND application_name LIKE 'pgbackup-tui%' AND wait_event_type = 'Lock'"
                                      ).strip() != "0", "schema-post.sql to wait for the reader")
        [state] = [json.loads(p.read_text()) for p in (home / "state" / "jobs").glob("*/state.json")
                   if json.loads((p.parent / "spec.json").read_text())["kind"] == "csv-import"]
        if stop == "cancelled":
            cli.send_signal(signal.SIGTERM)
        else:
            os.kill(state["runner_pid"], signal.SIGKILL)
        _, stderr = cli.communicate(timeout=60)
    finally:
        end_session(sandbox, target, holder)
    assert cli.returncode == (130 if stop == "cancelled" else 1), stderr
    last = stderr.strip().splitlines()[-1]
    assert "public.a, public.b" in last and "the tables not named here" not in last, last
    said = "did not run" if stop == "cancelled" else "may not be done"
    assert f"schema-post.sql (indexes, constraints, foreign keys, triggers) {said}" in last, last
    command = shlex.split(re.search(r"run(?: it)?: (\S*psql .*)$", last).group(1))
    assert Path(command[0]).name == "psql" and command[-1] == str(out / "schema-post.sql"), command
    subprocess.run([str(sandbox.bin_dir / "psql"), *command[1:]], check=True, capture_output=True, timeout=60)
    assert sandbox.psql("SELECT count(*) FROM pg_constraint WHERE conrelid IN ('a'::regclass, 'b'::regclass)",
                        target).strip() == "2"


def _export_changed_after_its_look_up(sandbox, db: str, out: Path, change: str, **selection):
    """A csv export of `db` into `out` whose database `change` alters right after the export's
    look-up (between it and the data's locks); its JobResult."""
    import asyncio

    from pgbackup_tui.core import csv_export
    from pgbackup_tui.core.connect import target_from_dsn
    from pgbackup_tui.core.csv_plans import CsvExportPlan

    class ChangedAfterTheLookUp(csv_export.CsvExportJob):
        def _preflight(self):
            found = super()._preflight()
            sandbox.psql(change, db)
            return found

    plan = CsvExportPlan(target=target_from_dsn(sandbox.dsn()).with_password(sandbox.password), dbname=db,
                         output=out, **selection)
    return asyncio.run(ChangedAfterTheLookUp(plan).run())


@pytest.mark.parametrize("connections_to_spare", [True, False])
def test_a_column_added_as_the_export_begins_is_in_its_schema_and_its_file_or_neither(
        sandbox, home, empty_db, tmp_path, monkeypatch, connections_to_spare):
    # QA: an ALTER TABLE ... ADD COLUMN committed between the look-up (which read the columns the
    # COPY names) and the data's lock went into schema.sql (pg_dump's later snapshot) and not into
    # the file: its import left the column's values out. The schema is now dumped in the data's
    # snapshot, after its locks; with no connection to spare for that, such a change fails the export.
    from pgbackup_tui.core import csv_export
    from pgbackup_tui.core.identifiers import QualifiedName
    from pgbackup_tui.core.jobs import JobState

    sandbox.psql("CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 3);", empty_db)
    if not connections_to_spare:
        monkeypatch.setattr(csv_export, "SHARED_SNAPSHOT_CONNECTIONS", 1 << 30)
    out = tmp_path / "copy"
    result = _export_changed_after_its_look_up(
        sandbox, empty_db, out, "BEGIN; ALTER TABLE a ADD COLUMN extra int; UPDATE a SET extra = id * 10; COMMIT;",
        tables=(QualifiedName("public", "a"),))
    if connections_to_spare:
        assert result.state == JobState.SUCCEEDED, result.message
        assert (out / "public.a.csv").read_text().splitlines() == ["id,extra", "1,10", "2,20", "3,30"]
        assert "extra integer" in (out / "schema.sql").read_text()
        assert json.loads((out / "manifest.json").read_text())["tables"][0]["columns"] == ["id", "extra"]
    else:
        assert result.state == JobState.FAILED, result.message
        assert "the columns of public.a changed as the export began" in result.message, result.message
        assert not out.exists() and not (tmp_path / "copy.partial").exists()


def test_a_foreign_partition_s_rows_are_neither_exported_nor_written_to_its_server(sandbox, home, empty_db, names,
                                                                                   tmp_path):
    # QA: a partitioned table's COPY read its foreign partition through the FDW (the remote server's
    # rows in the file), and its import routed such rows back through the FDW into the remote table;
    # a --create import of such a copy failed ("user mapping not found"), its database dropped. As
    # pg_dump and pg_restore: no foreign data is copied, nor written, with a note.
    remote, target, other = names(), names(), names()
    for db in (remote, target, other):
        sandbox.create_database(db)
    sandbox.psql("CREATE TABLE m_remote (id int, at date, v text);"
                 "INSERT INTO m_remote VALUES (100, '2025-06-01', 'r')", remote)
    partitioned = ("CREATE TABLE m (id int, at date, v text) PARTITION BY RANGE (at);"
                   "CREATE TABLE m_2024 PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');")
    fdw = (f"CREATE EXTENSION postgres_fdw; CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS ("
           f"host '{sandbox.socket_dir}', port '{sandbox.port}', dbname '{remote}');"
           "CREATE FOREIGN TABLE m_2025 PARTITION OF m FOR VALUES FROM ('2025-01-01') TO ('2026-01-01') "
           "SERVER loop OPTIONS (table_name 'm_remote');")
    mapping = f"CREATE USER MAPPING FOR CURRENT_USER SERVER loop OPTIONS (user '{sandbox.superuser}');"
    sandbox.psql(partitioned + fdw + mapping + "INSERT INTO m_2024 VALUES (1, '2024-03-01', 'l');", empty_db)

    out = tmp_path / "copy"
    exported = export(sandbox, empty_db, out, "--table", "public.m", "--progress", "plain")
    assert exported.returncode == 0, exported.stderr
    assert (out / "public.m.csv").read_text().splitlines() == ["id,at,v", "1,2024-03-01,l"]
    assert "its foreign partitions public.m_2025 are not copied" in exported.stderr
    [table] = json.loads((out / "manifest.json").read_text())["tables"]
    assert table["foreign_partitions_not_copied"] == ["public.m_2025"]
    created = run_cli("csv", "import", str(out), "--dsn", sandbox.dsn(), "--db", names(), "--create")
    assert created.returncode == 0, created.stderr  # no row for the FDW: no user mapping needed

    # A copy whose 2025 rows were local (another server's layout, or an export made before): into a
    # table whose 2025 partition is foreign (with rows there already), they stay out, said so.
    sandbox.psql(partitioned + "CREATE TABLE m_2025 PARTITION OF m FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');"
                 "INSERT INTO m VALUES (1, '2024-03-01', 'l'), (7, '2025-02-01', 'local 2025');", other)
    sandbox.psql(partitioned + fdw + mapping, target)
    both = tmp_path / "both"
    assert export(sandbox, other, both, "--table", "public.m").returncode == 0
    imported = run_cli("csv", "import", str(both), "--dsn", sandbox.dsn(), "--db", target)
    assert imported.returncode == 0, imported.stderr
    assert "public.m: 1 rows of public.m.csv belong in its foreign partitions (public.m_2025)" in imported.stderr
    assert sandbox.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM m_remote", remote).strip() == "100"
    assert sandbox.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM ONLY m_2024", target).strip() == "1"


def test_a_table_created_in_an_exported_schema_as_the_export_begins_fails_it(sandbox, home, empty_db, tmp_path):
    # The tables locked are the look-up's; one created in a --schema before the locks would be in
    # schema.sql (its snapshot is later) without a file: refused, as the columns are when they may not change.
    from pgbackup_tui.core.jobs import JobState

    sandbox.psql("CREATE SCHEMA s; CREATE TABLE s.a (id int);", empty_db)
    out = tmp_path / "copy"
    result = _export_changed_after_its_look_up(sandbox, empty_db, out, "CREATE TABLE s.b (id int)", schemas=("s",))
    assert result.state == JobState.FAILED, result.message
    assert "the tables to copy changed as the export began (new: s.b); run it again" in result.message, result.message
    assert not out.exists() and not (tmp_path / "copy.partial").exists()


@pytest.mark.parametrize(("files", "tables"), [({"a.csv": {"bytes": "abc"}}, []), (["a.csv"], []),
                                               ({"a.csv": {"bytes": None}}, []), ("x", 5)])
def test_a_damaged_csv_manifest_does_not_stop_the_listing(tmp_path, files, tables):
    # QA: one CSV copy whose manifest.json counted its bytes as text (edited, damaged) failed the TUI's
    # Backups tab for every backup ("list backups: ValueError"): its size counts 0, the others list.
    from pgbackup_tui.core.csv_copies import find_csv_copies

    good = ({"a.csv": {"bytes": 10}, "schema.sql": {"bytes": 5}}, [{"qualified": "public.a"}])
    for name, (listed, held) in (("bad", (files, tables)), ("good", good)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(json.dumps(
            {"kind": "csv", "files": listed, "tables": held, "finished_at": name}))
    copies = {copy.path.name: (copy.size_bytes, copy.tables) for copy in find_csv_copies(tmp_path)}
    assert copies == {"bad": (0, []), "good": (15, ["public.a"])}
