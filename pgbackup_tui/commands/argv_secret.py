"""A password given in `--dsn`, taken out of this process's command line once it is read.

Anyone on the machine reads a process's argv (`ps`, /proc/PID/cmdline) for as long as it runs,
and the job's runner (a fork of the command) carries the same argv for the whole job. The
password is already in memory (core/connect.target_from_dsn), so the command line is rewritten
without it: what stays visible is the moment between the shell starting the command and this.
setproctitle writes over the original argv area (the kernel's cmdline reads it in place), which
Python alone cannot do.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from psycopg.conninfo import make_conninfo


def hide_dsn_password(dsn: str, params: dict[str, str]) -> None:
    """Show the DSN as `params` (the DSN's fields without its password) in this process's argv."""
    from setproctitle import setproctitle  # only a command given a password pays for the import

    shown = make_conninfo("", **params)
    words = [_without(word, dsn, shown) for word in sys.orig_argv]
    comm = Path("/proc/self/comm")
    try:
        name = comm.read_text().rstrip("\n")
    except OSError:
        name = ""
    setproctitle(" ".join(words))
    if name:  # setproctitle renames the process too (prctl): `pgrep pgbackup-tui` should still find it
        with contextlib.suppress(OSError):
            comm.write_text(name)


def _without(word: str, dsn: str, shown: str) -> str:
    if word == dsn:
        return shown
    option, equals, value = word.partition("=")
    if equals and option.startswith("--") and value == dsn:  # --dsn=… (or an abbreviation of it)
        return f"{option}={shown}"
    return word
