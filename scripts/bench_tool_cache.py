"""What the on-disk tool cache (core/tool_cache.py) saves a job. Run by hand; prints figures (not a test).

    .venv/bin/python scripts/bench_tool_cache.py [--pairs 20]

Times, in this process, the client-tool search a dump runs in its preflight (find_client_tools for
the newest installed major + the default compression's probe), in pairs run back to back with the
order alternating: once answered from the cache file (warm), once asking every binary as before
the cache (each probe runs its process). The in-process lru caches are cleared before each run,
as a new job starts without them. Prints the medians and the median of the per-pair ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["PGBACKUP_TUI_HOME"] = tempfile.mkdtemp(prefix="pgbackup-bench-tool-cache-")  # its own cache file

from pgbackup_tui.core import defaults, pgtools, tool_cache  # noqa: E402


def ask_always(real_path: str, stamp: Any, probe: str, ask: Callable[[], Any], valid: Callable[[Any], Any]) -> Any:
    """The behaviour before the cache: every probe runs its process."""
    return ask()


def search(newest: int, cached: bool) -> float:
    """Seconds for one job's search, with a fresh process's empty lru caches."""
    remember = tool_cache.remembered if cached else ask_always
    pgtools.remembered = defaults.remembered = remember
    pgtools._version_of.cache_clear()
    defaults._supports.cache_clear()
    started = time.perf_counter()
    defaults.fast_compression(pgtools.find_client_tools(newest))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    args = parser.parse_args()
    installed = pgtools.installed_client_tools()
    newest = max(tools.major for tools in installed)
    search(newest, cached=True)  # fills the cache file
    times: dict[bool, list[float]] = {True: [], False: []}
    for pair in range(args.pairs):
        for cached in ((True, False) if pair % 2 == 0 else (False, True)):
            times[cached].append(search(newest, cached))
    ratios = [warm / cold for warm, cold in zip(times[True], times[False], strict=True)]
    print(f"{len(installed)} installations, newest major {newest}, {args.pairs} pairs, load {os.getloadavg()[0]:.2f}")
    print(f"asking every binary: median {statistics.median(times[False]) * 1000:.1f} ms")
    print(f"from the cache file: median {statistics.median(times[True]) * 1000:.2f} ms")
    print(f"median ratio cached/asking: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
