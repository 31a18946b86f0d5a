"""restore --create keeps the connection that found the name free for its CREATE DATABASE: one the
server closed meanwhile (idle_session_timeout, a restart, a pooler) is replaced, not a failure."""

from __future__ import annotations

import uuid

from cliutil import run_cli


def test_a_connection_closed_while_idle_is_replaced_for_the_create(sandbox, home, empty_db, tmp_path):
    sandbox.psql("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000);", empty_db)
    archive = tmp_path / "small.dump"
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", empty_db, "--output", str(archive))
    assert dumped.returncode == 0, dumped.stderr
    target = f"kept_{uuid.uuid4().hex[:8]}"
    # The restore's connection to `postgres` sits idle while the archive is listed and read: longer than this.
    sandbox.psql("ALTER DATABASE postgres SET idle_session_timeout = '25ms'")
    try:
        restored = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", target, "--create")
    finally:
        sandbox.psql("ALTER DATABASE postgres RESET idle_session_timeout")
    try:
        assert restored.returncode == 0, restored.stderr
        assert sandbox.psql("SELECT count(*) FROM t", target).strip() == "1000"
    finally:
        sandbox.drop_database(target)
