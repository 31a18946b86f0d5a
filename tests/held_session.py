"""A psql session a test leaves open, holding a lock (an uncommitted statement), and its end."""

from __future__ import annotations

import subprocess

from pgbackup_tui.core.sandbox import Sandbox


def session_left_open(cluster: Sandbox, dsn: str, statements: str) -> subprocess.Popen[str]:
    """A psql session that runs `statements` and stays open (its transaction with it) until ended."""
    session = subprocess.Popen([str(cluster.bin_dir / "psql"), "-X", "-q", "-d", dsn], text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert session.stdin is not None
    session.stdin.write(statements + "\n")
    session.stdin.flush()
    return session


def end_session(cluster: Sandbox, database: str, session: subprocess.Popen[str]) -> None:
    """End the session and its server backend: a killed psql's backend sleeps on in pg_sleep, holding
    its lock, until the sleep ends."""
    cluster.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' "
                 "AND query LIKE '%pg_sleep(%' AND pid <> pg_backend_pid()")
    session.kill()
    session.wait()
