"""How truthful is the progress of a dump and a restore? Run by hand; prints figures (not a test).

    .venv/bin/python scripts/bench_progress.py [--scale 1.0] [--jobs 1] [--format custom] [--items]
        [--trace [STEP_S]] [--runs N] [--record DIR] [--no-autovacuum]

Builds a throwaway cluster (core/sandbox.py) with a database whose biggest table holds about
70 % of the data and ~200 small tables hold the rest, dumps it with a real DumpJob, restores the
archive with a real RestoreJob (--create), and prints for each, against issue #4's targets:

  - max |percent - 100 * elapsed / duration| over the updates after 5 %       (<= 10 points)
  - |ETA - real remaining| / real remaining when the bar reaches 25 %, and its maximum over
    every update after that                                                    (<= 20 %), also
    counted only while >= 2 s remain (in the last second or two a tenth of a second is tens of
    per cent, and the ETA is shown in whole seconds anyway), and in seconds
  - percent never decreasing, and the last update at exactly 100 with phase "done"
  - updates per second and the longest gap between two updates
  - what the monitoring cost: CPU of the polling thread and ticks in this process, and CPU of
    the monitor's backend on the server, as a share of one core over the job     (< 5 %)

--items adds, per phase and kind of work item, the prior cost against the time really spent:
the figures the constants in progress_dump.py / progress_restore_plan.py were tuned with.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from itertools import pairwise
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pgbackup_tui.core.connect import target_from_dsn  # noqa: E402
from pgbackup_tui.core.dump import DumpJob  # noqa: E402
from pgbackup_tui.core.jobs import Job, JobResult, JobState, ProgressUpdated  # noqa: E402
from pgbackup_tui.core.plans import DumpPlan, RestorePlan  # noqa: E402
from pgbackup_tui.core.restore import RestoreJob  # noqa: E402
from pgbackup_tui.core.sandbox import Sandbox  # noqa: E402

BIG_ROWS = 5_000_000
SMALL_TABLES = 200
SMALL_ROWS = 12_000  # on average; they vary from 0.3x to 1.7x

BUILD_SQL = """
CREATE TABLE public.events (
    id bigint PRIMARY KEY, occurred_at timestamptz NOT NULL, kind text NOT NULL,
    amount numeric(12,2), payload text);
INSERT INTO public.events
SELECT g, timestamptz '2024-01-01' + g * interval '1 second', 'kind_' || (g % 17), (g % 100000) / 100.0,
       md5(g::text) || repeat(substr(md5((g * 7)::text), 1, 8), 1 + g % 6)
FROM generate_series(1, {big_rows}) g;
CREATE INDEX events_occurred_at_idx ON public.events (occurred_at);
CREATE SCHEMA small;
DO $$ BEGIN FOR i IN 1..{small_tables} LOOP
  EXECUTE format('CREATE TABLE small.t_%s (id int PRIMARY KEY, label text, value double precision, note text)',
                 lpad(i::text, 3, '0'));
  EXECUTE format('INSERT INTO small.t_%s SELECT g, ''label '' || g, random(), md5(g::text) '
                 'FROM generate_series(1, %s) g', lpad(i::text, 3, '0'),
                 ({small_rows} * (0.3 + 1.4 * ((i * 37) % 100) / 100.0))::int);
END LOOP; END $$;
VACUUM ANALYZE;
"""


class Recorder:
    """Collects a job's snapshots and the monitor backend's CPU time as they come."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.snapshots: list = []
        self.arrivals: list[float] = []
        self.server_cpu_s = 0.0
        self.dirty_mb: list[float] = []
        self._ticks = os.sysconf("SC_CLK_TCK")
        job.subscribe(self)

    def __call__(self, event) -> None:
        if not isinstance(event, ProgressUpdated):
            return
        self.snapshots.append(event.progress)
        self.arrivals.append(time.monotonic())
        self.dirty_mb.append(_dirty_mb())
        tracker = tracker_of(self.job)
        pid = tracker.probe.backend_pid if tracker is not None and tracker.probe else None
        if pid:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                self.server_cpu_s = (int(fields[11]) + int(fields[12])) / self._ticks
            except (OSError, IndexError, ValueError):
                pass


def tracker_of(job: Job) -> Any:
    """The dump's or restore's tracker, a ProgressTracker (Any: the figures below read its insides,
    and --record swaps in a RecordingEstimator)."""
    return job.progress_tracker


def _dirty_mb() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("Dirty:"):
                return int(line.split()[1]) / 1024
    return 0.0


