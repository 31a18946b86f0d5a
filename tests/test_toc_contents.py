"""`backups show` counts large objects as large objects: pg_dump's TOC has two kinds of entry for
them (BLOB per object and one BLOBS before 17; BLOB METADATA per group and BLOBS per group from
17), which it listed as "1 blob, 1 blobs". Archives of an older and a newer pg_dump, on the sandbox."""

from __future__ import annotations

import json
import subprocess

import pytest

from cliutil import run_cli
from pgbackup_tui.core.pgtools import installed_client_tools
from pgbackup_tui.core.toc_contents import contents_text


def test_large_objects_are_counted_as_such_in_archives_of_old_and_new_pg_dump(sandbox, empty_db, home, tmp_path):
    # Three large objects: one with a comment and a grant (a group of its own from 17 on), two alike
    # (one group, tagged FIRST..LAST).
    sandbox.psql("CREATE TABLE docs (id int, doc oid);"
                 "INSERT INTO docs SELECT g, lo_from_bytea(0, convert_to('doc ' || g, 'UTF8')) "
                 "FROM generate_series(1, 3) g;", empty_db)
    first = sandbox.psql("SELECT min(doc) FROM docs", empty_db).strip()
    sandbox.psql(f"COMMENT ON LARGE OBJECT {first} IS 'the first'; GRANT SELECT ON LARGE OBJECT {first} TO PUBLIC;",
                 empty_db)
    fit = [tools for tools in installed_client_tools() if tools.major >= sandbox.major]
    old = [tools for tools in fit if tools.major < 17]
    new = [tools for tools in fit if tools.major >= 17]
    if not old or not new:
        pytest.fail(f"this test needs a pg_dump before 17 and one of 17 or later for a server {sandbox.major}; "
                    f"found {[t.version for t in fit]}")
    for tools in (old[0], new[0]):
        archive = tmp_path / f"lo_{tools.major}.dump"
        subprocess.run([tools.pg_dump, "-Fc", "-f", str(archive), sandbox.dsn(empty_db)], check=True,
                       capture_output=True)
        adopted = run_cli("backups", "adopt", str(archive))
        assert adopted.returncode == 0, adopted.stderr
        backup_id = adopted.stdout.split()[0]
        shown = run_cli("backups", "show", backup_id)
        assert shown.returncode == 0, shown.stderr
        contents = next(line for line in shown.stdout.splitlines() if line.startswith("contents"))
        assert "3 large objects" in contents and "blob" not in contents, (tools.version, contents)
        data = json.loads(run_cli("backups", "show", backup_id, "--json").stdout)
        assert data["contents"]["large_objects"] == 3


def test_a_manifest_s_counts_say_what_they_can():
    # The manifest's counts are entries only: a 17+ archive's groups are said as groups, never as objects.
    assert contents_text({"BLOB": 1, "BLOBS": 1, "TABLE": 2}) == "1 large object, 2 tables"
    assert contents_text({"BLOB METADATA": 2, "BLOBS": 2, "TABLE": 1}) == "large objects in 2 groups, 1 table"
    assert contents_text({"BLOB METADATA": 2, "BLOBS": 2}, large_objects=3) == "3 large objects"
    assert contents_text({"TABLE": 1}) == "1 table"


def test_counts_by_kind_are_said_in_the_plural():
    # QA: the details (TUI and `backups show`) read "28 table, 24 constraint, 9 index".
    assert contents_text({"TABLE": 28, "CONSTRAINT": 24, "INDEX": 9, "INDEX ATTACH": 4, "POLICY": 2,
                          "FK CONSTRAINT": 1}) == (
        "24 constraints, 1 fk constraint, 9 indexes, 4 index attaches, 2 policies, 28 tables")
    # Mass nouns and phrases stay as pg_restore names them.
    assert contents_text({"TABLE DATA": 27, "SEQUENCE OWNED BY": 2, "MATERIALIZED VIEW DATA": 2}) == (
        "2 materialized view data, 2 sequence owned by, 27 table data")
    # A word already plural: pg_dump's extended STATISTICS (not "statisticses").
    assert contents_text({"STATISTICS": 2, "STATISTICS DATA": 3}) == "2 statistics, 3 statistics data"


def test_show_says_a_row_and_a_table_without_rows_of_its_own(sandbox, empty_db, home, tmp_path):
    # "1 rows", and "? rows" for a partitioned table (its rows are its partitions'), read as rows
    # that could not be counted.
    sandbox.psql("CREATE TABLE one (id int); INSERT INTO one VALUES (1);"
                 "CREATE TABLE parted (id int) PARTITION BY RANGE (id);"
                 "CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (10);"
                 "INSERT INTO parted SELECT generate_series(1, 3)", empty_db)
    done = run_cli("dump", "--dsn", sandbox.dsn(), "--db", empty_db, "--output", str(tmp_path / "a.dump"),
                   "--progress", "none")
    assert done.returncode == 0, done.stderr
    backup_id = json.loads(run_cli("backups", "list", "--json").stdout)[0]["id"]
    shown = run_cli("backups", "show", backup_id).stdout.splitlines()
    tables = {line.split()[1]: line.split(None, 2)[2] for line in shown if line.startswith("  table")}
    assert tables == {"public.one": "1 row", "public.parted": "no rows of its own in the archive",
                      "public.parted_low": "3 rows"}, shown
