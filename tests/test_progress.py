"""Progress (#4) on real clusters: the mechanics, not the timing (scripts/bench_progress.py does that).

A module database holds public.events (300k wide rows: its COPY lasts long enough to be polled
several times, also when restored, see `pace`) and a handful of small and awkwardly named
tables; the shop sample serves the CLI tests. What is asserted: percentages never go back and
end at exactly 100 with phase done, the table being copied is named and measured from
pg_stat_progress_copy, the totals match the archive's TOC and the manifest, and a role that may
not read the view falls back (and says so).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import psycopg
import pytest

from cliutil import run_cli
from pgbackup_tui.core.catalog import read_manifest
from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.jobs import JobState, LogLine, ProgressUpdated
from pgbackup_tui.core.pgtools import tools_for_archive
from pgbackup_tui.core.plans import DumpFormat, DumpPlan, RestorePlan
from pgbackup_tui.core.progress import ProgressSnapshot
from pgbackup_tui.core.progress.dump import expected_rows
from pgbackup_tui.core.progress.estimator import ProgressEstimator
from pgbackup_tui.core.progress.items import WorkItem
from pgbackup_tui.core.progress.restore_plan import entry_matches, manifest_tables
from pgbackup_tui.core.restore import RestoreJob
from pgbackup_tui.core.toc import parse_toc

SOURCE = "progress_src"
EVENTS_ROWS = 300_000
FALLBACK_ROWS = 400_000  # about 2 s of COPY: several ticks see it
JSON_KEYS = {"event", "elapsed_s", "phase", "percent", "bytes_done", "bytes_total", "rows_done",
             "tables_done", "tables_total", "current", "eta_s"}

BUILD = f"""
CREATE TABLE public.events (id bigint PRIMARY KEY, at timestamptz NOT NULL, kind text, payload text);
INSERT INTO public.events
SELECT g, timestamptz '2024-01-01' + g * interval '1 second', 'kind_' || (g % 13),
       md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text)
