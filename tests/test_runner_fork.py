"""A headless command's runner is a fork of it (no second interpreter start), detached exactly as
the exec'd runner is; it is a new interpreter when a fork is not safe; its end wakes the front.

Real processes: the CLI in a subprocess, its pg_dump held back by a table lock while we look at
its runner in /proc.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_job_faults import (
    SOURCE, _state_or_empty, backend_waiting, jobs_json, leftovers, runner_pid, start_cli, table_locked, wait_for,
)

from pgbackup_tui.core.runner_start import sleep_until_exit


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _session_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rfind(")") + 2:].split()[3])


def test_the_cli_s_runner_is_a_fork_detached_like_the_exec_d_one(sandbox, home, out_dir):
    out = out_dir / "shop.dump"
    with table_locked(sandbox):
        cli = start_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--output", str(out))
        wait_for(lambda: backend_waiting(sandbox), "pg_dump to wait for its lock")
        pid = runner_pid(home)
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"pgbackup_tui.core.runner" not in argv and b"dump" in argv  # the CLI's own process image
        assert _session_of(pid) == pid != _session_of(cli.pid)  # a session of its own: no SIGHUP reaches it
        fds = {int(name): os.readlink(f"/proc/{pid}/fd/{name}") for name in os.listdir(f"/proc/{pid}/fd")}
        assert [fds[fd] for fd in (0, 1, 2)] == [os.devnull] * 3
        job_folder = next((home / "state" / "jobs").iterdir())
        assert str(job_folder / "runner.lock") in fds.values()  # it holds the job's lock
    assert cli.wait(timeout=30) == 0, cli.stderr.read() if cli.stderr else ""
    assert cli.stdout is not None and cli.stdout.read().strip() == str(out)
    assert _state_or_empty(home).get("state") == "succeeded" and out.is_file() and not leftovers(out_dir)
    assert [job["state"] for job in jobs_json(home)] == ["succeeded"]



def test_descriptors_the_cli_was_started_with_do_not_stop_the_fork(sandbox, home, out_dir, tmp_path):
    """A terminal or a harness may leak descriptors into the command: the runner is still a fork
    (no second interpreter start), and it does not keep them (as the exec'd runner's close_fds)."""
    out = out_dir / "shop.dump"
    leaked = os.open(tmp_path / "leaked", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with table_locked(sandbox):
            cli = subprocess.Popen(
                [sys.executable, "-m", "pgbackup_tui", "dump", "--dsn", sandbox.dsn(), "--db", SOURCE,
                 "--output", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                stdin=subprocess.DEVNULL, env=dict(os.environ), pass_fds=(leaked,))
            wait_for(lambda: backend_waiting(sandbox), "pg_dump to wait for its lock")
            pid = runner_pid(home)
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            assert b"pgbackup_tui.core.runner" not in argv and b"dump" in argv  # a fork of the CLI
            assert str(tmp_path / "leaked") in os.readlink(f"/proc/{cli.pid}/fd/{leaked}")  # the CLI had it
            runner_fds = [os.readlink(f"/proc/{pid}/fd/{name}") for name in os.listdir(f"/proc/{pid}/fd")]
            assert str(tmp_path / "leaked") not in runner_fds
    finally:
        os.close(leaked)
    assert cli.wait(timeout=30) == 0, cli.stderr.read() if cli.stderr else ""
    assert _state_or_empty(home).get("state") == "succeeded" and out.is_file()



def test_a_finished_job_is_passed_by_when_commands_look_for_dead_ones(sandbox, home, out_dir):
    """Every command first looks for jobs whose runner died (job_recovery.recover): a job that ended
    with nothing left to undo is marked settled, and that look no longer parses its state."""
    from pgbackup_tui.core import job_store

    out = out_dir / "shop.dump"
    cli = start_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--output", str(out))
    assert cli.wait(timeout=60) == 0, cli.stderr.read() if cli.stderr else ""
    job_folder = next((home / "state" / "jobs").iterdir())
    assert (job_folder / job_store.SETTLED).is_file()
    assert [record.id for record in job_store.list_jobs()] == [job_folder.name]
    assert job_store.list_jobs(unsettled_only=True) == []
    assert [job["state"] for job in jobs_json(home)] == ["succeeded"]  # still listed for the user


SAFE_PROBE = """
import os, socket, sys, threading
from pgbackup_tui.core.runner_start import fork_is_safe
lock = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
alone = fork_is_safe(lock)
sock = socket.socket(socket.AF_UNIX)
with_socket = fork_is_safe(lock)
sock.close()
stop = threading.Event()
thread = threading.Thread(target=stop.wait)
thread.start()
with_thread = fork_is_safe(lock)
stop.set()
thread.join()
import time
deadline = time.monotonic() + 5  # a joined thread's kernel task may take a moment to go
while not (after := fork_is_safe(lock)) and time.monotonic() < deadline:
    time.sleep(0.01)
print(alone, with_socket, with_thread, after)
"""


def test_a_fork_is_taken_only_by_one_thread_without_open_connections(tmp_path):
    probe = subprocess.run([sys.executable, "-c", SAFE_PROBE, str(tmp_path / "lock")], capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, close_fds=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["True", "False", "False", "True"]


def test_the_end_of_a_runner_wakes_its_front_at_once():
    process = subprocess.Popen(["sleep", "0.2"])
    started = time.monotonic()
    asyncio.run(sleep_until_exit(process, 20.0))
    assert time.monotonic() - started < 10.0  # woken by its end (a pidfd), not by the 20 s timeout
    assert process.wait(timeout=5) == 0


def test_output_that_cannot_be_written_fails_the_command_despite_the_prompt_exit(sandbox, home, out_dir):
    """A job command ends with os._exit: the interpreter's teardown, which would have failed on an
    unwritable stdout (exit 120), does not run, so the command flushes and says it itself."""
    out = out_dir / "shop.dump"
    with open("/dev/full", "w") as full:  # every write: ENOSPC
        done = subprocess.run([sys.executable, "-m", "pgbackup_tui", "dump", "--dsn", sandbox.dsn(), "--db", SOURCE,
                               "--output", str(out), "--progress", "none"],
                              stdout=full, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "No space left on device" in done.stderr  # one line naming it, whichever write met it first
    assert out.is_file()  # the backup itself is whole: only its path line was lost
    piped = subprocess.run(f"{sys.executable} -m pgbackup_tui jobs list | head -c0", shell=True, timeout=60)
    assert piped.returncode == 0


def test_a_front_whose_children_are_reaped_for_it_still_sees_its_job_succeed(sandbox, home, out_dir):
    """SIGCHLD ignored (inherited through exec, as some daemons start their children): the kernel
    reaps the forked runner, and waitpid says ECHILD; the job's state is what counts."""
    out = out_dir / "shop.dump"
    done = subprocess.run([sys.executable, "-m", "pgbackup_tui", "dump", "--dsn", sandbox.dsn(), "--db", SOURCE,
                           "--output", str(out), "--progress", "none"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
                          preexec_fn=lambda: signal.signal(signal.SIGCHLD, signal.SIG_IGN))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out) and out.is_file()
