"""`demo --headless` prints a command to try from another shell: it must work there.

The demo keeps its own home (the data dir's `demo/`), set in its own process only; the line it
printed (`pgbackup-tui dump --server demo --db shop`) ran in another shell against the user's
home, where there is no server 'demo' (README audit). The line now names the home. The demo's own
cluster is stood in for by the session sandbox: a `demo` profile in a home of its own.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from pgbackup_tui.commands.demo import DEMO_DATABASE, DEMO_SERVER, headless_hint
from pgbackup_tui.core.config import editing_config
from pgbackup_tui.core.server_profile import ServerProfile


def test_the_headless_demo_s_line_runs_from_another_shell(sandbox, tmp_path: Path, monkeypatch) -> None:
    demo_home = tmp_path / "data" / "demo"
    monkeypatch.setenv("PGBACKUP_TUI_HOME", str(demo_home))
    with editing_config() as config:  # what run_demo writes, pointing at the session's cluster
        config.add_server(ServerProfile(name=DEMO_SERVER, host=str(sandbox.socket_dir), port=sandbox.port,
                                        user=sandbox.superuser, dbname="postgres"), replace_existing=True)
    line = headless_hint(str(demo_home))
    assert line.startswith("try: ") and f"--db {DEMO_DATABASE}" in line, line
    words = shlex.split(line.removeprefix("try: ").split("   (")[0])
    # Another shell: the user's own home (empty here), none of the demo process's environment.
    env = {key: value for key, value in os.environ.items() if key != "PGBACKUP_TUI_HOME"}
    env["XDG_CONFIG_HOME"] = env["XDG_DATA_HOME"] = env["XDG_STATE_HOME"] = str(tmp_path / "user")
    while "=" in words[0]:
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    assert words[0] == "pgbackup-tui"
    done = subprocess.run([sys.executable, "-m", "pgbackup_tui", *words[1:], "--schema-only"], env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(demo_home / "backups" / DEMO_SERVER / DEMO_DATABASE)), done.stdout


def test_the_headless_demo_stops_its_sandbox_on_sigterm(tmp_path: Path) -> None:
    """`kill` (SIGTERM) ended `demo --headless` at once, its cluster left running and its folder in
    /tmp (until a later sandbox's sweep); Ctrl-C stopped it. Both stop it now (QA)."""
    env = {**os.environ, "PGBACKUP_TUI_HOME": str(tmp_path / "home")}
    demo = subprocess.Popen([sys.executable, "-m", "pgbackup_tui", "demo", "--headless", "--rows", "10"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        said = []
        assert demo.stderr is not None
        for line in demo.stderr:  # until the hint: the sandbox is up, the demo waits
            said.append(line)
            if line.startswith("try: "):
                break
        running = next(re.search(r"host=(\S+)/socket ", line) for line in said if line.startswith("sandbox running"))
        assert running, said
        root = Path(running.group(1))
        assert (root / "data" / "postmaster.pid").exists()
        demo.send_signal(signal.SIGTERM)
        # The terminal closing after it (SIGHUP) stopped the sandbox's stop half way (review).
        deadline = time.monotonic() + 10
        while demo.poll() is None and time.monotonic() < deadline:
            demo.send_signal(signal.SIGHUP)
            time.sleep(0.02)
        # 0, or SIGHUP's own end once the interpreter, tearing down, gave the signal back its default.
        assert demo.wait(timeout=60) in (0, -signal.SIGHUP)
        assert not root.exists()
    finally:
        if demo.poll() is None:
            demo.kill()
