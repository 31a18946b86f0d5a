"""Checks that say nothing of the backup are not recorded as its failure (recorded, a good backup
lost delete's protection and its place in a schedule's keep_last).

A drill on a server that lacks a role the backup names (an owner, a grantee): drills are run on a
staging server, seldom with every role of production; pg_restore went past the ALTER ... OWNER and
GRANT statements and the drill recorded "failed verification". Likewise a drill on a server older
than the backup, and a verify where no client tools can read it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cliutil import run_cli
from pgbackup_tui.core import catalog
from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.drill import drill_backup
from pgbackup_tui.core.jobs import JobEvent, JobFinished
from pgbackup_tui.core.drill_names import DRILL_PREFIX
from pgbackup_tui.core.sandbox import Sandbox


@pytest.fixture
def orphaned_db(sandbox: Sandbox) -> Iterator[str]:
    """A database whose table was owned by, and granted to, a role dropped since."""
    name, role = f"roles_{uuid.uuid4().hex[:8]}", f"gone_{uuid.uuid4().hex[:8]}"
    sandbox.psql(f"CREATE ROLE {role}")
    sandbox.create_database(name)
    sandbox.psql(f"CREATE TABLE t (a int); INSERT INTO t SELECT generate_series(1, 20); "
                 f"ALTER TABLE t OWNER TO {role}; GRANT SELECT ON t TO {role}", name)
    yield name
    sandbox.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    sandbox.psql(f"DROP ROLE IF EXISTS {role}")


def _drop_role_after_dump(sandbox: Sandbox, db: str) -> None:
    role = sandbox.psql("SELECT tableowner FROM pg_tables WHERE tablename = 't'", db).strip()
    sandbox.psql(f"REASSIGN OWNED BY {role} TO {sandbox.superuser}; DROP OWNED BY {role}", db)
    sandbox.psql(f"DROP ROLE {role}")


def _dump(sandbox: Sandbox, db: str, fmt: str, env: dict[str, str] | None = None) -> Path:
    done = run_cli("dump", "--dsn", sandbox.dsn(), "--db", db, "--format", fmt, "--progress", "none", env=env)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def _status(path: Path) -> str:
    shown = run_cli("backups", "show", str(path), "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)["status"]


def test_a_drill_where_the_backup_s_roles_are_missing_is_not_the_backup_s_failure(sandbox, home, orphaned_db):
    archive, script = _dump(sandbox, orphaned_db, "custom"), _dump(sandbox, orphaned_db, "plain")
    _drop_role_after_dump(sandbox, orphaned_db)

    drilled = run_cli("backups", "drill", str(archive), "--dsn", sandbox.dsn())
    assert drilled.returncode == 0, drilled.stdout + drilled.stderr
    assert "owner or grant statement(s) skipped: this server lacks the role(s)" in drilled.stderr
    assert _status(archive) == "drilled"

    # psql stops at the first statement that fails: a plain dump cannot be drilled there, and says
    # so, recording nothing (the backup stays as it was, not "failed verification").
    refused = run_cli("backups", "drill", str(script), "--dsn", sandbox.dsn())
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "could not run" in refused.stderr and "does not exist there" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert _status(script) == "complete"
    assert DRILL_PREFIX not in sandbox.psql("SELECT string_agg(datname, ' ') FROM pg_database")


def test_a_missing_role_whose_name_holds_a_quote_is_not_the_backup_s_failure(sandbox, home):
    """The server's message quotes a role's name as it is (`role "reader.ro"x" does not exist`): the
    check read up to the first quote and saw no missing role, so the drill recorded "failed
    verification" (QA)."""
    db, role = f"q_{uuid.uuid4().hex[:8]}", f'reader.ro"x {uuid.uuid4().hex[:4]}'
    quoted = '"' + role.replace('"', '""') + '"'
    sandbox.create_role(role, login=False)
    sandbox.create_database(db)
    try:
        sandbox.psql(f"CREATE TABLE t (a int); INSERT INTO t SELECT generate_series(1, 5); "
                     f"ALTER TABLE t OWNER TO {quoted}; GRANT SELECT ON t TO {quoted}", db)
        archive, script = _dump(sandbox, db, "custom"), _dump(sandbox, db, "plain")
        sandbox.psql(f"REASSIGN OWNED BY {quoted} TO {sandbox.superuser}; DROP OWNED BY {quoted}", db)
        sandbox.psql(f"DROP ROLE {quoted}")

        drilled = run_cli("backups", "drill", str(archive), "--dsn", sandbox.dsn())
        assert drilled.returncode == 0, drilled.stdout + drilled.stderr
        assert f"lacks the role(s) {role} " in drilled.stderr, drilled.stderr
        refused = run_cli("backups", "drill", str(script), "--dsn", sandbox.dsn())
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f'role "{role}" does not exist there' in refused.stderr, refused.stderr
        assert _status(archive) == "drilled" and _status(script) == "complete"
    finally:
        sandbox.psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        sandbox.psql(f"DROP ROLE IF EXISTS {quoted}")


