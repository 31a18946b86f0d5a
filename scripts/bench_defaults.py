"""Which dump and restore options should be the defaults? Run by hand; prints figures (not a test).

    .venv/bin/python scripts/bench_defaults.py [--scale 1.0] [--rounds 3] [--bin-dir DIR]
        [--only dump,restore,ours,wrapper] [--jobs N]

Builds a throwaway cluster (core/sandbox.py; --bin-dir picks the server, whose client tools are
used too) with a database of about 1.1 GB at --scale 1 that is less kind to compression than
pgbench's blank `filler`: pgbench's four tables (3 M accounts), text (hex and word salad), jsonb
documents, a table partitioned by range into 200 partitions holding random uuids and bytea, and a
table of random bytea. Then it times, as raw commands (no pgbackup-tui in between):

  dump     pgAdmin's default `pg_dump -Fc` (gzip level 6, one job) against each candidate: gzip
           level 1 in custom and directory (-j N) formats, and lz4 / zstd where this pg_dump has them
  restore  serial `pg_restore` against `pg_restore -j N` of the same archive into a new database
  ours     `pgbackup-tui dump` with its defaults against pgAdmin's default (the issue's bar), and
           `pgbackup-tui dump` / `restore` against raw pg_dump / pg_restore with the same options
           (the wrapper's overhead)
  wrapper  only the dump wrapper's row of `ours`

The machine may be shared and busy, so every figure is a ratio of two runs made back to back (the
reference and the candidate, in alternating order), and what is printed is the median over the
rounds of those per-pair ratios: a neighbour's load that slows both runs of a pair cancels out,
where comparing medians of separate runs would not. Each run starts after a CHECKPOINT and a sync,
so that the previous run's dirty pages are not written back during the next one.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pgbackup_tui.core.pgtools import ClientTools, find_client_tools  # noqa: E402
from pgbackup_tui.core.sandbox import Sandbox  # noqa: E402

ACCOUNTS = 3_000_000
DOCS = 600_000
JSON_DOCS = 400_000
READINGS = 1_200_000
BLOBS = 150_000

BUILD_SQL = """
CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88));
CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int, tbalance int, filler char(84));
CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84));
CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
INSERT INTO pgbench_branches SELECT g, 0 FROM generate_series(1, {branches}) g;
INSERT INTO pgbench_tellers SELECT g, (g - 1) / 10 + 1, 0 FROM generate_series(1, {branches} * 10) g;
INSERT INTO pgbench_accounts SELECT g, (g - 1) / 100000 + 1, 0, '' FROM generate_series(1, {accounts}) g;
INSERT INTO pgbench_history SELECT g % 100 + 1, g % {branches} + 1, g, (g * 7919) % 10000 - 5000,
    timestamp '2024-01-01' + g * interval '1 second' FROM generate_series(1, {accounts} / 20) g;

-- Text: hex digests (compress to about half) and a word salad (compresses well, like prose).
CREATE TABLE docs (id bigint PRIMARY KEY, title text NOT NULL, body text, tags text[]);
INSERT INTO docs
SELECT g, 'doc ' || g || ' ' || md5(g::text),
       (SELECT string_agg((ARRAY['order','customer','invoice','shipped','pending','refund','the','of','and',
                                 'warehouse','delivery','returned','payment','card','address','note'])
                          [1 + ((g * 31 + w * 17) * 2654435761 % 16)::int], ' ')
        FROM generate_series(1, 20 + g % 30) w) || ' ' || md5((g * 3)::text) || md5((g * 5)::text),
       ARRAY['t' || g % 50, 't' || g % 7]
FROM generate_series(1, {docs}) g;

-- jsonb documents with random numbers and ids.
CREATE TABLE events_json (id bigint PRIMARY KEY, doc jsonb NOT NULL);
INSERT INTO events_json
SELECT g, jsonb_build_object('user', gen_random_uuid(), 'amount', round((random() * 10000)::numeric, 2),
                             'kind', (ARRAY['click','view','buy','refund'])[1 + g % 4],
                             'at', now() - random() * interval '365 days',
                             'items', jsonb_build_array(random(), random(), md5(random()::text)))
FROM generate_series(1, {json_docs}) g;
CREATE INDEX events_json_kind ON events_json ((doc->>'kind'));

-- A table partitioned by range into 200 partitions: random uuids and bytea.
CREATE TABLE readings (id bigint NOT NULL, device uuid NOT NULL, taken_at timestamptz NOT NULL,
                       value double precision, raw bytea) PARTITION BY RANGE (id);
