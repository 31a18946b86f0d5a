"""The real app in a real terminal: tmux runs `pgbackup-tui`, we type, we read the screen.

A person opens the server, moves to the `shop` database, presses `b`, starts the backup, waits
for the job to succeed, and the archive is on disk. Nothing here talks to the app but keys.
And the terminal goes away mid-dump (`tmux kill-session`: SIGHUP to the TUI): the dump runs in
its own runner, so it finishes and `pgbackup-tui jobs list` shows it succeeded.
"""

from __future__ import annotations

import json
import os
import signal
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from pgbackup_tui.core.catalog import CatalogEntry, scan

from cliutil import run_cli

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


def start_tui(sandbox, home: Path, env: str = "") -> Terminal:
    """`pgbackup-tui` in a new tmux session, with the sandbox as its one server; `env`: more
    VAR=value assignments for its command line."""
    assert shutil.which("tmux"), "tmux is needed for the end-to-end test (Debian package tmux)"
    config = home / "config.toml"
    config.write_text(f'[servers.sandbox]\nhost = "{sandbox.socket_dir}"\nport = {sandbox.port}\nuser = "postgres"\n')
    command = (f"PGBACKUP_TUI_HOME={shlex.quote(str(home))} TERM=xterm-256color {env} "
               f"{shlex.quote(sys.executable)} -m pgbackup_tui")
    return Terminal(command)


@pytest.fixture
def terminal(sandbox, home):
    # A group-readable password file: libpq warns about it on every connection, straight to
    # descriptor 2, where Textual draws; the app keeps that off the screen and says it in a toast.
    password_file = home / "pgpass"
    password_file.write_text("*:*:*:nobody:nothing\n")
    password_file.chmod(0o640)
    term = start_tui(sandbox, home, env=f"PGPASSFILE={shlex.quote(str(password_file))}")
    yield term
    term.close()


LIBPQ_WARNING_WORDS = ("password file", "group or world", "permissions should", "or less")


def assert_no_stray_text(screen: str) -> None:
    """No line of the screen has libpq's warning written over it: its words only in a toast (▌)."""
    garbled = [line for line in screen.splitlines()
               if any(words in line for words in LIBPQ_WARNING_WORDS) and "▌" not in line]
    assert not garbled, f"libpq's warning was written over the screen:\n{screen}"


def start_backup_of_shop(terminal: Terminal, sandbox) -> list[str]:
    """Open the server, go to `shop`, press b and start the backup, as a person would; returns the
    screens seen on the way, each after something connected."""
    terminal.wait_for("sandbox")
    seen = [terminal.wait_for(f"PostgreSQL {sandbox.major}")]  # the server node connected and shows its version
    terminal.move_to("server sandbox")
    terminal.keys("Enter")  # open the server
    terminal.wait_for("shop")
    terminal.move_to("database shop")
    seen.append(terminal.wait_for("extensions"))  # the database's details: read on its own connection
    terminal.keys("b")
    terminal.wait_for("Back up shop")
    # The command preview, worked out in a thread: until it is there, Start is off and Enter goes to
    # the focused choice (it opens its list). "pg_dump" alone is in the choice's description too.
    seen.append(terminal.wait_for("--file="))
    terminal.keys("Enter")
    return seen


def tui_processes(home: Path) -> list[int]:
    """Pids of `python -m pgbackup_tui` (the TUI, not a runner) running with this app home."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[1:3] == [b"-m", b"pgbackup_tui"] and f"PGBACKUP_TUI_HOME={home}".encode() in environ:
            pids.append(int(entry.name))
    return pids


def listed_jobs() -> list[dict]:
    done = run_cli("jobs", "list", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def backups_with_manifest(home: Path) -> list[CatalogEntry]:
    """The catalog's backups under the home's backup dir that have their manifest and archive."""
    return [e for e in scan(home / "backups") if e.manifest is not None and e.status != "missing"]


def test_back_up_a_database_as_a_person_would(terminal, home, sandbox):
    seen = start_backup_of_shop(terminal, sandbox)
    screen = terminal.wait_for("succeeded", timeout=60)
    assert "dump" in screen and "shop" in screen
    for each in [*seen, screen]:
        assert_no_stray_text(each)
    assert any("Written to stderr" in each for each in seen), seen  # said in the app, once
    backups = backups_with_manifest(home)
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


@pytest.mark.parametrize("how", ["kill-session", "SIGTERM", "SIGKILL"])
def test_a_dump_started_in_the_tui_goes_on_after_its_terminal_is_killed(home, sandbox, monkeypatch, how):
    # pg_dump waits for this lock, so the dump is still running when the terminal goes; our own
    # connections (the TUI's) give up on it quickly, pg_dump sets lock_timeout = 0 for itself.
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=200")
    lock = psycopg.connect(sandbox.dsn("shop"), options="-c lock_timeout=0")
    try:
        lock.execute("LOCK TABLE inventory.stock IN ACCESS EXCLUSIVE MODE")
        terminal = start_tui(sandbox, home, env="PGOPTIONS=" + shlex.quote("-c lock_timeout=200"))
        try:
            start_backup_of_shop(terminal, sandbox)
            terminal.wait_for("running")
            assert tui_processes(home)
            if how != "kill-session":  # the TUI itself is killed; its terminal stays
                for pid in tui_processes(home):
                    os.kill(pid, getattr(signal, how))
        finally:
            terminal.close()  # tmux kill-session: the TUI (if still there) gets SIGHUP
        deadline = time.monotonic() + 10
        while tui_processes(home):
            assert time.monotonic() < deadline, "the TUI outlived its terminal"
            time.sleep(0.1)
        jobs = listed_jobs()
        assert [(job["kind"], job["database"], job["state"]) for job in jobs] == [("dump", "shop", "running")]
    finally:
        lock.rollback()
        lock.close()
    # The lock is gone: the dump finishes in its runner, with no front at all.
    deadline = time.monotonic() + 60
    while (job := listed_jobs()[0])["state"] == "running":
        assert time.monotonic() < deadline, f"the job never finished: {job}"
        time.sleep(0.5)
    assert job["state"] == "succeeded", job
    backups = backups_with_manifest(home)
    assert [str(backup.path) for backup in backups] == [job["output_path"]]
    assert os.path.isfile(job["output_path"])
    assert not list((home / "backups").rglob("*.partial"))