def accuracy(snaps: list, total: float) -> dict[str, object]:
    """How the percentages and ETAs of one job compare with its real duration (issue #4's bar)."""
    deviation = max((abs(s.percent - 100 * s.elapsed_s / total) for s in snaps
                     if s.percent >= 5 and s.phase != "done"), default=0.0)
    eta_errors, eta_errors_2s, eta_seconds = [], [], []
    for s in snaps:
        if s.percent < 25 or s.eta_s is None or s.phase == "done":
            continue
        remaining = total - s.elapsed_s
        if remaining <= 0:
            continue
        error = abs(s.eta_s - remaining) / remaining
        eta_errors.append(error)
        eta_seconds.append(abs(s.eta_s - remaining))
        if remaining >= 2.0:
            eta_errors_2s.append(error)
    # The other reading of the bar: the ETA shown when the bar reaches 25 %.
    at_quarter = next((s for s in snaps if s.percent >= 25 and s.eta_s is not None and s.phase != "done"), None)
    quarter_error = abs(at_quarter.eta_s - (total - at_quarter.elapsed_s)) / (total - at_quarter.elapsed_s) \
        if at_quarter is not None and total > at_quarter.elapsed_s else 0.0
    return {
        "duration_s": f"{total:.1f}",
        "max |percent - time share| after 5%": f"{deviation:.1f} points",
        "ETA error when the bar reaches 25%": f"{100 * quarter_error:.0f} %",
        "max ETA error after 25%": f"{100 * max(eta_errors, default=0):.0f} %",
        "max ETA error after 25%, >= 2 s left": f"{100 * max(eta_errors_2s, default=0):.0f} %",
        "max ETA error after 25%, in seconds": f"{max(eta_seconds, default=0):.1f} s",
        "monotonic": all(a.percent <= b.percent for a, b in pairwise(snaps)),
        "last update 100 % / done": bool(snaps) and snaps[-1].percent == 100 and snaps[-1].phase == "done",
    }


def figures(recorder: Recorder) -> dict[str, object]:
    job, snaps = recorder.job, recorder.snapshots
    total = result_of(job).duration_s
    gaps = [b - a for a, b in pairwise(recorder.arrivals)]
    tracker = tracker_of(job)
    client_cpu = tracker.cpu_s if tracker else 0.0
    return {
        **accuracy(snaps, total),
        "updates per second": f"{len(snaps) / total:.1f}",
        "longest gap between updates": f"{max(gaps, default=0):.2f} s",
        "polls": tracker.probe.polls if tracker and tracker.probe else 0,
        "estimate": snaps[-1].estimate if snaps else "",
        "monitor CPU, this process": f"{client_cpu:.2f} s = {100 * client_cpu / total:.2f} % of a core",
        "monitor CPU, its backend":
            f"{recorder.server_cpu_s:.2f} s = {100 * recorder.server_cpu_s / total:.2f} % of a core",
    }


def item_report(job: Job) -> list[str]:
    """Prior cost vs seconds really spent, per phase and kind (only items seen start and end)."""
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for item in tracker_of(job).estimator.items:
        if item.started_at is None or item.finished_at is None:
            continue
        key = (item.phase, item.kind if item.kind != "object" else item.info.get("entry").desc
               if item.info.get("entry") else item.kind)
        if item.kind == "table":
            key = (item.phase, "big table" if item.bytes > 50e6 else "small table")
        sums[key][0] += 1
        sums[key][1] += item.cost_s
        sums[key][2] += item.finished_at - item.started_at
    lines = [f"  {phase:10} {kind:22} n={n:<5} prior {prior:7.2f} s  real {real:7.2f} s  "
             f"real/prior {real / prior if prior else 0:5.2f}"
             for (phase, kind), (n, prior, real) in sorted(sums.items())]
    timed = [item for item in tracker_of(job).estimator.items if item.started_at and item.finished_at]
    timed.sort(key=lambda item: item.finished_at - item.started_at, reverse=True)
    lines.append("  longest items:")
    lines += [f"    {item.key[:30]:30} {item.label[:24]:24} prior {item.cost_s:6.2f} s  "
              f"real {item.finished_at - item.started_at:6.2f} s"
              for item in timed[:6]]
    return lines


def trace(recorder: Recorder, step_s: float) -> list[str]:
    """About one snapshot every `step_s`: elapsed, ideal %, shown %, ETA vs real remaining."""
    total = result_of(recorder.job).duration_s
    lines, next_t = [], 0.0
    for s, dirty in zip(recorder.snapshots, recorder.dirty_mb, strict=True):
        if s.elapsed_s >= next_t or s.phase == "done":
            next_t = s.elapsed_s + step_s
            eta = "  -  " if s.eta_s is None else f"{s.eta_s:5.1f}"
            lines.append(f"  t={s.elapsed_s:5.1f} ideal {100 * s.elapsed_s / total:5.1f} shown {s.percent:5.1f} "
                         f"eta {eta} real {total - s.elapsed_s:5.1f} dirty {dirty:6.0f} MB {s.phase:9} "
                         f"{','.join(s.current)[:40]}")
    return lines