FROM generate_series(1, {EVENTS_ROWS}) g;
CREATE INDEX events_at_idx ON public.events (at);
-- Restoring runs this check on every row: 10 ms every 2000 rows keeps a restore's COPY of
-- public.events going for 1.5 s or more, so the monitor's polls (every 0.25 s) see it mid-way.
CREATE FUNCTION public.pace(id bigint) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN IF id % 2000 = 0 THEN PERFORM pg_sleep(0.01); END IF; RETURN true; END $$;
ALTER TABLE public.events ADD CONSTRAINT events_paced CHECK (public.pace(id));
-- The same pace for the index phase of a restore: this index calls pace() on every row when it
-- is built, so the restore stays in "indexes" long enough for an update to report it.
CREATE INDEX events_paced_idx ON public.events ((public.pace(id)));
CREATE TABLE public.small (id int PRIMARY KEY, label text);
INSERT INTO public.small SELECT g, 'label ' || g FROM generate_series(1, 500) g;
CREATE TABLE public.empty (id int);
CREATE SCHEMA "Odd Name";
CREATE TABLE "Odd Name"."Mixed Case" (id int PRIMARY KEY, "dot.col" text);
INSERT INTO "Odd Name"."Mixed Case" SELECT g, 'x' FROM generate_series(1, 50) g;
CREATE TABLE public.measurements (day date NOT NULL, value int) PARTITION BY RANGE (day);
CREATE TABLE public.measurements_2024 PARTITION OF public.measurements
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE public.measurements_other PARTITION OF public.measurements DEFAULT;
INSERT INTO public.measurements SELECT date '2024-01-01' + g, g FROM generate_series(0, 500) g;
CREATE VIEW public.recent AS SELECT id FROM public.events WHERE id > 10;
CREATE MATERIALIZED VIEW public.kinds AS SELECT DISTINCT kind FROM public.events;
VACUUM ANALYZE;
"""
# Tables whose data a dump copies (relkind r: partitions, not their parent; no views).
DATA_TABLES = {"public.events", "public.small", "public.empty", '"Odd Name"."Mixed Case"',
               "public.measurements_2024", "public.measurements_other"}


@pytest.fixture(scope="module")
def progress_db(sandbox):
    sandbox.create_database(SOURCE)
    sandbox.psql(BUILD, SOURCE)
    yield SOURCE
    sandbox.drop_database(SOURCE)


def record(job) -> tuple[list[ProgressSnapshot], list[str]]:
    """Subscribe before the job runs: its snapshots and its log lines, in order."""
    snapshots: list[ProgressSnapshot] = []
    lines: list[str] = []

    def listener(event) -> None:
        if isinstance(event, ProgressUpdated):
            snapshots.append(event.progress)
        elif isinstance(event, LogLine):
            lines.append(event.text)

    job.subscribe(listener)
    return snapshots, lines


def assert_monotonic_and_done(snapshots: list[ProgressSnapshot]) -> None:
    assert len(snapshots) >= 3
    percents = [s.percent for s in snapshots]
    assert percents == sorted(percents), "the percentage went back"
    assert snapshots[-1].percent == 100 and snapshots[-1].phase == "done"
    assert all(s.percent < 100 for s in snapshots[:-1]), "100 % before the job ended"
    elapsed = [s.elapsed_s for s in snapshots]
    assert elapsed == sorted(elapsed)


def toc_table_data(archive: Path) -> int:
    # The newest pg_restore reads every archive (PATH's may be Debian's dispatcher, or none).
    pg_restore = tools_for_archive(None).pg_restore
    listing = subprocess.run([pg_restore, "--list", str(archive)], check=True, capture_output=True, text=True).stdout
    return sum(1 for entry in parse_toc(listing).entries if entry.desc == "TABLE DATA")


@pytest.fixture(scope="module")
def dumps(sandbox, progress_db, tmp_path_factory) -> dict[str, tuple]:
    """One serial custom and one parallel directory dump of the module database, made once:
    format -> (result, snapshots). The restore tests restore these archives."""
    made: dict[str, tuple] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PGBACKUP_TUI_HOME", str(tmp_path_factory.mktemp("progress-home")))
        formats: tuple[tuple[DumpFormat, int], ...] = (("custom", 1), ("directory", 2))
        for fmt, jobs in formats:
            job = DumpJob(DumpPlan(target=target_from_dsn(sandbox.dsn()), dbname=progress_db, format=fmt, jobs=jobs))
            snapshots, _ = record(job)
            made[fmt] = (asyncio.run(job.run()), snapshots)
    return made


@pytest.mark.parametrize("fmt", ["custom", "directory"])
def test_dump_progress_names_and_measures_the_table_being_copied(dumps, fmt):
    result, snapshots = dumps[fmt]
    assert result.state == JobState.SUCCEEDED, result.message

    assert_monotonic_and_done(snapshots)
    assert {s.tables_total for s in snapshots} == {len(DATA_TABLES)} == {toc_table_data(result.output_path)}
    # Mid-COPY: the view's tuples, neither 0 nor all, for the table the verbose line named. (With
    # --jobs a small table copied beside it may be named too until pg_dump says it finished.)
    mid_copy = [s for s in snapshots if "public.events" in s.current and 0 < s.rows_done < EVENTS_ROWS]
    assert mid_copy, [(s.phase, s.current, s.rows_done) for s in snapshots]
    assert all(s.phase == "data" and s.estimate.startswith("pg_stat_progress_copy") for s in mid_copy)
    assert all(0 < s.bytes_done < s.bytes_total for s in mid_copy)
    last = snapshots[-1]
    assert last.tables_done == last.tables_total and last.bytes_done == last.bytes_total
    assert last.rows_done == EVENTS_ROWS + 500 + 50 + 501
    assert last.as_json()["percent"] == 100


def test_dump_records_each_tables_rows_in_result_and_manifest(dumps):
    result, _ = dumps["custom"]
    manifest = read_manifest(result.output_path)
    assert manifest["tables"] == result.details["tables"]
    tables = {t["name"]: t for t in manifest["tables"]}
    assert set(tables) == DATA_TABLES
    events = tables["public.events"]
    assert events["rows"] == EVENTS_ROWS and events["estimated"] is False  # seen by the view, VACUUMed count
    assert events["bytes"] > 30 << 20 and events["copy_bytes"] > 20 << 20
    assert tables['"Odd Name"."Mixed Case"']["rows"] == 50
    assert tables["public.empty"]["rows"] == 0


async def test_restore_progress_uses_the_manifest_and_ends_at_100(sandbox, home, dumps, fresh_db_name):
    dumped, _ = dumps["custom"]
    manifest_tables = read_manifest(dumped.output_path)["tables"]
    job = RestoreJob(RestorePlan(archive=dumped.output_path, target=target_from_dsn(sandbox.dsn()),
                                 dbname=fresh_db_name, create=True))
    snapshots, _ = record(job)
    result = await job.run()
    assert result.state == JobState.SUCCEEDED, result.message

    assert_monotonic_and_done(snapshots)
    phases = [s.phase for s in snapshots]
    for earlier, later in [("preparing", "data"), ("data", "indexes")]:
        assert earlier in phases and later in phases and phases.index(earlier) < phases.index(later)
    assert all(s.estimate == "pg_stat_progress_copy + backup manifest" for s in snapshots)
    assert {s.bytes_total for s in snapshots} == {sum(t["bytes"] for t in manifest_tables)}
    assert {s.tables_total for s in snapshots} == {len(DATA_TABLES)}
    assert any(s.current == ("public.events",) and 0 < s.rows_done < EVENTS_ROWS for s in snapshots)
    assert snapshots[-1].rows_done == sum(t["rows"] for t in manifest_tables)


@pytest.mark.parametrize("load", ["table clean", "data only"])
async def test_a_restore_psql_runs_moves_its_bar_with_the_table_being_copied(sandbox, home, dumps, fresh_db_name,
                                                                          tmp_path, load):
    """psql running pg_restore's script (a table-level --clean, a data-only load) prints no line per
    table: the bar stood at "0% schema" (or "0% data") to the end (QA). The COPY the server shows
    starts its table: into a table the job's own transaction made (no name the monitor can see),
    the next one of the script; into one that is there, the one it names."""
    from pgbackup_tui.core.identifiers import QualifiedName

    target = target_from_dsn(sandbox.dsn())
    sandbox.create_database(fresh_db_name)
    sandbox.psql(BUILD.split("CREATE INDEX events_at_idx")[0].split("INSERT INTO public.events")[0]
                 + BUILD.split("CREATE INDEX events_at_idx ON public.events (at);")[1].split("ALTER TABLE")[0],
                 fresh_db_name)  # the table (data only) and pace() (both) that the archive's table calls
    if load == "table clean":
        sandbox.psql("DROP TABLE public.events", fresh_db_name)
        plan = RestorePlan(archive=dumps["custom"][0].output_path, target=target, dbname=fresh_db_name, clean=True,
                           tables=(QualifiedName("public", "events"),))
    else:
        archive = tmp_path / "events_data.dump"
        dumped = await DumpJob(DumpPlan(target=target, dbname=SOURCE, data_only=True, output=archive)).run()
        assert dumped.state == JobState.SUCCEEDED, dumped.message
        plan = RestorePlan(archive=archive, target=target, dbname=fresh_db_name,
                           tables=(QualifiedName("public", "events"),))
    job = RestoreJob(plan)
    snapshots, _ = record(job)
    result = await job.run()
    assert result.state == JobState.SUCCEEDED, result.message
    assert_monotonic_and_done(snapshots)
    mid_copy = [s for s in snapshots if s.current == ("public.events",) and 0 < s.rows_done < EVENTS_ROWS]
    assert mid_copy and all(s.phase == "data" and 0 < s.percent < 100 for s in mid_copy), (
        [(s.phase, s.percent, s.current, s.rows_done) for s in snapshots])


async def test_a_plain_script_psql_reads_from_a_pipe_moves_its_bar(sandbox, home, dumps, fresh_db_name, tmp_path):
    """A plain script fed to psql through a pipe (--file=-: with --single-transaction, without its
    large objects' BEGIN/COMMIT; a --clean dump's DROPs) is open in no file of psql's: the bar
    stood at "0% data" to the end. The bytes fed move it."""
    script = tmp_path / "events.sql"
    subprocess.run([tools_for_archive(None).pg_restore, "--file", str(script), str(dumps["custom"][0].output_path)],
                   check=True)
    job = RestoreJob(RestorePlan(archive=script, target=target_from_dsn(sandbox.dsn()), dbname=fresh_db_name,
                                 create=True, single_transaction=True))
    snapshots, _ = record(job)
    result = await job.run()
    assert result.state == JobState.SUCCEEDED, result.message
    assert_monotonic_and_done(snapshots)
    assert any(s.phase == "data" and 0 < s.percent < 100 for s in snapshots), (
        [(s.phase, s.percent) for s in snapshots])


async def test_parallel_restore_of_a_directory_archive_ends_at_100(sandbox, home, dumps, fresh_db_name):
    dumped, _ = dumps["directory"]
    job = RestoreJob(RestorePlan(archive=dumped.output_path, target=target_from_dsn(sandbox.dsn()),
                                 dbname=fresh_db_name, create=True, jobs=2))
    snapshots, _ = record(job)
    result = await job.run()
    assert result.state == JobState.SUCCEEDED, result.message
    assert_monotonic_and_done(snapshots)
    assert "public.events" in {name for s in snapshots for name in s.current}
    # The primary key is planned to run alone after public.events's data, its indexes beside each other.
    events_post_data = {item.info["entry"].desc: item.info["exclusive"] for item in job.progress_tracker.estimator.items
                        if item.phase == "indexes" and item.info.get("table") == ("public", "events")}
    assert events_post_data == {"CONSTRAINT": True, "INDEX": False}


def test_cli_jsonl_is_one_progress_object_per_line_then_finished(sandbox, home):
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", "shop", "--progress", "jsonl")
    assert dumped.returncode == 0, dumped.stderr
    lines = [json.loads(line) for line in dumped.stdout.splitlines()]  # JSON only: the path is in `finished`
    progress, finished = lines[:-1], lines[-1]
    assert Path(finished["path"]).exists()
    assert progress and all(set(obj) == JSON_KEYS and obj["event"] == "progress" for obj in progress)
    assert [p["percent"] for p in progress] == sorted(p["percent"] for p in progress)
    assert progress[-1]["percent"] == 100 and progress[-1]["phase"] == "done" and progress[-1]["eta_s"] == 0
    assert all(isinstance(p["current"], list) for p in progress)
    assert finished["event"] == "finished" and finished["status"] == "succeeded" and finished["exit_code"] == 0
    assert "progress:" not in dumped.stderr


def test_cli_plain_prints_progress_lines_on_stderr(sandbox, home):
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", "shop", "--progress", "plain")
    assert dumped.returncode == 0, dumped.stderr
    progress = [line for line in dumped.stderr.splitlines() if line.startswith("progress: ")]
    assert progress and progress[-1].startswith("progress: 100% done")
    assert "pg_dump: dumping contents of table" in dumped.stderr  # the verbose lines stay
    assert len(dumped.stdout.splitlines()) == 1  # stdout: the path only


async def test_unprivileged_role_without_the_view_falls_back(sandbox, home, fresh_db_name):
    role = "progress_no_view"
    sandbox.psql(f"DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN NOSUPERUSER")
    sandbox.create_database(fresh_db_name, owner=role)
    sandbox.psql(f"""SET ROLE {role};
        CREATE TABLE public.rows (id int PRIMARY KEY, note text);
        INSERT INTO public.rows SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, {FALLBACK_ROWS}) g;
        RESET ROLE;
        VACUUM ANALYZE public.rows;
        REVOKE SELECT ON pg_catalog.pg_stat_progress_copy FROM PUBLIC;""", fresh_db_name)
    try:
        dsn = sandbox.dsn().replace(f"user={sandbox.superuser}", f"user={role}")
        job = DumpJob(DumpPlan(target=target_from_dsn(dsn), dbname=fresh_db_name))
        snapshots, lines = record(job)
        result = await job.run()
    finally:
        sandbox.psql("GRANT SELECT ON pg_catalog.pg_stat_progress_copy TO PUBLIC;", fresh_db_name)
    assert result.state == JobState.SUCCEEDED, result.message
    said = [line for line in lines if line.startswith("progress: cannot read")]
    assert len(said) == 1 and "permission denied" in said[0] and "table counts and output size" in said[0]
    assert_monotonic_and_done(snapshots)
    assert snapshots[-1].estimate == "table counts and output size"
    assert any(s.current == ("public.rows",) and 0 < s.bytes_done < s.bytes_total for s in snapshots)
    assert snapshots[-1].tables_total == 1 and snapshots[-1].rows_done == FALLBACK_ROWS
    rows = read_manifest(result.output_path)["tables"]
    assert rows == [{"name": "public.rows", "rows": FALLBACK_ROWS, "bytes": rows[0]["bytes"],
                     "copy_bytes": rows[0]["copy_bytes"], "estimated": True}]


async def test_a_dump_behind_a_lock_says_who_holds_it(sandbox, home, fresh_db_name):
    sandbox.create_database(fresh_db_name)
    sandbox.psql("CREATE TABLE public.held (id int PRIMARY KEY); INSERT INTO public.held VALUES (1);", fresh_db_name)
    job = DumpJob(DumpPlan(target=target_from_dsn(sandbox.dsn()), dbname=fresh_db_name))
    snapshots, _ = record(job)
    with psycopg.connect(sandbox.dsn(fresh_db_name), application_name="lock-holder") as holder:
        holder.execute("LOCK TABLE public.held IN ACCESS EXCLUSIVE MODE")
        task = asyncio.create_task(job.run())
        expected = f"a lock held by pid {holder.info.backend_pid} (lock-holder)"
        for _ in range(200):  # pg_dump's LOCK TABLE waits; the next poll names the holder
            if any(s.waiting == expected for s in snapshots):
                break
            await asyncio.sleep(0.05)
        holder.rollback()  # let it go: the dump goes on and succeeds
        result = await task
    assert any(s.waiting == expected for s in snapshots), [s.waiting for s in snapshots]
    waiting = next(s for s in snapshots if s.waiting)
    assert f"waiting for {expected} " in waiting.summary() and "ETA" not in waiting.summary()
    assert "waiting" not in waiting.as_json()  # the jsonl keys stay the issue's
    assert result.state == JobState.SUCCEEDED, result.message
    # Once the lock is gone the small dump may end within a tick or two: no minimum count here.
    assert [s.percent for s in snapshots] == sorted(s.percent for s in snapshots)
    assert snapshots[-1].percent == 100 and snapshots[-1].phase == "done" and snapshots[-1].waiting is None


REPORTS_DEADLOCK_TIMEOUT = """
CREATE FUNCTION public.report(id int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN IF id = 1 THEN RAISE WARNING 'restore session deadlock_timeout=%', current_setting('deadlock_timeout');
END IF; RETURN true; END $$;
CREATE TABLE public.t (id int CHECK (public.report(id)));
INSERT INTO public.t VALUES (1);
"""


async def dump_reporting_deadlock_timeout(sandbox, fmt: DumpFormat):
    """An archive whose restore says, from pg_restore's (or psql's) own session, its
    deadlock_timeout: a CHECK reports it on the first row it checks while the data is loaded."""
    source = "t_report_" + fmt
    sandbox.drop_database(source)
    sandbox.create_database(source)
    try:
        sandbox.psql(REPORTS_DEADLOCK_TIMEOUT, source)
        dumped = await DumpJob(DumpPlan(target=target_from_dsn(sandbox.dsn()), dbname=source, format=fmt)).run()
        assert dumped.state == JobState.SUCCEEDED, dumped.message
        return dumped
    finally:
        sandbox.drop_database(source)


@pytest.mark.parametrize("fmt", ["custom", "plain"])
async def test_a_restore_runs_with_the_servers_deadlock_timeout(sandbox, home, fresh_db_name, fmt):
    # Issue 14: the progress bar does not change how the server works (it once set 100ms).
    dumped = await dump_reporting_deadlock_timeout(sandbox, fmt)
    job = RestoreJob(RestorePlan(archive=dumped.output_path, target=target_from_dsn(sandbox.dsn()),
                                 dbname=fresh_db_name, create=True))
    _, lines = record(job)
    result = await job.run()
    assert result.state == JobState.SUCCEEDED, result.message
    servers = sandbox.psql("SHOW deadlock_timeout").strip()
    assert any(f"restore session deadlock_timeout={servers}" in line for line in lines), lines
    assert not any("deadlock_timeout = " in line for line in lines)


# -- the model, without a server ----------------------------------------------------------------
def test_percent_moves_with_time_when_the_priors_are_right():
    items = [WorkItem("a", "data", 10.0, kind="table", bytes=100, rows=10),
             WorkItem("b", "data", 30.0, kind="table", bytes=300, rows=30)]
    estimator = ProgressEstimator(items, origin=0.0, estimate="test")
    estimator.start("a", 0.0)
    worst = 0.0
    for tick in range(1, 160):
        now = tick * 0.25
        if now >= 10 and not estimator.get("b").running:
            estimator.start("b", 10.0)
        current = "a" if now < 10 else "b"
        begun = 0.0 if current == "a" else 10.0
        estimator.observe(current, (now - begun) / estimator.get(current).cost_s, now)
        snapshot = estimator.snapshot(now)
        worst = max(worst, abs(snapshot.percent - 100 * now / 40))
    assert worst < 2.0
    assert snapshot.tables_done == 1 and 0 < snapshot.bytes_done < 400


def test_percent_never_goes_back_when_the_work_turns_out_longer():
    estimator = ProgressEstimator([WorkItem("a", "data", 1.0, kind="table", rows=100)], origin=0.0, estimate="t")
    estimator.start("a", 0.0)
    seen = []
    for tick in range(1, 40):
        now = tick * 0.25
        estimator.observe("a", min(0.5, now / 2), now)  # stalls half-way: the time left grows
        seen.append(estimator.snapshot(now).percent)
    assert seen == sorted(seen) and seen[-1] < 100
    assert estimator.done_snapshot(10.0).percent == 100


def test_a_wait_before_the_first_measurement_is_not_taken_for_slowness():
    # An index build that waited 1 s for a lock (autovacuum's, cancelled after deadlock_timeout)
    # then runs at exactly its prior speed: the machine is not slow, the time left is the prior's.
    estimator = ProgressEstimator([WorkItem("pkey", "indexes", 2.0), WorkItem("next", "indexes", 2.0)],
                                  origin=0.0, estimate="t")
    estimator.start("pkey", 0.0)
    for tick in range(1, 9):  # from 1.0 s to 2.0 s: 0 -> 50 %
        now = 1.0 + tick * 0.125
        estimator.observe("pkey", (now - 1.0) / 2.0, now)
    assert estimator.speeds(2.0)[("indexes", "large")] == pytest.approx(1.0, abs=0.05)
    assert estimator.remaining_s(2.0) == pytest.approx(3.0, abs=0.15)


def test_the_time_left_stands_still_while_a_backend_waits_for_a_lock():
    estimator = ProgressEstimator([WorkItem("a", "data", 10.0, kind="table", rows=100)], origin=0.0, estimate="t")
    estimator.start("a", 0.0)
    for tick in range(1, 9):
        estimator.observe("a", tick * 0.25 / 10, tick * 0.25)
        before = estimator.snapshot(tick * 0.25)
    estimator.wait("a lock held by pid 42 (psql)", 2.0)
    held = [estimator.snapshot(2.0 + tick * 0.25) for tick in range(1, 9)]
    assert {s.eta_s for s in held} == {before.eta_s} and held[-1].waiting == "a lock held by pid 42 (psql)"
    assert {s.percent for s in held} == {before.percent}  # nor does the bar: waiting is not progress
    estimator.wait(None, 4.0)
    estimator.observe("a", 0.25, 4.5)
    after = estimator.snapshot(4.5)
    assert after.eta_s < before.eta_s and after.waiting is None


def test_a_parallel_dump_waiting_before_its_data_stands_still():
    """With --jobs the bar went on rising while pg_dump -Fd -j2 waited on a lock (54 % -> 86 %,
    then "cancelled 86 %" for a job that wrote nothing): before its data, one backend does all of
    the work (the leader locks every table before a worker starts), so a wait holds everything."""
    items = [WorkItem("schema", "schema", 2.0, kind="step"), WorkItem("a", "data", 10.0, kind="table"),
             WorkItem("b", "data", 10.0, kind="table")]
    estimator = ProgressEstimator(items, origin=0.0, estimate="t", jobs=2)
    estimator.enter_phase("schema", 0.0)
    estimator.start("schema", 0.0)
    before = estimator.snapshot(0.5)
    estimator.wait("a lock held by pid 42 (psql)", 0.5)
    held = [estimator.snapshot(0.5 + tick * 0.25) for tick in range(1, 40)]
    assert {s.percent for s in held} == {before.percent} and {s.eta_s for s in held} == {before.eta_s}
    estimator.wait(None, 10.5)
    assert estimator.snapshot(11.0).percent == before.percent == 0  # nor the catalog's clock: no data moved yet
    for key in ("a", "b"):  # the catalog read ends at 12.0 (2 s of work), the data moves
        estimator.start(key, 12.0)
        estimator.observe(key, 0.1, 13.0)
    after = estimator.snapshot(13.0).percent
    # 3 s of work out of about 12 (2 s of catalog, 20 s of data on 2 workers): the 10 s waited are
    # not counted (they were, it would show 13 s of 22: 59 %).
    assert 15 < after < 35


def test_small_tables_learn_their_own_pace_not_the_big_ones():
    # A big table copied at 0.8 of its prior, then 40 small ones exactly at theirs (mostly round
    # trips, other data): once a second of them is done, the time left is theirs.
    smalls = [f"s{i}" for i in range(40)]
    items = [WorkItem("big", "data", 10.0, kind="table")]
    items += [WorkItem(key, "data", 0.05, kind="table") for key in smalls]
    estimator = ProgressEstimator(items, origin=0.0, estimate="t")
    estimator.start("big", 0.0)
    for tick in range(1, 33):
        estimator.observe("big", tick * 0.25 / 8.0, tick * 0.25)
        estimator.snapshot(tick * 0.25)
    for index, key in enumerate(smalls[:21]):
        now = 8.0 + 0.05 * index
        estimator.start(key, now)
        estimator.snapshot(now)
    assert estimator.remaining_s(9.0) == pytest.approx(20 * 0.05, rel=0.08)


def test_the_unmeasured_end_of_an_index_build_is_not_taken_for_slowness():
    # A build measured at its prior pace into its tail (past TAIL_FRACTION: its commit shows no
    # counter) then takes 2 s more: the next build is still timed at the measured pace.
    estimator = ProgressEstimator([WorkItem("pkey", "indexes", 4.0), WorkItem("idx", "indexes", 4.0)],
                                  origin=0.0, estimate="t")
    estimator.start("pkey", 0.0)
    for tick in range(1, 25):  # 0 -> 95 % in 3.8 s, then nothing moves until 6 s
        now = tick * 0.25
        estimator.observe("pkey", min(0.95, now / 4.0), now)
        estimator.snapshot(now)
    estimator.start("idx", 6.0)
    assert estimator.remaining_s(6.0) == pytest.approx(4.0, rel=0.1)

def test_a_pending_item_can_be_repriced_a_running_one_cannot():
    # A step priced anew as the job learns its size (the sha256 pass once the archive is written):
    # only the part still to run changes the time left, never what a running item's speed was
    # measured against.
    items = [WorkItem("a", "data", 4.0, kind="table"), WorkItem("sync", "finishing", 2.0, kind="step")]
    estimator = ProgressEstimator(items, origin=0.0, estimate="t")
    estimator.start("a", 0.0)
    assert estimator.remaining_s(0.0) == pytest.approx(6.0)
    estimator.reprice("sync", 0.25)
    assert estimator.remaining_s(0.0) == pytest.approx(4.25)
    estimator.reprice("a", 1.0)
    assert estimator.get("a").cost_s == 4.0 and estimator.remaining_s(0.0) == pytest.approx(4.25)

def test_serial_start_ends_the_previous_item_but_parallel_does_not():
    serial = ProgressEstimator([WorkItem("a", "data", 1.0), WorkItem("b", "data", 1.0)], origin=0.0, estimate="t")
    serial.start("a", 0.0)
    serial.start("b", 1.0)
    assert serial.get("a").done and serial.get("b").running
    parallel = ProgressEstimator([WorkItem("a", "data", 1.0), WorkItem("b", "data", 1.0)], origin=0.0,
                                 estimate="t", jobs=2)
    parallel.start("a", 0.0)
    parallel.start("b", 0.5)
    assert parallel.get("a").running and parallel.get("b").running


def test_parallel_time_left_waits_for_a_big_tables_indexes():
    items = [WorkItem("big", "data", 10.0, kind="table", group="t1"), WorkItem("big_idx", "indexes", 4.0, group="t1"),
             WorkItem("small", "data", 1.0, kind="table", group="t2")]
    # Two workers: the small table goes alongside, but the index can only follow the big table.
    assert ProgressEstimator(items, origin=0.0, estimate="t", jobs=2).remaining_s(0.0) == pytest.approx(14.0)
    serial = [WorkItem(i.key, i.phase, i.cost_s, group=i.group) for i in items]
    assert ProgressEstimator(serial, origin=0.0, estimate="t").remaining_s(0.0) == pytest.approx(15.0)


def test_parallel_time_left_adds_up_a_tables_exclusive_items():
    # pg_restore --jobs builds a table's plain indexes side by side, but never runs its primary
    # key (an exclusive lock) beside them: after the data, 4 s of index, then 4 s of key.
    items = [WorkItem("big", "data", 10.0, kind="table", group="t1"),
             WorkItem("big_idx", "indexes", 4.0, group="t1"),
             WorkItem("big_pkey", "indexes", 4.0, group="t1", info={"exclusive": True}),
             WorkItem("small", "data", 1.0, kind="table", group="t2")]
    assert ProgressEstimator(items, origin=0.0, estimate="t", jobs=2).remaining_s(0.0) == pytest.approx(18.0)


def test_parallel_big_table_is_timed_at_its_own_pace_not_its_neighbours():
    # --jobs 2: a big table copied at its prior pace beside small tables that go twice as slowly;
    # the job waits for the big one, so its own pace is what the time left follows.
    smalls = [f"s{i}" for i in range(4)]
    items = [WorkItem("big", "data", 10.0, kind="table")] + [WorkItem(key, "data", 1.0, kind="table") for key in smalls]
    estimator = ProgressEstimator(items, origin=0.0, estimate="t", jobs=2)
    estimator.start("big", 0.0)
    for tick in range(0, 25):
        now = tick * 0.25
        small = smalls[min(3, int(now // 2))]
        if not estimator.get(small).running:
            estimator.start(small, now)
            if small != "s0":
                estimator.finish(smalls[smalls.index(small) - 1], now)
        estimator.observe("big", now / 10, now)
        estimator.observe(small, (now % 2) / 2, now)
        estimator.snapshot(now)
    assert estimator.speeds(6.0)[("data", "large")] > 1.2  # the phase as a whole is slower than its prior...
    assert estimator.remaining_s(6.0) == pytest.approx(4.0, abs=0.5)  # ...the big table is not


def test_json_keys_are_exactly_the_issue_s():
    snapshot = ProgressSnapshot(elapsed_s=1.23456, phase="data", percent=42.04, current=("public.events",))
    assert set(snapshot.as_json()) == JSON_KEYS
    assert snapshot.as_json()["current"] == ["public.events"] and snapshot.as_json()["percent"] == 42.0
    assert "42%" in snapshot.summary() and "public.events" in snapshot.summary()


@pytest.mark.parametrize(("rest", "text", "matches"), [
    ("public events postgres", "public.events", True),
    ("public dot.name postgres", "public.dot.name", True),
    ("dot name postgres", "public.dot.name", False),
    ("Sales & Ops Order Items Order Items_pkey postgres", "Sales & Ops.Order Items Order Items_pkey", True),
    ("public events_at_idx postgres", "public.events", False),
])
def test_verbose_names_match_toc_entries_exactly(rest, text, matches):
    entry = parse_toc(f"1; 1259 1 TABLE {rest}").entries[0]
    assert entry_matches(entry, text) is matches


def test_expected_rows_follow_the_planner():
    assert expected_rows(1000.0, 10, 20 * 8192) == 2000  # the table doubled since ANALYZE
    assert expected_rows(-1.0, 0, 8192) == -1  # never analyzed
    assert expected_rows(0.0, 0, 0) == 0


def test_a_malformed_manifest_only_loses_its_bad_records():
    manifest = {"tables": [{"name": "public.a", "rows": "many"}, "junk", {"rows": 1},
                           {"name": 'public."B"', "rows": 3, "bytes": 10}]}
    assert manifest_tables(manifest) == {("public", "B"): {"name": 'public."B"', "rows": 3, "bytes": 10}}
    assert manifest_tables({"tables": "nonsense"}) == {} == manifest_tables(None)
