"""Does a selection's dump cost what is selected, not what is not? Run by hand; prints figures (not a test).

    .venv/bin/python scripts/bench_selection.py [--tables 10000] [--selected 50] [--rounds 5] [--bin-dir DIR]

Builds a throwaway cluster (core/sandbox.py) with a database of --tables tables (small ones, 20
rows each, 90 % of them in `public`, the rest in `other`), an enum and a domain in schema `kinds`
and a function in schema `util` that the selected tables use in their columns and defaults (what
`pg_dump -t` leaves behind). It then times, in pairs run back to back (the order alternating, the
median of the per-pair ratios printed: the machine may be shared and busy), against the reference
`pg_dump -Fc -t T1 ... -t T50` (exact, quoted patterns):

  - pg_dump with one `--exclude-table` per relation that is not selected (what we ran before),
  - pg_dump with the argv we run now (plans.dump_argv: the other relations as a few patterns),
  - `pgbackup-tui dump --table T1 ... --table T50` end to end (CLI, runner, checks, manifest),

and proves that our archive restores into an empty database with the selected tables' rows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pgbackup_tui.core.connect import connect, target_from_dsn  # noqa: E402
from pgbackup_tui.core.identifiers import QualifiedName  # noqa: E402
from pgbackup_tui.core.pgtools import find_client_tools  # noqa: E402
from pgbackup_tui.core.plans import DumpPlan, dump_argv  # noqa: E402
from pgbackup_tui.core.sandbox import Sandbox  # noqa: E402
from pgbackup_tui.core.selection import resolve_selection  # noqa: E402

BUILD_SQL = """
CREATE SCHEMA kinds;
CREATE SCHEMA util;
CREATE SCHEMA other;
CREATE TYPE kinds.status AS ENUM ('new', 'paid', 'shipped');
CREATE DOMAIN kinds.positive AS numeric CHECK (VALUE > 0);
CREATE SEQUENCE util.codes;
CREATE FUNCTION util.next_code() RETURNS text LANGUAGE sql AS $$ SELECT 'C' || nextval('util.codes') $$;
DO $$ BEGIN FOR i IN 1..{tables} LOOP
  EXECUTE format('CREATE TABLE %s.t_%s (id int PRIMARY KEY, status kinds.status DEFAULT ''new'', '
                 'amount kinds.positive, code text DEFAULT util.next_code(), note text)',
                 CASE WHEN i % 10 = 0 THEN 'other' ELSE 'public' END, lpad(i::text, 5, '0'));
  IF i % 500 = 0 THEN COMMIT; END IF;
