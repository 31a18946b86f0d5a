"""A server connection lost half way through a job, said as such in the job's one line.

pg_dump's own words for it are 'Dumping the contents of table … failed: PQgetCopyData() failed.'
or 'query failed: …', and over SSL (most remote servers) libpq says 'SSL SYSCALL error: EOF
detected', which the one line cut down to 'EOF detected'. A restore that lost its server over SSL
was not recognised as one (a drill recorded it as a failed drill of the backup).
"""

from __future__ import annotations

import subprocess
import sys
import os
import time

import psycopg

from pgbackup_tui.core.job_children import telling_line
from pgbackup_tui.core.restore_output import RestoreOutput
from pgbackup_tui.core.sandbox import Sandbox

SOURCE = "shop"


def test_a_dump_whose_backend_is_terminated_says_the_connection_was_lost(sandbox: Sandbox, home, tmp_path):
    output = tmp_path / "never.dump"
    with psycopg.connect(sandbox.dsn(SOURCE)) as locker:
        locker.execute("LOCK TABLE public.events IN ACCESS EXCLUSIVE MODE")  # pg_dump waits for its lock here
        dump = subprocess.Popen([sys.executable, "-m", "pgbackup_tui", "dump", "--dsn", sandbox.dsn(), "--db", SOURCE,
                                 "--output", str(output), "--progress", "none"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, env=dict(os.environ))
        waiting = ("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                   "AND application_name LIKE 'pgbackup-tui/%'")
        deadline = time.monotonic() + 30
        while not (pids := sandbox.psql(waiting).split()):
            assert time.monotonic() < deadline and dump.poll() is None, "pg_dump never waited for its lock"
            time.sleep(0.05)
        sandbox.psql(f"SELECT pg_terminate_backend({pids[0]})")
        _, stderr = dump.communicate(timeout=60)
        locker.rollback()
    assert dump.returncode == 1, stderr
    last = stderr.strip().splitlines()[-1]
    assert "lost the connection to the server half way" in last and "terminating connection" in last, stderr
    assert "the server stopped" not in last, stderr  # the server said why: it ended the session
    assert not output.exists() and not list(tmp_path.glob("never.dump*"))


# pg_dump's and pg_restore's lines for a link cut under SSL, as one client's libpq logged them.
SSL_DUMP = ['pg_dump: error: Dumping the contents of table "events" failed: PQgetCopyData() failed.',
            "pg_dump: detail: Error message from server: SSL SYSCALL error: EOF detected",
            "pg_dump: detail: Command was: COPY public.events (id, kind) TO stdout;"]


def test_a_dump_that_lost_its_server_over_ssl_says_so_not_eof_detected():
    said = telling_line(SSL_DUMP)
    assert said.startswith("lost the connection to the server half way (SSL SYSCALL error: EOF detected)"), said
    dumpall = telling_line([*SSL_DUMP, 'pg_dumpall: error: pg_dump failed on database "shop", exiting'])
    assert dumpall.startswith('pg_dump failed on database "shop": lost the connection'), dumpall


def test_a_restore_that_lost_its_server_over_ssl_is_a_lost_server():
    output = RestoreOutput()
    output.watch("pg_restore: error: error returned by PQputCopyData: SSL SYSCALL error: EOF detected")
    assert output.connection_lost
    # A statement that failed on the server, quoting another connection's loss, is not one.
    fdw = RestoreOutput()
    fdw.watch('pg_restore: error: could not execute query: ERROR:  could not receive data from server: '
              'server closed the connection unexpectedly')
    assert not fdw.connection_lost and "could not receive data from server" in fdw.first_error_said()


def test_a_statement_the_server_cancels_is_not_said_as_a_lost_connection(sandbox: Sandbox, home, tmp_path):
    """A timeout cancelled one of the job's own catalog queries (a database's `ALTER DATABASE … SET
    statement_timeout`, before connect() set its sessions' to 0; a pooler's), said as `the connection
    to server … was lost or ended (canceling statement due to statement timeout)`: the DBA looked for
    a network fault (QA)."""
    from pgbackup_tui.core.errors import server_error_said

    with psycopg.connect(sandbox.dsn(SOURCE)) as conn:
        conn.execute("SET statement_timeout = 1")
        try:
            conn.execute("SELECT pg_sleep(1)")
        except psycopg.Error as exc:
            said = server_error_said(exc, "prod")
        else:
            raise AssertionError("pg_sleep(1) ran past a statement_timeout of 1 ms")
    assert said is not None and "was lost" not in said, said
    assert said.startswith("server 'prod' cancelled a statement of the job (canceling statement due to statement "
                           "timeout)") and "ALTER DATABASE" in said, said
