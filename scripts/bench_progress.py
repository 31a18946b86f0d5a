"""How honest is the progress of a dump and a restore, here and behind a slow link? Run by hand (not a test).

    .venv/bin/python scripts/bench_progress.py [--scale 0.2] [--rates 20,5] [--only TEXT] [--clusters]
                                               [--trace [S]] [--record DIR]

Builds a throwaway cluster (core/sandbox.py) with a database whose biggest table holds about 70 %
of the data and 200 small tables the rest (--scale 1: about 1 GB on disk), then dumps it with a
real DumpJob and restores the archive with a real RestoreJob (--create) in each setting:

  local           the sandbox's Unix socket, pg_dump -Fc and a serial pg_restore
  link R MB/s     the same over TCP through tests/throttle_proxy.py passing R MB/s each way
                  (a server elsewhere; the job's monitor connection goes through it too)
  local -Fd -j2   a parallel dump of a directory archive, restored with --jobs 2
  link R -Fd -j2  the same through the proxy at the first rate: two workers sharing one link

and, with --clusters (jobs the issue's table does not list, made of whole databases: count.py),
  cluster file    with a copy of the database beside it (two of its size), pg_dumpall to one file,
                  restored with psql onto an empty second cluster
  cluster set -j2 the same as a cluster set (an archive per database) made and restored two
                  databases at a time

and prints ONE table, a row per setting and job, against issue 14's bar (core/progress/criteria.py):
the worst |percent - 100 * t / T| after 5 % (<= 10 points), the worst ETA error after 25 % as a
share of the time left while 10 s or more are left (<= 20 %) and in seconds under that (<= 2 s),
monotonic, the last update at exactly 100, updates per second (>= 2), the monitor's CPU in
this process as a share of one core, and the machine's pace the job measured as it started
(core/progress/speed.machine_pace: 1.0 is the reference VM idle; the load average raises it).
Each job starts after a CHECKPOINT and a sync, so one job's dirty pages are not written back in
the middle of the next. Anything else running on the machine's cores shows up as ETA error: say
so with the figures.

--record DIR saves what each job's estimator was told, for scripts/progress_replay.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts"), str(ROOT / "tests")]

from pgbackup_tui.core.cluster_plans import ClusterRestorePlan, DumpallPlan  # noqa: E402
from pgbackup_tui.core.cluster_restore import ClusterRestoreJob  # noqa: E402
from pgbackup_tui.core.connect import Target, target_from_dsn  # noqa: E402
from pgbackup_tui.core.dump import DumpJob  # noqa: E402
from pgbackup_tui.core.dumpall import DumpallJob  # noqa: E402
from pgbackup_tui.core.jobs import Job, JobResult, JobState, ProgressUpdated  # noqa: E402
from pgbackup_tui.core.plans import DumpFormat, DumpPlan, RestorePlan  # noqa: E402
from pgbackup_tui.core.progress.criteria import (MAX_ETA_SHARE_OFF, MAX_PERCENT_OFF, SHORT_ETA_OFF_S,  # noqa: E402
                                                 judge)
from pgbackup_tui.core.restore import RestoreJob  # noqa: E402
from pgbackup_tui.core.sandbox import Sandbox  # noqa: E402
from throttle_proxy import ThrottleProxy  # noqa: E402

BIG_ROWS = 5_000_000
SMALL_TABLES = 200
SMALL_ROWS = 12_000  # on average; they vary from 0.3x to 1.7x
MIN_UPDATES_PER_S = 2.0

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


@dataclass(frozen=True)
class Setting:
    name: str
    rate_bps: float | None  # None: the local Unix socket, no proxy
    jobs: int
    format: DumpFormat | None  # None: the whole cluster (pg_dumpall), one file or, with jobs, a set


class Recorder:
    """A job's snapshots and when they arrived."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.snapshots: list = []
        job.subscribe(self)

    def __call__(self, event: object) -> None:
        if isinstance(event, ProgressUpdated):
            self.snapshots.append(event.progress)

    @property
    def result(self) -> JobResult:
        if self.job.result is None:
            raise SystemExit(f"{self.job.title}: no result")
        return self.job.result

    @property
    def tracker(self) -> Any:
        """The job's ProgressTracker (Any: the figures read its insides, --record swaps its estimator)."""
        return self.job.progress_tracker