END LOOP; END $$;
"""

FILL_SQL = """
INSERT INTO public.t_{n} (id, status, amount, note)
SELECT g, (ARRAY['new','paid','shipped'])[1 + g % 3]::kinds.status, g, md5(g::text) FROM generate_series(1, 20) g;
"""


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.monotonic() - started


def paired(rounds: int, reference: Callable[[], float], candidate: Callable[[], float], label: str) -> str:
    ratios, ref_s, cand_s, loads = [], [], [], []
    for index in range(rounds):
        if index % 2 == 0:
            ref, cand = reference(), candidate()
        else:
            cand, ref = candidate(), reference()
        ratios.append(cand / ref)
        ref_s.append(ref)
        cand_s.append(cand)
        loads.append(os.getloadavg()[0])
        print(f"    {label}: {cand:.2f} s vs {ref:.2f} s = {cand / ref:.2f}x (load {loads[-1]:.1f})", flush=True)
    return (f"| {label} | {median(cand_s):.2f} s | {median(ref_s):.2f} s | {median(ratios):.2f}x | "
            f"{min(ratios):.2f}-{max(ratios):.2f}, load {median(loads):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--selected", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bin-dir", type=Path, help="the server's bin dir (default: the sandbox's choice)")
    parser.add_argument("--skip-old", action="store_true", help="do not time one --exclude-table per relation")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pgbackup-bench-selection-"))
    env = dict(os.environ, PGBACKUP_TUI_HOME=str(work / "home"))
    try:
        with Sandbox(bin_dir=args.bin_dir) as sandbox:
            started = time.monotonic()
            sandbox.create_database("many")
            sandbox.psql(BUILD_SQL.format(tables=args.tables), "many")
            step = max(1, (args.tables * 9 // 10) // args.selected)
            chosen = [i for i in range(1, args.tables + 1) if i % 10 != 0][::step][:args.selected]
            sandbox.psql("".join(FILL_SQL.format(n=f"{i:05d}") for i in chosen) + "ANALYZE;", "many")
            tools = find_client_tools(sandbox.major)
            print(f"# bench_selection: {args.tables} tables, {len(chosen)} selected, built in "
                  f"{time.monotonic() - started:.0f} s; PostgreSQL {sandbox.major}, pg_dump {tools.version}; "
                  f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {args.rounds} pairs per figure", flush=True)
            names = [QualifiedName("public", f"t_{i:05d}") for i in chosen]
            target = target_from_dsn(sandbox.dsn())
            with connect(target, "many") as conn:
                resolved = resolve_selection(conn, names, "many")
            plan = DumpPlan(target=target, dbname="many", format="custom", tables=tuple(names))
            out = work / "out.dump"
            reference_argv = [tools.pg_dump, f"--dbname={sandbox.dsn('many')}", "-Fc", f"--file={out}",
                              *[f"--table={n.pattern}" for n in names]]
            ours_argv = dump_argv(plan, tools, out, exclude_relations=resolved.exclude)
            old_argv = [*ours_argv[:5], "--no-blobs", *[f"--exclude-table={n.pattern}" for n in resolved.left_out]]
            print(f"  {len(resolved.left_out)} relations left out: {len(old_argv) - 6} --exclude-table before, "
                  f"{len(ours_argv) - 6} now", flush=True)

            def run(argv: list[str]) -> Callable[[], float]:
                def go() -> float:
                    seconds = timed(argv, env)
                    out.unlink(missing_ok=True)
                    return seconds
                return go

            counter = [0]

            def ours_end_to_end() -> float:
                counter[0] += 1
                path = work / f"ours{counter[0]}.dump"
                seconds = timed([sys.executable, "-m", "pgbackup_tui", "dump", "--dsn", sandbox.dsn(), "--db", "many",
                                 "--format", "custom", "--progress", "none", "--output", str(path),
                                 *[f"--table={n}" for n in names]], env)
                if counter[0] > 1:
                    path.unlink(missing_ok=True)
                    Path(f"{path}.manifest.json").unlink(missing_ok=True)
                return seconds

            lines = [f"| what | ours | `pg_dump -t` x{len(names)} | ratio (median) | range, load |",
                     "|---|---|---|---|---|"]
            reference = run(reference_argv)
            if not args.skip_old:
                lines.append(paired(args.rounds, reference, run(old_argv),
                                    "pg_dump, one --exclude-table per other relation (before)"))
            lines.append(paired(args.rounds, reference, run(ours_argv),
                                "pg_dump with our argv now (plans.dump_argv)"))
            lines.append(paired(args.rounds, reference, ours_end_to_end,
                                f"`pgbackup-tui dump --table` x{len(names)}, end to end"))
            print("\n".join(lines))
            restored = check_restore(sandbox, work / "ours1.dump", names, env)
            print(f"restored into an empty database: {restored}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check_restore(sandbox: Sandbox, archive: Path, names: list[QualifiedName], env: dict[str, str]) -> str:
    """Our archive restores into a new empty database, with every selected table's rows."""
    subprocess.run([sys.executable, "-m", "pgbackup_tui", "restore", str(archive), "--dsn", sandbox.dsn(),
                    "--db", "restored", "--create", "--progress", "none"], check=True, env=env)
    rows = sandbox.psql("SELECT " + " + ".join(f"(SELECT count(*) FROM {n})" for n in names), "restored").strip()
    tables = sandbox.psql("SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', "
                          "'information_schema')", "restored").strip()
    return f"{tables} tables, {rows} rows (expected {len(names)} tables, {20 * len(names)} rows)"


if __name__ == "__main__":
    main()
