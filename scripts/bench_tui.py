"""What the TUI itself costs: CPU while a dump runs, memory after many dumps, the longest frame gap
when a big schema opens. Run by hand; prints figures (not a test).

    .venv/bin/python scripts/bench_tui.py [--tables 10000] [--dumps 10] [--bin-dir DIR]

Builds a throwaway cluster (core/sandbox.py) with a database `many` of --tables small tables (20
rows each, all in `public`), points an isolated PGBACKUP_TUI_HOME at it and runs the real app
headless (App.run_test at 120x40: layout and compositing run as on a terminal, only the bytes are
not written). Then:

  - frame gaps: a 10 ms timer on the app records the intervals between its ticks while the user
    opens the server, the database and the schema `public` with the keys (the longest interval is
    the longest the event loop did not answer: a frozen frame);
  - CPU: dumps of `many` are started as the dialog would start them (app.start_plan: in a runner
    of their own, the Jobs tab shown with the job selected); this process's user+system time
    (/proc/self/stat) over the wall time while each one runs, i.e. the TUI only (pg_dump and the
    runner are other processes);
  - memory: RSS (/proc/self/status) before the first dump and after each one, after gc.collect();
    with --trace-memory N, tracemalloc's N sites that grew most from the middle dump to the last
    (slow: the CPU figures are then not the app's);
  - a list of --backups backups in the Backups tab: the longest frame gap while it shows, read
    cold, then warm, then its next page (bench_tui_lists.py).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # uiutil: the Pilot tests' key helpers

from pgbackup_tui.core.paths import HOME_ENV  # noqa: E402
from pgbackup_tui.core.sandbox import Sandbox  # noqa: E402
from bench_tui_lists import backups_list  # noqa: E402

BUILD_SQL = """
DO $$ BEGIN FOR i IN 1..{tables} LOOP
  EXECUTE format('CREATE TABLE public.t_%s (id int PRIMARY KEY, note text)', lpad(i::text, 5, '0'));
  EXECUTE format('INSERT INTO public.t_%s SELECT g, md5(g::text) FROM generate_series(1, 20) g', lpad(i::text, 5, '0'));
  IF i % 500 = 0 THEN COMMIT; END IF;
