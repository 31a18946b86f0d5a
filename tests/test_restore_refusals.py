"""Bad input gets one clear line, exit code 2, and the target is not touched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cliutil import run_cli
from dbcompare import user_tables
from pgbackup_tui.core.sandbox import free_port

SOURCE = "shop"


@pytest.fixture(scope="module")
def archives(sandbox, tmp_path_factory):
    """One archive of each format of the sample, shared by the tests here (read-only)."""
    folder = tmp_path_factory.mktemp("archives")
    made = {}
    for fmt, name in (("custom", "shop.dump"), ("tar", "shop.tar"), ("directory", "shop.dir"), ("plain", "shop.sql")):
        result = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--format", fmt,
                         "--output", str(folder / name))
        assert result.returncode == 0, result.stderr
        made[fmt] = folder / name
    return made


def assert_one_line_error(result, *needles: str, code: int = 2) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def database_exists(sandbox, name: str) -> bool:
    return sandbox.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{name}'").strip() == "1"


def truncate(source: Path, target: Path, fraction: float) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def test_non_empty_target_needs_clean(sandbox, home, archives, empty_db):
    sandbox.psql("CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (42)", empty_db)
    result = run_cli("restore", str(archives["custom"]), "--dsn", sandbox.dsn(), "--db", empty_db)
    assert_one_line_error(result, "not empty", "--clean", empty_db)
    assert user_tables(sandbox, empty_db) == ["public.keep_me"]


@pytest.mark.parametrize("fmt", ["custom", "plain"])
def test_a_target_that_holds_only_extensions_is_restored_into(sandbox, home, archives, empty_db, fmt):
    """A database made from a template1 with extensions in it (pg_stat_statements, say, on many
    servers) was refused as not empty, and --clean replaced it whole. Extensions and their members
    are no collision: the archive's CREATE EXTENSION IF NOT EXISTS leaves them (citext is the
    sample's own, hstore is not in it)."""
    sandbox.psql("CREATE EXTENSION citext; CREATE EXTENSION hstore", empty_db)
    result = run_cli("restore", str(archives[fmt]), "--dsn", sandbox.dsn(), "--db", empty_db)
    assert result.returncode == 0, result.stderr
    assert sandbox.psql("SELECT count(*) FROM \"Sales & Ops\".customers", empty_db).strip() == \
        sandbox.psql("SELECT count(*) FROM \"Sales & Ops\".customers", SOURCE).strip()
    assert sandbox.psql("SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension", empty_db).strip() \
        == "citext,hstore,plpgsql"
    [job] = [j for j in json.loads(run_cli("jobs", "list", "--json").stdout) if j["kind"] == "restore"]
    log = Path(job["log_path"]).read_text()
    assert f"database '{empty_db}' holds only extensions (citext " in log and "hstore " in log, log


