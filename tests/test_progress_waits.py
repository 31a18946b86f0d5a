"""Progress that tells the truth while nothing is done: a job waiting (for a lock, for its target's
sessions) or still before its data shows 0 %, and one refused or stopped there ends at 0 %.

QA saw the bar run up with the clock: a restore refused because another session was connected
ended as `failed 80% 0 B / 6.3 MB` (state.json: phase preparing, percent 79.7, bytes_done 0), a
dump behind a `LOCK TABLE ... ACCESS EXCLUSIVE` showed `running 45% 0 B / 5.7 MB`, and kept it
when cancelled. The percentage was elapsed / (elapsed + ETA) from the job's first tick: the
clock of a step nobody measures (pg_dump's catalog read, the target's checks) moved it before a
poll saw the wait, and a refusal then froze it. The model, without a server, then the real jobs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg

from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.identifiers import QualifiedName
from pgbackup_tui.core.jobs import JobState, ProgressUpdated
from pgbackup_tui.core.plans import DumpPlan, RestorePlan
from pgbackup_tui.core.progress import ProgressSnapshot
from pgbackup_tui.core.progress.dump import DumpInventory, TableSize, dump_work_items
from pgbackup_tui.core.progress.estimator import ProgressEstimator
from pgbackup_tui.core.progress.items import WorkItem
from pgbackup_tui.core.progress.restore_plan import restore_work_items
from pgbackup_tui.core.restore import RestoreJob

TICK = 0.25
LOCK = "a lock held by pid 42 (psql)"


def dump_estimator(tables: int = 27, size: int = 200_000) -> ProgressEstimator:
    """A serial custom dump of `tables` tables of `size` bytes, as DumpJob plans it."""
    inventory = DumpInventory(tuple(TableSize(100 + i, QualifiedName("public", f"t{i}"), size, size // 100)
                                    for i in range(tables)), relations=3 * tables)
    plan = DumpPlan(target=target_from_dsn("host=/tmp dbname=shop"), dbname="shop")
    estimator = ProgressEstimator(dump_work_items(inventory, plan, "custom"), origin=0.0, estimate="t")
    estimator.enter_phase("schema", 0.0)  # pg_dump starts: its catalog read runs
    return estimator


def restore_estimator() -> ProgressEstimator:
    """A restore of a 6.3 MB script, as RestoreJob plans it: verify, target, the script, finishing."""
    items, _ = restore_work_items(Path("shop.sql"), 6_300_000, False, {}, None, None)
    estimator = ProgressEstimator(items, origin=0.0, estimate="t")
    estimator.enter_phase("preparing", 0.0)
    return estimator


def ticks(estimator: ProgressEstimator, start: float, end: float) -> list[ProgressSnapshot]:
    count = round((end - start) / TICK)
    return [estimator.snapshot(start + TICK * tick) for tick in range(1, count + 1)]


# -- the model -------------------------------------------------------------------------------------
def test_a_catalog_read_by_the_clock_moves_no_bar_until_data_moves():
    estimator = dump_estimator()
    before = ticks(estimator, 0.0, 3.0)  # pg_dump behind a lock no poll has seen yet, or a long catalog
    assert {s.percent for s in before} == {0.0} and {s.bytes_done for s in before} == {0}
    assert all(s.eta_s is None for s in before)
    estimator.wait(LOCK, 3.0)  # the poll sees it: still nothing
    assert {s.percent for s in ticks(estimator, 3.0, 6.0)} == {0.0}
    estimator.wait(None, 6.0)
    estimator.start("table:100", 6.5)  # the catalog is read, the first table's COPY starts
    assert estimator.snapshot(6.5).percent == 0  # started is not moved
    estimator.observe("table:100", 0.5, 6.75, rows_done=1_000)
    moved = estimator.snapshot(6.75)
    assert moved.percent > 0 and moved.bytes_done == 100_000


def test_the_time_waited_for_a_lock_is_not_counted_as_work():
    """Two dumps doing the same work at the same pace, one of them after 10 s behind a lock in its
    catalog read: once their data moves, the same percentage (it was 10 s ahead, as if waited was done)."""
    plain, waited = dump_estimator(1, 600_000_000), dump_estimator(1, 600_000_000)  # 10 s of COPY
    shift = 10.0
    waited.wait(LOCK, 0.25)
    ticks(waited, 0.0, 0.25 + shift)
    waited.wait(None, 0.25 + shift)
    seen = {}
    for estimator, offset in ((plain, 0.0), (waited, shift)):
        cost = estimator.get("table:100").cost_s
        estimator.start("table:100", 0.5 + offset)
        for tick in range(1, 17):  # 4 s of it, at its prior's pace
            now = 0.5 + offset + tick * TICK
            estimator.observe("table:100", tick * TICK / cost, now)
            seen[offset] = estimator.snapshot(now)
    assert 20 < seen[0.0].percent < 60
    # Within the ETA's smoothing (its time constant grows with the elapsed time); the wait counted
    # as work, it showed 14.5 s of 22: 66 %.
    assert abs(seen[shift].percent - seen[0.0].percent) < 5, (seen[shift], seen[0.0])


def test_a_restore_refused_while_its_target_is_checked_stays_at_0():
    """The archive verified, the target's check waits 2 s for another session, then refuses: no
    data has moved, 0 % throughout (the end of the job keeps the last snapshot)."""
    estimator = restore_estimator()
    estimator.observe("verify", 0.5, 0.25)
    estimator.finish("verify", 0.5)  # the target's check starts
    refused = ticks(estimator, 0.0, 2.75)
    assert {s.percent for s in refused} == {0.0} and refused[-1].phase == "preparing"
    assert {s.bytes_done for s in refused} == {0}


def test_the_time_a_target_check_waits_is_not_counted_as_work():
    """Sessions that were ending held the check for 2 s, then the restore ran: the wait is not work."""
    plain, waited = restore_estimator(), restore_estimator()
    seen = {}
    for estimator, wait in ((plain, 0.0), (waited, 2.0)):
        estimator.observe("verify", 0.5, 0.1)
        estimator.finish("verify", 0.2)
        estimator.enter_phase("data", 0.25 + wait)  # the target is ready: psql runs the script
        estimator.start("script", 0.25 + wait)
        for tick in range(1, 5):
            now = 0.25 + wait + tick * TICK
            estimator.observe("script", tick * 0.2, now)
            seen[wait] = estimator.snapshot(now)
    assert seen[0.0].percent > 0
    assert abs(seen[2.0].percent - seen[0.0].percent) < 2, (seen[2.0], seen[0.0])


def test_a_schema_only_job_moves_once_its_schema_is_made():
    """No data to move: the schema's entries made (a restore's CREATE TABLEs) are the work done."""
    estimator = ProgressEstimator([WorkItem("verify", "preparing", 0.5, kind="step"),
                                   WorkItem("create:1", "schema", 1.0), WorkItem("create:2", "schema", 1.0)],
                                  origin=0.0, estimate="t")
    estimator.enter_phase("preparing", 0.0)
    estimator.enter_phase("schema", 0.5)
    estimator.start("create:1", 0.5)
    assert estimator.snapshot(1.0).percent == 0
    estimator.start("create:2", 1.5)  # serially: the first one is made
    assert estimator.snapshot(1.75).percent > 0


# -- real jobs -------------------------------------------------------------------------------------
def record(job) -> list[ProgressSnapshot]:
    snapshots: list[ProgressSnapshot] = []
    job.subscribe(lambda event: snapshots.append(event.progress) if isinstance(event, ProgressUpdated) else None)
    return snapshots


async def test_a_dump_behind_a_lock_shows_0_percent_while_it_waits(sandbox, home, fresh_db_name):
    sandbox.create_database(fresh_db_name)
    sandbox.psql("CREATE TABLE public.events (id int PRIMARY KEY, payload text);"
                 "INSERT INTO public.events SELECT g, md5(g::text) FROM generate_series(1, 20000) g;"
                 "CREATE TABLE public.other AS SELECT g AS id FROM generate_series(1, 1000) g; ANALYZE;",
                 fresh_db_name)
    job = DumpJob(DumpPlan(target=target_from_dsn(sandbox.dsn()), dbname=fresh_db_name))
    snapshots = record(job)
    with psycopg.connect(sandbox.dsn(fresh_db_name), application_name="lock-holder") as holder:
        holder.execute("LOCK TABLE public.events IN ACCESS EXCLUSIVE MODE")
        task = asyncio.create_task(job.run())
        for _ in range(200):
            if any(s.waiting for s in snapshots):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(3.0)  # a few seconds behind the lock
        blocked = list(snapshots)
        holder.rollback()
        result = await task
    assert result.state == JobState.SUCCEEDED, result.message
    assert any(s.waiting for s in blocked) and len(blocked) >= 8
    assert blocked[-1].bytes_total > 0
    assert [(s.percent, s.bytes_done) for s in blocked] == [(0.0, 0)] * len(blocked)
    assert all(s.eta_s is None for s in blocked)
    assert [s.percent for s in snapshots] == sorted(s.percent for s in snapshots)
    assert snapshots[-1].percent == 100 and snapshots[-1].phase == "done"


async def test_a_restore_refused_for_another_session_ends_at_0_percent(sandbox, home, fresh_db_name):
    dumped = await DumpJob(DumpPlan(target=target_from_dsn(sandbox.dsn()), dbname="shop")).run()
    assert dumped.state == JobState.SUCCEEDED, dumped.message
    sandbox.create_database(fresh_db_name)
    job = RestoreJob(RestorePlan(archive=dumped.output_path, target=target_from_dsn(sandbox.dsn()),
                                 dbname=fresh_db_name, clean=True))
    snapshots = record(job)
    with psycopg.connect(sandbox.dsn(fresh_db_name)):  # another session on the target
        result = await job.run()
    assert result.exit_code == 2 and "other session" in result.message, result.message
    assert len(snapshots) >= 4  # the check waited its 2 s for the session to end, ticking
    assert {s.percent for s in snapshots} == {0.0}, [s.percent for s in snapshots]
    assert job.progress is not None and job.progress.percent == 0 and job.progress.bytes_done == 0
    assert job.progress.bytes_total > 0


def test_a_data_phase_with_no_byte_for_a_minute_is_said_and_shows_no_time_left() -> None:
    # QA: a link that froze mid-dump (no reset, no FIN) showed its last figures with a time left that
    # kept growing, for as long as it lasted. NO_DATA_S without a byte moving in the data phase (and
    # no lock said) is said, as a wait is, and no time left is shown; the first byte ends it.
    from pgbackup_tui.core.progress.tracker import NO_DATA_S, ProgressTracker

    job = DumpJob(DumpPlan(target=target_from_dsn("host=db1.example user=app"), dbname="shop"))
    tracker = ProgressTracker(job, dump_estimator())
    tracker._watching = True  # as watch_server leaves it: the bytes are the server's own figures

    def seen(at: float, bytes_done: int, *, phase: str = "data", waiting: str | None = None) -> ProgressSnapshot:
        snapshot = ProgressSnapshot(elapsed_s=at, phase=phase, percent=10, bytes_done=bytes_done, eta_s=30.0,
                                    waiting=waiting)
        return tracker._said_if_no_data(snapshot, at)

    assert not seen(0, 500).blocked
    assert not seen(NO_DATA_S - 1, 500).blocked  # quiet, not for long
    stuck = seen(NO_DATA_S + 5, 500)
    assert stuck.blocked and stuck.eta_s is None and "none for 1m05s" in (stuck.waiting or ""), stuck
    assert "waiting for data from the server" in stuck.summary() and "ETA" not in stuck.summary()
    moving = seen(NO_DATA_S + 6, 501)
    assert not moving.blocked and moving.eta_s == 30.0
    locked = seen(3 * NO_DATA_S, 501, waiting="a lock held by pid 42 (psql)")
    assert locked.waiting == "a lock held by pid 42 (psql)"  # the server's word stands
    assert not seen(5 * NO_DATA_S, 501, phase="indexes").blocked  # no bytes to move there
