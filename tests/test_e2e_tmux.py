"""The real app in a real terminal: tmux runs `pgbackup-tui`, we type, we read the screen.

A person opens the server, moves to the `shop` database, presses `b`, starts the backup, waits
for the job to succeed, and the archive is on disk. Nothing here talks to the app but keys.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from pgbackup_tui.core.catalog import list_backups

pytestmark = pytest.mark.tmux

COLUMNS, LINES = 100, 30


class Terminal:
    def __init__(self, command: str) -> None:
        self.session = "pgbt-" + uuid.uuid4().hex[:8]
        subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", str(COLUMNS), "-y", str(LINES), command],
                       check=True)

    def keys(self, *keys: str, pause: float = 0.25) -> None:
        for key in keys:
            subprocess.run(["tmux", "send-keys", "-t", self.session, key], check=True)
            time.sleep(pause)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.session], check=True,
                              capture_output=True, text=True).stdout

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n{self.screen()}")

    def move_to(self, details_heading: str, tries: int = 12) -> None:
        """Press Down until the Details pane shows `details_heading` (what a person looks at)."""
        for _ in range(tries):
            if details_heading in self.screen():
                return
            self.keys("Down")
        raise AssertionError(f"never reached {details_heading!r}:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)


@pytest.fixture
def terminal(sandbox, home):
    assert shutil.which("tmux"), "tmux is needed for the end-to-end test (Debian package tmux)"
    config = home / "config.toml"
    config.write_text(f'[servers.sandbox]\nhost = "{sandbox.socket_dir}"\nport = {sandbox.port}\nuser = "postgres"\n')
    command = (f"PGBACKUP_TUI_HOME={shlex.quote(str(home))} TERM=xterm-256color "
               f"{shlex.quote(sys.executable)} -m pgbackup_tui")
    term = Terminal(command)
    yield term
    term.close()


def test_back_up_a_database_as_a_person_would(terminal, home, sandbox):
    terminal.wait_for("sandbox")
    terminal.wait_for(f"PostgreSQL {sandbox.major}")  # the server node connected and shows its version
    terminal.move_to("server sandbox")
    terminal.keys("Enter")  # open the server
    terminal.wait_for("shop")
    terminal.move_to("database shop")
    terminal.keys("b")
    terminal.wait_for("Back up shop")
    terminal.wait_for("pg_dump")  # the command preview
    terminal.keys("Enter")
    screen = terminal.wait_for("succeeded", timeout=60)
    assert "dump" in screen and "shop" in screen
    backups = list_backups(home / "backups")
    assert len(backups) == 1 and backups[0].database == "shop" and backups[0].path.exists()
    assert not list((home / "backups").rglob("*.partial"))
    terminal.keys("q")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if subprocess.run(["tmux", "has-session", "-t", terminal.session], capture_output=True).returncode != 0:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the app did not quit on q:\n" + terminal.screen())
