"""TimescaleDB: the manifest records the hypertables, a selection warns, and a restore follows
Timescale's procedure (extension at the dump's version, pre_restore, one pg_restore job,
post_restore also after a failure, timescaledb.restoring off afterwards).

TimescaleDB is not packaged here: the tests run against the stand-in in tests/timescale_standin
(real function and view names; it records each call and each DDL command with the value of
timescaledb.restoring at that moment), installed into both sandbox servers' extension dirs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cliutil import run_cli
from held_session import end_session, session_left_open
from pgbackup_tui.core.catalog import read_manifest
from pgbackup_tui.core.sandbox import Sandbox
from timescale_standin import DUMPED_VERSION, OTHER_VERSION, StandIn, held

METRICS_ROWS = 500


@pytest.fixture(scope="module")
def standin(sandbox: Sandbox, other_sandbox: Sandbox) -> Iterator[StandIn]:
    with held([sandbox, other_sandbox]) as installed:
        yield installed


@pytest.fixture
def standin_default(standin: StandIn) -> Iterator[StandIn]:
    """The stand-in as installed by `standin`, again after a test that changed what it offers."""
    yield standin
    standin.install()


@pytest.fixture(params=["sandbox", "other_sandbox"])
def cluster(request: pytest.FixtureRequest) -> Sandbox:
    return request.getfixturevalue(request.param)


@pytest.fixture
def names(request: pytest.FixtureRequest) -> Iterator[tuple[list[str], list[Sandbox]]]:
    """Databases a test makes, dropped afterwards on every cluster it used."""
    made: list[str] = []
    clusters: list[Sandbox] = []
    yield made, clusters
    for cluster in clusters:
        for name in made:
            cluster.drop_database(name)


def new_db(names: tuple[list[str], list[Sandbox]], cluster: Sandbox) -> str:
    name = "ts_" + uuid.uuid4().hex[:8]
    names[0].append(name)
    if cluster not in names[1]:
        names[1].append(cluster)
    return name


def make_source(cluster: Sandbox, db: str, owner: str | None = None) -> None:
    """Two hypertables (a timestamptz one with a 1 day interval, a bigint one with 5000) and a plain table."""
    cluster.create_database(db)
    owned = f"ALTER TABLE metrics OWNER TO {owner};" if owner else ""
    cluster.psql(f"""
        CREATE EXTENSION timescaledb VERSION '{DUMPED_VERSION}';
        CREATE TABLE devices (id int PRIMARY KEY, name text);
        CREATE TABLE metrics (ts timestamptz NOT NULL, device int REFERENCES devices, value float8);
        SELECT * FROM create_hypertable('metrics', 'ts', chunk_time_interval => interval '1 day');
        CREATE TABLE readings (t bigint NOT NULL, v int);
        SELECT * FROM create_hypertable('readings', 't', chunk_time_interval => 5000);
        INSERT INTO devices SELECT i, 'd' || i FROM generate_series(0, 4) i;
        INSERT INTO metrics SELECT now() - i * interval '1 minute', i % 5, i FROM generate_series(1, {METRICS_ROWS}) i;
        INSERT INTO readings SELECT i, i FROM generate_series(1, 10) i;
        {owned}""", db)


def dump(cluster: Sandbox, db: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("dump", "--dsn", cluster.dsn(), "--bin-dir", str(cluster.bin_dir), "--db", db,
                   "--output", str(out), *extra)


def dumped_source(names: tuple[list[str], list[Sandbox]], cluster: Sandbox, tmp_path: Path) -> tuple[str, str, Path]:
    """A source database with hypertables, dumped to ts.dump, and the name of a target to restore into."""
    source, target = new_db(names, cluster), new_db(names, cluster)
    make_source(cluster, source)
    archive = tmp_path / "ts.dump"
    assert dump(cluster, source, archive).returncode == 0
    return source, target, archive


def restore(cluster: Sandbox, archive: Path, db: str, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("restore", str(archive), "--dsn", cluster.dsn(), "--bin-dir", str(cluster.bin_dir),
                   "--db", db, *extra)


def calls(cluster: Sandbox, db: str) -> list[tuple[str, str, str]]:
    """(call, timescaledb.restoring then, detail) in the order they happened."""
    rows = cluster.psql("SELECT call, coalesce(restoring, ''), coalesce(detail, '') "
                        "FROM _timescaledb_standin.calls ORDER BY at, id", db)
    return [tuple(line.split("|", 2)) for line in rows.splitlines()]  # type: ignore[misc]


def restoring_now(cluster: Sandbox, db: str) -> str:
    """timescaledb.restoring as a new session in `db` sees it ('' when nothing sets it)."""
    return cluster.psql("SELECT coalesce(current_setting('timescaledb.restoring', true), '')", db).strip()


def database_exists(cluster: Sandbox, db: str) -> bool:
    return cluster.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{db}'").strip() == "1"


def test_dump_records_version_and_hypertables(sandbox: Sandbox, standin: StandIn, names, tmp_path: Path,
                                              home: Path) -> None:
    source = new_db(names, sandbox)
    make_source(sandbox, source)
    result = dump(sandbox, source, tmp_path / "ts.dump")
    assert result.returncode == 0, result.stderr
    assert "TimescaleDB" not in result.stderr  # a whole database: nothing to warn about
    manifest = read_manifest(tmp_path / "ts.dump")
    assert manifest is not None
    recorded = manifest["timescaledb"]
    assert recorded == {"version": DUMPED_VERSION, "hypertables": [
        {"schema": "public", "table": "metrics", "time_column": "ts", "time_type": "timestamp with time zone",
         "chunk_interval": "1 day"},
        {"schema": "public", "table": "readings", "time_column": "t", "time_type": "bigint",
         "chunk_interval": "5000"},
    ]}


def test_a_selection_with_a_hypertable_warns(sandbox: Sandbox, standin: StandIn, names, tmp_path: Path,
                                             home: Path) -> None:
    source = new_db(names, sandbox)
    make_source(sandbox, source)
    result = dump(sandbox, source, tmp_path / "sel.dump", "--table", "public.metrics")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "TimescaleDB" in line]
    assert len(warnings) == 1, result.stderr
    assert "public.metrics" in warnings[0] and "csv export" in warnings[0]
    logs = "".join(p.read_text() for p in (home / "logs").rglob("*.log"))
    assert "a selection cannot recreate a hypertable" in logs


def test_restore_follows_the_procedure(cluster: Sandbox, standin: StandIn, names, tmp_path: Path,
                                       home: Path) -> None:
    source, target = new_db(names, cluster), new_db(names, cluster)
    make_source(cluster, source)
    archive = tmp_path / "ts.dump"
    assert dump(cluster, source, archive).returncode == 0

    result = restore(cluster, archive, target, "--create", "--jobs", "4", "--progress", "plain")
    assert result.returncode == 0, result.stderr
    stderr = result.stderr
    assert "--jobs 4 is not used" in stderr and "breaks its catalog" in stderr
    restores = [line for line in stderr.splitlines() if line.startswith("$ ") and "pg_restore" in line
                and "--dbname=" in line]
    assert len(restores) == 1 and "--jobs" not in restores[0] and "--use-list=" in restores[0], restores
    assert "creating TABLE" in stderr and 'creating EXTENSION "timescaledb"' not in stderr  # created by us

    steps = calls(cluster, target)
    kinds = [call for call, _, _ in steps]
    assert kinds[0] == "pre_restore" and kinds[-1] == "post_restore", steps
    tables = [(restoring, detail) for call, restoring, detail in steps if detail.startswith("CREATE TABLE")]
    assert {d for _, d in tables} >= {"CREATE TABLE public.metrics", "CREATE TABLE public.readings"}
    assert all(restoring == "on" for restoring, _ in tables), tables
    # post_restore ran after the data: it counted every row
    assert steps[-1][2] == f"public.metrics={METRICS_ROWS} public.readings=10"
    assert restoring_now(cluster, target) in ("", "off")
    assert cluster.psql("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'", target).strip() \
        == DUMPED_VERSION
    assert cluster.psql("SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1",
                        target).split() == ["metrics", "readings"]


def test_target_without_timescaledb_is_refused_before_anything(sandbox: Sandbox, standin_default: StandIn, names,
                                                               tmp_path: Path, home: Path) -> None:
    source, target, archive = dumped_source(names, sandbox, tmp_path)

    standin_default.remove()
    result = restore(sandbox, archive, target, "--create")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no timescaledb extension" in lines[0] and DUMPED_VERSION in lines[0], lines
    assert not database_exists(sandbox, target)

    standin_default.install(versions=[OTHER_VERSION], default=OTHER_VERSION)
    result = restore(sandbox, archive, target, "--create")
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert f"dumped with TimescaleDB {DUMPED_VERSION}" in line and f"offers only {OTHER_VERSION}" in line, line
    assert not database_exists(sandbox, target)


def test_a_failure_half_way_still_runs_post_restore(sandbox: Sandbox, standin: StandIn, names, tmp_path: Path,
                                                    home: Path) -> None:
    # The archive names an owner the target lacks: with --single-transaction pg_restore stops there.
    source, target = new_db(names, sandbox), new_db(names, sandbox)
    role = "ts_owner_" + uuid.uuid4().hex[:6]
    sandbox.psql(f"CREATE ROLE {role}")
    make_source(sandbox, source, owner=role)
    archive = tmp_path / "ts.dump"
    assert dump(sandbox, source, archive).returncode == 0
    sandbox.drop_database(source)
    sandbox.psql(f"DROP ROLE {role}")
    sandbox.create_database(target)

    result = restore(sandbox, archive, target, "--single-transaction")
    assert result.returncode == 1, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert "pg_restore failed" in message and role in message, message
    assert "timescaledb_post_restore() ran afterwards: timescaledb.restoring is off" in message, message
    assert [call for call, _, _ in calls(sandbox, target)] == ["pre_restore", "post_restore"]
    assert restoring_now(sandbox, target) in ("", "off")
    settings = sandbox.psql(f"SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
                            f"WHERE d.datname = '{target}'")
    assert settings.strip() == "0"


def test_dry_run_says_the_steps(sandbox: Sandbox, standin: StandIn, names, tmp_path: Path, home: Path) -> None:
    source, target, archive = dumped_source(names, sandbox, tmp_path)
    result = restore(sandbox, archive, target, "--create", "--jobs", "2", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"CREATE EXTENSION timescaledb VERSION '{DUMPED_VERSION}'" in result.stdout
    assert "--jobs 2 is not used" in result.stdout
    assert not database_exists(sandbox, target)


def test_restore_table_of_a_hypertable_warns(sandbox: Sandbox, standin: StandIn, names, tmp_path: Path,
                                             home: Path) -> None:
    source, target, archive = dumped_source(names, sandbox, tmp_path)
    result = restore(sandbox, archive, target, "--create", "--table", "public.readings")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "hypertable" in line]
    assert len(warnings) == 1 and "public.readings" in warnings[0] and "csv export" in warnings[0], result.stderr
    # a table selection does not take the extension: no procedure, no pre_restore
    assert sandbox.psql("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'", target).strip() == "0"


def test_a_pg_dumpall_file_with_timescaledb_is_refused_before_anything(
        sandbox: Sandbox, other_sandbox: Sandbox, standin: StandIn, names, tmp_path: Path, home: Path) -> None:
    """A pg_dumpall file runs straight through psql: its TimescaleDB database would be restored
    without pre_restore / post_restore (or fail half way on a server without the extension, the
    roles and an empty database left behind). The dump says so and records it; the restore is
    refused before anything runs, from the manifest or, for a file without one, from the file."""
    source = new_db(names, sandbox)
    make_source(sandbox, source)
    out = tmp_path / "cluster.sql"
    dumped = run_cli("dumpall", "--dsn", sandbox.dsn(), "--bin-dir", str(sandbox.bin_dir), "--output", str(out),
                     "--progress", "plain")
    assert dumped.returncode == 0, dumped.stderr
    assert "TimescaleDB" in dumped.stderr and "--set" in dumped.stderr
    manifest = read_manifest(out)
    assert manifest is not None and source in manifest["timescaledb"]
    for without_manifest in (False, True):
        if without_manifest:
            out.with_name(out.name + ".manifest.json").unlink()
        refused = run_cli("restore", str(out), "--dsn", other_sandbox.dsn(), "--bin-dir", str(other_sandbox.bin_dir))
        assert refused.returncode == 2, refused.stderr
        assert f"database {source} uses TimescaleDB" in refused.stderr and "dumpall --set" in refused.stderr
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
        assert not database_exists(other_sandbox, source)


def test_a_runner_killed_half_way_leaves_no_database_in_restoring_mode(sandbox: Sandbox, standin: StandIn, names,
                                                                       tmp_path: Path, home: Path) -> None:
    # QA: a restore into an existing empty database whose runner was killed (SIGKILL) after
    # timescaledb_pre_restore() left timescaledb.restoring = on for good (TimescaleDB's background
    # jobs stopped), and nothing said so. The next command's recovery runs post_restore there.
    from test_job_faults import runner_pid, start_cli, wait_for

    source, target, archive = dumped_source(names, sandbox, tmp_path)
    sandbox.create_database(target)
    shutil.rmtree(home / "state" / "jobs")  # the dump's record: runner_pid reads the one job's
    created, release = threading.Event(), threading.Event()

    def lock_readings_once_created() -> None:  # pg_restore then waits at its COPY into it
        # (pg_class read in each loop: a fresh snapshot, where to_regclass keeps the statement's catalog)
        with psycopg.connect(sandbox.dsn(target)) as conn:
            conn.execute("DO $$ DECLARE until timestamptz := clock_timestamp() + interval '60 s'; BEGIN "
                         "LOOP EXIT WHEN EXISTS (SELECT FROM pg_class WHERE relname = 'readings') "
                         "OR clock_timestamp() > until; PERFORM pg_sleep(0.005); END LOOP; END $$")
            conn.execute("LOCK TABLE public.readings IN ACCESS EXCLUSIVE MODE")
            created.set()
            release.wait(60)

    locker = threading.Thread(target=lock_readings_once_created)
    locker.start()
    cli = start_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--bin-dir", str(sandbox.bin_dir), "--db", target)
    try:
        runner = runner_pid(home)
        assert created.wait(60), (cli.poll(), calls(sandbox, target))
        wait_for(lambda: sandbox.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                      f"AND datname = '{target}'").strip() != "0", "pg_restore to wait for the lock")
        assert restoring_now(sandbox, target) == "on"
        os.kill(runner, signal.SIGKILL)
        release.set()  # what the runner left running goes on, or ends: its post_restore is not run
        cli.wait(60)
    finally:
        release.set()
        locker.join()
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 1

    listed = run_cli("jobs", "list", "--json")  # any command: its start recovers the dead job
    assert listed.returncode == 0, listed.stderr
    [job] = json.loads(listed.stdout)
    assert f"timescaledb_post_restore() ran in '{target}'" in job["message"], job["message"]
    assert restoring_now(sandbox, target) in ("", "off")
    assert [call for call, _, _ in calls(sandbox, target) if call != "ddl"] == ["pre_restore", "post_restore"]


def test_into_a_database_that_has_the_extension_already(sandbox: Sandbox, standin: StandIn, names, tmp_path: Path,
                                                        home: Path) -> None:
    # QA: Timescale's documented restore creates the extension in the target first (and a server
    # whose template1 has it gives it to every new database): such a database was refused as
    # "not empty; add --clean". Only at the archive's version: another is refused before pre_restore.
    source, target, other = new_db(names, sandbox), new_db(names, sandbox), new_db(names, sandbox)
    make_source(sandbox, source)
    archive = tmp_path / "ts.dump"
    assert dump(sandbox, source, archive).returncode == 0
    for db, version in ((target, DUMPED_VERSION), (other, OTHER_VERSION)):
        sandbox.create_database(db)
        sandbox.psql(f"CREATE EXTENSION timescaledb VERSION '{version}'", db)

    result = restore(sandbox, archive, target)
    assert result.returncode == 0, result.stderr
    assert [call for call, _, _ in calls(sandbox, target) if call.endswith("restore")] == ["pre_restore",
                                                                                       "post_restore"]
    assert sandbox.psql("SELECT count(*) FROM metrics", target).strip() == str(METRICS_ROWS)
    assert restoring_now(sandbox, target) in ("", "off")

    refused = restore(sandbox, archive, other)
    assert refused.returncode == 2, refused.stderr
    assert f"has TimescaleDB {OTHER_VERSION} but the archive was dumped with {DUMPED_VERSION}" in refused.stderr
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert calls(sandbox, other) == [] or all(not c.endswith("restore") for c, _, _ in calls(sandbox, other))
    assert sandbox.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", other).strip() == "0"


def test_post_restore_a_stopped_server_kept_from_runs_on_a_later_start(standin: StandIn, tmp_path: Path,
                                                                       home: Path) -> None:
    # QA: the server stopping half way, post_restore could not run either, said as "could not run
    # (the database system is shutting down)": not that the database stays in restoring mode, nor
    # what to do; and when the next command's start ran it, the job still said it could not.
    from test_job_faults import start_cli, wait_for

    with Sandbox() as own:  # its own server: this test stops it
        source, target = "ts_source", "ts_target"
        make_source(own, source)
        archive = tmp_path / "ts.dump"
        assert dump(own, source, archive).returncode == 0
        own.create_database(target)

        def lock_readings_once_created() -> None:  # pg_restore then waits at its COPY into it
            try:
                with psycopg.connect(own.dsn(target)) as conn:
                    conn.execute("DO $$ DECLARE until timestamptz := clock_timestamp() + interval '60 s'; BEGIN "
                                 "LOOP EXIT WHEN EXISTS (SELECT FROM pg_class WHERE relname = 'readings') "
                                 "OR clock_timestamp() > until; PERFORM pg_sleep(0.005); END LOOP; END $$")
                    conn.execute("LOCK TABLE public.readings IN ACCESS EXCLUSIVE MODE")
                    conn.execute("SELECT pg_sleep(60)")
            except psycopg.Error:
                pass  # the server stopped under it

        locker = threading.Thread(target=lock_readings_once_created)
        locker.start()
        cli = start_cli("restore", str(archive), "--dsn", own.dsn(), "--bin-dir", str(own.bin_dir), "--db", target)
        try:
            wait_for(lambda: own.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                      f"AND datname = '{target}'").strip() != "0", "pg_restore to wait for the lock")
            own._run_server_tool(["pg_ctl", "-D", str(own.data_dir), "-m", "fast", "-w", "stop"], timeout=60)
            _, stderr = cli.communicate(timeout=60)
        finally:
            if cli.poll() is None:
                cli.kill()
            locker.join()
        assert cli.returncode == 1, stderr
        assert "timescaledb_post_restore() could not run" in stderr, stderr
        assert f"timescaledb.restoring stays on in '{target}' until the next pgbackup-tui command" in stderr, stderr

        own._run_server_tool(["pg_ctl", "-D", str(own.data_dir), "-l", str(own.log_file), "-w", "start"], timeout=90)
        listed = run_cli("jobs", "list", "--json")  # any command: its start runs it
        assert listed.returncode == 0, listed.stderr
        [job] = [j for j in json.loads(listed.stdout) if j["kind"] == "restore"]
        assert f"timescaledb_post_restore() ran in '{target}' since" in job["message"], job["message"]
        assert restoring_now(own, target) in ("", "off")


def test_post_restore_whose_session_is_ended_could_not_run(sandbox: Sandbox, standin: StandIn, names,
                                                         tmp_path: Path) -> None:
    """A server shutting down ends post_restore's session (it had connected just before): that was
    said as "failed ...; run it by hand", not that the database stays in restoring mode until the
    next command runs it. Here the session is ended by hand while post_restore runs."""
    from pgbackup_tui.core.connect import target_from_dsn
    from pgbackup_tui.core.timescale import PostRestoreNotRun, TimescaleRestore, post_restore
    from test_job_faults import wait_for

    db = new_db(names, sandbox)
    make_source(sandbox, db)
    sandbox.psql("ALTER FUNCTION timescaledb_post_restore() RENAME TO real_post_restore;"
                 "CREATE FUNCTION timescaledb_post_restore() RETURNS boolean LANGUAGE sql "
                 "AS 'SELECT pg_sleep(30); SELECT real_post_restore()'", db)
    target = target_from_dsn(sandbox.dsn())
    running = (f"SELECT pid FROM pg_stat_activity WHERE datname = '{db}' "
               "AND query LIKE 'SELECT timescaledb_post_restore()%' AND state = 'active'")

    def end_it() -> None:
        wait_for(lambda: sandbox.psql(running).strip() != "", "post_restore to run")
        sandbox.psql(f"SELECT pg_terminate_backend(pid) FROM ({running}) AS running")

    for attempt in ("direct", "after a failure"):
        ender = threading.Thread(target=end_it)
        ender.start()
        try:
            if attempt == "direct":
                with pytest.raises(PostRestoreNotRun, match=f"timescaledb.restoring stays on in '{db}' until the next"):
                    post_restore(target, db, lambda *args, **kwargs: None)
            else:
                said = TimescaleRestore(DUMPED_VERSION, 0, True).finish_after_failure(
                    target, db, lambda *args, **kwargs: None)
                assert said.startswith("then timescaledb_post_restore() could not run (terminating connection"), said
                assert f"stays on in '{db}' until the next pgbackup-tui command" in said, said
        finally:
            ender.join()


def test_a_cancel_half_way_says_what_became_of_post_restore(sandbox: Sandbox, standin: StandIn, names,
                                                            tmp_path: Path, home: Path) -> None:
    # QA: a failure half way said "timescaledb_post_restore() ran afterwards: ..." (or that the
    # database stays in restoring mode), as README promises for a cancel too; a cancel said only
    # that the database may be partly restored.
    from test_job_faults import start_cli, wait_for

    source, target, archive = dumped_source(names, sandbox, tmp_path)
    sandbox.create_database(target)
    sandbox.psql(f"CREATE EXTENSION timescaledb VERSION '{DUMPED_VERSION}'", target)
    # pg_restore's COMMENT ON EXTENSION waits for this session's own, uncommitted: a restore half way.
    holder = session_left_open(sandbox, sandbox.dsn(target),
                               "BEGIN; COMMENT ON EXTENSION timescaledb IS 'held'; SELECT pg_sleep(60);")
    cli = None
    try:
        wait_for(lambda: sandbox.psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{target}' "
                                      "AND query LIKE '%pg_sleep(60)%'").strip() == "1", "the holder's comment")
        cli = start_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--bin-dir", str(sandbox.bin_dir),
                        "--db", target)
        wait_for(lambda: sandbox.psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{target}' "
                                      "AND wait_event_type = 'Lock' AND query LIKE 'COMMENT%'").strip() == "1",
                 "pg_restore to wait for the holder")
        cli.send_signal(signal.SIGTERM)
        _, stderr = cli.communicate(timeout=60)
    finally:
        end_session(sandbox, target, holder)
        if cli is not None and cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 130, stderr
    message = stderr.strip().splitlines()[-1]
    assert "partly restored" in message and "timescaledb_post_restore() ran afterwards" in message, message
    assert [call for call, _, _ in calls(sandbox, target)][-1] == "post_restore"
    assert restoring_now(sandbox, target) in ("", "off")