END LOOP; END $$;
"""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
GAP_TIMER_S = 0.01


def cpu_seconds() -> float:
    """This process's user + system CPU time (fields 14 and 15 of /proc/self/stat)."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb() -> float:
    """This process's resident set, in MB (VmRSS of /proc/self/status)."""
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(args: argparse.Namespace, sandbox: Sandbox) -> dict[str, object]:
    # Imported here: PGBACKUP_TUI_HOME must be set before the app reads its config.
    from uiutil import move_to, node_text, settle, socket_profile, write_config

    from pgbackup_tui.core.plans import DumpPlan
    from pgbackup_tui.ui.app import PgBackupApp
    from pgbackup_tui.ui.widgets.server_tree import ServerTree

    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    figures: dict[str, object] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        tree = app.query_one(ServerTree)
        await move_to(pilot, tree, lambda text: text.startswith("sandbox"))
        await pilot.press("enter")
        await settle(pilot)
        await move_to(pilot, tree, lambda text: " many " in f" {text} ")
        await pilot.press("enter")
        await settle(pilot)

        ticks: list[float] = []
        timer = app.set_interval(GAP_TIMER_S, lambda: ticks.append(time.perf_counter()))
        await move_to(pilot, tree, lambda text: " public " in f" {text} ")
        await settle(pilot)  # the cursor's move (details, backups) is not the schema's opening
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        await pilot.press("enter")
        await asyncio.sleep(2.0)
        timer.stop()
        ticks = [tick for tick in ticks if tick >= started - GAP_TIMER_S]
        gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False)]
        figures["max_frame_gap_ms"] = 1000 * max(gaps, default=float("nan"))
        await pilot.press("down")  # onto the first table: the cursor in a list of 10,000
        await settle(pilot)
        shown = sum(1 for line in range(tree.last_line + 1)
                    if (node := tree.get_node_at_line(line)) is not None and " t_" in node_text(tree, node))
        figures["tables_shown"] = shown
        await pilot.press("home")
        await pilot.press("2")  # the Jobs tab, where the progress shows

        target = app.profiles.target("sandbox")
        assert target is not None
        figures["rss_start_mb"] = rss_mb()
        cpu_shares, rss, durations, cpu_seconds_each = [], [], [], []
        profiler = cProfile.Profile() if args.profile else None
        middle: tracemalloc.Snapshot | None = None
        if args.trace_memory:
            tracemalloc.start(8)
        for number in range(args.dumps):
            # By id: past the Jobs tab's 50 jobs the oldest goes as the new one comes (their count stays).
            known = {shown.id for shown in app.jobs}
            app.start_plan("dump", DumpPlan(target=target, dbname="many"), f"bench dump {number + 1}")
            while not (new := [shown for shown in app.jobs if shown.id not in known]):
                await asyncio.sleep(0.05)
            job = new[-1]
            wall0, cpu0 = time.perf_counter(), cpu_seconds()
            if profiler is not None:
                profiler.enable()
            while not job.state.is_final:
                await asyncio.sleep(0.05)
            if profiler is not None:
                profiler.disable()
            wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
            await settle(pilot)
            cpu_shares.append(100 * cpu / wall)
            cpu_seconds_each.append(cpu)
            durations.append(wall)
            rss.append(rss_mb())
            # The seconds too: a short dump's share is mostly what starting and ending a job costs.
            print(f"  dump {number + 1}: {job.state.value} in {wall:.1f} s, TUI CPU {100 * cpu / wall:.1f} % "
                  f"of a core ({cpu:.2f} s), RSS {rss[-1]:.1f} MB, {len(gc.get_objects())} objects", flush=True)
            if args.trace_memory and number == args.dumps // 2:
                middle = tracemalloc.take_snapshot()
        if middle is not None:
            print_growth(middle, tracemalloc.take_snapshot(), args.trace_memory, args.dumps - 1 - args.dumps // 2)
            tracemalloc.stop()
        if profiler is not None:  # the event loop's thread only, while the dumps ran
            profiler.dump_stats(args.profile)
        figures["cpu_percent_median"] = statistics.median(cpu_shares)
        figures["cpu_s_median"] = statistics.median(cpu_seconds_each)
        figures["cpu_percent_max"] = max(cpu_shares)
        figures["dump_s_median"] = statistics.median(durations)
        figures["rss_after_mb"] = rss[-1]
        figures["rss_per_dump_mb"] = (rss[-1] - rss[0]) / max(1, len(rss) - 1)
        await app.workers.wait_for_complete()
    return figures


def print_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, top: int, dumps: int) -> None:
    """The `top` allocation sites (their innermost frame in the app or Textual) that grew most."""
    stats = after.compare_to(before, "traceback")
    print(f"memory grown over the last {dumps} dumps (tracemalloc): "
          f"{sum(stat.size_diff for stat in stats) / 1024:+.0f} KiB in all", flush=True)
    for stat in sorted(stats, key=lambda stat: stat.size_diff, reverse=True)[:top]:
        frames = [frame for frame in stat.traceback if "pgbackup_tui" in frame.filename or "textual" in frame.filename]
        where = frames[-1] if frames else stat.traceback[-1]
        print(f"  {stat.size_diff / 1024:+8.1f} KiB {stat.count_diff:+7d} blocks  {where.filename}:{where.lineno}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--dumps", type=int, default=10)
    parser.add_argument("--bin-dir", type=Path, default=None, help="a PostgreSQL bin dir for the sandbox")
    parser.add_argument("--backups", type=int, default=5_000, help="backups listed in the Backups tab (0: skip)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write cProfile stats of the app's event loop while the dumps run to this file "
                             "(the CPU figures then include the profiler's own cost)")
    parser.add_argument("--trace-memory", type=int, default=0, metavar="N",
                        help="print the N allocation sites that grew most from the middle dump to the last")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tui-") as home:
        os.environ[HOME_ENV] = home
        with Sandbox(bin_dir=args.bin_dir) as sandbox:
            sandbox.create_database("many")
            print(f"building {args.tables} tables…", flush=True)
            sandbox.psql(BUILD_SQL.format(tables=args.tables), "many", timeout=1800)
            sandbox.psql("VACUUM ANALYZE", "many", timeout=1800)
            figures = asyncio.run(run(args, sandbox))
            lists = backups_list(sandbox, args.backups) if args.backups else None  # in a process of its own
    print(f"\nPostgreSQL {sandbox.major}, {args.tables} tables, {args.dumps} dumps, {os.cpu_count()} cores")
    print(f"opening schema public: longest frame gap {figures['max_frame_gap_ms']:.0f} ms "
          f"({figures['tables_shown']} table lines in the tree)")
    print(f"TUI CPU while a dump runs (Jobs tab): median {figures['cpu_percent_median']:.1f} %, "
          f"max {figures['cpu_percent_max']:.1f} % of a core (dump {figures['dump_s_median']:.1f} s; "
          f"{figures['cpu_s_median']:.2f} s of CPU per dump: the share falls as a busy machine makes the dump longer)")
    print(f"RSS: {figures['rss_start_mb']:.0f} MB before the dumps, {figures['rss_after_mb']:.0f} MB after "
          f"{args.dumps}, {figures['rss_per_dump_mb']:+.1f} MB per finished dump after the first")
    if lists is not None:
        print(f"Backups tab, {args.backups} backups (made in {lists['build_s']:.1f} s): longest frame gap "
              f"{lists['cold_gap_ms']:.0f} ms read cold (listed in {lists['cold_listed_s']:.1f} s), "
              f"{lists['warm_gap_ms']:.0f} ms warm ({lists['warm_listed_s']:.1f} s), "
              f"{lists['next_page_gap_ms']:.0f} ms for the next page ({lists['rows_shown']:.0f} then "
              f"{lists['rows_shown_after']:.0f} rows in the table)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
