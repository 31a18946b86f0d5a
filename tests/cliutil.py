"""Running the real console script the way a user (or cron) does."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`pgbackup-tui ARGS` in a subprocess with this process's environment (PGBACKUP_TUI_HOME included)."""
    full_env = dict(os.environ if env is None else env)
    return subprocess.run([sys.executable, "-m", "pgbackup_tui", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, stdin=subprocess.DEVNULL)
