"""An archive path that is neither a file nor a folder (a FIFO) is refused before anything runs:
opening it would block the command (or a runner) for good, past any Ctrl-C."""

from __future__ import annotations

import os
import subprocess

from cliutil import run_cli
from pgbackup_tui.core.pgtools import find_client_tools


def test_a_fifo_as_the_archive_is_refused_at_once(sandbox, home, tmp_path):
    fifo = tmp_path / "fifo.dump"
    os.mkfifo(fifo)
    for extra in ([], ["--dry-run"]):
        result = run_cli("restore", str(fifo), "--dsn", sandbox.dsn(), "--db", "never_made", "--create", *extra,
                         timeout=30)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [
            f"pgbackup-tui: error: {fifo}: not a regular file or a directory (an archive is one of those)"]


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
