"""What following a new archive costs pg_dump: alone, with the follower as a thread, as a process at SCHED_IDLE.

    .venv/bin/python scripts/bench_follower.py [--scale 1.0] [--rounds 4] [--bin-dir DIR]

Builds bench_defaults.py's reference database (about 1.1 GB at scale 1) in a throwaway cluster,
then each round runs `pg_dump -Fc --compress=zstd:1` (gzip 1 where this pg_dump has no zstd) three
ways, the order rotating: alone; beside core/archive_follow.py's follower as a thread of this
process (what the dump job did before); beside core/archive_follow_process.py's follower process
(what it does now). Each time is until the rows are counted and the checksum taken. Prints each
run, with the share of the two cores busy (/proc/stat), and the medians of the per-round ratios
against pg_dump alone. Not a test.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_speed import build_reference  # noqa: E402
from pgbackup_tui.core.archive_follow import CustomArchiveFollower  # noqa: E402
from pgbackup_tui.core.archive_follow_process import FollowerProcess  # noqa: E402
from pgbackup_tui.core.checksums import checksum_archive  # noqa: E402
from pgbackup_tui.core.defaults import fast_compression  # noqa: E402
from pgbackup_tui.core.pgtools import find_client_tools  # noqa: E402
from pgbackup_tui.core.sandbox import Sandbox  # noqa: E402

WAYS = ("alone", "thread", "process")


def busy_share(before: list[int], after: list[int]) -> float:
    """The share of all cores' time that was not idle between two /proc/stat readings."""
    total = sum(after) - sum(before)
    idle = (after[3] + after[4]) - (before[3] + before[4])
    return 1 - idle / total if total else 0.0


def cpu_times() -> list[int]:
    """/proc/stat's first line: the cores' time by kind, in ticks."""
    return [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def dump_once(argv: list[str], out: Path, way: str) -> tuple[float, float]:
    """One dump `way`, until its rows are counted and its checksum taken as the job would (after
    pg_dump where the follower did not see the TOC written again in time); seconds, busy share."""
    out.unlink(missing_ok=True)
    out.touch()
    subprocess.run(["sync"], check=True)
    before, started = cpu_times(), time.monotonic()
    pg_dump = subprocess.Popen([*argv, f"--file={out}"])
    follower: CustomArchiveFollower | FollowerProcess | None = None
    if way == "thread":
        follower = CustomArchiveFollower(out)
    elif way == "process":
        follower = FollowerProcess(out)
    if follower is not None:
        follower.start()
    try:
        if pg_dump.wait() != 0:
            raise SystemExit("pg_dump failed")
        if follower is not None:
            follower.writer_finished()
            follower.finish()
            if follower.checksum is None:
                checksum_archive(out)
    finally:
        if follower is not None:
            follower.abandon()
    return time.monotonic() - started, busy_share(before, cpu_times())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--bin-dir", type=Path, help="the server's bin dir (default: the sandbox's choice)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pgbackup-bench-follower-"))
    try:
        with Sandbox(bin_dir=args.bin_dir) as sandbox:
            size = build_reference(sandbox, "bench", args.scale)
            tools = find_client_tools(sandbox.major)
            compress = fast_compression(tools)
            argv = [tools.pg_dump, f"--dbname={sandbox.dsn('bench')}", "-Fc", f"--compress={compress}"]
            print(f"# bench_follower: database {size}, pg_dump {tools.version} --compress={compress}, "
                  f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
            seconds: dict[str, list[float]] = {way: [] for way in WAYS}
            for index in range(args.rounds):
                shift = index % len(WAYS)
                for way in WAYS[shift:] + WAYS[:shift]:
                    took, busy = dump_once(argv, work / "bench.dump", way)
                    seconds[way].append(took)
                    print(f"  round {index + 1}: {way:7s} {took:.2f} s, the cores {busy:.0%} busy "
                          f"(load {os.getloadavg()[0]:.1f})", flush=True)
            for way in WAYS[1:]:
                ratios = [mine / alone for mine, alone in zip(seconds[way], seconds["alone"], strict=True)]
                print(f"{way}: {statistics.median(seconds[way]):.2f} s against pg_dump alone "
                      f"{statistics.median(seconds['alone']):.2f} s: {statistics.median(ratios):.2f}x "
                      f"({min(ratios):.2f}-{max(ratios):.2f})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
