"""An archive path that is neither a file nor a folder (a FIFO) is refused before anything runs:
opening it would block the command (or a runner) for good, past any Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

import pytest

from cliutil import run_cli
from dbcompare import table_fingerprints, user_tables
from pgbackup_tui.core.archive import identify_archive, plain_drop_section
from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.errors import ArchiveError
from pgbackup_tui.core.jobs import JobState
from pgbackup_tui.core.pgtools import find_client_tools
from pgbackup_tui.core.plain_script import without_large_objects_transactions
from pgbackup_tui.core.plans import RestorePlan
from pgbackup_tui.core.restore import RestoreJob
from pgbackup_tui.core.sandbox import Sandbox


def test_a_fifo_as_the_archive_is_refused_at_once(sandbox, home, tmp_path):
    fifo = tmp_path / "fifo.dump"
    os.mkfifo(fifo)
    for extra in ([], ["--dry-run"]):
        result = run_cli("restore", str(fifo), "--dsn", sandbox.dsn(), "--db", "never_made", "--create", *extra,
                         timeout=30)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [
            f"pgbackup-tui: error: {fifo}: not a regular file or a directory (an archive is one of those)"]


def test_an_archive_that_cannot_be_read_is_refused_naming_it(sandbox, home, tmp_path):
    """An archive whose read fails (a failing disk's I/O error; /proc/self/mem reads as one) was an
    "internal error: OSError(5, 'Input/output error')" of the restore, exit 1, and `backups adopt`
    said "error: Input/output error" without the file, exit 1 (QA)."""
    unreadable = tmp_path / "bad-sector.dump"
    unreadable.symlink_to("/proc/self/mem")
    folder = tmp_path / "bad-sector.dir"
    folder.mkdir()
    (folder / "toc.dat").symlink_to("/proc/self/mem")
    for archive, named in ((unreadable, unreadable), (folder, folder / "toc.dat")):
        for args in (["restore", str(archive), "--dsn", sandbox.dsn(), "--db", "never_made", "--create"],
                     ["backups", "adopt", str(archive)]):
            result = run_cli(*args, timeout=30)
            assert result.returncode == 2, result.stderr
            [line] = result.stderr.strip().splitlines()
            assert f"{named}: cannot read it (Input/output error)" in line and "OSError" not in line, line


def test_a_pg_dump_create_script_is_not_restored_into_another_database(sandbox, home, tmp_path, fresh_db_name):
    """`pg_dump --create` writes CREATE DATABASE and \\connect into the file: psql would make and
    fill the database it names while the job reported the one --db names, left empty. Refused
    before anything is created, naming both; a drill of it is refused too (not a failed check)."""
    source = f'{fresh_db_name} "x'  # a name that needs quoting in the script
    sandbox.psql(f'CREATE DATABASE "{fresh_db_name} ""x"')
    try:
        sandbox.psql("CREATE TABLE t (a int); INSERT INTO t VALUES (1)", source)
        script = tmp_path / "with-create.sql"
        subprocess.run([find_client_tools(sandbox.major).pg_dump, "--create", "--file", str(script),
                        "--dbname", sandbox.dsn(source)], check=True)
    finally:
        sandbox.psql(f'DROP DATABASE "{fresh_db_name} ""x"')
    before = sandbox.psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database")

    refused = run_cli("restore", str(script), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    assert refused.returncode == 2, refused.stderr
    assert f"creates database '{source}'" in refused.stderr and f"into '{fresh_db_name}'" in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert sandbox.psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database") == before

    adopted = run_cli("backups", "adopt", str(script))
    assert adopted.returncode == 0, adopted.stderr
    drilled = run_cli("backups", "drill", adopted.stdout.split()[0], "--dsn", sandbox.dsn())
    assert drilled.returncode == 2 and "cannot be drilled" in drilled.stderr
    assert sandbox.psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database") == before


def test_a_pg_dumpall_file_is_not_restored_into_one_database(sandbox, home, tmp_path, fresh_db_name):
    """The restore dialog's job (RestoreJob: one database) took a small cluster's pg_dumpall file for
    a plain dump (pg_dump's header comes in its first KiB, after a short Roles section), where the
    catalog and `restore` know it as pg_dumpall's: psql ran it and created the file's roles on the
    target server before it stopped at one that existed. It is refused before anything runs, naming
    what it is (the Backups tab and `restore FILE --server` restore it whole)."""
    role = f"a_{fresh_db_name}"  # sorts before the superuser's CREATE ROLE, which fails on any server
    with Sandbox() as small:  # a new cluster: its Roles section is short, as a small server's is
        small.psql(f"CREATE ROLE {role} NOLOGIN")
        script = tmp_path / "cluster.sql"
        subprocess.run([find_client_tools(small.major).pg_dumpall, "--dbname", small.dsn(), "--file", str(script)],
                       check=True)
    with pytest.raises(ArchiveError, match="a pg_dumpall file"):
        identify_archive(script)
    plan = RestorePlan(archive=script, target=target_from_dsn(sandbox.dsn()), dbname=fresh_db_name, create=True)
    try:
        result = asyncio.run(RestoreJob(plan).run())
        assert result.state is JobState.FAILED and "a pg_dumpall file" in result.message, result.message
        assert sandbox.psql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{role}'").strip() == "0"
    finally:
        sandbox.psql(f"DROP ROLE IF EXISTS {role}")
    assert sandbox.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{fresh_db_name}'").strip() == "0"


def test_a_pg_dump_clean_script_restores_into_a_new_database(sandbox, home, tmp_path, fresh_db_name):
    """`pg_dump --clean` (without --if-exists) begins with DROPs of the source's objects: on a new
    database each fails, and ON_ERROR_STOP stopped the restore at the first. They are skipped;
    everything else runs, and the copy matches the source."""
    script = tmp_path / "with-clean.sql"
    subprocess.run([find_client_tools(sandbox.major).pg_dump, "--clean", "--file", str(script),
                    "--dbname", sandbox.dsn("shop")], check=True)
    drops = plain_drop_section(script)
    assert drops is not None and drops[2] > 10
    assert script.read_bytes()[drops[0]:drops[1]].startswith((b"DROP ", b"ALTER ", b"SELECT pg_catalog.lo_unlink"))
    assert b"\nCREATE TABLE " not in script.read_bytes()[drops[0]:drops[1]]

    restored = run_cli("restore", str(script), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    assert restored.returncode == 0, restored.stderr
    tables = user_tables(sandbox, "shop")
    assert table_fingerprints(sandbox, fresh_db_name, tables) == table_fingerprints(sandbox, "shop", tables)

    # A script without --clean has no such section.
    plain = tmp_path / "plain.sql"
    subprocess.run([find_client_tools(sandbox.major).pg_dump, "--file", str(plain), "--schema-only",
                    "--dbname", sandbox.dsn("shop")], check=True)
    assert plain_drop_section(plain) is None


def test_a_plain_dump_with_large_objects_in_one_transaction_is_all_or_nothing(sandbox, home, tmp_path, empty_db):
    """A plain dump holds its large objects between a BEGIN; and a COMMIT; of its own: under psql
    --single-transaction that COMMIT ended the one transaction, so a failure after it (a GRANT to a
    role this server lacks) left the tables and large objects in a target said to be "unchanged
    (one transaction, rolled back)". With the role there, the same file restores whole."""
    script = tmp_path / "shop.sql"
    subprocess.run([find_client_tools(sandbox.major).pg_dump, "--file", str(script), "--dbname", sandbox.dsn("shop")],
                   check=True)
    assert b"; Type: BLOBS;" in script.read_bytes() and b"\nCOMMIT;\n" in script.read_bytes()
    role = f"r_{empty_db}"
    with script.open("ab") as tail:  # the file's last statement (pg_dump's closing comment stays in its tail)
        tail.write(f"GRANT SELECT ON TABLE public.events TO {role};\n".encode())
    failed = run_cli("restore", str(script), "--dsn", sandbox.dsn(), "--db", empty_db, "--single-transaction")
    assert failed.returncode == 1, failed.stderr
    assert "unchanged (one transaction, rolled back)" in failed.stderr, failed.stderr
    assert user_tables(sandbox, empty_db) == []
    assert sandbox.psql("SELECT count(*) FROM pg_largeobject_metadata", empty_db).strip() == "0"
    sandbox.psql(f"CREATE ROLE {role}")
    try:
        restored = run_cli("restore", str(script), "--dsn", sandbox.dsn(), "--db", empty_db, "--single-transaction")
        assert restored.returncode == 0, restored.stderr
        assert "already a transaction in progress" not in restored.stderr, restored.stderr
        assert sandbox.psql("SELECT count(*) FROM pg_largeobject_metadata", empty_db) == \
            sandbox.psql("SELECT count(*) FROM pg_largeobject_metadata", "shop")
    finally:
        sandbox.drop_database(empty_db)
        sandbox.psql(f"DROP ROLE {role}")


def test_only_the_large_objects_own_transaction_lines_are_left_out() -> None:
    """A procedure's body may hold a line `COMMIT;` of its own: kept, as are a COPY's rows."""
    script = (b"--\n-- Name: p(); Type: PROCEDURE; Schema: public; Owner: postgres\n--\n\n"
              b"CREATE PROCEDURE public.p() LANGUAGE plpgsql AS $$\nBEGIN\nCOMMIT;\nEND $$;\n\n"
              b"--\n-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\n"
              b"COPY public.t (x) FROM stdin;\nCOMMIT;\n\\.\n\n"
              b"--\n-- Data for Name: BLOBS; Type: BLOBS; Schema: -; Owner: -\n--\n\n"
              b"BEGIN;\n\nSELECT pg_catalog.lo_open('16384', 131072);\nSELECT pg_catalog.lo_close(0);\n\nCOMMIT;\n\n"
              b"--\n-- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres\n--\n\nCOMMIT;\n")
    kept = b"".join(without_large_objects_transactions(iter([script[:70], script[70:]])))
    assert kept == script.replace(b"\nBEGIN;\n\nSELECT", b"\n\nSELECT").replace(b"lo_close(0);\n\nCOMMIT;\n",
                                                                                  b"lo_close(0);\n\n")


def test_a_clean_script_whose_drops_keep_public_restores_too(sandbox, home, tmp_path, fresh_db_name):
    """With public owned by another role (common after pg_upgrade from 14), pg_dump --clean writes
    `-- *not* dropping schema, since initdb creates it` among its drops: the DROPs after it are
    skipped too."""
    role = f"r_{fresh_db_name}"
    sandbox.psql(f"CREATE ROLE {role}")
    sandbox.create_database(fresh_db_name)
    target = f"{fresh_db_name}_r"
    try:
        sandbox.psql(f"ALTER SCHEMA public OWNER TO {role}; CREATE SCHEMA app; CREATE TABLE app.x (a int);"
                     "INSERT INTO app.x VALUES (1); CREATE TABLE public.y (b int)", fresh_db_name)
        script = tmp_path / "keeps-public.sql"
        subprocess.run([find_client_tools(sandbox.major).pg_dump, "--clean", "--file", str(script),
                        "--dbname", sandbox.dsn(fresh_db_name)], check=True)
        assert b"-- *not* dropping schema" in script.read_bytes()
        restored = run_cli("restore", str(script), "--dsn", sandbox.dsn(), "--db", target, "--create")
        assert restored.returncode == 0, restored.stderr
        assert user_tables(sandbox, target) == ["app.x", "public.y"]
    finally:
        sandbox.drop_database(target)
        sandbox.drop_database(fresh_db_name)
        sandbox.psql(f"DROP ROLE {role}")


def test_a_partial_restore_names_its_first_error_and_what_to_do(sandbox, home, fresh_db_name):
    """An archive whose tables' owner this server lacks: pg_restore goes past the ALTER ... OWNER
    (exit 3, partial); the line names that error and --no-owner, with which it restores whole."""
    role = f"r_{fresh_db_name}"
    sandbox.psql(f"CREATE ROLE {role}")
    sandbox.create_database(fresh_db_name)
    targets = [f"{fresh_db_name}_a", f"{fresh_db_name}_b"]
    try:
        sandbox.psql(f"CREATE TABLE t (a int); ALTER TABLE t OWNER TO {role}; INSERT INTO t VALUES (1)", fresh_db_name)
        dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--progress", "none")
        assert dumped.returncode == 0, dumped.stderr
        sandbox.psql(f"ALTER ROLE {role} RENAME TO {role}_gone")
        partial = run_cli("restore", dumped.stdout.strip(), "--dsn", sandbox.dsn(), "--db", targets[0], "--create")
        assert partial.returncode == 3, partial.stderr
        assert f'the first: role "{role}" does not exist; --no-owner' in partial.stderr
        whole = run_cli("restore", dumped.stdout.strip(), "--dsn", sandbox.dsn(), "--db", targets[1], "--create",
                        "--no-owner")
        assert whole.returncode == 0, whole.stderr
        assert sandbox.psql("SELECT count(*) FROM t", targets[1]).strip() == "1"
    finally:
        for name in [*targets, fresh_db_name]:
            sandbox.drop_database(name)
        sandbox.psql(f"DROP ROLE IF EXISTS {role}_gone; DROP ROLE IF EXISTS {role}")


def test_a_partial_restore_of_a_grant_to_a_missing_role_names_no_privileges(sandbox, home, fresh_db_name):
    """The hint named --no-owner for a GRANT to a role the server lacks, which it does not help (QA)."""
    role = f"g_{fresh_db_name}"
    sandbox.psql(f"CREATE ROLE {role}")
    sandbox.create_database(fresh_db_name)
    targets = [f"{fresh_db_name}_a", f"{fresh_db_name}_b"]
    try:
        sandbox.psql(f"CREATE TABLE t (a int); GRANT SELECT ON t TO {role}; INSERT INTO t VALUES (1)", fresh_db_name)
        dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--progress", "none")
        assert dumped.returncode == 0, dumped.stderr
        sandbox.psql(f"ALTER ROLE {role} RENAME TO {role}_gone")
        partial = run_cli("restore", dumped.stdout.strip(), "--dsn", sandbox.dsn(), "--db", targets[0], "--create")
        assert partial.returncode == 3, partial.stderr
        assert f'the first: role "{role}" does not exist; --no-privileges' in partial.stderr, partial.stderr
        whole = run_cli("restore", dumped.stdout.strip(), "--dsn", sandbox.dsn(), "--db", targets[1], "--create",
                        "--no-privileges")
        assert whole.returncode == 0, whole.stderr
    finally:
        for name in [*targets, fresh_db_name]:
            sandbox.drop_database(name)
        sandbox.psql(f"DROP ROLE IF EXISTS {role}_gone; DROP ROLE IF EXISTS {role}")


def test_a_partial_restore_onto_a_server_without_the_tablespace_names_it(sandbox, home, fresh_db_name):
    """pg_restore could not set a tablespace the server lacks (its objects go to the default one):
    the line said "1 error(s) ignored by pg_restore" and named none, where a statement's error is
    named with what to do (QA)."""
    space = f"Fast Disk {fresh_db_name}"
    location = sandbox.root / space
    location.mkdir()
    shutil.chown(location, sandbox.os_user)
    sandbox.psql(f"CREATE TABLESPACE \"{space}\" LOCATION '{location}'")
    target = f"{fresh_db_name}_a"
    try:
        sandbox.create_database(fresh_db_name)
        sandbox.psql(f'CREATE TABLE t (a int) TABLESPACE "{space}"; INSERT INTO t VALUES (1)', fresh_db_name)
        dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--progress", "none")
        assert dumped.returncode == 0, dumped.stderr
        sandbox.drop_database(fresh_db_name)
        sandbox.psql(f'DROP TABLESPACE "{space}"')
        partial = run_cli("restore", dumped.stdout.strip(), "--dsn", sandbox.dsn(), "--db", target, "--create")
        assert partial.returncode == 3, partial.stderr
        assert f'the first: could not set default_tablespace to "{space}"' in partial.stderr, partial.stderr
        assert "made in the default tablespace" in partial.stderr, partial.stderr
        assert sandbox.psql("SELECT count(*) FROM t", target).strip() == "1"
    finally:
        sandbox.drop_database(target)
        sandbox.drop_database(fresh_db_name)
        sandbox.psql(f'DROP TABLESPACE IF EXISTS "{space}"')
