"""Issue 14: the estimator is honest on machines much faster or slower than its priors, and behind a
slow link -- simulated, without a server, in well under a second per case.

A job is planned with the real planners' work items (a dump: pg_dump's catalog, one table of 70 %
of the data and 200 small ones, the closing step; a restore: the verification pass, the schema,
the same tables, their keys and indexes). Each item then really takes k times its prior cost, and a
data item at least its bytes on the wire at the link's rate (a slow link slows the bytes, not the
server). The estimator is told what the trackers' two probes would tell it, each wrong by a factor
(PROBE_ERRORS): the machine's pace (k) and the link's rate; then what the trackers would feed it,
tick by tick: starts, measured fractions of the tables, index builds and the verification pass
(its read position), finishes. The snapshots are judged by progress.criteria, the benchmark's
bar. With --jobs 2 the items run on two workers as
pg_dump and pg_restore run them: the catalog and the schema first, a table's indexes after its
data, never two items on a table together when one needs an exclusive lock.
"""

from __future__ import annotations

import pytest

from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.plans import DumpPlan
from pgbackup_tui.core.progress.criteria import judge
from pgbackup_tui.core.progress.dump import DumpInventory, TableSize, dump_work_items
from pgbackup_tui.core.progress.estimator import ProgressEstimator
from pgbackup_tui.core.progress.items import WorkItem, wire_bytes
from pgbackup_tui.core.progress.priors import ARCHIVE_READ_BPS, RESTORE_HEAP_BPS
from pgbackup_tui.core.progress.restore_plan import post_data_cost
from pgbackup_tui.core.progress.snapshot import ProgressSnapshot
from pgbackup_tui.core.identifiers import QualifiedName

TICK = 0.25
BIG = 700 << 20
SMALLS = [int(1.5e6 * (0.3 + 1.4 * ((i * 37) % 100) / 100)) for i in range(200)]