DO $$ BEGIN FOR p IN 0..199 LOOP
  EXECUTE format('CREATE TABLE readings_p%s PARTITION OF readings FOR VALUES FROM (%s) TO (%s)',
                 lpad(p::text, 3, '0'), p * {per_partition}, (p + 1) * {per_partition});
END LOOP; END $$;
INSERT INTO readings
SELECT g, gen_random_uuid(), timestamptz '2024-01-01' + g * interval '10 seconds', random() * 1000,
       uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())
FROM generate_series(0, {readings} - 1) g;
ALTER TABLE readings ADD PRIMARY KEY (id);

-- Random bytea: incompressible.
CREATE TABLE blobs (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), data bytea NOT NULL);
INSERT INTO blobs (data)
SELECT (SELECT string_agg(uuid_send(gen_random_uuid()), ''::bytea) FROM generate_series(1, 16 + g % 2))
FROM generate_series(1, {blobs}) g;
VACUUM ANALYZE;
"""


@dataclass
class Runner:
    """Runs commands against the sandbox, each after a CHECKPOINT and a sync, and times them."""

    sandbox: Sandbox
    tools: ClientTools
    work: Path
    env: dict[str, str] = field(default_factory=dict)
    counter: int = 0

    def settle(self) -> None:
        self.sandbox.psql("CHECKPOINT")
        os.sync()

    def timed(self, argv: list[str], *, before: Callable[[], None] | None = None) -> float:
        self.settle()
        if before is not None:
            before()
        started = time.monotonic()
        subprocess.run(argv, check=True, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return time.monotonic() - started

    def fresh(self, suffix: str) -> Path:
        self.counter += 1
        path = self.work / f"run{self.counter}{suffix}"
        return path

    def new_db(self) -> str:
        self.counter += 1
        name = f"restored_{self.counter}"
        self.sandbox.psql(f"CREATE DATABASE {name}")
        return name


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def supports(tools: ClientTools, method: str) -> bool:
    """Whether this pg_dump was built with `method` (it says so before it connects anywhere)."""
    probe = subprocess.run([tools.pg_dump, "-Fc", f"--compress={method}", "-f", os.devnull,
                            "--dbname=host=/nonexistent-pgbackup-probe"], capture_output=True, text=True)
    return "does not support" not in probe.stderr and "invalid value" not in probe.stderr


def dump_candidates(tools: ClientTools, jobs: int) -> dict[str, list[str]]:
    candidates = {"-Fc -Z1": ["-Fc", "-Z1"], f"-Fd -j{jobs} -Z1": ["-Fd", f"-j{jobs}", "-Z1"]}
    for method in ("lz4", "zstd:1"):
        if tools.major >= 16 and supports(tools, method):
            candidates[f"-Fc --compress={method}"] = ["-Fc", f"--compress={method}"]
            candidates[f"-Fd -j{jobs} --compress={method}"] = ["-Fd", f"-j{jobs}", f"--compress={method}"]
    if tools.major >= 16 and supports(tools, "zstd:3"):  # the "small" choice
        candidates["-Fc --compress=zstd:3"] = ["-Fc", "--compress=zstd:3"]
    return candidates


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def paired(rounds: int, reference: Callable[[], tuple[float, int]], candidate: Callable[[], tuple[float, int]],
           label: str) -> dict[str, float]:
    """Ratios candidate/reference of time and size, each pair run back to back, the order alternating."""
    times, sizes, ref_times, cand_times, loads = [], [], [], [], []
    for index in range(rounds):
        if index % 2 == 0:
            ref, cand = reference(), candidate()
        else:
            cand, ref = candidate(), reference()
        ref_times.append(ref[0])
        cand_times.append(cand[0])
        times.append(cand[0] / ref[0])
        sizes.append(cand[1] / ref[1] if ref[1] else float("nan"))
        loads.append(os.getloadavg()[0])
        print(f"    {label}: round {index + 1}: {cand[0]:.2f} s vs {ref[0]:.2f} s = {times[-1]:.2f}x "
              f"(load {loads[-1]:.1f})", flush=True)
    return {"time": median(times), "size": median(sizes), "ref_s": median(ref_times), "cand_s": median(cand_times),
            "min_time": min(times), "max_time": max(times), "load": median(loads)}


def raw_dump(runner: Runner, options: list[str]) -> Callable[[], tuple[float, int]]:
    def run() -> tuple[float, int]:
        out = runner.fresh(".dir" if "-Fd" in options else ".dump")
        seconds = runner.timed([runner.tools.pg_dump, f"--dbname={runner.sandbox.dsn('bench')}", *options,
                                f"--file={out}"])
        size = size_of(out)
        remove(out)
        return seconds, size
    return run


def bench_dumps(runner: Runner, rounds: int, jobs: int) -> list[str]:
    reference = raw_dump(runner, ["-Fc"])
    lines = ["| candidate | time vs `pg_dump -Fc` | size vs `pg_dump -Fc` | its time (median) | range of ratios |",
             "|---|---|---|---|---|"]
    for label, options in dump_candidates(runner.tools, jobs).items():
        print(f"  dump {label}", flush=True)
        r = paired(rounds, reference, raw_dump(runner, options), label)
        lines.append(f"| `pg_dump {label}` | {r['time']:.2f}x | {r['size']:.2f}x | {r['cand_s']:.1f} s "
                     f"(ref {r['ref_s']:.1f} s) | {r['min_time']:.2f}-{r['max_time']:.2f} |")
    return lines


def raw_restore(runner: Runner, archive: Path, options: list[str]) -> Callable[[], tuple[float, int]]:
    def run() -> tuple[float, int]:
        name = runner.new_db()
        seconds = runner.timed([runner.tools.pg_restore, f"--dbname={runner.sandbox.dsn(name)}", *options,
                                str(archive)])
        runner.sandbox.drop_database(name)
        return seconds, 0
    return run


def bench_restores(runner: Runner, rounds: int, jobs: int, dump_options: list[list[str]]) -> list[str]:
    lines = [f"| archive | `pg_restore -j{jobs}` vs serial `pg_restore` | times (median) |",
             "|---|---|---|"]
    for options in dump_options:
        archive = runner.fresh(".dir" if "-Fd" in options else ".dump")
        runner.timed([runner.tools.pg_dump, f"--dbname={runner.sandbox.dsn('bench')}", *options, f"--file={archive}"])
        print(f"  restore of {' '.join(options)}", flush=True)
        r = paired(rounds, raw_restore(runner, archive, []), raw_restore(runner, archive, [f"-j{jobs}"]),
                   f"restore -j{jobs}")
        lines.append(f"| `{' '.join(options)}` | {r['time']:.2f}x | {r['cand_s']:.1f} s vs {r['ref_s']:.1f} s |")
        remove(archive)
    return lines


def ours(runner: Runner, *args: str) -> list[str]:
    return [sys.executable, "-m", "pgbackup_tui", *args, "--dsn", runner.sandbox.dsn(), "--progress", "none"]


def our_dump(runner: Runner, extra: list[str]) -> Callable[[], tuple[float, int]]:
    """`pgbackup-tui dump` of the bench database with its defaults (and `extra`), end to end."""
    def run() -> tuple[float, int]:
        out = runner.fresh(".out")
        seconds = runner.timed([*ours(runner, "dump", "--db", "bench", "--output", str(out), *extra)])
        size = size_of(out)
        remove(out)
        Path(f"{out}.manifest.json").unlink(missing_ok=True)
        return seconds, size
    return run


def wrapper_dump_row(runner: Runner, rounds: int) -> str:
    """The dump wrapper's overhead: `pgbackup-tui dump` against raw pg_dump with the options it chose."""
    from pgbackup_tui.core.defaults import fast_compression

    raw_options = ["-Fc", f"--compress={fast_compression(runner.tools)}"]
    print(f"  our default dump vs raw pg_dump {' '.join(raw_options)}", flush=True)
    r = paired(rounds, raw_dump(runner, raw_options), our_dump(runner, []), "wrapper, dump")
    return (f"| wrapper: `pgbackup-tui dump` vs `pg_dump {' '.join(raw_options)}` | {r['time']:.2f}x | "
            f"{r['size']:.2f}x | {r['cand_s']:.2f} s vs {r['ref_s']:.2f} s (ratios {r['min_time']:.2f}-"
            f"{r['max_time']:.2f}, load {r['load']:.1f}) |")