def test_a_drill_where_the_backup_s_tablespace_is_missing_is_not_the_backup_s_failure(sandbox, home, tmp_path):
    """pg_restore makes the objects of a tablespace the server lacks in the default one, and counts
    each `SET default_tablespace` it could not run as an error: the drill recorded "failed
    verification" for a good backup (QA). A parallel pg_restore's worker that went past one counts
    it again with every item it restores after, so its count is over the lines it printed."""
    db, space = f"ts_{uuid.uuid4().hex[:8]}", f"Fast Disk {uuid.uuid4().hex[:6]}"
    location = sandbox.root / space
    location.mkdir()
    shutil.chown(location, sandbox.os_user)
    sandbox.psql(f"CREATE TABLESPACE \"{space}\" LOCATION '{location}'")
    sandbox.create_database(db)
    try:
        sandbox.psql(f'CREATE TABLE hot (a int) TABLESPACE "{space}"; CREATE INDEX ON hot (a) TABLESPACE "{space}";'
                     + "".join(f"CREATE TABLE t{i} (a int PRIMARY KEY); INSERT INTO t{i} SELECT generate_series(1, 50);"
                               for i in range(6)) + "INSERT INTO hot SELECT generate_series(1, 20)", db)
        archive, script = _dump(sandbox, db, "custom"), _dump(sandbox, db, "plain")
        sandbox.psql(f"DROP DATABASE {db}")
        sandbox.psql(f'DROP TABLESPACE "{space}"')

        drilled = run_cli("backups", "drill", str(archive), "--dsn", sandbox.dsn())
        assert drilled.returncode == 0, drilled.stdout + drilled.stderr
        assert f'this server lacks the tablespace(s) "{space}"' in drilled.stderr, drilled.stderr
        assert _status(archive) == "drilled"

        refused = run_cli("backups", "drill", str(script), "--dsn", sandbox.dsn())
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f'tablespace "{space}" does not exist there' in refused.stderr, refused.stderr
        assert _status(script) == "complete"
    finally:
        sandbox.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        sandbox.psql(f'DROP TABLESPACE IF EXISTS "{space}"')


