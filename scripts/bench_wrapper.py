"""The wrapper's time around its child: two versions of the code against each other and raw pg_restore / pg_dump.

    git archive OLD pgbackup_tui | tar -x -C /tmp/old; git archive NEW pgbackup_tui | tar -x -C /tmp/new
    .venv/bin/python scripts/bench_wrapper.py whole restore --dsn DSN --archive A.dump --db NAME \\
        --bin-dir DIR --rounds 6 /tmp/old /tmp/new
    .venv/bin/python scripts/bench_wrapper.py edges dump --dsn DSN --db bench --bin-dir DIR --schema-only \\
        --rounds 12 /tmp/old /tmp/new

`whole`: each round runs raw `pg_restore --create -j2` (or `pg_dump -Fc --compress=zstd:1`) and
`pgbackup-tui restore --create` (or `dump`) of each tree, the order rotating, after a CHECKPOINT and
a sync; prints each round and the medians of the per-round ratios to raw. For restore, the archive's
own database name is --db (raw pg_restore --create makes that one), dropped after each run.

`edges`: only the trees, alternating, each run under `strace --seccomp-bpf -f -e execve,exit_group`:
the time from the command's start to its child's exec (pg_restore --jobs / pg_dump --file) and from
the child's end to the command's; prints the medians and the median of the per-pair differences.
Each run has its own PGBACKUP_TUI_HOME. Run by hand (not a test); the DSN names the maintenance
database (dbname=postgres).
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("whole", "edges"))
    parser.add_argument("mode", choices=("restore", "dump"))
    parser.add_argument("trees", nargs="+", type=Path, help="folders holding a pgbackup_tui package")
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--bin-dir", required=True, type=Path)
    parser.add_argument("--db", required=True, help="restore: the database --create makes; dump: the one dumped")
    parser.add_argument("--archive", type=Path, help="restore: the archive")
    parser.add_argument("--schema-only", action="store_true", help="dump: --schema-only (edges)")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    if args.mode == "restore" and args.archive is None:
        parser.error("restore needs --archive")
    for tree in args.trees:  # as installed (make install, pip): a tree from `git archive` has no bytecode yet
        compileall.compile_dir(tree / "pgbackup_tui", quiet=1)
    work = Path(tempfile.mkdtemp(prefix="pgbackup-bench-wrapper-"))
    try:
        (whole if args.what == "whole" else edges)(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def psql(args: argparse.Namespace, sql: str) -> None:
    subprocess.run([str(args.bin_dir / "psql"), args.dsn, "-qXc", sql], check=True, stderr=subprocess.DEVNULL)


def command(args: argparse.Namespace, who: str, work: Path, *, edges: bool = False) -> list[str]:
    """The argv of raw pg_restore / pg_dump (who == "raw") or of pgbackup-tui from tree `who`."""
    output = str(work / "out.dump")
    if who == "raw":
        if args.mode == "restore":
            return [str(args.bin_dir / "pg_restore"), "--create", "--jobs=2", f"--dbname={args.dsn}", str(args.archive)]
        return [str(args.bin_dir / "pg_dump"), "-Fc", "--compress=zstd:1", "-f", output,
                f"--dbname={args.dsn} dbname={args.db}"]
    ours = [sys.executable, "-m", "pgbackup_tui", args.mode]
    common = ["--dsn", args.dsn, "--db", args.db, "--bin-dir", str(args.bin_dir), "--progress", "none"]
    if args.mode == "restore":  # the raw run's two jobs, whatever ours would choose on this machine
        return [*ours, str(args.archive), *common, "--create", "--jobs", "2"]
    return [*ours, *common, "--output", output, *(["--schema-only"] if edges and args.schema_only else [])]


def clean(args: argparse.Namespace, work: Path) -> None:
    if args.mode == "restore":
        psql(args, f'DROP DATABASE IF EXISTS "{args.db}"')
    for path in work.glob("out.dump*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def run(args: argparse.Namespace, who: str, work: Path, argv: list[str]) -> None:
    """One run; pgbackup-tui's with a home of its own (no job store growing, no tree settling the
    other's jobs)."""
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    env = dict(os.environ, PGBACKUP_TUI_HOME=str(home))
    subprocess.run(argv, check=True, env=env, cwd=work if who == "raw" else who, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def whole(args: argparse.Namespace, work: Path) -> None:
    whos = ["raw", *map(str, args.trees)]
    seconds: dict[str, list[float]] = {who: [] for who in whos}
    for index in range(args.rounds):
        order = whos[index % len(whos):] + whos[:index % len(whos)]
        for who in order[::-1] if index % 2 else order:
            clean(args, work)
            psql(args, "CHECKPOINT")
            os.sync()
            began = time.monotonic()
            run(args, who, work, command(args, who, work))
            seconds[who].append(time.monotonic() - began)
            clean(args, work)
        print(f"round {index + 1}: " + ", ".join(f"{who} {seconds[who][-1]:.2f} s" for who in whos)
              + f" (load {os.getloadavg()[0]:.1f})", flush=True)
    for who in whos[1:]:
        ratios = [ours / raw for ours, raw in zip(seconds[who], seconds["raw"], strict=True)]
        print(f"{who}: median {statistics.median(seconds[who]):.2f} s vs raw {statistics.median(seconds['raw']):.2f} s;"
              f" ratio {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})")


def edges(args: argparse.Namespace, work: Path) -> None:
    trees = [str(tree) for tree in args.trees]
    found: dict[str, list[tuple[float, float]]] = {tree: [] for tree in trees}
    marker = "--jobs=" if args.mode == "restore" else "--file="
    trace = work / "trace.txt"
    for index in range(args.rounds):
        for tree in trees[::-1] if index % 2 else trees:
            clean(args, work)
            run(args, tree, work, ["strace", "--seccomp-bpf", "-f", "-ttt", "-e", "trace=execve,exit_group",
                                   "-o", str(trace), *command(args, tree, work, edges=True)])
            found[tree].append(child_edges(trace.read_text().splitlines(), marker))
            clean(args, work)
        print(f"round {index + 1}: " + ", ".join(f"{tree} before {found[tree][-1][0]:.4f} s after "
                                                 f"{found[tree][-1][1]:.4f} s" for tree in trees)
              + f" (load {os.getloadavg()[0]:.1f})", flush=True)
    first = trees[0]
    for tree in trees:
        for side, name in ((0, "before"), (1, "after")):
            values = [edge[side] for edge in found[tree]]
            diffs = [edge[side] - base[side] for edge, base in zip(found[tree], found[first], strict=True)]
            print(f"{tree}: {name} the child, median {statistics.median(values):.4f} s; "
                  f"minus {first}'s, median {statistics.median(diffs) * 1000:+.1f} ms")


def child_edges(lines: list[str], marker: str) -> tuple[float, float]:
    """(command start -> the child's exec, the child's end -> the command's end) from strace -f -ttt."""
    start_pid, started = lines[0].split()[0], float(lines[0].split()[1])
    child = next(line for line in lines if "execve(" in line and marker in line)
    child_pid, child_started = child.split()[0], float(child.split()[1])

    def ended(pid: str) -> float:
        return max(float(line.split()[1]) for line in lines if line.split()[0] == pid and "exit_group" in line)

    return child_started - started, ended(start_pid) - ended(child_pid)


if __name__ == "__main__":
    main()
