"""Jobs on real clusters: cancel, failure, side-by-side runs, and where the password travels."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg

from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.jobs import JobState, LogLine
from pgbackup_tui.core.plans import DumpPlan

SOURCE = "shop"


@contextmanager
def table_locked(sandbox, table: str = "public.events"):
    """Hold ACCESS EXCLUSIVE on a table: a pg_dump of the database waits (really running, never done)."""
    with psycopg.connect(sandbox.dsn(SOURCE)) as conn:
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
        conn.rollback()


def wait_for_lock_wait(sandbox, application_name: str, timeout: float = 20) -> int:
    """The backend pid of our pg_dump once it is waiting on the lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = sandbox.psql(
            "SELECT pid FROM pg_stat_activity "
            f"WHERE application_name = '{application_name}' AND wait_event_type = 'Lock'"
        ).strip()
        if out:
            return int(out.splitlines()[0])
        time.sleep(0.1)
    raise AssertionError(f"no backend of {application_name} waited on the lock")


def tcp_target(sandbox):
    return target_from_dsn(sandbox.dsn(tcp=True)).with_password(sandbox.password)


async def test_cancel_leaves_no_archive_and_password_stays_out_of_argv(sandbox, home, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    output = home / "cancelled.dump"
    job = DumpJob(DumpPlan(target=tcp_target(sandbox), dbname=SOURCE, output=output))
    lines: list[str] = []
    job.subscribe(lambda event: lines.append(event.text) if isinstance(event, LogLine) else None)
    with table_locked(sandbox):
        task = asyncio.create_task(job.run())
        await asyncio.to_thread(wait_for_lock_wait, sandbox, job.application_name)
        child = job._process
        assert child is not None and child.returncode is None
        # Its own process group (what a cancel signals); outside a runner, in a session of its own too,
        # away from any terminal (test_job_faults: in a runner, it stays in the runner's session).
        assert os.getpgid(child.pid) == child.pid and os.getsid(child.pid) == child.pid
        argv = Path(f"/proc/{child.pid}/cmdline").read_bytes().split(b"\0")
        environ = Path(f"/proc/{child.pid}/environ").read_bytes().split(b"\0")
        assert not any(sandbox.password.encode() in arg for arg in argv)
        assert f"PGPASSWORD={sandbox.password}".encode() in environ
        assert Path(str(output) + ".partial").exists()
        job.cancel()
        result = await asyncio.wait_for(task, 30)
    assert result.state == JobState.CANCELLED and result.exit_code == 130
    assert not output.exists() and not Path(str(output) + ".partial").exists()
    assert list(home.glob("*.dump*")) == []
    assert result.log_path and result.log_path.exists() and (result.log_path.stat().st_mode & 0o777) == 0o600
    log_text = result.log_path.read_text()
    assert "cancel requested" in log_text and sandbox.password not in log_text
    assert not any(sandbox.password in line for line in lines)


async def test_failed_dump_leaves_no_archive(sandbox, home):
    sandbox.psql("DROP ROLE IF EXISTS no_rights; CREATE ROLE no_rights LOGIN PASSWORD 'np'")
    target = target_from_dsn(sandbox.dsn(tcp=True).replace("user=postgres", "user=no_rights")).with_password("np")
    output = home / "denied.dump"
    job = DumpJob(DumpPlan(target=target, dbname=SOURCE, output=output))
    result = await job.run()
    assert result.state == JobState.FAILED and result.exit_code == 1
    assert "permission denied" in result.message
    assert not output.exists() and not Path(str(output) + ".partial").exists()
    assert list(home.glob("denied*")) == []


async def test_two_dumps_run_side_by_side(sandbox, home):
    target = target_from_dsn(sandbox.dsn())
    jobs = [DumpJob(DumpPlan(target=target, dbname=SOURCE, format=fmt)) for fmt in ("custom", "directory")]
    starts: list[float] = []
    for job in jobs:
        job.subscribe(
            lambda e, s=starts: s.append(time.time()) if getattr(e, "state", None) == JobState.RUNNING else None)
    results = await asyncio.gather(*(job.run() for job in jobs))
    assert [r.state for r in results] == [JobState.SUCCEEDED, JobState.SUCCEEDED]
    assert results[0].output_path != results[1].output_path
    assert all(r.output_path.exists() for r in results)
    # Both were running before either finished (Job.finished_at is wall-clock time, like starts).
    assert len(starts) == 2 and all(job.finished_at is not None for job in jobs)
    assert max(starts) < min(job.finished_at for job in jobs if job.finished_at is not None)


@contextmanager
def cli_dump_waiting_on_a_lock(sandbox, dsn: str, output: Path, env: dict[str, str]):
    """`pgbackup-tui dump` of SOURCE into `output`, yielded once its pg_dump waits on a held lock;
    SIGINT on the way out (a test may send its own first), then the process is reaped."""
    with table_locked(sandbox):
        process = subprocess.Popen(
            [sys.executable, "-m", "pgbackup_tui", "dump", "--dsn", dsn, "--db", SOURCE, "--output", str(output)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and "pgbackup-tui/" not in sandbox.psql(
                "SELECT string_agg(application_name, ',') FROM pg_stat_activity WHERE wait_event_type = 'Lock'"):
                time.sleep(0.1)
            yield process
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()


def test_cli_sigint_cancels_cleanly(sandbox, home):
    output = home / "interrupted.dump"
    with cli_dump_waiting_on_a_lock(sandbox, sandbox.dsn(), output, dict(os.environ)) as process:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "cancelled" in err
    assert not output.exists() and not Path(str(output) + ".partial").exists()


def _command_lines_naming(text: str) -> dict[int, bytes]:
    """pid -> /proc/PID/cmdline of every process whose command line holds `text`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline:
                found[int(entry.name)] = cmdline
    return found


def test_a_password_given_in_dsn_leaves_the_command_s_and_the_runner_s_argv(sandbox, home):
    """Anyone reads a process's argv (ps): a password given in --dsn (warned against) stayed there
    for the whole job, in the command and in its runner (a fork of it, with the same argv)."""
    output = home / "password-in-dsn.dump"
    dsn = f"{sandbox.dsn(tcp=True)} password={sandbox.password}"
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    with cli_dump_waiting_on_a_lock(sandbox, dsn, output, env) as process:
        holding = _command_lines_naming(str(output))  # the command, its runner and pg_dump
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.pid in holding and len(holding) >= 3, holding
    assert not [pid for pid, cmdline in holding.items() if sandbox.password.encode() in cmdline], holding
    assert b"--dsn" in holding[process.pid] and b"user=" in holding[process.pid]  # the rest is as given
    assert process.returncode == 130 and "password in --dsn is visible" in err


def test_a_parallel_child_s_failure_names_its_worker_s_error_not_the_leader_s(tmp_path):
    """pg_restore -j ends with 'a worker process died unexpectedly' after the worker's own error
    (a data file gone, say): the job's line quoted the leader's, the cause only in the log (QA)."""
    from pgbackup_tui.core.jobs import Job, Outcome

    class Restoring(Job):
        async def _execute(self) -> Outcome:
            script = ("echo 'pg_restore: processing data for table \"public.events\"' >&2; "
                      "echo 'pg_restore: error: could not open input file \"/b/3655.dat\": No such file or "
                      "directory' >&2; echo 'pg_restore: error: a worker process died unexpectedly' >&2; exit 1")
            code = await self.run_process(["/bin/sh", "-c", script], dict(os.environ))
            return Outcome(message=f"exit {code}: {self.last_error()}")

    result = asyncio.run(Restoring("restore").run())
    assert result.message == 'exit 1: could not open input file "/b/3655.dat": No such file or directory'

    class Alone(Job):
        async def _execute(self) -> Outcome:
            await self.run_process(["/bin/sh", "-c", "echo 'pg_restore: error: a worker process died "
                                    "unexpectedly' >&2; exit 1"], dict(os.environ))
            return Outcome(message=self.last_error())

    assert asyncio.run(Alone("alone").run()).message == "a worker process died unexpectedly"