def test_a_drill_counts_rows_whatever_timeout_the_backup_s_database_sets(sandbox, home):
    """The restored database keeps the backup's `ALTER DATABASE … SET statement_timeout`: the drill's
    count of the rows ran under it and ended in a traceback, after a restore that had gone well (QA)."""
    db = f"slow_{uuid.uuid4().hex[:8]}"
    sandbox.create_database(db)
    try:
        sandbox.psql("CREATE TABLE big (a int); INSERT INTO big SELECT generate_series(1, 300000); "
                     f"ALTER DATABASE {db} SET statement_timeout = 1", db)
        # pg_dump lifts the timeout only after its first queries, which a busy machine took 1 ms for
        # ("canceling statement due to user request", a flake): the dump's sessions start without it.
        archive = _dump(sandbox, db, "custom", env=dict(os.environ, PGOPTIONS="-c statement_timeout=0"))
        drilled = run_cli("backups", "drill", str(archive), "--dsn", sandbox.dsn())
        assert drilled.returncode == 0, drilled.stdout + drilled.stderr
        assert "Traceback" not in drilled.stderr and _status(archive) == "drilled"
    finally:
        sandbox.psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def test_a_drill_by_a_role_that_is_not_a_superuser_is_not_the_backup_s_failure(sandbox, home):
    """A drill as a role with CREATEDB (not a superuser) owns what it restores: the policy of a table
    with FORCE ROW LEVEL SECURITY hid rows from its count(*) (`0 rows in the restored database, 3 in
    the manifest`), and pg_restore's `ALTER TABLE … OWNER TO` another role of the server failed (`must
    be able to SET ROLE`): each recorded a good backup "failed verification", losing delete's
    protection (QA). A plain dump, which psql stops at that statement, cannot be drilled so: exit 2;
    nor a backup with an extension only a superuser may create."""
    db, role, other = f"rls_{uuid.uuid4().hex[:8]}", f"drill_{uuid.uuid4().hex[:8]}", f"app_{uuid.uuid4().hex[:8]}"
    sandbox.psql(f"CREATE ROLE {role} LOGIN CREATEDB; CREATE ROLE {other}")
    sandbox.create_database(db, owner=role)
    try:
        sandbox.psql("CREATE TABLE t (id int, owner text); INSERT INTO t VALUES (1, current_user), (2, 'x'), (3, 'x'); "
                     f"ALTER TABLE t OWNER TO {role}; ALTER TABLE t ENABLE ROW LEVEL SECURITY; "
                     "ALTER TABLE t FORCE ROW LEVEL SECURITY; CREATE POLICY mine ON t USING (owner = current_user);"
                     "CREATE TABLE theirs (a int); INSERT INTO theirs VALUES (1), (2);"
                     f"ALTER TABLE theirs OWNER TO {other}", db)
        archive, script = _dump(sandbox, db, "custom"), _dump(sandbox, db, "plain")
        as_role = sandbox.dsn().replace(f"user={sandbox.superuser}", f"user={role}")
        drilled = run_cli("backups", "drill", str(archive), "--dsn", as_role)
        assert drilled.returncode == 0, drilled.stdout + drilled.stderr
        assert f"the drill's role may not give objects to the role(s) {other} " in drilled.stderr, drilled.stderr
        assert _status(archive) == "drilled"
        refused = run_cli("backups", "drill", str(script), "--dsn", as_role)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f'may not give objects to role "{other}"' in refused.stderr and _status(script) == "complete"
        # An extension only a superuser may create: the drill cannot restore it, and says so (exit 2,
        # nothing recorded), where it recorded the good backup as failed.
        sandbox.psql("CREATE EXTENSION pg_buffercache", db)
        with_extension = _dump(sandbox, db, "custom")
        barred = run_cli("backups", "drill", str(with_extension), "--dsn", as_role)
        assert barred.returncode == 2, barred.stdout + barred.stderr
        assert 'may not create extension "pg_buffercache"' in barred.stderr, barred.stderr
        assert _status(with_extension) == "complete"
        assert DRILL_PREFIX not in sandbox.psql("SELECT string_agg(datname, ' ') FROM pg_database")
    finally:
        sandbox.psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        sandbox.psql(f"DROP ROLE IF EXISTS {role}; DROP ROLE IF EXISTS {other}")


def test_a_drill_on_a_server_older_than_the_backup_records_nothing(sandbox, other_sandbox, home):
    """A drill of an 18 backup on a 15 server was refused before anything ran ("cannot run a newer
    pg_dump's SQL"), and recorded as the backup's failed verification."""
    older, newer = sorted((sandbox, other_sandbox), key=lambda cluster: cluster.major)
    done = run_cli("dump", "--dsn", newer.dsn(), "--bin-dir", str(newer.bin_dir), "--db", "shop", "--table",
                   "public.invoices", "--progress", "none")
    assert done.returncode == 0, done.stderr
    archive = Path(done.stdout.strip())

    drilled = run_cli("backups", "drill", str(archive), "--dsn", older.dsn())
    assert drilled.returncode == 2, drilled.stdout + drilled.stderr
    assert "could not run" in drilled.stderr and "nothing was recorded" in drilled.stderr
    assert _status(archive) == "complete"
    # What a drill can do about it: the line told it to "add --allow-older-server", which
    # `backups drill` does not take.
    assert f"drill it on a server of PostgreSQL {newer.major} or newer" in drilled.stderr, drilled.stderr
    assert "--allow-older-server" not in drilled.stderr