def result_of(job: Job) -> JobResult:
    """The result of a job run() has finished (run() below exits on any other outcome)."""
    if job.result is None:
        raise SystemExit(f"{job.title}: no result")
    return job.result


async def run(job: Job) -> Recorder:
    recorder = Recorder(job)
    result = await job.run()
    if result.state != JobState.SUCCEEDED:
        raise SystemExit(f"{job.title}: {result.state.value}: {result.message}")
    return recorder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the data size (1.0: about 1 GB on disk)")
    parser.add_argument("--jobs", type=int, default=1, help="--jobs for both (needs --format directory above 1)")
    parser.add_argument("--format", default="custom", choices=("custom", "directory", "tar"))
    parser.add_argument("--items", action="store_true", help="print prior vs real time per kind of work")
    parser.add_argument("--trace", type=float, nargs="?", const=1.0, default=None, metavar="STEP_S",
                        help="print an update every STEP_S seconds (default 1)")
    parser.add_argument("--runs", type=int, default=1, help="dump and restore this many times (same data)")
    parser.add_argument("--no-settle", action="store_true",
                        help="do not CHECKPOINT and sync before each job (see settle())")
    parser.add_argument("--no-autovacuum", action="store_true",
                        help="turn autovacuum off on the benchmark's cluster: it may start on a table a restore "
                             "has just loaded and hold up its first index build for deadlock_timeout (the "
                             "restore's 100 ms); without it the figures measure the estimate alone")
    parser.add_argument("--record", type=Path, metavar="DIR",
                        help="save what each job's estimator saw, for scripts/progress_replay.py")
    args = parser.parse_args()
    if args.record:
        import progress_replay
        progress_replay.install()
        args.record.mkdir(parents=True, exist_ok=True)

    home = Path(tempfile.mkdtemp(prefix="pgbackup-bench-"))
    os.environ["PGBACKUP_TUI_HOME"] = str(home)
    try:
        bench(args)
    finally:
        shutil.rmtree(home, ignore_errors=True)  # the archives are big


def bench(args: argparse.Namespace) -> None:
    with Sandbox() as sandbox:
        started = time.monotonic()
        sandbox.create_database("bench")
        sandbox.psql(BUILD_SQL.format(big_rows=int(BIG_ROWS * args.scale), small_tables=SMALL_TABLES,
                                      small_rows=int(SMALL_ROWS * args.scale)), "bench")
        size = sandbox.psql("SELECT pg_size_pretty(pg_database_size('bench'))", "bench").strip()
        print(f"built database bench ({size}) in {time.monotonic() - started:.0f} s", flush=True)
        if args.no_autovacuum:
            sandbox.psql("ALTER SYSTEM SET autovacuum = off")
            sandbox.psql("SELECT pg_reload_conf()")
        target = target_from_dsn(sandbox.dsn())
        summary = []
        for attempt in range(1, args.runs + 1):
            dump_job = DumpJob(DumpPlan(target=target, dbname="bench", format=args.format, jobs=args.jobs))
            settle(sandbox, args)
            dump_log_offset, dump_wall = sandbox.log_file.stat().st_size, time.time()
            dump = asyncio.run(run(dump_job))
            dump_events = server_events(sandbox, dump_log_offset, dump_wall)
            archive = result_of(dump_job).output_path
            if archive is None:
                raise SystemExit(f"{dump_job.title}: wrote no archive")
            restore_job = RestoreJob(RestorePlan(archive=archive, target=target,
                                                 dbname=f"bench_restored_{attempt}", create=True, jobs=args.jobs))
            settle(sandbox, args)
            log_offset, restore_wall = sandbox.log_file.stat().st_size, time.time()
            restore = asyncio.run(run(restore_job))
            restore_events = server_events(sandbox, log_offset, restore_wall)
            background = autovacuum_seen(sandbox, log_offset, f"bench_restored_{attempt}",
                                         result_of(restore_job).duration_s)
            sandbox.drop_database(f"bench_restored_{attempt}")
            report(attempt, dump, restore, args)
            if args.record:
                import progress_replay
                stamp = time.strftime("%H%M%S")
                for label, recorder in (("dump", dump), ("restore", restore)):
                    progress_replay.save(tracker_of(recorder.job).estimator, result_of(recorder.job).duration_s,
                                         args.record / f"{label}-{stamp}-{attempt}.pickle")
            print(f"restore: {background}", flush=True)
            print(f"dump: server events: {dump_events}\nrestore: server events: {restore_events}", flush=True)
            summary.append((attempt, accuracy(dump.snapshots, result_of(dump_job).duration_s),
                            accuracy(restore.snapshots, result_of(restore_job).duration_s), background))
        print_summary(summary)


