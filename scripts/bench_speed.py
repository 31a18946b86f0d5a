"""Issue 15's table in one run: for each row, our figure, the reference's, the ratio. Run by hand (not a test).

    .venv/bin/python scripts/bench_speed.py [--scale 1.0] [--rounds 3] [--tables 10000] [--dumps 5]
        [--backups 5000] [--memory-dumps 100] [--bin-dir DIR] [--only defaults,restore,selection,tui,memory]
        [--log FILE]

The rows come from the benchmarks that measure them, each run here as a subprocess (so each keeps
its own sandbox, and a change inside one cannot break the others); their summary lines are read
back from what they print:

  defaults   scripts/bench_defaults.py --only ours: `pgbackup-tui dump` with its defaults against
             pgAdmin's `pg_dump -Fc` (time and size), and against raw pg_dump with the same options
             (the dump wrapper's overhead), on the 1 GB reference database at --scale 1
  restore    this script: the same database, dumped once by `pgbackup-tui dump`; then
             `pgbackup-tui restore --create` with its defaults against a serial `pg_restore --create`
             (pgAdmin's restore), and against `pg_restore --create --jobs N` with the jobs the
             wrapper chose (its overhead: both create the database, both read the same archive)
  selection  scripts/bench_selection.py --skip-old: 50 tables out of --tables, end to end, against
             raw `pg_dump -t` x50
  tui        scripts/bench_tui.py: the TUI's CPU while dumps run with their progress shown, the
             longest frame while a schema of --tables tables opens, and while a list of --backups
             backups shows
  memory     scripts/bench_tui.py --tables 300 --dumps --memory-dumps: the TUI's memory as finished
             jobs pile up (bounded: flat over the last quarter)

Every figure that has a reference is the median over --rounds pairs of the ratio of two runs made
back to back, the order alternating, each after a CHECKPOINT and a sync: a neighbour's load that
slows both runs of a pair cancels out. Each benchmark's whole output is kept in --log.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from pgbackup_tui.core.pgtools import find_client_tools  # noqa: E402
from pgbackup_tui.core.progress.speed import machine_pace  # noqa: E402
from pgbackup_tui.core.sandbox import Sandbox  # noqa: E402

PARTS = ("defaults", "restore", "selection", "tui", "memory")
X = r"([\d.]+)x"  # a ratio as the benchmarks print it


@dataclass
class Row:
    what: str
    ours: str
    reference: str
    ratio: str
    bar: str
    met: bool | None  # None: not measured


def missing(what: str, bar: str, why: str) -> Row:
    return Row(what, f"n/a ({why})", "-", "-", bar, None)


# -- running the other benchmarks ---------------------------------------------------------------
def run_script(name: str, args: list[str], log: Path) -> str:
    """Run scripts/NAME with ARGS, echo its lines (indented) as they come, keep them in `log`; its stdout."""
    argv = [sys.executable, str(ROOT / "scripts" / name), *args]
    print(f"## {' '.join([name, *args])}", flush=True)
    started = time.monotonic()
    lines = []
    with log.open("a", encoding="utf-8") as keep:
        keep.write(f"\n## {' '.join(argv)}\n")
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            keep.write(line)
            print(f"   {line}", end="", flush=True)
        code = process.wait()
    print(f"## {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
    if code != 0:  # its rows then read "n/a (... not found ...)": say why once, in the output kept
        lines.append(f"\n{name} exited {code}\n")
    return "".join(lines)


def search(pattern: str, text: str) -> re.Match[str] | None:
    return re.search(pattern, text, re.MULTILINE)


def defaults_rows(out: str) -> list[Row]:
    """bench_defaults.py's 'ours' table: the default dump against pgAdmin's, and the dump wrapper."""
    rows = []
    bar_time, bar_size = "<= 0.56x (1.8x as fast)", "<= 1.15x"
    found = search(r"^\| `pgbackup-tui dump` \(defaults\) vs `pg_dump -Fc`.*?"
                   rf"\| {X}.*?\| {X} \| ([\d.]+) s vs ([\d.]+) s", out)
    if found:
        time_ratio, size_ratio = float(found.group(1)), float(found.group(2))
        rows.append(Row("default dump vs pgAdmin's `pg_dump -Fc`: time", f"{found.group(3)} s", f"{found.group(4)} s",
                        f"{time_ratio:.2f}x", bar_time, time_ratio <= 1 / 1.8))
        rows.append(Row("default dump vs pgAdmin's `pg_dump -Fc`: size", "(the same runs)", "", f"{size_ratio:.2f}x",
                        bar_size, size_ratio <= 1.15))
    else:
        rows.append(missing("default dump vs pgAdmin's `pg_dump -Fc`", bar_time, "row not found in bench_defaults"))
    found = search(rf"^\| wrapper: `pgbackup-tui dump` vs `(pg_dump[^`]*)` \| {X} \|"
                   r".*?\| ([\d.]+) s vs ([\d.]+) s", out)
    if found:
        ratio = float(found.group(2))
        rows.append(Row(f"wrapper overhead, dump: `pgbackup-tui dump` vs `{found.group(1)}`", f"{found.group(3)} s",
                        f"{found.group(4)} s", f"{ratio:.2f}x", "<= 1.02x", ratio <= 1.02))
    else:
        rows.append(missing("wrapper overhead, dump", "<= 1.02x", "row not found in bench_defaults"))
    return rows


def selection_rows(out: str, tables: int) -> list[Row]:
    found = search(rf"^\| `pgbackup-tui dump --table` x(\d+), end to end \| ([\d.]+) s \| ([\d.]+) s \| {X}", out)
    what = f"dump of 50 tables out of {tables:,} vs `pg_dump -t` x50"
    if not found:
        return [missing(what, "<= 1.5x", "row not found in bench_selection")]
    ratio = float(found.group(4))
    return [Row(what.replace("50", found.group(1), 1), f"{found.group(2)} s", f"{found.group(3)} s", f"{ratio:.2f}x",
                "<= 1.5x", ratio <= 1.5)]


def memory_rows(out: str, dumps: int) -> list[Row]:
    """The TUI's memory as finished jobs pile up: flat once the Jobs tab's 50 jobs and Textual's
    bounded caches are full, so "bounded" is judged on the last quarter of the dumps."""
    rss = {int(number): float(mb) for number, mb in re.findall(r"^  dump (\d+): .*RSS ([\d.]+) MB", out, re.M)}
    what = f"TUI memory over {dumps} finished dumps (RSS after dump 1, {dumps // 2}, {3 * dumps // 4}, {dumps})"
    marks = [1, dumps // 2, 3 * dumps // 4, dumps]
    if any(mark not in rss for mark in marks):
        return [missing(what, "bounded", "dump lines not found in bench_tui")]
    growth = rss[dumps] - rss[3 * dumps // 4]
    return [Row(what, " -> ".join(f"{rss[mark]:.0f}" for mark in marks) + " MB", "bounded (target)",
                f"{growth:+.1f} MB over the last {dumps - 3 * dumps // 4}", "bounded: <= +1 MB over the last quarter",
                growth <= 1.0)]


def tui_rows(out: str, tables: int) -> list[Row]:
    rows = []
    found = search(r"TUI CPU while a dump runs.*?median ([\d.]+) %", out)
    if found:
        cpu = float(found.group(1))
        rows.append(Row("TUI CPU while a dump runs, its progress shown", f"{cpu:.1f} % of a core", "5 % (target)",
                        f"{cpu / 5:.2f}x", "<= 5 %", cpu <= 5))
    else:
        rows.append(missing("TUI CPU while a dump runs", "<= 5 %", "line not found in bench_tui"))
    found = search(r"opening schema public: longest frame gap ([\d.]+) ms", out)
    if found:
        gap = float(found.group(1))
        rows.append(Row(f"longest frame, opening a schema of {tables:,} tables", f"{gap:.0f} ms", "100 ms (target)",
                        f"{gap / 100:.2f}x", "<= 100 ms", gap <= 100))
    else:
        rows.append(missing("longest frame, opening a big schema", "<= 100 ms", "line not found in bench_tui"))
    found = search(r"Backups tab, (\d+) backups.*?longest frame gap ([\d.]+) ms read cold", out)
    if found:
        gap = float(found.group(2))
        rows.append(Row(f"longest frame, showing {int(found.group(1)):,} backups (read cold)", f"{gap:.0f} ms",
                        "100 ms (target)", f"{gap / 100:.2f}x", "<= 100 ms", gap <= 100))
    else:
        rows.append(missing("longest frame, showing 5,000 backups", "<= 100 ms", "not measured by bench_tui"))
    return rows


# -- the restore rows, measured here ------------------------------------------------------------
def build_reference(sandbox: Sandbox, name: str, scale: float) -> str:
    """bench_defaults.py's reference database (about 1.1 GB at scale 1) as `name`; its size."""
    import bench_defaults as ref

    sandbox.create_database(name)
    readings = int(ref.READINGS * scale)
    try:
        sql = ref.BUILD_SQL.format(branches=max(1, int(ref.ACCOUNTS * scale) // 100000),
                                   accounts=int(ref.ACCOUNTS * scale), docs=int(ref.DOCS * scale),
                                   json_docs=int(ref.JSON_DOCS * scale), readings=readings,
                                   per_partition=max(1, readings // 200), blobs=int(ref.BLOBS * scale))
    except KeyError as exc:
        raise SystemExit(f"bench_defaults.BUILD_SQL now takes {exc}: update bench_speed.build_reference") from None
    sandbox.psql(sql, name, timeout=3600)
    return sandbox.psql(f"SELECT pg_size_pretty(pg_database_size('{name}'))", name).strip()


def restore_rows(args: argparse.Namespace, log: Path) -> list[Row]:
    """Our default restore against pgAdmin's (serial `pg_restore --create`) and against raw
    `pg_restore --create --jobs N` with the jobs we choose (the wrapper's overhead)."""
    from pgbackup_tui.core.connect import connect, target_from_dsn
    from pgbackup_tui.core.defaults import free_connections, parallel_jobs, usable_cores

    work = Path(tempfile.mkdtemp(prefix="pgbackup-bench-speed-"))
    env = dict(os.environ, PGBACKUP_TUI_HOME=str(work / "home"))
    name = "speed_src"  # pg_restore --create makes the archive's database under its own name
    try:
        with Sandbox(bin_dir=args.bin_dir) as sandbox:
            tools = find_client_tools(sandbox.major)
            started = time.monotonic()
            size = build_reference(sandbox, name, args.scale)
            archive = work / "reference.dump"
            ours = [sys.executable, "-m", "pgbackup_tui", "--dsn", sandbox.dsn(), "--bin-dir", str(tools.bin_dir),
                    "--progress", "none"]
            subprocess.run([*ours[:3], "dump", *ours[3:], "--db", name, "--output", str(archive)], check=True,
                           env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
            sandbox.drop_database(name)
            with connect(target_from_dsn(sandbox.dsn())) as conn:
                jobs = parallel_jobs(usable_cores(), free_connections(conn))
            header = (f"# restore rows: database {size} (scale {args.scale}) built and dumped in "
                      f"{time.monotonic() - started:.0f} s, archive {archive.stat().st_size / 1e6:.0f} MB; PostgreSQL "
                      f"{sandbox.major}, pg_restore {tools.version}; {args.rounds} rounds")
            print(header, flush=True)

            def timed(argv: list[str]) -> float:
                sandbox.psql("CHECKPOINT")
                os.sync()
                began = time.monotonic()
                subprocess.run(argv, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                seconds = time.monotonic() - began
                sandbox.drop_database(name)
                return seconds

            raw = [tools.pg_restore, "--create", f"--dbname={sandbox.dsn()}", str(archive)]
            runs: dict[str, Callable[[], float]] = {
                "ours": lambda: timed([*ours[:3], "restore", str(archive), *ours[3:], "--db", name, "--create"]),
                "serial": lambda: timed(raw),
                "parallel": lambda: timed([*raw[:2], f"--jobs={jobs}", *raw[2:]]),
            }
            seconds: dict[str, list[float]] = {key: [] for key in runs}
            vs_serial, vs_parallel = [], []
            for index in range(args.rounds):
                # Ours in the middle, next to both references; the references swap sides each round.
                for key in ("serial", "ours", "parallel") if index % 2 == 0 else ("parallel", "ours", "serial"):
                    seconds[key].append(runs[key]())
                vs_serial.append(seconds["ours"][-1] / seconds["serial"][-1])
                vs_parallel.append(seconds["ours"][-1] / seconds["parallel"][-1])
                line = (f"  round {index + 1}: ours {seconds['ours'][-1]:.2f} s, serial {seconds['serial'][-1]:.2f} s, "
                        f"-j{jobs} {seconds['parallel'][-1]:.2f} s (load {os.getloadavg()[0]:.1f})")
                print(line, flush=True)
                with log.open("a", encoding="utf-8") as keep:
                    keep.write(line + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mid = {key: statistics.median(values) for key, values in seconds.items()}
    serial_ratio, parallel_ratio = statistics.median(vs_serial), statistics.median(vs_parallel)
    return [
        Row("default restore (`restore --create`) vs serial `pg_restore --create` (pgAdmin)", f"{mid['ours']:.2f} s",
            f"{mid['serial']:.2f} s", f"{serial_ratio:.2f}x", "< 1x: parallel by default", serial_ratio < 1),
        Row(f"wrapper overhead, restore: `restore --create` vs `pg_restore --create -j{jobs}`", f"{mid['ours']:.2f} s",
            f"{mid['parallel']:.2f} s", f"{parallel_ratio:.2f}x (range {min(vs_parallel):.2f}-{max(vs_parallel):.2f})",
            "<= 1.02x", parallel_ratio <= 1.02),
    ]


# -- the machine and the table ------------------------------------------------------------------
def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or platform.machine())
    memory = next((int(line.split()[1]) / 1024 / 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:")), 0.0)
    return (f"{platform.system()} {platform.release()} {platform.machine()}, {model}, {len(os.sched_getaffinity(0))} "
            f"of {os.cpu_count()} cores usable, {memory:.0f} GB RAM; Python {platform.python_version()}")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def pace() -> str:
    """This machine's pace now (core/progress/speed.py: CPU time of a fixed piece of work over the
    reference VM's; 1.0 there, 1.3 a third slower): the same VM's host can be busier one hour than
    the next, which moves every time in the table, ratios less."""
    samples = sorted(machine_pace() for _ in range(9))
    return f"{samples[len(samples) // 2]:.2f} (median of 9; {samples[0]:.2f}-{samples[-1]:.2f})"


def table(rows: list[Row]) -> str:
    lines = ["| what | ours | reference / target | ratio | bar | met |", "|---|---|---|---|---|---|"]
    for row in rows:
        met = {True: "yes", False: "**no**", None: "-"}[row.met]
        lines.append(f"| {row.what} | {row.ours} | {row.reference} | {row.ratio} | {row.bar} | {met} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="the reference database (1.0: about 1.1 GB)")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs per ratio (the median is printed)")
    parser.add_argument("--tables", type=int, default=10_000, help="tables of the big schema (selection, TUI)")
    parser.add_argument("--dumps", type=int, default=5, help="dumps the TUI runs (CPU)")
    parser.add_argument("--memory-dumps", type=int, default=100,
                        help="dumps of 300 tables the TUI runs for its memory (default 100)")
    parser.add_argument("--backups", type=int, default=5_000, help="backups the TUI lists")
    # Resolved here: the sandbox runs the tools from another working directory.
    parser.add_argument("--bin-dir", type=lambda text: Path(text).resolve(),
                        help="the server's bin dir for every sandbox (default: the sandbox's)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated: {', '.join(PARTS)}")
    parser.add_argument("--log", type=Path, help="keep every benchmark's whole output here")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    if parts - set(PARTS):
        parser.error(f"--only: unknown {', '.join(sorted(parts - set(PARTS)))}")
    log = args.log or Path(tempfile.gettempdir()) / f"bench_speed-{time.strftime('%Y%m%dT%H%M%S')}.log"
    bin_dir = ["--bin-dir", str(args.bin_dir)] if args.bin_dir else []
    before, pace_before, started = uptime(), pace(), time.monotonic()
    rows: list[Row] = []
    steps: dict[str, Callable[[], list[Row]]] = {
        "defaults": lambda: defaults_rows(run_script(
            "bench_defaults.py", ["--only", "ours", "--scale", str(args.scale), "--rounds", str(args.rounds),
                                  *bin_dir], log)),
        "restore": lambda: restore_rows(args, log),
        "selection": lambda: selection_rows(run_script(
            "bench_selection.py", ["--skip-old", "--tables", str(args.tables), "--rounds", str(args.rounds),
                                   *bin_dir], log), args.tables),
        "tui": lambda: tui_rows(run_script(
            "bench_tui.py", ["--tables", str(args.tables), "--dumps", str(args.dumps), "--backups",
                             str(args.backups), *bin_dir], log), args.tables),
        "memory": lambda: memory_rows(run_script(
            "bench_tui.py", ["--tables", "300", "--dumps", str(args.memory_dumps), "--backups", "0", *bin_dir], log),
            args.memory_dumps),
    }
    for part in PARTS:
        if part in parts:
            rows += steps[part]()
            if part != [p for p in PARTS if p in parts][-1]:  # the rows so far, should a later part not finish
                print(f"\n{table(rows)}\n", flush=True)
    print(f"\n{table(rows)}\n")
    print(f"machine: {machine()}")
    print(f"load before: {before}; machine pace {pace_before}")
    print(f"load after:  {uptime()}; machine pace {pace()}")
    print(f"{time.monotonic() - started:.0f} s in all; each benchmark's output: {log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
