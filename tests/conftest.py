"""Shared fixtures: one real PostgreSQL sandbox for the whole run, isolated app homes.

Nothing here skips: without initdb the `sandbox` fixture raises ToolNotFoundError and every
test that needs a server fails loudly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgbackup_tui.core.sandbox import Sandbox

SAMPLE_DB = "shop"
SAMPLE_WIDE_ROWS = 20_000


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """One running cluster for the session, with the sample loaded into database `shop`
    (public.events has SAMPLE_WIDE_ROWS rows). Treat `shop` as read-only; make your own
    databases with `fresh_db_name` / `empty_db`."""
    cluster = Sandbox().start()
    try:
        cluster.load_sample(SAMPLE_DB, wide_rows=SAMPLE_WIDE_ROWS)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh PGBACKUP_TUI_HOME (config, backups, logs) for one test."""
    app_home = tmp_path / "pgbackup-home"
    app_home.mkdir(mode=0o700)
    monkeypatch.setenv("PGBACKUP_TUI_HOME", str(app_home))
    return app_home


@pytest.fixture
def fresh_db_name(sandbox: Sandbox) -> Iterator[str]:
    """A database name nobody uses yet; the database is dropped afterwards if it was created."""
    name = "t_" + uuid.uuid4().hex[:8]
    yield name
    sandbox.drop_database(name)


@pytest.fixture
def empty_db(sandbox: Sandbox, fresh_db_name: str) -> str:
    """A freshly created empty database (dropped after the test)."""
    sandbox.create_database(fresh_db_name)
    return fresh_db_name