def dump_items(jobs: int = 1) -> list[WorkItem]:
    tables = [TableSize(1, QualifiedName("public", "events"), BIG, 5_000_000)]
    tables += [TableSize(10 + i, QualifiedName("small", f"t_{i:03}"), size, size // 100)
               for i, size in enumerate(SMALLS)]
    plan = DumpPlan(target=target_from_dsn("host=127.0.0.1 dbname=bench"), dbname="bench", jobs=jobs,
                    format="directory" if jobs > 1 else "custom")
    return dump_work_items(DumpInventory(tuple(tables), relations=600), plan, plan.format)


def restore_items() -> list[WorkItem]:
    archive = (BIG + sum(SMALLS)) // 3
    items = [WorkItem("verify", "preparing", archive / ARCHIVE_READ_BPS[True], kind="step", info={"local": True}),
             WorkItem("target", "preparing", 0.05, kind="step", info={"no_evidence": True})]
    items += [WorkItem(f"create:{i}", "schema", 0.002) for i in range(201)]
    sizes = [("events", BIG)] + [(f"t_{i:03}", size) for i, size in enumerate(SMALLS)]
    for name, size in sizes:
        items.append(WorkItem(f"data:{name}", "data", 0.001 + size / RESTORE_HEAP_BPS, kind="table", bytes=size,
                              rows=size // 100, group=name, info={"wire": wire_bytes(size, size // 100)}))
    for name, size in sizes:
        items.append(WorkItem(f"pkey:{name}", "indexes", post_data_cost("CONSTRAINT", size), group=name,
                              info={"exclusive": True}))
    items.append(WorkItem("idx:events", "indexes", post_data_cost("INDEX", BIG), group="events"))
    items.append(WorkItem("finishing", "finishing", 0.02, kind="step", info={"no_evidence": True}))
    return items


def simulate(items: list[WorkItem], k: float, link: float = 1.0, jobs: int = 1,
             errors: tuple[float, float] = (1.0, 1.0)) -> tuple[list[ProgressSnapshot], float]:
    """Run `items` at k x their prior on `jobs` workers, the data behind a link `link` times slower than
    the data at the priors' pace, which the workers moving data share equally; the probes wrong by
    `errors`. The snapshots and the duration."""
    data = [item for item in items if "wire" in item.info]
    link_bps = sum(item.info["wire"] for item in data) / sum(item.cost_s for item in data) / link if link > 1 else 1e30
    measured_steps = ("verify", "checksum", "count rows")  # read positions measure them
    plan = [(item.key, item.phase, item.group, max(1e-9, item.cost_s * k), item.info.get("wire", 0),
             item.kind != "step" or item.key in measured_steps) for item in items]
    exclusive = {item.key for item in items if item.info.get("exclusive")}
    estimator = ProgressEstimator(items, origin=0.0, estimate="model", jobs=jobs, machine=k * errors[0])
    if link > 1:  # over TCP: the link was timed as the job started
        estimator.link_rate(link_bps * errors[1], 0.0)
    queue = list(plan)
    workers: list[list | None] = [None] * jobs  # [key, start, phase, group, seconds, wire, measured, done share]
    data_done: set[str] = set()
    pending_data = {group for _, phase, group, _, _, _ in plan if phase == "data" and group}
    snapshots, now, t = [], 0.0, 0.0

    def start_next() -> None:
        for slot in range(jobs):
            while workers[slot] is None and queue:
                picked = next(((index, entry) for index, entry in enumerate(queue) if may_start(entry)), None)
                if picked is None:
                    break
                key, phase, group, seconds, wire, measured = queue.pop(picked[0])
                estimator.start(key, now)
                workers[slot] = [key, now, phase, group, seconds, wire, measured, 0.0]

    def may_start(entry: tuple) -> bool:
        key, phase, group = entry[:3]
        running = [w for w in workers if w is not None]
        if jobs > 1 and phase == "indexes" and group in pending_data - data_done:
            return False
        # pg_restore runs no two items on one table together when one needs an exclusive lock.
        if any(w[3] == group and group and (key in exclusive or w[0] in exclusive) for w in running):
            return False
        # Only data and indexes overlap: pg_dump reads the catalog, pg_restore makes the schema, first.
        return all(w[2] == phase or {w[2], phase} <= {"data", "indexes"} for w in running)

    start_next()
    while queue or any(workers):
        t += TICK
        while now < t - 1e-12:  # from event to event: an item ends, or the tick
            running = [w for w in workers if w is not None]
            sharing = sum(1 for w in running if w[5])
            rates = [min(1 / w[4], link_bps / sharing / w[5]) if w[5] else 1 / w[4] for w in running]
            step = min([t - now] + [(1 - w[7]) / rate for w, rate in zip(running, rates, strict=True)])
            now += step
            for w, rate in zip(running, rates, strict=True):
                w[7] = min(1.0, w[7] + rate * step)
            for slot, ended in enumerate(workers):
                if ended is not None and ended[7] >= 1 - 1e-9:
                    estimator.finish(ended[0], now)
                    if ended[2] == "data" and ended[3]:
                        data_done.add(ended[3])
                    workers[slot] = None
            start_next()
        for work in workers:
            if work is not None and work[6] and t > work[1]:
                estimator.observe(work[0], work[7], t)
        snapshots.append(estimator.snapshot(t))
    duration = max(now, max((s.elapsed_s for s in snapshots), default=0.0))
    snapshots.append(estimator.done_snapshot(duration))
    return snapshots, duration


KS = [0.1, 0.3, 1.0, 3.0, 10.0, 20.0]
# The probes' errors (machine pace, link rate): exact; a busy machine timed slow and a link timed
# fast (its burst); the other way round.
PROBE_ERRORS = [(1.0, 1.0), (1.3, 1.5), (0.75, 0.6)]


@pytest.mark.parametrize("errors", PROBE_ERRORS)
@pytest.mark.parametrize("k", KS)
def test_a_dump_is_honest_on_a_machine_k_times_the_priors(k, errors):
    verdict = judge(*simulate(dump_items(), k, errors=errors))
    assert verdict.honest, verdict


@pytest.mark.parametrize("errors", PROBE_ERRORS)
@pytest.mark.parametrize("k", KS)
def test_a_restore_is_honest_on_a_machine_k_times_the_priors(k, errors):
    verdict = judge(*simulate(restore_items(), k, errors=errors))
    assert verdict.honest, verdict


@pytest.mark.parametrize("errors", PROBE_ERRORS)
@pytest.mark.parametrize("link", [3.0, 10.0, 30.0])
def test_a_dump_behind_a_slow_link_is_honest(link, errors):
    verdict = judge(*simulate(dump_items(), 1.0, link=link, errors=errors))
    assert verdict.honest, verdict


@pytest.mark.parametrize("errors", PROBE_ERRORS)
@pytest.mark.parametrize("link", [3.0, 10.0, 30.0])
def test_a_restore_behind_a_slow_link_is_honest(link, errors):
    verdict = judge(*simulate(restore_items(), 1.0, link=link, errors=errors))
    assert verdict.honest, verdict


@pytest.mark.parametrize("errors", PROBE_ERRORS)
@pytest.mark.parametrize("k", [0.3, 1.0, 5.0, 20.0])
def test_parallel_jobs_are_honest_on_a_machine_k_times_the_priors(k, errors):
    for items in (dump_items(jobs=2), restore_items()):
        verdict = judge(*simulate(items, k, jobs=2, errors=errors))
        assert verdict.honest, verdict


# Known misses of a parallel dump over a shared link (strict: they fail today).
_SLOW_MACHINE_PROBE = pytest.mark.xfail(strict=True, reason=(
    "the machine timed 1.3x slow prices the closing passes until they run: 2.5 s too long, over 20 % "
    "of the 10-14 s then left (a serial dump has the same 2.5 s, on more time left)"))
_LAST_PERCENT = pytest.mark.xfail(strict=True, reason=(
    "a 9-minute dump: its big table's last 1 % (measured fractions stop at 99 %) stands 5 s"))
SHARED_LINK_CASES = [
    pytest.param(link, errors, marks=_LAST_PERCENT if link == 30.0 else
                 _SLOW_MACHINE_PROBE if errors == (1.3, 1.5) else ())
    for link in (3.0, 10.0, 30.0) for errors in PROBE_ERRORS]


@pytest.mark.parametrize(("link", "errors"), SHARED_LINK_CASES)
def test_a_parallel_dump_sharing_a_slow_link_is_honest(link, errors):
    """Two workers behind one link share it: the data takes its bytes at the rate they cross the
    link, however the workers spread them (priced as if each had the link whole, the bar ran 15
    points behind and the ETA 80-90 % long)."""
    verdict = judge(*simulate(dump_items(jobs=2), 1.0, link=link, jobs=2, errors=errors))
    assert verdict.honest, verdict


@pytest.mark.parametrize("errors", PROBE_ERRORS)
@pytest.mark.parametrize("link", [3.0, 10.0, 30.0])
def test_a_parallel_restore_sharing_a_slow_link_is_honest(link, errors):
    verdict = judge(*simulate(restore_items(), 1.0, link=link, jobs=2, errors=errors))
    assert verdict.honest, verdict


def test_an_index_builds_fraction_follows_the_scan_share_it_is_given() -> None:
    """Blocks while it scans, tuples while it loads (the sort in between moves nothing), as shares of
    the build's time; the share the scan takes is the job's own once a long enough build showed it."""
    from pgbackup_tui.core.progress.items import TAIL_FRACTION
    from pgbackup_tui.core.progress.priors import INDEX_SORT_SHARE
    from pgbackup_tui.core.progress.restore import SHARE_EVIDENCE_S, scan_share_shown
    from pgbackup_tui.core.progress.server_probe import BackendProgress

    def row(phase: str, blocks: tuple[int, int] = (0, 0), tuples: tuple[int, int] = (0, 0)) -> BackendProgress:
        return BackendProgress("index", 1, 1, "public", "t", phase, *blocks, *tuples)

    assert row("building index: scanning table", blocks=(50, 100)).index_fraction(0.5) == pytest.approx(0.25)
    assert row("building index: sorting live tuples").index_fraction(0.5) == pytest.approx(0.5 + INDEX_SORT_SHARE / 2)
    loading = row("building index: loading tuples in tree", tuples=(50, 100))
    sorted_share = 0.5 + INDEX_SORT_SHARE
    assert loading.index_fraction(0.5) == pytest.approx(sorted_share + (TAIL_FRACTION - sorted_share) / 2)
    assert row("initializing").index_fraction(0.5) is None and not row("initializing").btree_past_scan
    assert loading.btree_past_scan and row("building index: sorting live tuples, spool 1").btree_past_scan
    assert not row("building index").btree_past_scan  # a GIN build, from start to end
    long = SHARE_EVIDENCE_S * 2
    assert scan_share_shown(10.0, 10.0 + 0.4 * long, 10.0 + long) == pytest.approx(0.4)
    assert scan_share_shown(10.0, 10.0 + long, 10.0 + long) == 0.6  # a build's sort and load take time too
    assert scan_share_shown(10.0, 10.1, 10.0 + SHARE_EVIDENCE_S / 2) is None  # too short to tell