def test_clean_replaces_the_archive_objects(sandbox, home, archives, fresh_db_name):
    first = run_cli("restore", str(archives["custom"]), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    assert first.returncode == 0, first.stderr
    sandbox.psql("DELETE FROM public.events", fresh_db_name)
    again = run_cli("restore", str(archives["custom"]), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--clean")
    assert again.returncode == 0, again.stderr
    assert int(sandbox.psql("SELECT count(*) FROM public.events", fresh_db_name)) > 0


@pytest.mark.parametrize("fmt", ["custom", "plain"])
def test_clean_of_an_archive_without_manifest_never_drops_tables_it_does_not_hold(sandbox, home, archives, tmp_path,
                                                                                 fresh_db_name, fmt):
    # A selection's archive copied without its manifest (or a `pg_dump -t` by hand) says nothing
    # of being a selection: a whole-database --clean replaced the database with its one table.
    first = run_cli("restore", str(archives["custom"]), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    assert first.returncode == 0, first.stderr
    tables = user_tables(sandbox, fresh_db_name)
    made = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--format", fmt, "--table", "public.events",
                   "--output", str(tmp_path / "made" / "customers.out"))
    assert made.returncode == 0, made.stderr
    copied = tmp_path / "copied.out"
    shutil.copy(tmp_path / "made" / "customers.out", copied)  # the manifest stays behind
    result = run_cli("restore", str(copied), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--clean")
    assert_one_line_error(result, "no manifest", f"'{fresh_db_name}' has {len(tables) - 1} tables it does not hold",
                          "backups adopt", "--table")
    assert user_tables(sandbox, fresh_db_name) == tables
    # A whole database's archive without its manifest still replaces the database.
    whole = tmp_path / f"whole.{fmt}"
    shutil.copy(archives[fmt], whole)
    sandbox.psql("DELETE FROM public.events", fresh_db_name)
    again = run_cli("restore", str(whole), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--clean")
    assert again.returncode == 0, again.stderr
    assert int(sandbox.psql("SELECT count(*) FROM public.events", fresh_db_name)) > 0
    assert user_tables(sandbox, fresh_db_name) == tables


def test_create_refuses_an_existing_database(sandbox, home, archives, empty_db):
    result = run_cli("restore", str(archives["custom"]), "--dsn", sandbox.dsn(), "--db", empty_db, "--create")
    assert_one_line_error(result, "already exists", empty_db)


def test_a_damaged_archive_is_named_before_a_taken_name(sandbox, home, archives, tmp_path, empty_db):
    """--create checks its target beside the archive's listing: when both are wrong, the archive's
    refusal is still the one said, as when the target was checked after it."""
    cut = truncate(archives["custom"], tmp_path / "shop.dump", 0.6)
    result = run_cli("restore", str(cut), "--dsn", sandbox.dsn(), "--db", empty_db, "--create")
    assert_one_line_error(result, str(cut), "truncated")
    taken = run_cli("restore", str(archives["custom"]), "--dsn", sandbox.dsn(), "--db", empty_db, "--create")
    assert_one_line_error(taken, "already exists", empty_db)  # and a whole archive meets the taken name


def test_restore_into_missing_database_without_create(sandbox, home, archives, fresh_db_name):
    result = run_cli("restore", str(archives["custom"]), "--dsn", sandbox.dsn(), "--db", fresh_db_name)
    assert_one_line_error(result, "does not exist", "--create")


def test_not_an_archive(sandbox, home, tmp_path, fresh_db_name):
    bogus = tmp_path / "notes.dump"
    bogus.write_text("just some text\n")
    result = run_cli("restore", str(bogus), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    assert_one_line_error(result, str(bogus), "not a pg_dump archive")
    assert not database_exists(sandbox, fresh_db_name)


@pytest.mark.parametrize("fmt", ["custom", "tar", "plain"])
def test_truncated_archive_is_refused_before_the_target_is_touched(sandbox, home, archives, tmp_path, fresh_db_name,
                                                                    fmt):
    cut = truncate(archives[fmt], tmp_path / archives[fmt].name, 0.6)
    result = run_cli("restore", str(cut), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    assert_one_line_error(result, str(cut), "truncated")
    assert not database_exists(sandbox, fresh_db_name)


def test_directory_archive_with_a_damaged_data_file(sandbox, home, archives, tmp_path, fresh_db_name):
    copy = tmp_path / "shop.dir"
    shutil.copytree(archives["directory"], copy)
    biggest = max((p for p in copy.iterdir() if p.name != "toc.dat"), key=lambda p: p.stat().st_size)
    truncate(biggest, biggest, 0.5)
    result = run_cli("restore", str(copy), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    assert_one_line_error(result, "truncated or damaged")
    assert not database_exists(sandbox, fresh_db_name)


def test_archive_from_a_newer_pg_dump(sandbox, home, archives, tmp_path, fresh_db_name):
    newer = tmp_path / "from-the-future.dump"
    data = bytearray(archives["custom"].read_bytes())
    data[6] = 99  # archive format 1.99: written by a pg_dump newer than any here
    newer.write_bytes(bytes(data))
    result = run_cli("restore", str(newer), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    assert_one_line_error(result, "newer", "install postgresql-client")
    assert not database_exists(sandbox, fresh_db_name)


def test_errors_ignored_is_exit_code_3(sandbox, home, tmp_path, fresh_db_name, empty_db):
    # A table owned by a role that the target server no longer has: pg_restore ignores the error.
    sandbox.psql("DROP ROLE IF EXISTS gone_owner; CREATE ROLE gone_owner")
    sandbox.psql("CREATE TABLE owned (id int); INSERT INTO owned VALUES (1); ALTER TABLE owned OWNER TO gone_owner",
                 empty_db)
    archive = tmp_path / "owned.dump"
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", empty_db, "--output", str(archive))
    assert dumped.returncode == 0, dumped.stderr
    sandbox.psql(f"DROP DATABASE {empty_db} WITH (FORCE)")
    sandbox.psql("DROP ROLE gone_owner")
    result = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    assert result.returncode == 3, result.stderr
    assert "1 error(s) ignored" in result.stderr
    # pg_restore's own count is the result, not one of the job's warnings to repeat before it.
    assert "errors ignored on restore" not in result.stderr, result.stderr
    assert sandbox.psql("SELECT count(*) FROM owned", fresh_db_name).strip() == "1"


def test_wrong_password(sandbox, home, archives, fresh_db_name, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "not-the-password")
    monkeypatch.delenv("PGPASSFILE", raising=False)
    result = run_cli("dump", "--dsn", sandbox.dsn(tcp=True), "--db", SOURCE)
    assert_one_line_error(result, "password authentication failed")
    result = run_cli("restore", str(archives["custom"]), "--dsn", sandbox.dsn(tcp=True), "--db", fresh_db_name,
                     "--create")
    assert_one_line_error(result, "password authentication failed")


def test_unknown_host_and_refused_port(home):
    result = run_cli("dump", "--dsn", "host=no-such-host.invalid user=postgres", "--db", SOURCE)
    assert_one_line_error(result, "no-such-host.invalid")
    port = free_port()
    result = run_cli("dump", "--dsn", f"host=127.0.0.1 port={port} user=postgres", "--db", SOURCE)
    assert_one_line_error(result, f"127.0.0.1:{port}", "refused")


def test_missing_database(sandbox, home):
    result = run_cli("dump", "--dsn", sandbox.dsn(), "--db", "no_such_db")
    assert_one_line_error(result, "no_such_db", "does not exist")
    assert not (home / "backups").exists() or not any((home / "backups").rglob("*"))


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--jobs", "2", "--single-transaction"], "--single-transaction"), (["--create", "--clean"], "--create")],
)
def test_incompatible_restore_options(sandbox, home, archives, fresh_db_name, args, needle):
    result = run_cli("restore", str(archives["custom"]), "--dsn", sandbox.dsn(), "--db", fresh_db_name, *args)
    assert_one_line_error(result, needle)


def test_plain_archive_refuses_parallel_restore(sandbox, home, archives, fresh_db_name):
    result = run_cli("restore", str(archives["plain"]), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create",
                     "--jobs", "2")
    assert_one_line_error(result, "psql")
    assert not database_exists(sandbox, fresh_db_name)


def test_a_plain_dump_of_a_timescaledb_database_is_refused_before_anything(sandbox, home, empty_db, tmp_path):
    """It made the database, failed in psql on the extension (or, where TimescaleDB is installed,
    would have run without timescaledb_pre_restore()), then dropped it: exit 1. A DBA's own file,
    without a manifest, is known by pg_dump's CREATE EXTENSION line."""
    out = tmp_path / "ts.sql"
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", empty_db, "--format", "plain", "--output", str(out))
    assert dumped.returncode == 0, dumped.stderr
    Path(str(out) + ".manifest.json").unlink()
    text = out.read_text()
    head = text.index("\n\nSET ")
    out.write_text(text[:head] + "\n\nCREATE EXTENSION IF NOT EXISTS timescaledb WITH SCHEMA public;\n" + text[head:])
    new_db = empty_db + "_ts"
    refused = run_cli("restore", str(out), "--dsn", sandbox.dsn(), "--db", new_db, "--create")
    assert_one_line_error(refused, "TimescaleDB", "--format custom", "nothing was restored")
    assert not database_exists(sandbox, new_db)


def test_a_plain_dump_whose_manifest_names_timescaledb_but_creates_no_extension_restores(sandbox, home, empty_db,
                                                                                         tmp_path):
    """A dump of some tables, or of the data only, of a TimescaleDB database records the extension
    in its manifest but creates none: refused on the manifest's word, it had restored before."""
    sandbox.psql("CREATE TABLE t (i int); INSERT INTO t VALUES (1)", empty_db)
    out = tmp_path / "some.sql"
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", empty_db, "--format", "plain", "--output", str(out))
    assert dumped.returncode == 0, dumped.stderr
    manifest = Path(str(out) + ".manifest.json")
    data = json.loads(manifest.read_text())
    data["timescaledb"] = {"version": "2.19.3", "hypertables": []}
    manifest.write_text(json.dumps(data))
    new_db = empty_db + "_some"
    try:
        restored = run_cli("restore", str(out), "--dsn", sandbox.dsn(), "--db", new_db, "--create")
        assert restored.returncode == 0, restored.stderr
    finally:
        sandbox.drop_database(new_db)