def test_a_verify_where_no_client_tools_can_read_the_backup_records_nothing(sandbox, other_sandbox, home):
    """A verify on a machine without the newer major's pg_restore recorded "failed verification" for
    a good backup: it lost delete's protection, and a schedule's keep_last deleted it."""
    older, newer = sorted((sandbox, other_sandbox), key=lambda cluster: cluster.major)
    done = run_cli("dump", "--dsn", newer.dsn(), "--bin-dir", str(newer.bin_dir), "--db", "shop", "--table",
                   "public.invoices", "--progress", "none")
    assert done.returncode == 0, done.stderr
    archive = Path(done.stdout.strip())
    assert run_cli("backups", "verify", str(archive)).returncode == 0
    only_older = dict(os.environ, PGBACKUP_TUI_CLIENT_DIRS=str(older.bin_dir), PATH="/usr/bin:/bin")
    here = run_cli("backups", "verify", str(archive), env=only_older)
    assert here.returncode == 2, here.stdout + here.stderr
    assert "cannot be verified here" in here.stderr and "nothing was recorded" in here.stderr
    assert len(here.stderr.strip().splitlines()) == 1
    assert _status(archive) == "verified"


def test_a_scratch_database_left_by_a_failed_drop_is_said_not_held_against_the_backup(sandbox, home):
    """The drill restored and counted every row, then could not drop its scratch database (here a
    prepared transaction in it; a server gone or full at that moment alike): it recorded "failed
    verification" for a good backup. It passes now, and the scratch database left is warned of."""
    cluster = Sandbox(bin_dir=sandbox.bin_dir)
    try:
        cluster._initdb()  # a server that takes prepared transactions: one blocks DROP DATABASE even WITH (FORCE)
        with (cluster.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\nmax_prepared_transactions = 2\n")
        cluster.start()
        cluster.create_database("src")
        cluster.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 100) g", "src")
        done = run_cli("dump", "--dsn", cluster.dsn(), "--db", "src", "--progress", "none")
        assert done.returncode == 0, done.stderr
        entry = catalog.find(done.stdout.strip())
        held: list[str] = []

        def hold_the_scratch_database(event: JobEvent) -> None:
            if isinstance(event, JobFinished) and not held:  # restored: before the rows are counted
                scratch = f"SELECT datname FROM pg_database WHERE datname LIKE '{DRILL_PREFIX}%'"
                held.append(cluster.psql(scratch).strip())
                with psycopg.connect(cluster.dsn(held[0]), autocommit=True) as conn:
                    conn.execute("BEGIN")
                    conn.execute("PREPARE TRANSACTION 'hold'")

        check = drill_backup(entry, target_from_dsn(cluster.dsn()), on_event=hold_the_scratch_database)
        assert check.ok, check.problems
        assert check.details["dropped"] is False and held[0] in check.details["not_dropped"]
        assert held[0] in cluster.psql("SELECT datname FROM pg_database")
        with psycopg.connect(cluster.dsn(held[0]), autocommit=True) as conn:
            conn.execute("ROLLBACK PREPARED 'hold'")
    finally:
        cluster.stop()


def test_a_drill_of_several_hosts_stays_on_the_one_that_answered(sandbox, other_sandbox, home):
    """`host=a,b`, a down: the drill's restore pinned itself to b, but its count and its drop went to
    the list again. a back meanwhile (here: a's socket appears, another server behind it), the drop
    found no scratch database on a and said it was dropped: it stayed on b (review)."""
    done = run_cli("dump", "--dsn", sandbox.dsn(), "--db", "shop", "--table", "public.invoices", "--progress", "none")
    assert done.returncode == 0, done.stderr
    entry = catalog.find(done.stdout.strip())
    # No such folder: libpq finds no socket there, and tries the next host. Short: a socket's path
    # has room for 107 bytes, which tmp_path's may take.
    comes_back = Path(tempfile.mkdtemp(prefix="pin", dir="/tmp")) / "a"
    dsn = f"host={comes_back},{sandbox.socket_dir} port={other_sandbox.port},{sandbox.port} user={sandbox.superuser}"

    def bring_the_first_host_back(event: JobEvent) -> None:
        if isinstance(event, JobFinished):  # restored: before the rows are counted
            comes_back.symlink_to(other_sandbox.socket_dir)

    try:
        check = drill_backup(entry, target_from_dsn(dsn), on_event=bring_the_first_host_back)
    finally:
        shutil.rmtree(comes_back.parent)
    assert DRILL_PREFIX not in sandbox.psql("SELECT string_agg(datname, ' ') FROM pg_database")
    assert check.ok and check.details["dropped"] is True, (check.problems, check.details)
    assert check.details["server"] == f"local:{sandbox.port}", check.details  # the one it ran on
    listed = f"{comes_back}:{other_sandbox.port},{sandbox.socket_dir}:{sandbox.port}"
    assert f"(the first of {listed} to answer)" in check.checks[0], check.checks
