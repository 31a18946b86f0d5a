"""core/connect.py against the real sandbox over TCP (scram-sha-256), and against nothing at all.

Every failure must become one ConnectError line that names the server and the cause, and say
whether a password prompt could help.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from pgbackup_tui.core.connect import APP_NAME, Target, connect, target_from_dsn
from pgbackup_tui.core.errors import ConnectError
from pgbackup_tui.core.sandbox import Sandbox, free_port


@pytest.fixture(autouse=True)
def no_ambient_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """libpq must not find a password anywhere we did not put one."""
    for variable in ("PGPASSWORD", "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE", "PGHOST", "PGPORT"):
        monkeypatch.delenv(variable, raising=False)
    # Unset PGPASSFILE means ~/.pgpass; point it at a file that does not exist instead.
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))


@pytest.fixture
def tcp_target(sandbox: Sandbox) -> Target:
    return target_from_dsn(sandbox.dsn(tcp=True), label="sandbox")


def connect_error(target: Target, dbname: str | None = None) -> ConnectError:
    with pytest.raises(ConnectError) as caught:
        connect(target, dbname)
    message = str(caught.value)
    assert "\n" not in message and message.strip() == message
    assert message.startswith(f"server '{target.label}' (")
    return caught.value


def test_wrong_password(tcp_target: Target) -> None:
    error = connect_error(tcp_target.with_password("not-the-password"))
    assert "password authentication failed" in str(error)
    assert error.needs_password


def test_a_wrong_password_from_a_passfile_says_so_and_where_it_came_from(
        sandbox: Sandbox, tcp_target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """libpq's last line was all the message kept: 'password retrieved from file "…"', without the
    failure it explains or the hint to check the password."""
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{sandbox.port}:*:{sandbox.superuser}:not-the-password\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    error = connect_error(tcp_target)
    assert "password authentication failed" in str(error) and f'retrieved from file "{passfile}"' in str(error)
    assert "check the password" in str(error) and error.needs_password


def test_a_passfile_libpq_ignores_for_its_permissions_is_named(
        sandbox: Sandbox, tcp_target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """libpq skips a password file others can read, with a warning on a stderr nobody reads (a
    runner's, cron's): the line said 'give a password in ~/.pgpass' of a file that had it (QA)."""
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{sandbox.port}:*:{sandbox.superuser}:{sandbox.password}\n")
    passfile.chmod(0o644)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    error = connect_error(tcp_target)
    assert "no password supplied" in str(error) and error.needs_password
    assert f"{passfile} is readable by group or others, so libpq ignores it: chmod 600 {passfile}" in str(error)
    passfile.chmod(0o600)
    connect(tcp_target).close()  # the same file, once private: read


def test_a_passfile_the_profile_names_that_does_not_exist_is_named(
        sandbox: Sandbox, tcp_target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a profile whose passfile= was missing got 'give a password in ~/.pgpass, PGPASSWORD or the
    prompt', a place the password was never meant to be."""
    missing = tmp_path / "nonexist"
    monkeypatch.delenv("PGPASSWORD", raising=False)
    target = target_from_dsn(f"{tcp_target.conninfo()} passfile={missing}", label="sandbox")
    error = connect_error(target)
    assert "no password supplied" in str(error) and error.needs_password
    assert f"the password file it names, {missing}, does not exist" in str(error), str(error)


def test_no_password_at_all(tcp_target: Target) -> None:
    error = connect_error(tcp_target)
    assert "no password supplied" in str(error)
    assert error.needs_password


def test_unknown_host() -> None:
    target = target_from_dsn("host=no-such-host.invalid port=5432 user=postgres", label="ghost")
    error = connect_error(target)
    assert "no-such-host.invalid" in str(error)
    assert "check the host name" in str(error)
    assert not error.needs_password


def test_refused_port() -> None:
    port = free_port()  # nothing listens there
    error = connect_error(target_from_dsn(f"host=127.0.0.1 port={port} user=postgres", label="down"))
    assert f"127.0.0.1:{port}" in str(error)
    assert "refused" in str(error).lower()
    assert not error.needs_password


def test_refused_port_is_still_one_line_naming_the_server() -> None:
    port = free_port()
    error = connect_error(target_from_dsn(f"host=127.0.0.1 port={port} user=postgres", label="down"))
    assert f"127.0.0.1:{port}" in str(error)
    assert not error.needs_password