def accuracy(snapshots: list, duration_s: float) -> dict[str, str]:
    """The criteria's figures for one job (scripts/progress_replay.py prints them too)."""
    verdict = judge(snapshots, duration_s)
    return {"T": f"{duration_s:.1f} s", "%off": f"{verdict.percent_off:.1f}",
            "ETA>=10s": f"{100 * verdict.eta_off:.0f} %", "ETA<10s": f"{verdict.eta_off_s:.1f} s",
            "mono": "yes" if verdict.monotonic else "NO", "100": "yes" if verdict.ends_at_100 else "NO",
            "honest": "yes" if verdict.honest else "no"}


def row(setting: Setting, label: str, recorder: Recorder) -> dict[str, str]:
    duration = recorder.result.duration_s
    figures = accuracy(recorder.snapshots, duration)
    rate = len(recorder.snapshots) / duration
    cpu = recorder.tracker.cpu_s if recorder.tracker is not None else 0.0
    honest = figures.pop("honest") == "yes" and rate >= MIN_UPDATES_PER_S
    pace = recorder.tracker.estimator.ledger.machine if recorder.tracker is not None else 1.0
    return {"setting": setting.name, "job": label, **figures, "upd/s": f"{rate:.1f}",
            "cpu": f"{100 * cpu / duration:.1f} %", "pace": f"{pace:.1f}", "honest": "yes" if honest else "NO"}


async def run(job: Job) -> Recorder:
    recorder = Recorder(job)
    result = await job.run()
    if result.state != JobState.SUCCEEDED:
        raise SystemExit(f"{job.title}: {result.state.value}: {result.message}")
    return recorder


def settle(sandbox: Sandbox) -> None:
    """Start each job on a quiet disk: the previous job's dirty pages are otherwise written back by
    the kernel and the checkpointer in the middle of the next, slowing it for a few seconds at a
    time that changes from run to run -- the measurement's noise, not the estimate's error."""
    sandbox.psql("CHECKPOINT")
    os.sync()


def trace(recorder: Recorder, step_s: float) -> list[str]:
    """About one snapshot every `step_s`: elapsed, ideal %, shown %, ETA vs real time left."""
    total = recorder.result.duration_s
    lines, next_t = [], 0.0
    for s in recorder.snapshots:
        if s.elapsed_s >= next_t or s.phase == "done":
            next_t = s.elapsed_s + step_s
            eta = "  -  " if s.eta_s is None else f"{s.eta_s:5.1f}"
            lines.append(f"  t={s.elapsed_s:5.1f} ideal {100 * s.elapsed_s / total:5.1f} shown {s.percent:5.1f} "
                         f"eta {eta} left {total - s.elapsed_s:5.1f} {s.phase:9} {','.join(s.current)[:40]}")
    return lines


def dump_and_restore(sandbox: Sandbox, setting: Setting, target: Target, attempt: int,
                     args: argparse.Namespace) -> list[Recorder]:
    assert setting.format is not None  # a database's dump (the cluster settings have their own)
    dump_job = DumpJob(DumpPlan(target=target, dbname="bench", format=setting.format, jobs=setting.jobs))
    settle(sandbox)
    dump = asyncio.run(run(dump_job))
    archive = dump.result.output_path
    if archive is None:
        raise SystemExit(f"{dump_job.title}: wrote no archive")
    restored = f"bench_restored_{attempt}"
    restore_job = RestoreJob(RestorePlan(archive=archive, target=target, dbname=restored, create=True,
                                         jobs=setting.jobs))
    settle(sandbox)
    restore = asyncio.run(run(restore_job))
    sandbox.drop_database(restored)
    if archive.is_dir():
        shutil.rmtree(archive)
    else:
        archive.unlink()
    return [dump, restore]


def cluster_dump_and_restore(sandbox: Sandbox, setting: Setting, home: Path) -> list[Recorder]:
    """pg_dumpall of the sandbox (bench, its copy and postgres) as one file or as a set, restored onto
    a second, empty cluster."""
    as_set = setting.jobs > 1
    output = home / ("cluster.set" if as_set else "cluster.sql")
    plan = DumpallPlan(target=target_from_dsn(sandbox.dsn()), output=output,
                       set_format="custom" if as_set else None, jobs=setting.jobs)
    settle(sandbox)
    dump = asyncio.run(run(DumpallJob(plan)))
    archive = dump.result.output_path
    if archive is None:
        raise SystemExit("pg_dumpall wrote nothing")
    with Sandbox(bin_dir=sandbox.bin_dir) as target:
        settle(target)
        restore = asyncio.run(run(ClusterRestoreJob(ClusterRestorePlan(archive=archive, target=target_from_dsn(
            target.dsn()), jobs=setting.jobs))))
    if archive.is_dir():
        shutil.rmtree(archive)
    else:
        archive.unlink()
    return [dump, restore]