def bench_ours(runner: Runner, rounds: int) -> list[str]:
    """Our defaults against pgAdmin's, and our wrapper against the raw tools with the same options."""
    lines = ["| what | ours vs reference (time) | size | times (median) |", "|---|---|---|---|"]
    print("  our default dump vs pg_dump -Fc", flush=True)
    r = paired(rounds, raw_dump(runner, ["-Fc"]), our_dump(runner, []), "ours vs pgAdmin")
    lines.append(f"| `pgbackup-tui dump` (defaults) vs `pg_dump -Fc` (pgAdmin) | {r['time']:.2f}x "
                 f"({1 / r['time']:.2f}x faster) | {r['size']:.2f}x | {r['cand_s']:.1f} s vs {r['ref_s']:.1f} s |")
    lines.append(wrapper_dump_row(runner, rounds))

    archive = runner.fresh(".dump")
    subprocess.run([*ours(runner, "dump", "--db", "bench", "--output", str(archive))], check=True, env=runner.env)

    def our_restore() -> tuple[float, int]:
        runner.counter += 1
        name = f"ours_{runner.counter}"
        seconds = runner.timed([*ours(runner, "restore", str(archive), "--db", name, "--create")])
        runner.sandbox.drop_database(name)
        return seconds, 0

    jobs = default_restore_jobs_for(runner)
    print(f"  our restore vs raw pg_restore -j{jobs}", flush=True)
    r = paired(rounds, raw_restore(runner, archive, [f"-j{jobs}"] if jobs > 1 else []), our_restore,
               "wrapper, restore")
    lines.append(f"| wrapper: `pgbackup-tui restore --create` vs `pg_restore -j{jobs}` into a new database | "
                 f"{r['time']:.2f}x | | {r['cand_s']:.1f} s vs {r['ref_s']:.1f} s |")
    remove(archive)
    Path(f"{archive}.manifest.json").unlink(missing_ok=True)
    return lines


