"""restore --create keeps the connection that found the name free for its CREATE DATABASE: one the
server closed meanwhile (idle_session_timeout, a restart, a pooler) is replaced, not a failure."""

from __future__ import annotations

import uuid

from pgbackup_tui.core.connect import connect, target_from_dsn
from pgbackup_tui.core.restore_target import create_database


def test_a_kept_connection_the_server_ended_is_replaced_for_the_create(sandbox):
    target = target_from_dsn(sandbox.dsn())
    kept = connect(target, "postgres")
    pid = kept.info.backend_pid
    sandbox.psql(f"SELECT pg_terminate_backend({pid}, 5000)")  # as idle_session_timeout would
    name = f"kept_{uuid.uuid4().hex[:8]}"
    said: list[str] = []
    try:
        create_database(target, "postgres", name, None, lambda line, **_: said.append(line), conn=kept)
        assert sandbox.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{name}'").strip() == "1"
        assert kept.closed and said == [f"created database '{name}' with the server's defaults"]
    finally:
        sandbox.drop_database(name)
