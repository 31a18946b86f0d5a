"""`pgbackup-tui demo`: a sandbox cluster with the sample database, and the app on it.

The demo keeps its own home (config, backups, logs) under the data dir's `demo/` folder unless
PGBACKUP_TUI_HOME is set, so it never adds a short-lived server to the user's own config.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time

from ..core import paths
from ..core.config import editing_config
from ..core.server_profile import ServerProfile
from ..core.errors import EXIT_OK
from ..core.sandbox import Sandbox
from .config_notes import written

DEMO_SERVER = "demo"
DEMO_DATABASE = "shop"


def headless_hint(home: str) -> str:
    """The line `demo --headless` prints: a command to run from another shell, which has not this
    process's PGBACKUP_TUI_HOME (set here when the demo chose its own home), so the line names it;
    without it the demo server was "no server named 'demo'" there."""
    return (f"try: PGBACKUP_TUI_HOME={shlex.quote(home)} pgbackup-tui dump --server {DEMO_SERVER} "
            f"--db {DEMO_DATABASE}   (Ctrl-C here stops the sandbox)")


_STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def _stop_as_on_ctrl_c(signum: int, frame: object) -> None:
    # The first one stops the demo: the sandbox stops as this unwinds. Another (the terminal's SIGHUP
    # after a kill, a second Ctrl-C, one already pending with it) would stop that stop half way, the
    # cluster left running: ignored from here, before a pending one's turn comes.
    for sig in _STOPPING_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


def run_demo(*, rows: int = 300_000, headless: bool = False) -> int:
    if headless:
        # `kill PID` (SIGTERM) or a closed terminal (SIGHUP) stops the sandbox as Ctrl-C does: by
        # their default the process ended at once, its cluster left running (until a later sandbox's
        # sweep found its owner gone).
        for sig in _STOPPING_SIGNALS:
            signal.signal(sig, _stop_as_on_ctrl_c)
    if not os.environ.get(paths.HOME_ENV):
        os.environ[paths.HOME_ENV] = str(paths.ensure_private_dir(paths.data_dir() / "demo"))
    print(f"starting a sandbox PostgreSQL cluster and loading the sample database ({rows} rows)...", file=sys.stderr)
    with Sandbox() as sandbox:
        sandbox.load_sample(DEMO_DATABASE, wide_rows=rows)
        with editing_config() as config:  # under the lock: another pgbackup-tui may be writing it
            config.add_server(
                ServerProfile(name=DEMO_SERVER, host=str(sandbox.socket_dir), port=sandbox.port,
                              user=sandbox.superuser, dbname="postgres"),
                replace_existing=True,
            )
        written(config)
        print(f"sandbox running: server '{DEMO_SERVER}' = {sandbox.dsn()}", file=sys.stderr)
        print(f"home: {os.environ[paths.HOME_ENV]}", file=sys.stderr)
        if headless:
            try:  # the hint inside: a stop that comes as soon as it is read is the demo's end, not a cancel
                print(headless_hint(os.environ[paths.HOME_ENV]), file=sys.stderr, flush=True)
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return EXIT_OK
        from ..ui.app import run_app

        return run_app(server_stops_on_quit=DEMO_SERVER)