def default_restore_jobs_for(runner: Runner) -> int:
    """The jobs `pgbackup-tui restore` chooses here (core/defaults.py)."""
    from pgbackup_tui.core.connect import connect, target_from_dsn
    from pgbackup_tui.core.defaults import free_connections, parallel_jobs, usable_cores

    with connect(target_from_dsn(runner.sandbox.dsn())) as conn:
        return parallel_jobs(usable_cores(), free_connections(conn))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the data (1.0: about 1.1 GB on disk)")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs per figure (the median is printed)")
    parser.add_argument("--bin-dir", type=Path, help="the server's bin dir (default: the sandbox's choice)")
    parser.add_argument("--jobs", type=int, default=max(2, min(4, os.cpu_count() or 1)), help="-j for candidates")
    parser.add_argument("--only", default="dump,restore,ours",
                        help="comma-separated: dump, restore, ours (wrapper: only the dump wrapper's row of ours)")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="pgbackup-bench-defaults-"))
    os.environ["PGBACKUP_TUI_HOME"] = str(work / "home")
    try:
        with Sandbox(bin_dir=args.bin_dir) as sandbox:
            tools = find_client_tools(sandbox.major)
            runner = Runner(sandbox, tools, work, env=dict(os.environ))
            started = time.monotonic()
            sandbox.create_database("bench")
            s = args.scale
            sandbox.psql(BUILD_SQL.format(branches=max(1, int(ACCOUNTS * s) // 100000), accounts=int(ACCOUNTS * s),
                                          docs=int(DOCS * s), json_docs=int(JSON_DOCS * s),
                                          readings=int(READINGS * s), per_partition=max(1, int(READINGS * s) // 200),
                                          blobs=int(BLOBS * s)), "bench")
            size = sandbox.psql("SELECT pg_size_pretty(pg_database_size('bench'))", "bench").strip()
            print(f"# bench_defaults: database bench {size} built in {time.monotonic() - started:.0f} s on "
                  f"PostgreSQL {sandbox.major}, pg_dump {tools.version} ({tools.bin_dir}); {os.cpu_count()} cores "
                  f"({platform.processor() or platform.machine()}), load {os.getloadavg()[0]:.1f}; "
                  f"{args.rounds} pairs per figure", flush=True)
            report: list[str] = []
            if "dump" in parts:
                report += ["", *bench_dumps(runner, args.rounds, args.jobs)]
            if "restore" in parts:
                report += ["", *bench_restores(runner, args.rounds, args.jobs, [["-Fc", "-Z1"]])]
            if "ours" in parts:
                report += ["", *bench_ours(runner, args.rounds)]
            elif "wrapper" in parts:
                report += ["", "| what | ours vs reference (time) | size | times (median) |", "|---|---|---|---|",
                           wrapper_dump_row(runner, args.rounds)]
            print("\n".join(report))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