_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) UTC \[\d+\] \w+:\s+(.*)$")


def settle(sandbox: Sandbox, args: argparse.Namespace) -> None:
    """Start each job on a quiet machine: the previous job's dirty pages (a gigabyte of WAL, table
    files and archive) are otherwise written back by the kernel and the checkpointer in the
    middle of the next job, slowing it by a third for a few seconds at a time that changes
    from run to run -- the measurement's noise, not the estimate's error."""
    if args.no_settle:
        return
    sandbox.psql("CHECKPOINT")
    os.sync()


def server_events(sandbox: Sandbox, log_offset: int, started_wall: float) -> str:
    """Checkpoints and autovacuum cancellations in the server log since `log_offset`, at their
    time from the job's start: what the server did beside the job (its competition for the
    cores and the disk)."""
    events = []
    with open(sandbox.log_file, "rb") as log:
        log.seek(log_offset)
        for line in log.read().decode(errors="replace").splitlines():
            match = _LOG_LINE.match(line)
            if not match or not ("checkpoint" in match.group(2) or "autovacuum" in match.group(2)):
                continue
            when = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
            events.append(f"t={when.timestamp() - started_wall:.1f} {match.group(2)[:40]}")
    return "; ".join(events) or "none"


def autovacuum_seen(sandbox: Sandbox, log_offset: int, dbname: str, duration_s: float) -> str:
    """What autovacuum did to the big table during the restore: the server's own competition
    for the two cores, and the main reason restore times vary from run to run. A worker that a
    CREATE INDEX or ADD CONSTRAINT needs out of the way is cancelled after the waiting session's
    deadlock_timeout (the restore sets 100 ms), which the server log says."""
    with open(sandbox.log_file, "rb") as log:
        log.seek(log_offset)
        cancelled = log.read().decode(errors="replace").count("canceling autovacuum task")
    ages = sandbox.psql("SELECT coalesce(extract(epoch FROM now() - last_autovacuum)::text, ''), "
                        "coalesce(extract(epoch FROM now() - last_autoanalyze)::text, '') "
                        "FROM pg_stat_user_tables WHERE relname = 'events'", dbname).strip()
    seen = [f"{what} of public.events ended at t={duration_s - float(age):.1f} s"
            for what, age in zip(("autovacuum", "autoanalyze"), (ages.split("|") + ["", ""])[:2], strict=True) if age]
    if cancelled:
        seen.append(f"{cancelled} autovacuum task(s) cancelled (a statement waited deadlock_timeout for its lock)")
    return "; ".join(seen) or "no autovacuum during the restore"


def report(attempt: int, dump: Recorder, restore: Recorder, args: argparse.Namespace) -> None:
    rows = [(f"run {attempt}", "dump", "restore")]
    dump_figures, restore_figures = figures(dump), figures(restore)
    rows += [(name, str(value), str(restore_figures[name])) for name, value in dump_figures.items()]
    width = max(len(r[0]) for r in rows)
    for name, a, b in rows:
        print(f"{name:{width}}  {a:42}  {b}")
    for label, recorder in (("dump", dump), ("restore", restore)):
        if args.items:
            print(f"{label}: prior cost vs real time")
            print("\n".join(item_report(recorder.job)))
        if args.trace is not None:
            print(f"{label}: trace")
            print("\n".join(trace(recorder, args.trace)))
    sys.stdout.flush()


def print_summary(summary: list[tuple[int, dict, dict, str]]) -> None:
    """One line per run: the issue's two accuracy figures for each job, and what autovacuum did."""
    print("\nrun  dump: ETA error at 25 %, max after (>= 2 s left), percent vs time   restore: the same"
          "   autovacuum during the restore")
    for attempt, dump, restore, background in summary:
        print(f"{attempt:3}  {dump['ETA error when the bar reaches 25%']:>5} "
              f"{dump['max ETA error after 25%, >= 2 s left']:>5}"
              f" {dump['max |percent - time share| after 5%']:>11}                              "
              f"{restore['ETA error when the bar reaches 25%']:>5} {restore['max ETA error after 25%, >= 2 s left']:>5}"
              f" {restore['max |percent - time share| after 5%']:>11}   {background}")


if __name__ == "__main__":
    main()