def test_a_dsn_without_host_or_port_is_named_after_the_server_libpq_reaches(
        sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--dsn dbname=x` with PGHOST / PGPORT set reaches the server they name (libpq's defaults), and
    its error line said where; the name it was given (in every message, the jobs list, its backups'
    folder and manifests) said 'local:5432' all the same: "server 'local:5432' (127.0.0.1:PORT)"."""
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(free_port()))  # nothing listens there
    refused = connect_error(target_from_dsn("dbname=postgres user=postgres"))
    assert str(refused).startswith(f"server '127.0.0.1:{os.environ['PGPORT']}' (127.0.0.1:{os.environ['PGPORT']}")
    monkeypatch.setenv("PGHOST", str(sandbox.socket_dir))  # a socket folder is 'local', at its port
    monkeypatch.setenv("PGPORT", str(sandbox.port))
    assert target_from_dsn("dbname=postgres").label == f"local:{sandbox.port}"


def test_missing_database(sandbox: Sandbox, tcp_target: Target) -> None:
    error = connect_error(tcp_target.with_password(sandbox.password), "no_such_db_x")
    assert "database 'no_such_db_x'" in str(error)  # where we tried
    assert 'database "no_such_db_x" does not exist' in str(error)  # what the server said
    assert not error.needs_password


def test_right_password_connects(sandbox: Sandbox, tcp_target: Target) -> None:
    with connect(tcp_target.with_password(sandbox.password), "shop") as conn:
        assert conn.autocommit
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("postgres", "shop")
        assert conn.info.parameter_status("application_name") == APP_NAME


def test_password_in_dsn_stays_out_of_the_conninfo(sandbox: Sandbox) -> None:
    target = target_from_dsn(f"{sandbox.dsn(tcp=True)} password={sandbox.password}")
    assert sandbox.password not in target.conninfo() and sandbox.password not in repr(target)
    with connect(target) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert target.child_env(base={})["PGPASSWORD"] == sandbox.password


def test_a_tcp_link_that_dies_silently_is_given_up_in_minutes_not_hours() -> None:
    # QA: a link that froze mid-dump (no reset, no FIN) held the job for as long as the kernel's
    # keepalive lets a read wait (2 hours on Linux). TCP conninfos now ask libpq for keepalives that
    # give up in about 2 minutes; the user's own settings win; a socket has none to set.
    from psycopg.conninfo import conninfo_to_dict

    tcp = conninfo_to_dict(target_from_dsn("host=db1.example user=app").conninfo("shop"))
    assert (tcp["keepalives_idle"], tcp["keepalives_interval"], tcp["keepalives_count"]) == ("60", "10", "6")
    own = conninfo_to_dict(target_from_dsn("host=db1.example user=app keepalives_idle=300").conninfo("shop"))
    assert own["keepalives_idle"] == "300" and own["keepalives_count"] == "6"
    socket = conninfo_to_dict(target_from_dsn("host=/run/postgresql user=app").conninfo("shop"))
    assert "keepalives_idle" not in socket


def test_a_socket_directory_without_a_server_says_what_to_check(tmp_path: Path) -> None:
    """libpq's 'Is the server running locally…' is on an indented line: the line said only 'No such
    file or directory'."""
    error = connect_error(target_from_dsn(f"host={tmp_path} port=5432 user=postgres", label="local"))
    assert f"{tmp_path}:5432" in str(error) and "No such file or directory" in str(error)
    assert "is the server running on this machine" in str(error), str(error)


def test_an_unknown_service_says_where_services_are_defined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    services = tmp_path / "pg_service.conf"
    services.write_text("[other]\nhost=127.0.0.1\n")
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    error = connect_error(target_from_dsn("service=nope", label="svc"))
    assert 'definition of service "nope" not found' in str(error) and "PGSERVICEFILE" in str(error), str(error)
    assert not error.needs_password


def test_keepalives_reach_a_tcp_host_named_in_a_service_file_or_pghost(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: only a host written in the profile got them; a pg_service.conf entry (how many DBAs name
    remote servers) or PGHOST left a dump on a dead link for the kernel's two hours. A service's
    own keepalives are left to it (ours in the conninfo would beat them)."""
    from psycopg.conninfo import conninfo_to_dict

    services = tmp_path / "pg_service.conf"
    services.write_text("[remote]\nhost=db1.example\nuser=app\n\n[tuned]\nhost=db2.example\nkeepalives_idle=300\n")
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    remote = conninfo_to_dict(target_from_dsn("service=remote").conninfo("shop"))
    assert remote["keepalives_idle"] == "60" and remote["keepalives_count"] == "6", remote
    tuned = conninfo_to_dict(target_from_dsn("service=tuned").conninfo("shop"))
    assert "keepalives_idle" not in tuned and "keepalives_count" not in tuned, tuned
    monkeypatch.setenv("PGHOST", "db3.example")
    from_env = conninfo_to_dict(target_from_dsn("user=app").conninfo("shop"))
    assert from_env["keepalives_idle"] == "60", from_env
    monkeypatch.setenv("PGHOST", "/run/postgresql")
    assert "keepalives_idle" not in conninfo_to_dict(target_from_dsn("user=app").conninfo("shop"))


def test_a_server_that_refuses_the_role_says_what_to_do(sandbox: Sandbox, tcp_target: Target) -> None:
    """A role the server refuses (a pg_hba.conf reject line, NOLOGIN, no CONNECT on the database) was
    libpq's line alone, without what to do (QA)."""
    role = "t_refused_" + uuid.uuid4().hex[:6]
    sandbox.psql(f"CREATE ROLE {role} LOGIN PASSWORD 'pw'; CREATE ROLE {role}_nologin NOLOGIN PASSWORD 'pw';")
    sandbox.create_database(role)
    sandbox.psql(f"REVOKE CONNECT ON DATABASE {role} FROM PUBLIC;")
    hba = sandbox.data_dir / "pg_hba.conf"
    rules = hba.read_text()
    try:
        with hba.open("w") as rewritten:  # a reject line for this role only, first (truncating keeps the owner)
            rewritten.write(f"host all {role}_rejected 127.0.0.1/32 reject\n{rules}")
        sandbox.psql(f"CREATE ROLE {role}_rejected LOGIN PASSWORD 'pw'; SELECT pg_reload_conf();")
        cases = [(f"{role}_rejected", "postgres", "pg_hba.conf has a reject line for this user"),
                 (f"{role}_nologin", "postgres", "the role is NOLOGIN"),
                 (role, role, "GRANT CONNECT ON DATABASE")]
        for user, dbname, advice in cases:
            target = target_from_dsn(f"{tcp_target.conninfo()} user={user}", label="sandbox").with_password("pw")
            error = connect_error(target, dbname)
            assert advice in str(error) and not error.needs_password, str(error)
    finally:
        with hba.open("w") as restored:
            restored.write(rules)
        sandbox.psql("SELECT pg_reload_conf();")
        sandbox.drop_database(role)
        sandbox.psql(f"DROP ROLE IF EXISTS {role}; DROP ROLE IF EXISTS {role}_nologin; "
                     f"DROP ROLE IF EXISTS {role}_rejected;")


@pytest.mark.parametrize("cluster", ["sandbox", "other_sandbox"])
def test_the_tool_s_sessions_keep_no_timeout_of_the_role_s_or_the_database_s(
        cluster: str, request: pytest.FixtureRequest) -> None:
    """A database with `statement_timeout = 1ms` (set for its applications) failed our dump in its
    catalog look-ups, one in a few runs, where pg_dump alone sets its session's timeouts to 0 (QA)."""
    sandbox: Sandbox = request.getfixturevalue(cluster)
    db = f"timeouts_{uuid.uuid4().hex[:8]}"
    sandbox.create_database(db)
    names = ["statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"]
    if sandbox.major >= 17:
        names.append("transaction_timeout")
    try:
        sandbox.psql("; ".join(f"ALTER DATABASE {db} SET {name} = 1" for name in names))
        target = target_from_dsn(sandbox.dsn())
        # Many connections: the timer of the set-up's own statement, under 1 ms, sometimes fires as
        # it ends, and the server sent that cancel as the answer to the caller's first statement
        # (1 connection in 40 on a busy machine, 1 in 300 idle; a CI run failed on it).
        for _ in range(500):
            with connect(target, db, autocommit=False) as conn:
                shown = [conn.execute(f"SHOW {name}").fetchone()[0] for name in names]  # type: ignore[index]
                assert shown == ["0"] * len(names), shown
                conn.rollback()
        with connect(target, db, autocommit=False) as conn:
            # A catalog read far longer than 1 ms, in a transaction (the rollback must not undo it).
            conn.execute("SELECT count(*) FROM pg_attribute a, generate_series(1, 20)").fetchone()
            conn.rollback()
            assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)
    finally:
        sandbox.psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
