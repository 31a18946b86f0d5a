"""A database's CONNECTION LIMIT holds a role that is not a superuser to it (a superuser is not
held): a restore's parallel jobs, its leader and our monitor all connect to the target database,
so the jobs chosen by default must fit in what that database has left, and the monitor must not
take a connection pg_restore needs, or pg_restore fails half way with "too many connections for
database" (seen: a database with CONNECTION LIMIT 2 and the default two jobs)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from cliutil import run_cli
from pgbackup_tui.core.connect import connect, target_from_dsn
from pgbackup_tui.core.defaults import free_connections, monitor_fits


@dataclass
class OwnedDatabase:
    role: str
    dbname: str
    limit: int
    dsn: str  # as the role, which is not a superuser


@pytest.fixture
def limited_db(sandbox, request) -> Iterator[OwnedDatabase]:
    """An empty database with CONNECTION LIMIT request.param, owned by a role that is not a superuser
    (password-less: the sandbox trusts local connections)."""
    suffix = uuid.uuid4().hex[:6]
    role, dbname = f"owner_{suffix}", f"limited_{suffix}"
    sandbox.psql(f"CREATE ROLE {role} LOGIN")
    sandbox.psql(f"CREATE DATABASE {dbname} OWNER {role} CONNECTION LIMIT {request.param}")
    yield OwnedDatabase(role, dbname, request.param, f"{sandbox.dsn()} user={role}")
    sandbox.drop_database(dbname)
    sandbox.psql(f"DROP ROLE {role}")


@pytest.mark.parametrize("limited_db", [2, 6], indirect=True)
def test_a_restore_into_a_database_with_a_connection_limit_fits_in_it(sandbox, home, tmp_path, limited_db):
    archive = tmp_path / "shop.dump"
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", "shop", "--output", str(archive))
    assert dumped.returncode == 0, dumped.stderr
    restored = run_cli("restore", str(archive), "--dsn", limited_db.dsn, "--db", limited_db.dbname, "--no-owner",
                       "--progress", "plain")
    assert restored.returncode == 0, restored.stderr
    assert "too many connections" not in restored.stderr
    # In 2 connections, pg_restore's is the only one (and one of the job's checks, closing): the
    # monitor stays out; in 6 it watches.
    spare = "no connection to spare for it beside pg_restore's"
    assert (spare in restored.stderr) == (limited_db.limit == 2), restored.stderr
    assert sandbox.psql("SELECT count(*) FROM public.events", limited_db.dbname).strip() == \
        sandbox.psql("SELECT count(*) FROM public.events", "shop").strip()


@pytest.mark.parametrize("limited_db", [3], indirect=True)
def test_free_connections_count_the_database_s_limit_for_a_role_that_is_held_to_it(sandbox, limited_db):
    with connect(target_from_dsn(limited_db.dsn), limited_db.dbname) as conn:
        assert free_connections(conn) == 2  # this session is one of its three
    with connect(target_from_dsn(sandbox.dsn()), limited_db.dbname) as conn:
        assert free_connections(conn) > 3  # a superuser is not held to it


@pytest.mark.parametrize("limited_db", [2], indirect=True)
def test_a_dump_of_a_database_with_two_connections_leaves_them_to_pg_dump(sandbox, home, tmp_path, limited_db):
    """pg_dump needs one of the two connections the database has for this role, and the preflight's,
    closing as pg_dump starts, may still hold the other: our monitor does not race them for it."""
    sandbox.psql(f"CREATE TABLE public.readings AS SELECT g AS id FROM generate_series(1, 5000) g; "
                 f"ALTER TABLE public.readings OWNER TO {limited_db.role}", limited_db.dbname)
    archive = tmp_path / "limited.dump"
    dumped = run_cli("dump", "--dsn", limited_db.dsn, "--db", limited_db.dbname, "--output", str(archive),
                     "--progress", "plain")
    assert dumped.returncode == 0, dumped.stderr
    assert f"no connection to spare for it beside pg_dump's: 2 free for this role in '{limited_db.dbname}'" \
        in dumped.stderr
    restored = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", f"{limited_db.dbname}_copy",
                       "--create")
    try:
        assert restored.returncode == 0, restored.stderr
        assert sandbox.psql("SELECT count(*) FROM public.readings", f"{limited_db.dbname}_copy").strip() == "5000"
    finally:
        sandbox.drop_database(f"{limited_db.dbname}_copy")


def test_the_monitor_fits_only_beside_every_connection_of_the_tool_and_one_spare():
    assert not monitor_fits(1, 2)  # pg_restore / pg_dump's one connection, and one closing
    assert monitor_fits(1, 3)
    assert not monitor_fits(2, 4)  # two jobs and their leader, and one closing
    assert monitor_fits(2, 5)
    assert monitor_fits(4, None)  # the server did not say: as before


@pytest.mark.parametrize("limited_db", [2], indirect=True)
def test_a_csv_copy_out_of_and_back_into_a_database_with_two_connections(sandbox, home, tmp_path, limited_db):
    sandbox.psql(f"CREATE TABLE public.readings AS SELECT g AS id FROM generate_series(1, 5000) g; "
                 f"ALTER TABLE public.readings OWNER TO {limited_db.role}", limited_db.dbname)
    out = tmp_path / "readings-csv"
    exported = run_cli("csv", "export", "--dsn", limited_db.dsn, "--db", limited_db.dbname, "--table",
                       "public.readings", "--output", str(out), "--progress", "plain")
    assert exported.returncode == 0, exported.stderr
    spare = "no connection to spare for it beside the COPY's"
    assert spare in exported.stderr
    sandbox.psql("DROP TABLE public.readings", limited_db.dbname)
    imported = run_cli("csv", "import", str(out), "--dsn", limited_db.dsn, "--db", limited_db.dbname,
                       "--progress", "plain")
    assert imported.returncode == 0, imported.stderr
    assert spare in imported.stderr
    assert sandbox.psql("SELECT count(*) FROM public.readings", limited_db.dbname).strip() == "5000"
