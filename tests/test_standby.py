"""Writing onto a hot standby (a read-only server in recovery) is refused before anything runs.

One cluster of its own for the module, restarted as a standby (Sandbox.restart_as_standby): the
session's cannot be made one. What is written onto it comes from the session's `shop`.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cliutil import run_cli

from pgbackup_tui.core.sandbox import Sandbox

REFUSAL = "is a standby (in recovery, read-only) and takes no writes; nothing was done"
EMPTY_DB = "empty_here"  # made before the restart: an existing, empty target on the standby


@pytest.fixture(scope="module")
def standby() -> Iterator[Sandbox]:
    cluster = Sandbox().start()
    try:
        cluster.create_database(EMPTY_DB)
        cluster.restart_as_standby()
        assert cluster.psql("SELECT pg_is_in_recovery()").strip() == "t"
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def copies(sandbox, tmp_path_factory) -> tuple[Path, Path]:
    """A CSV export and a custom archive of one table of the session's `shop`."""
    where = tmp_path_factory.mktemp("copies")
    env = {**os.environ, "PGBACKUP_TUI_HOME": str(where / "home")}
    folder = where / "csv"
    exported = run_cli("csv", "export", "--dsn", sandbox.dsn(), "--db", "shop", "--table", "public.starname",
                       "--output", str(folder), env=env)
    assert exported.returncode == 0, exported.stderr
    archive = where / "starname.dump"
    subprocess.run([str(sandbox.bin_dir / "pg_dump"), "--format=c", "--table=public.starname", f"--file={archive}",
                    f"--dbname={sandbox.dsn('shop')}"], check=True, capture_output=True)
    return folder, archive


def _refused(result: subprocess.CompletedProcess, standby: Sandbox) -> str:
    context = f"{result.args[3:]}: exit {result.returncode}, stderr {result.stderr!r}"
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, context
    assert f"server 'local:{standby.port}' {REFUSAL}" in lines[0], context
    return lines[0].split(": ", 2)[-1]  # the words after "pgbackup-tui: failed:"


def _nothing_on_record(home: Path) -> None:
    """Every job ended owning nothing, and a later command has nothing to undo nor to say."""
    for state in (home / "state" / "jobs").glob("*/state.json"):
        assert json.loads(state.read_text()).get("owned") == [], state.read_text()
    later = run_cli("jobs", "list")
    assert later.returncode == 0 and "undone" not in later.stderr and later.stderr == "", later.stderr


@pytest.mark.parametrize("create", [False, True], ids=["into-existing", "create"])
def test_csv_import_onto_a_standby_is_refused_as_a_restore_is(standby, copies, home, create):
    # QA: csv import onto a standby failed (exit 1) at its first statement, where restore said exit 2, and a
    # later command named "undone: database …" for a database that was never made.
    folder, archive = copies
    target = ["--db", "made_here", "--create"] if create else ["--db", EMPTY_DB]
    imported = run_cli("csv", "import", str(folder), "--dsn", standby.dsn(), *target)
    restored = run_cli("restore", str(archive), "--dsn", standby.dsn(), *target)
    assert _refused(imported, standby) == _refused(restored, standby)
    _nothing_on_record(home)
    assert standby.psql("SELECT datname FROM pg_database WHERE datname = 'made_here'").strip() == ""


def test_a_cluster_restore_onto_a_standby_is_refused_before_its_globals(standby, home, tmp_path):
    script = tmp_path / "all.sql"
    script.write_text("--\n-- PostgreSQL database cluster dump\n--\n\nCREATE ROLE never_made;\n\n"
                      "--\n-- PostgreSQL database cluster dump complete\n--\n\n")
    _refused(run_cli("restore", str(script), "--dsn", standby.dsn()), standby)
    _nothing_on_record(home)
