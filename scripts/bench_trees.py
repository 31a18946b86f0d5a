"""Two versions of the code against each other and raw pg_dump: the dump wrapper's cost, before and after a change.

    git archive OLD pgbackup_tui | tar -x -C /tmp/old; git archive NEW pgbackup_tui | tar -x -C /tmp/new
    .venv/bin/python scripts/bench_trees.py /tmp/old /tmp/new [--rounds 7] [--scale 1.0] [--bin-dir DIR]

Builds bench_defaults.py's database, then each round runs raw `pg_dump -Fc` with the compression our
dump chooses (zstd:1, else gzip 1), `pgbackup-tui dump` of the OLD tree and of the NEW one (the
order rotating), each with its own PGBACKUP_TUI_HOME. A neighbour's load slows the three runs of a
round alike, so the per-round ratios (their medians printed) survive it where separate medians
would not. Not a test.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_defaults as bd  # noqa: E402
from pgbackup_tui.core.defaults import fast_compression  # noqa: E402
from pgbackup_tui.core.pgtools import find_client_tools  # noqa: E402
from pgbackup_tui.core.sandbox import Sandbox  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="a folder holding the old pgbackup_tui package")
    parser.add_argument("new", type=Path, help="a folder holding the new pgbackup_tui package")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0, help="bench_defaults.py's data times this")
    parser.add_argument("--bin-dir", type=Path, help="the server's bin dir (default: the sandbox's choice)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pgbackup-bench-trees-"))
    try:
        run_rounds(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_rounds(args: argparse.Namespace, work: Path) -> None:
    s = args.scale
    with Sandbox(bin_dir=args.bin_dir) as sandbox:
        sandbox.create_database("bench")
        sandbox.psql(bd.BUILD_SQL.format(
            branches=max(1, int(bd.ACCOUNTS * s) // 100000), accounts=int(bd.ACCOUNTS * s), docs=int(bd.DOCS * s),
            json_docs=int(bd.JSON_DOCS * s), readings=int(bd.READINGS * s),
            per_partition=max(1, int(bd.READINGS * s) // 200), blobs=int(bd.BLOBS * s)), "bench")
        tools = find_client_tools(sandbox.major)
        compress = f"--compress={fast_compression(tools)}"  # what our dump chooses
        print(f"# bench_trees: PostgreSQL {sandbox.major}, pg_dump {tools.version}; {os.cpu_count()} cores, "
              f"load {os.getloadavg()[0]:.1f}; {args.rounds} rounds", flush=True)

        def raw() -> float:
            out = work / "raw.dump"
            started = time.monotonic()
            subprocess.run([tools.pg_dump, f"--dbname={sandbox.dsn('bench')}", "-Fc", compress, f"--file={out}"],
                           check=True)
            seconds = time.monotonic() - started
            out.unlink()
            return seconds

        def ours(tree: Path, name: str) -> Callable[[], float]:
            def go() -> float:
                out = work / f"{name}.dump"
                # `-m` puts the working directory first on sys.path: the tree's package is the one run.
                env = dict(os.environ, PGBACKUP_TUI_HOME=str(work / f"home-{name}"), PYTHONPATH=str(tree))
                started = time.monotonic()
                result = subprocess.run([sys.executable, "-m", "pgbackup_tui", "dump", "--dsn", sandbox.dsn(),
                                         "--db", "bench", "--progress", "none", "--output", str(out)],
                                        env=env, cwd=tree, capture_output=True, text=True)
                seconds = time.monotonic() - started
                if result.returncode != 0:
                    raise SystemExit(f"{name}: {result.stderr.strip()}")
                out.unlink()
                return seconds
            return go

        raw()  # warm the cache
        candidates: list[tuple[str, Callable[[], float]]] = [
            ("raw", raw), ("old", ours(args.old.resolve(), "old")), ("new", ours(args.new.resolve(), "new"))]
        rounds: list[dict[str, float]] = []
        for i in range(args.rounds):
            order = candidates[i % 3:] + candidates[:i % 3]
            times = {name: run() for name, run in order}
            rounds.append(times)
            print(f"  round {i + 1}: raw {times['raw']:.2f} s, old {times['old']:.2f} s, new {times['new']:.2f} s "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)

        def median(of: Callable[[dict[str, float]], float]) -> float:
            return statistics.median(of(r) for r in rounds)

        old_raw, new_raw = median(lambda r: r["old"] / r["raw"]), median(lambda r: r["new"] / r["raw"])
        new_old, saved = median(lambda r: r["new"] / r["old"]), median(lambda r: r["new"] - r["old"])
        print(f"old/raw {old_raw:.2f}x, new/raw {new_raw:.2f}x, new/old {new_old:.2f}x, new - old {saved:+.2f} s; "
              f"times (median): raw {median(lambda r: r['raw']):.2f} s, old {median(lambda r: r['old']):.2f} s, "
              f"new {median(lambda r: r['new']):.2f} s")


if __name__ == "__main__":
    main()