def bench(args: argparse.Namespace) -> None:
    settings = [Setting("local", None, 1, "custom")]
    settings += [Setting(f"link {rate:g} MB/s", rate * 1e6, 1, "custom") for rate in args.rates]
    settings.append(Setting("local -Fd -j2", None, 2, "directory"))
    settings.append(Setting(f"link {args.rates[0]:g} MB/s -Fd -j2", args.rates[0] * 1e6, 2, "directory"))
    if args.clusters:
        settings += [Setting("cluster file", None, 1, None), Setting("cluster set -j2", None, 2, None)]
    settings = [setting for setting in settings if args.only in setting.name]
    rows = []
    with Sandbox() as sandbox:
        started = time.monotonic()
        sandbox.create_database("bench")
        sandbox.psql(BUILD_SQL.format(big_rows=int(BIG_ROWS * args.scale), small_tables=SMALL_TABLES,
                                      small_rows=int(SMALL_ROWS * args.scale)), "bench")
        size = sandbox.psql("SELECT pg_size_pretty(pg_database_size('bench'))", "bench").strip()
        print(f"built database bench ({size}) in {time.monotonic() - started:.0f} s; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
        for attempt, setting in enumerate(settings, 1):
            if setting.format is None:
                if "bench_copy" not in sandbox.psql("SELECT datname FROM pg_database"):
                    sandbox.psql("CREATE DATABASE bench_copy TEMPLATE bench")
                recorders = cluster_dump_and_restore(sandbox, setting, args.home)
            elif setting.rate_bps is None:
                recorders = dump_and_restore(sandbox, setting, target_from_dsn(sandbox.dsn()), attempt, args)
            else:
                with ThrottleProxy(sandbox.port, setting.rate_bps, lifetime_s=3600) as proxy:
                    target = target_from_dsn(f"host=127.0.0.1 port={proxy.port} user={sandbox.superuser} "
                                             "dbname=postgres").with_password(sandbox.password)
                    recorders = dump_and_restore(sandbox, setting, target, attempt, args)
            for label, recorder in zip(("dump", "restore"), recorders, strict=True):
                rows.append(row(setting, label, recorder))
                print(f"{setting.name} {label}: {recorder.result.duration_s:.1f} s", flush=True)
                if args.trace is not None:
                    print("\n".join(trace(recorder, args.trace)))
                if args.record:
                    import progress_replay
                    name = setting.name.replace(" ", "_").replace("/", "")
                    progress_replay.save(recorder.tracker.estimator, recorder.result.duration_s,
                                         args.record / f"{name}-{label}.pickle")
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    print_table(rows)


def print_table(rows: list[dict[str, str]]) -> None:
    print(f"\nbar: %off <= {MAX_PERCENT_OFF:g} points after 5 %; after 25 % the ETA within "
          f"{100 * MAX_ETA_SHARE_OFF:.0f} % of the time left (>= 10 s left) or {SHORT_ETA_OFF_S:g} s (under 10 s); "
          f"monotonic; ends at 100; >= {MIN_UPDATES_PER_S:g} updates/s")
    columns = list(rows[0])
    widths = {column: max(len(column), *(len(r[column]) for r in rows)) for column in columns}
    print("| " + " | ".join(column.ljust(widths[column]) for column in columns) + " |")
    print("|" + "|".join("-" * (widths[column] + 2) for column in columns) + "|")
    for r in rows:
        print("| " + " | ".join(r[column].ljust(widths[column]) for column in columns) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.2, help="multiply the data size (1.0: about 1 GB on disk)")
    parser.add_argument("--rates", type=lambda text: [float(r) for r in text.split(",")], default=[20.0, 5.0],
                        help="the link's rates in MB/s, comma-separated (default 20,5)")
    parser.add_argument("--only", default="", metavar="TEXT", help="only the settings whose name holds TEXT")
    parser.add_argument("--clusters", action="store_true", help="also pg_dumpall to a file and to a set, restored")
    parser.add_argument("--trace", type=float, nargs="?", const=1.0, default=None, metavar="STEP_S",
                        help="print an update every STEP_S seconds (default 1)")
    parser.add_argument("--record", type=Path, metavar="DIR",
                        help="save what each job's estimator saw, for scripts/progress_replay.py")
    args = parser.parse_args()
    if args.record:
        import progress_replay
        progress_replay.install()
        args.record.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="pgbackup-bench-"))
    os.environ["PGBACKUP_TUI_HOME"] = str(home)
    args.home = home
    try:
        bench(args)
    finally:
        shutil.rmtree(home, ignore_errors=True)  # the archives are big


if __name__ == "__main__":
    main()
