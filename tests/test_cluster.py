"""Whole clusters and globals: pg_dumpall files and cluster sets, restored onto a second empty cluster.

Two clusters of their own (a source with roles, memberships and a few databases, and an empty
target), so that what a whole-cluster restore does cannot touch the shared `sandbox`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo
import pytest

from cliutil import run_cli
from dbcompare import table_fingerprints
from pgbackup_tui.core.archive import identify_archive
from pgbackup_tui.core.errors import ArchiveError
from pgbackup_tui.core.catalog import entry_for, read_manifest
from pgbackup_tui.core.checksums import checksum_archive
from pgbackup_tui.core.cluster_plans import ClusterRestorePlan, DumpallPlan
from pgbackup_tui.core.cluster_restore import ClusterRestoreJob, writable_sessions
from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.dumpall import DumpallJob
from pgbackup_tui.core.job_events import LogLine, Owned
from pgbackup_tui.core.job_store import KEPT_MEMBER
from pgbackup_tui.core.jobs import Job, JobState, Outcome, ProgressUpdated
from pgbackup_tui.core.defaults import supports
from pgbackup_tui.core.pgtools import find_client_tools, installed_client_tools
from pgbackup_tui.core.progress import ProgressSnapshot
from pgbackup_tui.core.progress.count import CountProgress, Step
from pgbackup_tui.core.progress.priors import OUTPUT_PER_HEAP
from pgbackup_tui.core.sandbox import Sandbox
from pgbackup_tui.core.verify import verify_backup
from throttle_proxy import ThrottleProxy

SOURCE_SQL = """
CREATE ROLE app_owner LOGIN CREATEDB CONNECTION LIMIT 7 PASSWORD 'owner-secret';
CREATE ROLE reporting NOLOGIN;
CREATE ROLE analyst LOGIN IN ROLE reporting VALID UNTIL '2031-01-01';
CREATE ROLE "Odd Name" NOLOGIN;
GRANT reporting TO "Odd Name";
ALTER ROLE analyst SET work_mem = '32MB';
CREATE DATABASE sales OWNER app_owner;
CREATE DATABASE "Hr Data" ENCODING 'LATIN1' LOCALE 'C' TEMPLATE template0;
COMMENT ON ROLE "Odd Name" IS E'notes\nCREATE ROLE x;\n-- Tablespaces\nend';
"""
SALES_SQL = """
CREATE TABLE orders (id int PRIMARY KEY, item text, qty int);
INSERT INTO orders SELECT g, 'item ' || g, g % 7 FROM generate_series(1, 500) g;
ALTER TABLE orders OWNER TO app_owner;
GRANT SELECT ON orders TO reporting;
-- Lines a whole-cluster restore must pass as they are: only the Roles section's CREATE ROLE are its own.
CREATE TABLE ddl_log (stmt text);
INSERT INTO ddl_log VALUES ('CREATE ROLE alice;'), (E'CREATE ROLE "Bob";');
CREATE FUNCTION make_role() RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
CREATE ROLE temp_worker;
END $f$;
"""
HR_SQL = "CREATE TABLE staff (name text); INSERT INTO staff VALUES ('Zoë'), ('José');"
ROLES = """SELECT rolname || ':' || rolcanlogin || rolcreatedb || rolconnlimit || coalesce(rolvaliduntil::text, '-')
           FROM pg_roles WHERE rolname IN ('app_owner', 'reporting', 'analyst', 'Odd Name') ORDER BY 1"""
MEMBERS = """SELECT r.rolname || ' in ' || g.rolname FROM pg_auth_members m
             JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
             WHERE g.rolname = 'reporting' ORDER BY 1"""


@pytest.fixture(scope="module")
def source(sandbox: Sandbox) -> Iterator[Sandbox]:
    with Sandbox(bin_dir=sandbox.bin_dir) as cluster:
        cluster.psql(SOURCE_SQL)
        cluster.psql(SALES_SQL, "sales")
        cluster.psql(HR_SQL, "Hr Data")
        yield cluster


@pytest.fixture
def target(sandbox: Sandbox) -> Iterator[Sandbox]:
    with Sandbox(bin_dir=sandbox.bin_dir) as cluster:
        yield cluster


def cli(cluster: Sandbox, *args: str):
    return run_cli(*args, "--dsn", cluster.dsn(), "--bin-dir", str(cluster.bin_dir))


def damage_unseen(set_folder: Path, member_file: str) -> None:
    """Cut a set's member in half as if before its size and checksums were taken (they are taken
    again): not found before the restore starts (a changed byte is, since), so the member's own
    restore fails half way."""
    path = set_folder / member_file
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    recorded = {"checksums": checksum_archive(path), "bytes": path.stat().st_size}
    own = Path(f"{path}.manifest.json")
    own.write_text(json.dumps(json.loads(own.read_text()) | recorded))
    sidecar = Path(f"{set_folder}.manifest.json")
    manifest = json.loads(sidecar.read_text())
    for member in manifest["members"]:
        if member["file"] == member_file:
            member.update(recorded)
    sidecar.write_text(json.dumps(manifest))


def assert_same_cluster(source: Sandbox, target: Sandbox, databases=("sales", "Hr Data")) -> None:
    assert target.psql(ROLES) == source.psql(ROLES)
    assert target.psql(MEMBERS) == source.psql(MEMBERS)
    assert target.psql("SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s "
                       "JOIN pg_roles r ON r.oid = s.setrole WHERE rolname = 'analyst'").strip() == "work_mem=32MB"
    comment = "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = 'Odd Name'"
    assert target.psql(comment) == source.psql(comment)
    for db in databases:
        assert table_fingerprints(target, db) == table_fingerprints(source, db), db
    if "sales" in databases:
        body = "SELECT prosrc FROM pg_proc WHERE proname = 'make_role'"
        assert target.psql(body, "sales") == source.psql(body, "sales") and "CREATE ROLE temp_worker;" in target.psql(
            body, "sales")
    encoding = "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'Hr Data'"
    if "Hr Data" in databases:
        assert target.psql(encoding).strip() == "LATIN1"


def test_globals_only_restore_onto_a_server_that_has_some_roles(source, target, home, tmp_path):
    out = tmp_path / "globals.sql"
    # A name with a line break is written over two lines (CREATE ROLE "line⏎break";): it was not made
    # tolerant, and psql stopped at it on a server that had it, the roles before it made and altered.
    broken = 'CREATE ROLE "line\nbreak" NOLOGIN'
    source.psql(broken)
    try:
        dumped = cli(source, "dumpall", "--globals-only", "--output", str(out))
    finally:
        source.psql('DROP ROLE "line\nbreak"')
    assert dumped.returncode == 0, dumped.stderr
    target.psql(broken)
    text = out.read_text()
    assert "CREATE ROLE analyst" in text and "CREATE DATABASE" not in text
    assert "owner-secret" not in text and "SCRAM-SHA-256" not in text  # no role passwords by default
    target.psql("CREATE ROLE reporting NOLOGIN")  # already there: reported, not fatal
    restored = cli(target, "restore", str(out))
    assert restored.returncode == 0, restored.stderr
    assert "already existed: kept, then altered as the file says" in restored.stderr and "reporting" in restored.stderr
    assert target.psql(ROLES) == source.psql(ROLES)
    assert target.psql(MEMBERS) == source.psql(MEMBERS)


def test_the_role_a_restore_connects_as_keeps_its_attributes_and_password(source, target, home, tmp_path):
    """The file's `ALTER ROLE app_owner WITH NOSUPERUSER ... PASSWORD '...'` run as app_owner would
    take superuser from the role the restore runs as, half way through it (its next CREATE ROLE
    then fails), and give it the source's password: it is left out, and said."""
    out = tmp_path / "roles.sql"
    dumped = cli(source, "dumpall", "--roles-only", "--with-role-passwords", "--output", str(out))
    assert dumped.returncode == 0, dumped.stderr
    assert "ALTER ROLE app_owner WITH NOSUPERUSER" in out.read_text()
    target.psql("CREATE ROLE app_owner SUPERUSER LOGIN PASSWORD 'target-secret'")
    before = target.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'app_owner'")
    as_app_owner = target.dsn().replace(f"user={target.superuser}", "user=app_owner")
    assert "user=app_owner" in as_app_owner
    restored = run_cli("restore", str(out), "--dsn", as_app_owner, "--bin-dir", str(target.bin_dir))
    assert restored.returncode == 0, restored.stderr
    assert "role app_owner is the role this restore connects as: its attributes and password were kept" in (
        restored.stderr)
    assert target.psql("SELECT rolsuper::text || rolconnlimit FROM pg_roles WHERE rolname = 'app_owner'").strip() == (
        "true-1")
    assert target.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'app_owner'") == before
    assert target.psql(MEMBERS) == source.psql(MEMBERS)  # the other roles as the file says
    analyst = "SELECT rolcanlogin::text || rolvaliduntil::date FROM pg_roles WHERE rolname = 'analyst'"
    assert target.psql(analyst) == source.psql(analyst)


def test_role_passwords_only_when_asked(source, home, tmp_path):
    out = tmp_path / "with.sql"
    dumped = cli(source, "dumpall", "--roles-only", "--with-role-passwords", "--output", str(out))
    assert dumped.returncode == 0, dumped.stderr
    assert "SCRAM-SHA-256" in out.read_text()
    assert oct(out.stat().st_mode & 0o777) == "0o600"


def test_a_whole_cluster_file_round_trips(source, target, home, tmp_path):
    out = tmp_path / "cluster.sql"
    # A database read-only by default: pg_dump writes its ALTER DATABASE … SET, then \connect's to it to
    # fill it, a session that took the setting (psql stopped at its first CREATE TABLE, exit 1).
    read_only = "ALTER DATABASE sales SET default_transaction_read_only = "
    source.psql(read_only + "on")
    try:
        dumped = cli(source, "dumpall", "--output", str(out), "--progress", "jsonl")
    finally:
        source.psql(read_only + "off")
    assert dumped.returncode == 0, dumped.stderr
    events = [json.loads(line) for line in dumped.stdout.splitlines()]
    assert events[-1]["event"] == "finished" and events[-2]["percent"] == 100
    # Which server, as a dump's manifest says (it was all null): the catalog matches profiles by it.
    key = json.loads((tmp_path / "cluster.sql.manifest.json").read_text())["server_key"]
    assert key["port"] == str(source.port) and key["host"] == str(source.socket_dir) and key["system_identifier"]
    restored = cli(target, "restore", str(out))
    assert restored.returncode == 0, restored.stderr
    assert_same_cluster(source, target)
    assert target.psql("SHOW default_transaction_read_only", "sales").strip() == "on"  # as dumped


def test_a_whole_cluster_file_stops_at_a_database_that_exists(source, target, home, tmp_path):
    """Ours (its manifest names its databases): refused before anything runs; it ran the roles and
    the databases before that one, then stopped (QA). A foreign file (no manifest) still stops at
    psql's error, and says what stays."""
    out = tmp_path / "cluster.sql"
    assert cli(source, "dumpall", "--output", str(out)).returncode == 0
    target.psql("CREATE DATABASE sales")
    refused = cli(target, "restore", str(out))
    assert refused.returncode == 2 and "database 'sales' already exists" in refused.stderr, refused.stderr
    assert "nothing was restored" in refused.stderr
    assert target.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'app_owner'").strip() == "0"
    assert target.psql("SELECT count(*) FROM pg_database WHERE datname = 'Hr Data'").strip() == "0"
    target.psql('CREATE DATABASE "Hr Data"')  # two of them: both named, not one drop and run at a time
    refused = cli(target, "restore", str(out))
    assert refused.returncode == 2, refused.stderr
    assert "databases 'Hr Data', 'sales' already exist" in refused.stderr, refused.stderr
    target.drop_database("Hr Data")
    Path(f"{out}.manifest.json").unlink()
    restored = cli(target, "restore", str(out))
    assert restored.returncode == 1
    assert '"sales" already exists' in restored.stderr and "stays on server" in restored.stderr


def test_a_cluster_set_round_trips_in_parallel(source, target, home, tmp_path):
    out = tmp_path / "all.set"
    dumped = cli(source, "dumpall", "--set", "--jobs", "2", "--output", str(out))
    assert dumped.returncode == 0, dumped.stderr
    manifest = json.loads((tmp_path / "all.set.manifest.json").read_text())
    assert manifest["kind"] == "cluster-set"
    assert {m["database"] for m in manifest["members"]} >= {"sales", "Hr Data", "postgres"}
    for member in manifest["members"]:
        assert json.loads((out / member["manifest"]).read_text())["member_of"] == "all.set"
    # Each member named by its file in the set, not in the folder all.set.partial, gone by then (QA).
    said = [line for line in next((home / "logs").glob("*-dumpall-*.log")).read_text().splitlines()
            if ": succeeded: " in line]
    sales = next(m["file"] for m in manifest["members"] if m["database"] == "sales")
    assert any(f"database sales: succeeded: {sales} (" in line for line in said), said
    assert not any(".partial" in line for line in said), said
    restored = cli(target, "restore", str(out), "--jobs", "2")
    assert restored.returncode == 0, restored.stderr
    assert_same_cluster(source, target)
    # The members it kept were on its record while it ran (for a killed runner's recovery to say):
    # off it at the end, or a later recovery would take them for things to undo.
    folders = list((home / "state" / "jobs").iterdir())
    restores = [f for f in folders if json.loads((f / "spec.json").read_text())["kind"] == "cluster-restore"]
    assert [json.loads((f / "state.json").read_text())["owned"] for f in restores] == [[]]


def test_a_set_whose_superuser_was_read_only_restores_and_names_a_kept_role_with_a_line_break(target, home,
                                                                                                  tmp_path):
    # QA: the source superuser's `ALTER ROLE … SET default_transaction_read_only = on`, which
    # globals.sql sets on the role the restore connects as, made every member's session read-only
    # ("cannot execute CREATE DATABASE in a read-only transaction"); and a role kept (it existed)
    # whose name holds a line break was missing from the "kept" list (its NOTICE took two lines).
    db = "ro_" + uuid.uuid4().hex[:8]
    target.create_database(db)
    target.psql("CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2);", db)
    target.psql('CREATE ROLE "line\nbreak" NOLOGIN')
    target.psql(f"ALTER ROLE {target.superuser} SET default_transaction_read_only = on")
    out = tmp_path / "ro.set"
    dumped = cli(target, "dumpall", "--set", "--db", db, "--output", str(out))
    assert dumped.returncode == 0, dumped.stderr
    target.psql(f"SET default_transaction_read_only = off; DROP DATABASE {db};")  # on stdin: one by one
    restored = cli(target, "restore", str(out))
    assert restored.returncode == 0, restored.stderr
    assert target.psql("SELECT count(*) FROM t", db).strip() == "2"
    [line] = [line for line in restored.stderr.splitlines() if "already existed: kept" in line]
    assert "line\\nbreak" in line, line


def test_a_subset_of_a_set(source, target, home, tmp_path):
    out = tmp_path / "all.set"
    assert cli(source, "dumpall", "--set", "--output", str(out)).returncode == 0
    restored = cli(target, "restore", str(out), "--only-db", "Hr Data")
    assert restored.returncode == 0, restored.stderr
    assert target.psql("SELECT count(*) FROM pg_database WHERE datname = 'sales'").strip() == "0"
    assert table_fingerprints(target, "Hr Data") == table_fingerprints(source, "Hr Data")
    # The member's job id its set's log gives resolved to nothing (QA): its own log is printed.
    listed = json.loads(run_cli("jobs", "list", "--json").stdout)
    set_log = Path(next(job["log_path"] for job in listed if job["kind"] == "cluster-restore"))
    member_id = set_log.read_text().split("restoring database Hr Data (job ")[1][:8]
    member_log = run_cli("jobs", "log", member_id)
    assert member_log.returncode == 0 and "pg_restore" in member_log.stdout, member_log.stderr
    shown = run_cli("jobs", "show", member_id[:5])
    assert shown.returncode == 2 and "ran inside another job" in shown.stderr, shown.stderr
    wrong = cli(target, "restore", str(out), "--only-db", "nope")
    assert wrong.returncode == 2 and "not a member" in wrong.stderr
    # Adopting a member on its own named an id `backups show` did not know (QA): the set is named.
    member = next(p for p in out.iterdir() if p.name.startswith("sales") and not p.name.endswith(".json"))
    adopted = run_cli("backups", "adopt", str(member))
    assert adopted.returncode == 2 and f"a member of cluster set {_listed_id(out)}" in adopted.stderr, adopted.stderr


def test_a_set_restores_into_a_postgres_that_holds_only_extensions(source, target, home, tmp_path):
    """A target whose postgres holds an extension (pg_stat_statements, say: many servers' does)
    refused the set as not empty (QA). Extensions and their members are no collision."""
    out = tmp_path / "all.set"
    assert cli(source, "dumpall", "--set", "--output", str(out)).returncode == 0
    target.psql("CREATE EXTENSION citext")  # in the target's postgres
    restored = cli(target, "restore", str(out))
    assert restored.returncode == 0, restored.stderr
    assert target.psql("SELECT count(*) FROM pg_database WHERE datname = 'sales'").strip() == "1"
    assert target.psql("SELECT extname FROM pg_extension WHERE extname = 'citext'").strip() == "citext"


def test_a_set_restores_around_a_member_left_out(source, target, home, tmp_path):
    """A target whose postgres holds tables of its own refused the set, advising --only-db with
    every other member (QA): --exclude-db leaves it out."""
    out = tmp_path / "all.set"
    assert cli(source, "dumpall", "--set", "--output", str(out)).returncode == 0
    target.psql("CREATE EXTENSION citext; CREATE TABLE local_notes (note citext)")  # in the target's postgres
    refused = cli(target, "restore", str(out))
    assert refused.returncode == 2 and "--exclude-db postgres" in refused.stderr, refused.stderr
    assert target.psql("SELECT count(*) FROM pg_database WHERE datname = 'sales'").strip() == "0"
    # Two members in the way (a set half restored before) are named at once, with flags that work as
    # typed: the first alone was said, a run per database to find the next.
    target.psql("CREATE DATABASE sales")
    target.psql("CREATE TABLE kept (x int)", "sales")
    try:
        refused = cli(target, "restore", str(out))
        assert refused.returncode == 2 and "'postgres' (" in refused.stderr and "'sales' (" in refused.stderr
        advised = refused.stderr.split("leave them out with ", 1)[1].split(";", 1)[0]
        assert advised == "--exclude-db postgres --exclude-db sales", refused.stderr
        assert cli(target, "restore", str(out), *shlex.split(advised)).returncode == 0
        assert target.psql("SELECT count(*) FROM pg_database WHERE datname = 'Hr Data'").strip() == "1"
    finally:
        target.drop_database("sales")
        target.drop_database("Hr Data")
    both = cli(target, "restore", str(out), "--exclude-db", "postgres", "--only-db", "sales")
    assert both.returncode == 2 and "give one of them" in both.stderr, both.stderr
    wrong = cli(target, "restore", str(out), "--exclude-db", "nope")
    assert wrong.returncode == 2 and "--exclude-db nope: not a member" in wrong.stderr, wrong.stderr
    restored = cli(target, "restore", str(out), "--exclude-db", "postgres")
    assert restored.returncode == 0, restored.stderr
    assert_same_cluster(source, target)
    assert target.psql("SELECT extname FROM pg_extension WHERE extname = 'citext'").strip() == "citext"


def test_a_set_folder_copied_without_its_manifest_says_what_to_do(source, target, home, tmp_path):
    """`cp -r` of a set's folder leaves its manifest behind (it is beside the folder): restoring
    the copy said the folder was no directory archive, and nothing of what to do."""
    out = tmp_path / "all--set"
    assert cli(source, "dumpall", "--set", "--output", str(out)).returncode == 0
    copy = tmp_path / "usb" / "all--set"
    shutil.copytree(out, copy)
    refused = cli(target, "restore", str(copy))
    assert refused.returncode == 2, refused.stderr
    assert "a cluster set's folder" in refused.stderr and "all--set.manifest.json is not beside it" in refused.stderr
    assert f"(restore {copy / 'globals.sql'})" in refused.stderr, refused.stderr
    # The whole set, typed where one database's archive goes (the restore dialog): said damaged (review).
    with pytest.raises(ArchiveError, match="a cluster set, not one database's dump"):
        identify_archive(out)
    assert "sales" not in target.psql("SELECT datname FROM pg_database").split()  # before anything ran
    assert "is not beside it" in run_cli("backups", "adopt", str(copy)).stderr
    # A manifest beside it that is damaged, or a set without its globals.sql, said "a directory but not a
    # pg_dump directory archive (no toc.dat)" (with --skip-globals: "go with a cluster set").
    sidecar = Path(f"{copy}.manifest.json")
    sidecar.write_text("{")
    damaged = cli(target, "restore", str(copy))
    assert damaged.returncode == 2 and "is damaged or not a cluster set's" in damaged.stderr, damaged.stderr
    shutil.copy(Path(f"{out}.manifest.json"), sidecar)
    (copy / "globals.sql").rename(tmp_path / "globals.sql")
    for options in ((), ("--skip-globals",)):
        missing = cli(target, "restore", str(copy), *options)
        assert missing.returncode == 2 and "a cluster set whose globals.sql" in missing.stderr, missing.stderr
    (tmp_path / "globals.sql").rename(copy / "globals.sql")
    sidecar.unlink()
    # What it advises works: the roles, then a member alone.
    roles = cli(target, "restore", str(copy / "globals.sql"))
    assert roles.returncode == 0, roles.stderr
    member = cli(target, "restore", str(copy / "Hr_Data.dump"), "--db", "Hr Data", "--create")
    assert member.returncode == 0, member.stderr
    assert table_fingerprints(target, "Hr Data") == table_fingerprints(source, "Hr Data")


def test_a_failed_member_fails_the_set_and_its_database_is_dropped(source, target, home, tmp_path):
    out = tmp_path / "all.set"
    assert cli(source, "dumpall", "--set", "--output", str(out)).returncode == 0
    # A member's database exists and is not empty: refused before anything runs (it failed half way,
    # advising --clean or --create, which a set does not take).
    target.psql("CREATE DATABASE sales; ")
    target.psql("CREATE TABLE in_the_way (x int)", "sales")
    refused = cli(target, "restore", str(out))
    assert refused.returncode == 2, refused.stderr
    assert "'sales'" in refused.stderr and "not empty" in refused.stderr and "--exclude-db sales" in refused.stderr
    assert "--clean" not in refused.stderr and "nothing was restored" in refused.stderr
    assert target.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'app_owner'").strip() == "0"
    assert target.psql("SELECT count(*) FROM pg_database WHERE datname = 'Hr Data'").strip() == "0"
    assert target.psql("SELECT to_regclass('in_the_way') IS NOT NULL", "sales").strip() == "t"
    target.drop_database("sales")

    # A member that fails half way: its database is dropped, the others stay, and the line says which.
    manifest = read_manifest(out)
    assert manifest is not None
    sales_file = out / next(m["file"] for m in manifest["members"] if m["database"] == "sales")
    damage_unseen(out, sales_file.name)
    restored = cli(target, "restore", str(out))
    assert restored.returncode == 1, restored.stderr
    assert "sales:" in restored.stderr and "restored: Hr Data" in restored.stderr, restored.stderr
    assert target.psql("SELECT count(*) FROM pg_database WHERE datname = 'sales'").strip() == "0"
    assert table_fingerprints(target, "Hr Data") == table_fingerprints(source, "Hr Data")

    sales_file.unlink()
    target.drop_database("Hr Data")
    missing = cli(target, "restore", str(out))
    assert missing.returncode == 2 and "is missing" in missing.stderr and "sales" in missing.stderr


def test_bad_cluster_input_is_one_line(source, home, tmp_path):
    both = cli(source, "dumpall", "--globals-only", "--set")
    assert both.returncode == 2 and "not allowed with" in both.stderr
    jobs = cli(source, "dumpall", "--jobs", "2")
    assert jobs.returncode == 2 and "--set" in jobs.stderr
    out = tmp_path / "g.sql"
    assert cli(source, "dumpall", "--globals-only", "--output", str(out)).returncode == 0
    with_db = cli(source, "restore", str(out), "--db", "x")
    assert with_db.returncode == 2 and "--db does not apply" in with_db.stderr
    assert len(with_db.stderr.strip().splitlines()) == 1
    dry = cli(source, "restore", str(out), "--dry-run")
    assert dry.returncode == 2 and "--dry-run is not offered" in dry.stderr and dry.stderr.count("\n") == 1
    no_jobs = cli(source, "restore", str(out), "--jobs", "0")  # refused, not taken as the default of 1
    assert no_jobs.returncode == 2 and "--jobs must be 1 or more" in no_jobs.stderr, no_jobs.stderr


def test_the_set_is_listed_as_one_backup_with_members(source, home, tmp_path):
    out = tmp_path / "listed.set"
    assert cli(source, "dumpall", "--set", "--output", str(out)).returncode == 0
    listing = run_cli("backups", "list", "--json")
    if listing.returncode != 0:
        pytest.fail(f"backups list: {listing.stderr}")
    entries = json.loads(listing.stdout)
    paths = [Path(entry.get("path", "")) for entry in entries]
    assert out in paths
    assert not [p for p in paths if out in p.parents]  # members are not listed as backups of their own
    assert next(e for e in entries if Path(e.get("path", "")) == out)["holds"] == "cluster set"
    roles = tmp_path / "roles.sql"
    assert cli(source, "dumpall", "--roles-only", "--output", str(roles)).returncode == 0
    listed = {Path(e["path"]): e["holds"] for e in json.loads(run_cli("backups", "list", "--json").stdout)}
    assert listed[roles] == "roles"
    plain = run_cli("backups", "list")
    line = next(line for line in plain.stdout.splitlines() if str(roles) in line)
    # QA: a server's rows read `server/*` (every database) for roles alone and for a set of some
    # databases; now `server (cluster)`, and the set names what it holds.
    assert " (cluster)  plain  roles  " in line and "/*" not in line and "whole database" not in line, line
    line = next(line for line in plain.stdout.splitlines() if str(out) in line)
    assert " (cluster)  custom  cluster set of " in line and "/*" not in line, line
    shown = run_cli("backups", "show", _listed_id(out))
    assert shown.returncode == 0, shown.stderr
    assert "cannot be read" not in shown.stdout and "None" not in shown.stdout, shown.stdout
    assert "sales" in next(line for line in shown.stdout.splitlines() if line.startswith("database")), shown.stdout
    # QA: roles alone showed "database" blank, and "pg_dump" for pg_dumpall's version.
    shown = run_cli("backups", "show", _listed_id(roles)).stdout.splitlines()
    assert "database    none (roles)" in shown and any(line.startswith("versions") and ", pg_dumpall " in line
                                                        for line in shown), shown


def test_a_cluster_dump_reports_progress_inside_each_database(sandbox, home, tmp_path):
    """pg_dumpall's progress moves while a database is being dumped (the file it writes grows), at
    least twice a second, not only as one database ends and the next begins: a server behind a
    10 MB/s link, so that a small database takes seconds."""
    with Sandbox(bin_dir=sandbox.bin_dir) as cluster, ThrottleProxy(cluster.port, 10e6, lifetime_s=120) as proxy:
        cluster.create_database("big")
        cluster.psql("CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 400000) g", "big")
        target = target_from_dsn(f"host=127.0.0.1 port={proxy.port} user={cluster.superuser} dbname=postgres",
                                 label="behind a slow link").with_password(cluster.password)
        job = DumpallJob(DumpallPlan(target=target, output=tmp_path / "cluster.sql"))
        updates: list[ProgressSnapshot] = []
        job.subscribe(lambda event: updates.append(event.progress) if isinstance(event, ProgressUpdated) else None)
        result = asyncio.run(job.run())
    assert result.state == JobState.SUCCEEDED, result.message
    while_big = [snapshot for snapshot in updates if snapshot.current == ("big",)]
    assert len(while_big) >= 4, updates
    assert len({snapshot.percent for snapshot in while_big}) >= 3  # it moves inside the database
    gaps = [later.elapsed_s - earlier.elapsed_s for earlier, later in itertools.pairwise(updates)]
    assert max(gaps) < 1.0, gaps
    assert len(updates) / updates[-1].elapsed_s >= 2
    assert all(a.percent <= b.percent for a, b in itertools.pairwise(updates))
    assert updates[-1].percent == 100


class _Steps(Job):
    """A job that is only there to own a CountProgress (its steps are told by the test)."""

    async def _execute(self) -> Outcome:
        return Outcome(message="")


def test_a_step_is_measured_by_what_the_file_grew_at_the_ratio_the_steps_done_showed(tmp_path):
    """pg_dumpall's running database is measured by the growth of the file since it began, over its
    data's size times the bytes the finished databases wrote per byte (plain text's prior before)."""
    mib = 1 << 20
    out = tmp_path / "cluster.sql"
    out.write_bytes(b"")
    progress = CountProgress(_Steps("steps"), [Step("a", 4 * mib), Step("b", 8 * mib)],
                             target_from_dsn(f"host={tmp_path} dbname=postgres"))
    progress.follow_output(out)
    progress.step_started("a")
    with out.open("ab") as file:
        file.write(b"x" * (2 * mib))
    progress.observe_local(time.monotonic())
    a = progress.estimator.get("step:a")
    assert a is not None and a.fraction == pytest.approx(2 / (4 * OUTPUT_PER_HEAP[False]))
    with out.open("ab") as file:
        file.write(b"x" * mib)  # a's dump ends at 3 MiB: 0.75 bytes per byte of its data
    progress.step_finished("a")
    progress.step_started("b")
    with out.open("ab") as file:
        file.write(b"x" * (3 * mib))
    progress.observe_local(time.monotonic())
    b = progress.estimator.get("step:b")
    assert b is not None and b.fraction == pytest.approx(3 / (8 * 0.75))


def _listed_id(path: Path) -> str:
    listing = run_cli("backups", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    return next(entry["id"] for entry in json.loads(listing.stdout) if Path(entry.get("path", "")) == path)


def _status(path: Path) -> str:
    entry = entry_for(path, indexed=True)
    assert entry is not None
    return entry.status


def _flip_a_data_byte(path: Path, old: bytes, new: bytes) -> None:
    """Change bytes inside a table's data, leaving the file's length and its closing line alone:
    only a checksum can tell."""
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new, 1))


def test_verify_catches_a_changed_byte_in_a_cluster_file(source, home, tmp_path):
    out = tmp_path / "cluster.sql"
    assert cli(source, "dumpall", "--output", str(out)).returncode == 0
    backup_id = _listed_id(out)
    good = run_cli("backups", "verify", backup_id)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "matches the manifest" in good.stdout + good.stderr
    _flip_a_data_byte(out, b"item 250\t", b"item 290\t")
    bad = run_cli("backups", "verify", backup_id)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "checksum differs" in bad.stdout + bad.stderr


def test_verify_of_a_set_checks_each_member_and_its_globals(source, home, tmp_path):
    out = tmp_path / "checked.set"
    assert cli(source, "dumpall", "--set", "--format", "directory", "--output", str(out)).returncode == 0
    manifest = json.loads((tmp_path / "checked.set.manifest.json").read_text())
    backup_id = _listed_id(out)
    assert _status(out) == "complete"  # the members' sizes match the set manifest
    good = run_cli("backups", "verify", backup_id)
    said = good.stdout + good.stderr
    assert good.returncode == 0, said
    for member in manifest["members"]:
        assert f"member {member['database']}: " in said, said
    # Each member's own result comes with the set's (the TUI records it on the member's manifest).
    member_checks: dict = {}
    entry = entry_for(out, indexed=True)
    assert entry is not None and verify_backup(entry, member_checks=member_checks).ok
    assert set(member_checks) == {out / m["file"] for m in manifest["members"]}
    assert all(c.ok and any("here can read it" in line for line in c.checks) for c in member_checks.values())
    # ... and the CLI records it there too, as the TUI's v does: its members listed `complete` under a
    # set listed `verified` (QA).
    members = [entry_for(out / m["file"], indexed=True) for m in manifest["members"]]
    assert all(m is not None and m.status == "verified" for m in members), [m and m.status for m in members]
    sales = next(m for m in manifest["members"] if m["database"] == "sales")
    # A member is drilled by its path, as its row in the Backups tab is: it said "no such backup" (QA).
    refused = cli(source, "backups", "drill", backup_id)
    assert refused.returncode == 2 and "drill a member archive of it by its path: " in refused.stderr, refused.stderr
    drilled = cli(source, "backups", "drill", str(out / sales["file"]))
    assert drilled.returncode == 0, drilled.stderr
    assert _status(out / sales["file"]) == "drilled" and _status(out) == "verified"
    kept = run_cli("backups", "delete", str(out / sales["file"]))  # "no such backup" (QA): a set goes whole
    assert kept.returncode == 2 and f"a member archive of cluster set {out}, deleted with it" in kept.stderr
    assert (out / sales["file"]).exists()
    data_files = sorted((out / sales["file"]).glob("*.dat*"))
    assert data_files
    biggest = max(data_files, key=lambda p: p.stat().st_size)
    raw = bytearray(biggest.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    biggest.write_bytes(bytes(raw))
    bad = run_cli("backups", "verify", backup_id)
    said = bad.stdout + bad.stderr
    assert bad.returncode == 1, said
    assert "member sales: " in said and "checksum differs" in said, said
    assert _status(out) == "failed verification"
    damaged = entry_for(out / sales["file"], indexed=True)
    assert damaged is not None and damaged.status == "failed verification"
    (out / "globals.sql").write_text("-- cut\n")
    # Cut: listed as changed at once, by its size (it listed "complete"), before any verify.
    listed = entry_for(out, indexed=True)
    assert listed is not None and listed.status == "changed" and "globals.sql" in (listed.problem or "")
    cut = run_cli("backups", "verify", backup_id)
    assert cut.returncode == 1 and "globals.sql" in cut.stdout + cut.stderr
    shutil.rmtree(out / sales["file"])
    listed = entry_for(out, indexed=True)
    assert listed is not None and listed.status == "changed" and "missing from the set" in (listed.problem or "")


def test_pg_dumpall_files_that_cannot_restore_whole_are_refused_before_anything_runs(
        sandbox, other_sandbox, home, tmp_path, fresh_db_name):
    """Made by hand: a pg_dumpall --clean file (it drops every database and role first, and
    stopped at the current user's), one cut short (it restored part of a table and said
    "restored"), one whose databases a newer pg_dump wrote; and --skip-globals with a file (it
    was ignored). Each is one line, exit 2, and the server is as it was."""
    low, high = sorted((sandbox, other_sandbox), key=lambda cluster: cluster.major)
    role = f"r_{fresh_db_name}"
    low.psql(f"CREATE ROLE {role} NOLOGIN")
    pg_dumpall = find_client_tools(low.major).pg_dumpall
    files = {name: tmp_path / f"{name}.sql" for name in ("clean", "whole", "cut", "newer")}
    subprocess.run([pg_dumpall, "--dbname", low.dsn(), "--globals-only", "--clean", "--if-exists",
                    "--file", str(files["clean"])], check=True)
    subprocess.run([pg_dumpall, "--dbname", low.dsn(), "--globals-only", "--file", str(files["whole"])], check=True)
    whole = files["whole"].read_bytes()
    files["cut"].write_bytes(whole[:len(whole) * 2 // 3])
    high.create_database(fresh_db_name)
    try:
        subprocess.run([find_client_tools(high.major).pg_dumpall, "--dbname", high.dsn(), "--exclude-database",
                        "shop", "--file", str(files["newer"])], check=True)
    finally:
        high.drop_database(fresh_db_name)
    roles_before = low.psql("SELECT string_agg(rolname || rolcanlogin::text, ',' ORDER BY rolname) FROM pg_roles")
    try:
        expected = {("clean",): "was written by pg_dumpall --clean", ("cut",): "truncated",
                    # pg_dumpall of the server's major refuses the newer server: the advice is its major.
                    ("newer",): f"written by pg_dump {high.major}, newer than the server (PostgreSQL {low.major}), "
                                "whose SQL would fail half way; it was dumped from PostgreSQL "
                                f"{high.major}: restore it onto a server of PostgreSQL {high.major} or newer",
                    ("whole", "--skip-globals"): "--skip-globals picks parts of a cluster set"}
        for (name, *options), words in expected.items():
            refused = run_cli("restore", str(files[name]), "--dsn", low.dsn(), *options)
            assert refused.returncode == 2, refused.stderr
            assert words in refused.stderr and refused.stderr.count("\n") == 1, refused.stderr
        assert low.psql("SELECT string_agg(rolname || rolcanlogin::text, ',' ORDER BY rolname) "
                        "FROM pg_roles") == roles_before
    finally:
        low.psql(f"DROP ROLE {role}")


def test_a_cluster_dump_behind_a_locked_table_can_be_cancelled(source, home, tmp_path):
    """The job's look at each database's size waited behind a table's exclusive lock, before
    pg_dumpall started, and Ctrl-C could not end it until the lock went. It now reads the
    catalog's sizes there, and a cancel ends the job while the lock is still held."""
    holder = psycopg.connect(source.dsn("sales"))
    holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
    try:
        front = subprocess.Popen([sys.executable, "-m", "pgbackup_tui", "dumpall", "--dsn", source.dsn(),
                                  "--bin-dir", str(source.bin_dir), "--output", str(tmp_path / "c.sql"),
                                  "--progress", "plain"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, stdin=subprocess.DEVNULL, env=dict(os.environ))
        time.sleep(4)
        front.send_signal(signal.SIGINT)
        try:
            _out, err = front.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            front.kill()
            raise AssertionError("the cancelled cluster dump was still waiting on the lock") from None
        assert front.returncode == 130, err
        assert not (tmp_path / "c.sql").exists()
    finally:
        holder.close()


def test_a_set_s_globals_are_checked_and_a_newer_set_refused_before_any_role_changes(
        source, target, sandbox, other_sandbox, home, tmp_path):
    """A set's globals.sql ran as it was: cut inside its roles (the memberships gone) or edited (a
    role granted to another), exit 0, though `backups verify` knew its checksum. And a set of a
    newer pg_dumpall ran its globals (changing the server's roles) before failing on their syntax."""
    out = tmp_path / "all.set"
    assert cli(source, "dumpall", "--set", "--output", str(out)).returncode == 0
    globals_sql = out / "globals.sql"
    whole = globals_sql.read_bytes()
    roles = "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles"
    before = target.psql(roles)
    regranted = whole.replace(b"GRANT reporting TO analyst", b"GRANT reporting TO app_own")
    for damaged in (whole[:len(whole) // 2], regranted):
        assert damaged != whole
        globals_sql.write_bytes(damaged)
        refused = cli(target, "restore", str(out), "--only-db", "Hr Data")
        assert refused.returncode == 2, refused.stderr
        assert "globals.sql" in refused.stderr and "nothing was restored" in refused.stderr, refused.stderr
        assert target.psql(roles) == before
    globals_sql.write_bytes(whole)
    assert cli(target, "restore", str(out), "--only-db", "Hr Data", "--skip-globals").returncode == 0

    # Members that only a pg_restore this machine lacks reads (zstd, where the installs new enough to read
    # them were built without it): each member's restore refused it after globals.sql had changed the
    # roles. Refused before anything runs.
    with_zstd = min((t for t in installed_client_tools() if supports(t, "zstd")), key=lambda t: t.major)
    without = [t for t in installed_client_tools() if t.major >= with_zstd.major and not supports(t, "zstd")]
    assert without, "needs an install new enough to read a zstd archive but built without zstd (the wheel's 18)"
    zstd_set = tmp_path / "zstd.set"
    assert run_cli("dumpall", "--set", "--db", "sales", "--compress", "zstd", "--output", str(zstd_set), "--dsn",
                   source.dsn(), "--bin-dir", str(with_zstd.bin_dir)).returncode == 0
    lacking = dict(os.environ, PGBACKUP_TUI_CLIENT_DIRS=os.pathsep.join(str(t.bin_dir) for t in without))
    refused = run_cli("restore", str(zstd_set), "--dsn", target.dsn(), "--allow-older-server", env=lacking)
    assert refused.returncode == 2 and "is compressed with zstd" in refused.stderr, refused.stderr
    assert "nothing was restored" in refused.stderr and target.psql(roles) == before

    low, high = sorted((sandbox, other_sandbox), key=lambda cluster: cluster.major)
    newer = tmp_path / "newer.set"
    only_there = "r_" + uuid.uuid4().hex[:8]  # a role of the newer server's globals alone
    high.psql(f"CREATE ROLE {only_there} NOLOGIN")
    try:
        dumped = run_cli("dumpall", "--set", "--db", "postgres", "--output", str(newer), "--dsn", high.dsn())
    finally:
        high.psql(f"DROP ROLE {only_there}")
    assert dumped.returncode == 0, dumped.stderr
    assert only_there in (newer / "globals.sql").read_text()
    refused = run_cli("restore", str(newer), "--dsn", low.dsn(), "--only-db", "postgres")
    assert refused.returncode == 2, refused.stderr
    assert f"pg_dumpall {high.major}, newer than the server" in refused.stderr, refused.stderr
    # Not "dump again with pg_dumpall {low}": that refuses a newer server.
    assert f"onto a server of PostgreSQL {high.major} or newer" in refused.stderr, refused.stderr
    assert "dump again" not in refused.stderr, refused.stderr
    assert low.psql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{only_there}'").strip() == "0"


def test_a_password_a_failing_statement_quotes_stays_out_of_the_log_and_the_terminal(target, home, tmp_path):
    """psql --echo-errors copies a failing statement whole: a pg_dumpall file's
    `ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'` went to the job's log and to stderr."""
    secret = "SCRAM-SHA-256$4096:c2VjcmV0LXNhbHQ=$storedkey:serverkey"
    cluster = tmp_path / "roles.sql"
    cluster.write_text("--\n-- PostgreSQL database cluster dump\n--\n\n"
                       f"ALTER ROLE no_such_role WITH LOGIN PASSWORD '{secret}';\n\n"
                       "--\n-- PostgreSQL database cluster dump complete\n--\n\n")
    failed = cli(target, "restore", str(cluster), "--progress", "plain")
    assert failed.returncode == 1, failed.stderr
    assert "no_such_role" in failed.stderr and "PASSWORD '…'" in failed.stdout + failed.stderr
    logs = list((home / "logs").glob("*.log"))
    assert logs and all(secret not in log.read_text() and "c2VjcmV0" not in log.read_text() for log in logs)
    assert "c2VjcmV0" not in failed.stdout + failed.stderr


def test_a_closed_database_is_said_and_template1_s_contents_are_in_a_set(sandbox, home, tmp_path):
    """A database with ALLOW_CONNECTIONS false was left out of every cluster backup without a word
    (pg_dumpall passes over it), a set had no member for template1, whose contents a pg_dumpall
    file holds, and a member restored into a database that exists (postgres, always) lost that
    database's own settings, grants and comment."""
    own_props = """SELECT (SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s
                           JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = 'postgres' AND setrole = 0)
                          || '|' || shobj_description(d.oid, 'pg_database') || '|'
                          || array_to_string(ARRAY(SELECT a::text FROM unnest(datacl) a ORDER BY 1), ',')
                   FROM pg_database d WHERE datname = 'postgres'"""
    with Sandbox(bin_dir=sandbox.bin_dir) as source, Sandbox(bin_dir=sandbox.bin_dir) as target:
        source.psql("ALTER DATABASE postgres SET lock_timeout = '7s'; COMMENT ON DATABASE postgres IS 'the main one';"
                    "CREATE ROLE reader LOGIN; REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;"
                    "GRANT CONNECT ON DATABASE postgres TO reader")
        source.psql("CREATE DATABASE closed")
        source.psql("CREATE TABLE keep_me (i int); INSERT INTO keep_me VALUES (1)", "closed")
        source.psql("ALTER DATABASE closed ALLOW_CONNECTIONS false")
        source.psql("CREATE TABLE in_every_new_db (i int); INSERT INTO in_every_new_db VALUES (7)", "template1")
        source.psql("CREATE DATABASE tpl_user IS_TEMPLATE true")  # a user's template (template_postgis...)
        source.psql("CREATE TABLE base (i int); INSERT INTO base VALUES (3)", "tpl_user")
        for options in ((), ("--set",)):
            out = tmp_path / ("all" + ("".join(options) or ".sql"))
            dumped = cli(source, "dumpall", *options, "--output", str(out))
            assert dumped.returncode == 0, dumped.stderr
            # A warning's line, as every warning is said (it lost the word when the backup succeeded).
            assert "pgbackup-tui: warning: database(s) closed do not accept connections (ALLOW_CONNECTIONS false)" \
                in dumped.stderr, dumped.stderr
        members = {m["database"] for m in json.loads((tmp_path / "all--set.manifest.json").read_text())["members"]}
        assert {"template1", "tpl_user"} <= members and "closed" not in members
        restored = cli(target, "restore", str(tmp_path / "all--set"))
        assert restored.returncode == 0, restored.stderr
        assert target.psql("SELECT i FROM in_every_new_db", "template1").strip() == "7"
        assert target.psql("SELECT i FROM base", "tpl_user").strip() == "3"
        assert target.psql("SELECT datistemplate FROM pg_database WHERE datname = 'tpl_user'").strip() == "t"
        assert "lock_timeout=7s|the main one|" in target.psql(own_props), target.psql(own_props)
        assert target.psql(own_props) == source.psql(own_props)


def test_a_killed_set_restore_says_which_members_it_had_restored(target, home, tmp_path):
    """kill -9 of a set restore's runner (the OOM killer, a reboot): the member it stopped in is
    dropped, those restored before stay, and the result said only what was undone. The kept one's
    name as SQL text would say it, not as Python's repr ("Ann's" in double quotes, QA)."""
    target.create_database("Ann's")
    target.psql("CREATE TABLE t (i int); INSERT INTO t VALUES (1);", "Ann's")
    target.create_database("zz_slow")  # restored last; each row passes a CHECK that sleeps 10 ms there
    target.psql("CREATE FUNCTION slowly(int) RETURNS boolean LANGUAGE sql AS 'SELECT true';"
                "CREATE TABLE slow (id int PRIMARY KEY CHECK (slowly(id)));"
                "INSERT INTO slow SELECT generate_series(1, 1500);"
                "CREATE OR REPLACE FUNCTION slowly(int) RETURNS boolean LANGUAGE sql "
                "AS 'SELECT pg_sleep(0.01) IS NOT NULL';", "zz_slow")
    out = tmp_path / "all--set"
    assert cli(target, "dumpall", "--set", "--output", str(out)).returncode == 0
    with Sandbox(bin_dir=target.bin_dir) as onto:
        front = subprocess.Popen([sys.executable, "-m", "pgbackup_tui", "restore", str(out), "--dsn", onto.dsn(),
                                  "--bin-dir", str(onto.bin_dir), "--jobs", "1", "--progress", "none"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        copying = "SELECT count(*) FROM pg_stat_activity WHERE datname = 'zz_slow' AND query LIKE 'COPY%'"
        deadline = time.monotonic() + 60
        while onto.psql(copying).strip() == "0":
            assert time.monotonic() < deadline and front.poll() is None, "the slow member never started loading"
            time.sleep(0.1)
        states = [json.loads(path.read_text()) for path in (home / "state" / "jobs").glob("*/state.json")]
        runner = next(state["runner_pid"] for state in states if state.get("state") == "running")
        os.kill(runner, signal.SIGKILL)
        _out, err = front.communicate(timeout=60)
        assert front.returncode == 1, err
        assert "the set's members restored before it stopped are kept: 'Ann's'" in err, err
        assert "stays on the server (the set's roles and tablespaces); a member being restored" in err, err
        assert "zz_slow" not in err.split("are kept:")[1], err
        databases = onto.psql("SELECT datname FROM pg_database").split()
        assert "Ann's" in databases and "zz_slow" not in databases
        assert onto.psql("SELECT i FROM t", "Ann's").strip() == "1"


def test_a_member_is_on_the_set_s_record_as_kept_before_its_database_is_let_go(source, target, home, tmp_path):
    """A member's new database leaves the set's record (a killed runner's recovery would drop it)
    only once the member is on it as kept: a runner killed between the two named it neither as
    dropped nor as kept (the few milliseconds the kill test above cannot aim at).
    Through a DSN of several hosts whose first is down until the members start (its socket appears
    then, `source` behind it): the globals' psql and each member's restore each took the first that
    answered, so the members went to `source` ("already exists") and the roles to `target` (review);
    all on `target` now."""
    out = tmp_path / "all--set"
    assert cli(source, "dumpall", "--set", "--output", str(out)).returncode == 0
    comes_back = Path(tempfile.mkdtemp(prefix="pin", dir="/tmp")) / "a"  # short: a socket's path has 107 bytes
    dsn = f"host={comes_back},{target.socket_dir} port={source.port},{target.port} user={target.superuser}"
    job = ClusterRestoreJob(ClusterRestorePlan(archive=out, target=replace(target_from_dsn(dsn),
                                                                           bin_dir=target.bin_dir)))
    record: list[tuple[str, str, bool]] = []  # the set's own Owned events: what its record is made of
    job.subscribe(lambda event: record.append((event.kind, event.value, event.held))
                  if isinstance(event, Owned) and event.job_id == job.id else None)
    job.subscribe(lambda event: comes_back.symlink_to(source.socket_dir)
                  if isinstance(event, LogLine) and event.text.startswith("restoring database ")
                  and not comes_back.is_symlink() else None)
    try:
        result = asyncio.run(job.run())
    finally:
        shutil.rmtree(comes_back.parent)
    assert result.state == JobState.SUCCEEDED, result.message
    assert_same_cluster(source, target)
    listed = f"{comes_back}:{source.port},{target.socket_dir}:{target.port}"
    assert f"(the first of {listed} to answer)" in Path(result.log_path).read_text()
    created = [value for kind, value, held in record if kind == "database" and held]
    assert {"sales", "Hr Data"} <= set(created), record
    for name in created:
        kept = record.index((KEPT_MEMBER, name, True))
        assert kept < record.index(("database", name, False)), record
        assert (KEPT_MEMBER, name, False) in record[kept:], record  # and off it once the set's result says it


@contextlib.contextmanager
def _file_restore_waiting_on_a_role(source, target, tmp_path, progress: str) -> Iterator[subprocess.Popen[str]]:
    """A pg_dumpall file's restore (its front) held at the file's CREATE ROLE reporting, which an
    uncommitted CREATE ROLE of another session holds up: stopped there, psql has run part of it."""
    out = tmp_path / "cluster.sql"
    assert cli(source, "dumpall", "--output", str(out)).returncode == 0
    holder = psycopg.connect(target.dsn())
    holder.execute("CREATE ROLE reporting NOLOGIN")
    try:
        front = subprocess.Popen([sys.executable, "-m", "pgbackup_tui", "restore", str(out), "--dsn", target.dsn(),
                                  "--bin-dir", str(target.bin_dir), "--progress", progress], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, env=dict(os.environ))
        deadline = time.monotonic() + 30
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        while target.psql(waiting).strip() == "0":
            assert time.monotonic() < deadline and front.poll() is None, "psql never reached the role"
            time.sleep(0.2)
        yield front
    finally:
        holder.close()


def test_a_cancelled_cluster_file_restore_says_what_stays(source, target, home, tmp_path):
    """A pg_dumpall file runs as one psql script: a cancel leaves what it had run (roles,
    databases made), and the result said only "cancelled"."""
    with _file_restore_waiting_on_a_role(source, target, tmp_path, "plain") as front:
        front.send_signal(signal.SIGINT)
        _out, err = front.communicate(timeout=30)
    assert front.returncode == 130, err
    assert "what psql had run of the file stays on server" in err, err


def _children_named(parent: int, comm: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                fields = stat[stat.rfind(")") + 2:].split()
                if stat[stat.find("(") + 1:stat.rfind(")")] == comm and int(fields[1]) == parent:
                    found.append(int(entry.name))
    return found


@pytest.mark.parametrize("killed", ["runner", "psql"])
def test_a_killed_cluster_file_restore_says_what_stays_without_a_set_s_words(source, target, home, tmp_path, killed):
    """kill -9 of a pg_dumpall file's restore: its recovery said what a set's member would become
    ("a set's member being restored into a new database is dropped..."), when a file has none.
    kill -9 of its psql (the OOM killer's pick) was said "psql stopped at an error in cluster.sql:
    psql:<stdin>:19: NOTICE:  pgbackup-tui: role postgres is the role this restore connects as…",
    a line of ours read as the error (QA): it says psql was killed."""
    with _file_restore_waiting_on_a_role(source, target, tmp_path, "none") as front:
        states = [json.loads(path.read_text()) for path in (home / "state" / "jobs").glob("*/state.json")]
        runner = next(state["runner_pid"] for state in states if state.get("state") == "running")
        victims = [runner] if killed == "runner" else _children_named(runner, "psql")
        assert len(victims) == 1, victims
        os.kill(victims[0], signal.SIGKILL)
        _out, err = front.communicate(timeout=60)
    assert front.returncode == 1, err
    if killed == "runner":
        assert "the databases the pg_dumpall file makes as it goes" in err, err
        assert "member" not in err and "set's" not in err, err
    else:
        assert "psql was killed by signal 9 (SIGKILL) running cluster.sql" in err, err
        assert "stopped at an error" not in err and "NOTICE" not in err, err


def test_the_newest_verified_cluster_file_is_protected_apart_from_a_roles_file(source, home, tmp_path):
    """Cluster backups have no database: all of a server's were one group, so a newer verified
    roles-only file took the protection from the only verified whole-cluster file, and the
    refusal named "database ''"."""
    cluster, roles = tmp_path / "cluster.sql", tmp_path / "roles.sql"
    assert cli(source, "dumpall", "--output", str(cluster)).returncode == 0
    assert cli(source, "dumpall", "--roles-only", "--output", str(roles)).returncode == 0
    for path in (cluster, roles):
        assert run_cli("backups", "verify", _listed_id(path)).returncode == 0
    refused = run_cli("backups", "delete", _listed_id(cluster))
    assert refused.returncode == 2 and "newest verified backup of the server's whole cluster" in refused.stderr, (
        refused.stderr)
    assert cluster.exists()


@pytest.mark.parametrize(("line", "secret"), [
    ("psql:<stdin>:19: STATEMENT:  ALTER ROLE a WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$k:s';", "c2FsdA"),
    ("LINE 1: ...ROLE a WITH NOSUPERUSER INHERIT PASSWORD 'SCRAM-SHA-256$4096:c2FsdA", "c2FsdA"),  # cut by psql
    ("ALTER ROLE a PASSword 'hunter2' VALID UNTIL 'infinity'", "hunter2"),
    ("ALTER ROLE a PASSWORD E'hun\\'ter2';", "ter2"),
    ("ALTER ROLE a PASSWORD $$hunter2$$;", "hunter2"),
    ("CREATE USER MAPPING FOR x SERVER s OPTIONS (user 'a', password 'it''s hunter2');", "hunter2"),
    ("SELECT dblink_connect('host=a password=hunter2 sslpassword=k3y dbname=x')", "hunter2"),
    ("SELECT dblink_connect('host=a sslpassword=k3y dbname=x')", "k3y"),
    ("SELECT dblink_connect('host=a password=''hunter 2'' dbname=x')", "hunter"),
    ("could not connect to postgresql://bob:hunter2@db1:5432/x", "hunter2"),
])
def test_a_child_s_line_loses_the_password_it_quotes(line, secret):
    from pgbackup_tui.core.job_events import without_secrets

    blanked = without_secrets(line)
    assert secret not in blanked and "…" in blanked, blanked


def test_a_line_without_a_password_passes_as_it_is():
    from pgbackup_tui.core.job_events import without_secrets

    for line in ("pg_dump: dumping contents of table public.passwords", "password authentication failed for user x",
                 "pg_restore: creating TABLE \"public.users\" (password text)"):
        assert without_secrets(line) == line


def test_a_set_moved_with_its_manifest_is_adopted_as_it_was(source, home, tmp_path):
    """adopt reads an archive that comes with its manifest against its checksums: a set's cover its
    globals.sql alone, and comparing the whole folder called every member "added since"."""
    out = tmp_path / "first" / "all.set"
    out.parent.mkdir()
    assert cli(source, "dumpall", "--set", "--output", str(out)).returncode == 0
    backup_id = _listed_id(out)
    assert run_cli("backups", "verify", backup_id).returncode == 0
    moved = tmp_path / "moved" / "all.set"
    moved.parent.mkdir()
    out.rename(moved)
    Path(str(out) + ".manifest.json").rename(Path(str(moved) + ".manifest.json"))
    adopted = run_cli("backups", "adopt", str(moved))
    assert adopted.returncode == 0, adopted.stderr
    assert _status(moved) == "verified"
    # With its id: a set's manifest (and a pg_dumpall file's) had none, its id came from its path, so
    # the moved set was a new backup and its old path a missing one that did not say where it went (QA).
    assert _listed_id(moved) == backup_id
    shown = run_cli("backups", "show", backup_id)
    assert shown.returncode == 0 and f"path        {moved}" in shown.stdout, shown.stdout + shown.stderr
    assert f"the same backup is listed at {moved}" in run_cli("backups", "list").stdout
    script = tmp_path / "first" / "all.sql"
    assert cli(source, "dumpall", "--output", str(script)).returncode == 0
    script_id = _listed_id(script)
    script.rename(tmp_path / "moved" / "all.sql")
    Path(f"{script}.manifest.json").rename(tmp_path / "moved" / "all.sql.manifest.json")
    assert run_cli("backups", "adopt", str(tmp_path / "moved" / "all.sql")).returncode == 0
    assert _listed_id(tmp_path / "moved" / "all.sql") == script_id


def test_a_set_of_some_databases_never_stands_in_for_the_whole_one(source, home, tmp_path):
    """A verified set of one database took delete's protection from the only verified whole set:
    both were 'cluster set' (QA)."""
    whole, part = tmp_path / "whole.set", tmp_path / "part.set"
    assert cli(source, "dumpall", "--set", "--output", str(whole)).returncode == 0
    assert cli(source, "dumpall", "--set", "--db", "sales", "--output", str(part)).returncode == 0
    for path in (whole, part):
        assert run_cli("backups", "verify", _listed_id(path)).returncode == 0
    entries = json.loads(run_cli("backups", "list", "--json").stdout)
    assert next(e for e in entries if Path(e["path"]) == part)["holds"] == "cluster set of sales"
    refused = run_cli("backups", "delete", _listed_id(whole))
    assert refused.returncode == 2 and "newest verified backup" in refused.stderr and whole.exists(), refused.stderr


@pytest.mark.parametrize("damage", ["member manifest gone", "member cut short"])
def test_a_set_with_a_damaged_member_is_refused_before_the_roles_change(source, target, home, tmp_path, damage):
    """A member without its manifest restored unchecked (a changed row went in, exit 0); a member
    cut short failed only after the roles and the other members were in (QA)."""
    out = tmp_path / "all.set"
    assert cli(source, "dumpall", "--set", "--output", str(out)).returncode == 0
    member = next(p for p in out.iterdir() if p.name.startswith("sales") and not p.name.endswith(".json"))
    if damage == "member manifest gone":
        Path(f"{member}.manifest.json").unlink()
    else:
        os.truncate(member, member.stat().st_size // 2)
    restored = cli(target, "restore", str(out))
    assert restored.returncode == 2 and "member sales" in restored.stderr, restored.stderr
    assert "nothing was restored" in restored.stderr
    assert target.psql("SELECT count(*) FROM pg_roles WHERE rolname IN ('app_owner', 'analyst')").strip() == "0"
    assert target.psql("SELECT count(*) FROM pg_database WHERE datname IN ('sales', 'Hr Data')").strip() == "0"


def test_a_set_manifest_edited_to_drop_a_member_fails_verification(source, home, tmp_path):
    """The member left out of the set's manifest was passed over by verify ('verified') and by a
    restore without a word (QA)."""
    out = tmp_path / "all.set"
    assert cli(source, "dumpall", "--set", "--output", str(out)).returncode == 0
    manifest_file = tmp_path / "all.set.manifest.json"
    manifest = json.loads(manifest_file.read_text())
    dropped = next(m for m in manifest["members"] if m["database"] == "sales")
    manifest["members"] = [m for m in manifest["members"] if m is not dropped]
    manifest_file.write_text(json.dumps(manifest))
    done = run_cli("backups", "verify", _listed_id(out))
    assert done.returncode == 1 and f"{out / dropped['file']}: a member archive the set's manifest does not list" in (
        done.stderr), done.stderr


@pytest.mark.parametrize(("lines", "secret"), [
    (["STATEMENT:  ALTER ROLE a PASSWORD", "    'hunter2' VALID UNTIL 'infinity';"], "hunter2"),
    (["STATEMENT:  ALTER ROLE a PASSWORD", "", "  E'hun\\'ter2';"], "ter2"),
    (["STATEMENT:  ALTER ROLE a PASSWORD 'hun", "ter2", "still' VALID UNTIL 'x';"], "ter2"),
    (["STATEMENT:  ALTER ROLE a PASSWORD $q$hun", "ter2$q$;"], "ter2"),
    (["STATEMENT:  ALTER ROLE a PASSWORD", "  'hun", "ter2';"], "ter2"),  # opened on the next line, runs on
])
def test_a_password_over_several_lines_of_a_child_loses_each_of_them(lines, secret):
    """psql copies a failing statement as written: `PASSWORD` at a line's end and its literal on
    the next reached the log (QA)."""
    from pgbackup_tui.core.job_events import SecretBlanker

    blank = SecretBlanker()
    said = [blank(line) for line in lines]
    assert not any(secret in line for line in said) and "…" in "".join(said), said
    assert said[0].startswith("STATEMENT:  ALTER ROLE a PASSWORD")
    after = blank("pg_restore: creating TABLE public.t")  # and the lines after it pass as they are
    assert after == "pg_restore: creating TABLE public.t"


def test_a_quote_left_open_near_the_word_password_blanks_no_line_of_the_tool_s_own():
    """A function body's `'your new password ' || p` left a quote open, and every line after it was
    blanked, pg_restore's "errors ignored on restore: 2" too: the restore then read as failed (review)."""
    from pgbackup_tui.core.job_events import MAX_CARRIED_LINES, SecretBlanker

    blank = SecretBlanker()
    blank("pg_restore: error: could not execute query: ERROR:  syntax error")
    blank("Command was: CREATE FUNCTION f(p text) RETURNS text AS $$ BEGIN RETURN 'your new password ' || p;")
    tool_lines = ["pg_restore: creating TABLE public.t", "LINE 1: ...", "psql:/x.sql:3: ERROR:  boom",
                  "pg_restore: warning: errors ignored on restore: 2"]
    assert [blank(line) for line in tool_lines] == tool_lines
    blank = SecretBlanker()  # a literal that never closes blanks a few lines, not the rest of the log
    blank("STATEMENT:  ALTER ROLE a PASSWORD 'never closed")
    said = [blank(f"row {n}") for n in range(MAX_CARRIED_LINES + 3)]
    assert said[:MAX_CARRIED_LINES] == ["…"] * MAX_CARRIED_LINES and said[-1] == f"row {MAX_CARRIED_LINES + 2}"
    blank = SecretBlanker()  # a plain literal's backslash is a character: the quote after it closes it
    assert "p\\" not in blank("OPTIONS (password 'p\\');")
    assert blank("the next line") == "the next line"


def test_a_multi_line_password_a_failing_statement_quotes_stays_out_of_the_log(target, home, tmp_path):
    script = tmp_path / "roles.sql"
    script.write_text("--\n-- PostgreSQL database cluster dump\n--\n\n"
                      "ALTER ROLE no_such_role WITH LOGIN PASSWORD\n    'Multi1ineS3cret';\n\n"
                      "--\n-- PostgreSQL database cluster dump complete\n--\n\n")
    failed = cli(target, "restore", str(script), "--progress", "plain")
    assert failed.returncode == 1, failed.stderr
    logs = list((home / "logs").glob("*.log"))
    assert logs and all("Multi1ineS3cret" not in log.read_text() for log in logs)
    assert "Multi1ineS3cret" not in failed.stdout + failed.stderr and "no_such_role" in failed.stderr


def test_no_owner_and_no_privileges_reach_a_set_s_members_and_a_file_refuses_them(source, target, home, tmp_path):
    """`--no-owner` / `--no-privileges` were taken and passed over without a word (QA): a set restored
    with --skip-globals onto a server without its roles ended 'errors ignored' (exit 3) on the owner
    and grants the DBA had asked to leave out, and a pg_dumpall file ran with its owners as if asked."""
    out = tmp_path / "all.set"
    assert cli(source, "dumpall", "--set", "--output", str(out)).returncode == 0
    restored = cli(target, "restore", str(out), "--skip-globals", "--only-db", "sales", "--no-owner",
                   "--no-privileges")
    assert restored.returncode == 0, restored.stderr
    assert target.psql("SELECT count(*) FROM pg_roles WHERE rolname IN ('app_owner', 'reporting')").strip() == "0"
    assert target.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'orders'", "sales").strip() == "postgres"
    assert target.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'sales'").strip() == "postgres"
    assert table_fingerprints(target, "sales") == table_fingerprints(source, "sales")

    whole = tmp_path / "all.sql"
    assert cli(source, "dumpall", "--output", str(whole)).returncode == 0
    for flag in ("--no-owner", "--no-privileges"):
        refused = cli(target, "restore", str(whole), flag)
        assert refused.returncode == 2, refused.stderr
        assert flag in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert target.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'app_owner'").strip() == "0"  # nothing ran


def test_a_role_that_may_not_connect_to_every_database_dumps_the_globals(target, home, tmp_path):
    """A DBA's role that is not superuser (a managed server has none) and may not connect to every
    database (REVOKE CONNECT ... FROM PUBLIC, as RDS's rdsadmin is): --globals-only, and a set of the
    databases it may read, failed before pg_dumpall ran ('permission denied for database private_db'),
    the sizes asked of every database for progress (QA)."""
    target.psql("CREATE ROLE dba_lite LOGIN CREATEROLE; CREATE DATABASE private_db; CREATE DATABASE open_db; "
                "REVOKE CONNECT ON DATABASE private_db FROM PUBLIC;")
    as_lite = make_conninfo(target.dsn(), user="dba_lite")
    out = tmp_path / "globals.sql"
    dumped = run_cli("dumpall", "--dsn", as_lite, "--bin-dir", str(target.bin_dir), "--globals-only",
                     "--output", str(out))
    assert dumped.returncode == 0, dumped.stderr
    assert "CREATE ROLE dba_lite;" in out.read_text()
    # The hashes are a superuser's to read: refused before pg_dumpall ran (it failed, exit 1).
    hashes = run_cli("dumpall", "--dsn", as_lite, "--bin-dir", str(target.bin_dir), "--roles-only",
                     "--with-role-passwords", "--output", str(tmp_path / "hashes.sql"))
    assert hashes.returncode == 2 and "--with-role-passwords: role 'dba_lite' may not read" in hashes.stderr, \
        hashes.stderr
    assert not list(tmp_path.glob("hashes.sql*"))
    # Restored by that role, the file's ALTER ROLE … NOSUPERUSER … NOBYPASSRLS (every role's, and only a
    # superuser's to run) stopped psql at the first role, made by then: refused before anything runs.
    target.psql("CREATE ROLE made_by_the_file NOLOGIN")
    roles = tmp_path / "roles.sql"
    assert cli(target, "dumpall", "--roles-only", "--output", str(roles)).returncode == 0
    target.psql("DROP ROLE made_by_the_file")
    refused = run_cli("restore", str(roles), "--dsn", as_lite, "--bin-dir", str(target.bin_dir))
    assert refused.returncode == 2, refused.stderr
    assert "which only a superuser may, and role dba_lite is not one" in refused.stderr, refused.stderr
    assert target.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'made_by_the_file'").strip() == "0"
    one = run_cli("dumpall", "--dsn", as_lite, "--bin-dir", str(target.bin_dir), "--set", "--db", "open_db",
                  "--output", str(tmp_path / "open.set"))
    assert one.returncode == 0, one.stderr
    # The whole cluster, file or set, failed only when pg_dump came to private_db, after the others:
    # refused before anything, naming it (QA).
    for options in ((), ("--set",)):
        whole = tmp_path / ("whole" + "".join(options))
        refused = run_cli("dumpall", "--dsn", as_lite, "--bin-dir", str(target.bin_dir), *options,
                          "--output", str(whole))
        assert refused.returncode == 2, refused.stderr
        assert "may not connect to database(s) private_db" in refused.stderr, refused.stderr
        assert not whole.exists() and not Path(f"{whole}.partial").exists()


def test_a_database_whose_drop_was_interrupted_is_left_out_and_said(target, home, tmp_path):
    """A DROP DATABASE interrupted half way leaves the database invalid (datconnlimit -2, PG 15.4+),
    which no one can connect to: pg_dumpall passes over it without a word, and a set failed whole on
    it ('Use DROP DATABASE to drop invalid databases'), every other database's dump thrown away (QA)."""
    target.psql("CREATE DATABASE kept_db; CREATE DATABASE half_dropped; "
                "UPDATE pg_database SET datconnlimit = -2 WHERE datname = 'half_dropped';")
    target.psql("CREATE TABLE t AS SELECT 1 AS x", "kept_db")
    out = tmp_path / "all.set"
    dumped = cli(target, "dumpall", "--set", "--output", str(out))
    assert dumped.returncode == 0, dumped.stderr
    assert {m["database"] for m in json.loads((tmp_path / "all.set.manifest.json").read_text())["members"]} == {
        "kept_db", "postgres"}
    assert "half_dropped" in dumped.stderr and "DROP DATABASE" in dumped.stderr, dumped.stderr
    whole = cli(target, "dumpall", "--output", str(tmp_path / "all.sql"))
    assert whole.returncode == 0 and "half_dropped" in whole.stderr, whole.stderr


def test_a_cluster_file_whose_postgres_tables_the_server_has_is_refused_before_anything_runs(
        source, target, home, tmp_path):
    """A whole-cluster file fills the server's `postgres` (and template1): one that already has a table
    the file creates there (a DBA's monitoring table on both servers) ran the roles and every
    database before it, then stopped at 'relation ... already exists', the cluster half restored (QA)."""
    source.psql('CREATE SCHEMA "Ops"; CREATE TABLE "Ops".monitoring_snap (at timestamptz, n int); '
                "CREATE TABLE public.kept_apart (x int);")
    try:
        out = tmp_path / "cluster.sql"
        assert cli(source, "dumpall", "--output", str(out)).returncode == 0
    finally:
        source.psql('DROP SCHEMA "Ops" CASCADE; DROP TABLE public.kept_apart;')
    target.psql('CREATE SCHEMA "Ops"; CREATE TABLE "Ops".monitoring_snap (at timestamptz);')
    refused = cli(target, "restore", str(out))
    assert refused.returncode == 2, refused.stderr
    assert "'postgres'" in refused.stderr and '"Ops".monitoring_snap' in refused.stderr, refused.stderr
    assert "nothing was restored" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert target.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'app_owner'").strip() == "0"
    assert target.psql("SELECT count(*) FROM pg_database WHERE datname = 'sales'").strip() == "0"
    # Objects of other names there are no obstacle: the file's go in beside them.
    target.psql('DROP SCHEMA "Ops" CASCADE; CREATE TABLE public.their_own (y int);')
    restored = cli(target, "restore", str(out))
    assert restored.returncode == 0, restored.stderr
    assert target.psql("SELECT count(*) FROM pg_tables WHERE tablename IN ('their_own', 'kept_apart', "
                       "'monitoring_snap')").strip() == "3"


def test_a_tablespace_the_server_has_already_is_refused_before_the_roles_change(source, target, home, tmp_path):
    """A role the server has already is kept, but a tablespace stopped psql at its CREATE TABLESPACE,
    after the roles before it were made and altered as the file says (QA): refused before anything
    runs, for a file and for a set's globals.sql alike."""
    location = target.root / "fast disk"
    location.mkdir()
    shutil.chown(location, target.os_user)
    target.psql(f"CREATE ROLE keeper LOGIN CONNECTION LIMIT 7; CREATE TABLESPACE \"Fast Disk\" LOCATION '{location}'")
    (target.root / "slow").mkdir()
    shutil.chown(target.root / "slow", target.os_user)
    target.psql(f"CREATE TABLESPACE slow LOCATION '{target.root / 'slow'}'")
    target.psql('CREATE DATABASE fastdb TABLESPACE "Fast Disk"')
    globals_file, cluster_set = tmp_path / "globals.sql", tmp_path / "all.set"
    assert cli(target, "dumpall", "--globals-only", "--output", str(globals_file)).returncode == 0
    assert cli(target, "dumpall", "--set", "--output", str(cluster_set)).returncode == 0
    target.psql("ALTER ROLE keeper CONNECTION LIMIT 3")  # the files say 7: a restore that ran would set it
    for backup in (globals_file, cluster_set):
        refused = cli(target, "restore", str(backup))
        assert refused.returncode == 2, refused.stderr
        # Every one it creates that exists is named, not the first alone (QA).
        assert 'tablespaces "Fast Disk", slow already exist' in refused.stderr, refused.stderr
        assert "nothing was restored" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
        # A set's databases restore without its globals (a set restored again, a member that had failed).
        assert ("--skip-globals" in refused.stderr) == (backup == cluster_set), refused.stderr
    # Onto another cluster of the same major on the same host (the source here), the location holds that
    # major's directory already; one that does not exist is no place either: psql stopped at the CREATE
    # TABLESPACE after the roles, both times. Refused before anything runs.
    elsewhere = tmp_path / "foreign.sql"  # without a manifest: edited by hand
    elsewhere.write_text(globals_file.read_text().replace(str(location), str(target.root / "no such dir")))
    for backup, said in ((globals_file, f"its location {location} on local:{source.port}'s host holds this "
                                        "PostgreSQL major's directory already"),
                         (elsewhere, f"its location {target.root / 'no such dir'} on local:{source.port}'s host "
                                     "does not exist")):
        refused = cli(source, "restore", str(backup))
        assert refused.returncode == 2 and said in refused.stderr, refused.stderr
        assert source.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'keeper'").strip() == "0"
        assert target.psql("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'keeper'").strip() == "3"
    # The set's databases alone (--skip-globals) onto a server without the tablespace a member was created
    # in: that member's CREATE DATABASE stopped it (exit 1) after the members before it. Refused before.
    refused = cli(source, "restore", str(cluster_set), "--skip-globals", "--only-db", "fastdb")
    assert refused.returncode == 2, refused.stderr
    assert ("""member database(s) 'fastdb' in tablespace "Fast Disk", which local:""" in refused.stderr
            and "--exclude-db fastdb" in refused.stderr and "nothing was restored" in refused.stderr), refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert source.psql("SELECT count(*) FROM pg_database WHERE datname = 'fastdb'").strip() == "0"
    # Onto a server that has it, the member is restored in it.
    target.drop_database("fastdb")
    restored = cli(target, "restore", str(cluster_set), "--skip-globals", "--only-db", "fastdb")
    assert restored.returncode == 0, restored.stderr
    assert target.psql("SELECT spcname FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace "
                       "WHERE datname = 'fastdb'").strip() == "Fast Disk"
    # A LATIN1 member's archive holds its tablespace's name in the UTF-8 bytes the (shared) catalog keeps,
    # marked LATIN1: its CREATE DATABASE looks for "SchnÃ«ll". Read as UTF-8, the check passed and the
    # member's restore stopped, exit 1, after the roles and the others (QA). Refused before, and why.
    (target.root / "schnell").mkdir()
    shutil.chown(target.root / "schnell", target.os_user)
    target.psql(f"CREATE TABLESPACE \"Schnëll\" LOCATION '{target.root / 'schnell'}'")
    latin = "CREATE DATABASE latindb ENCODING 'LATIN1' LOCALE 'C' TEMPLATE template0 TABLESPACE \"Schnëll\""
    target.psql(latin)
    latin_set = tmp_path / "latin.set"
    assert cli(target, "dumpall", "--set", "--db", "latindb", "--output", str(latin_set)).returncode == 0
    target.drop_database("latindb")
    refused = cli(target, "restore", str(latin_set), "--skip-globals")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert ("""member database 'latindb' (LATIN1) is created in tablespace "Schnëll", whose name its archive """
            in refused.stderr and 'would look for tablespace "SchnÃ«ll"' in refused.stderr), refused.stderr
    assert target.psql("SELECT count(*) FROM pg_database WHERE datname = 'latindb'").strip() == "0"
    target.psql(latin)  # what it says to do: the database made by hand, its archive restored into it
    restored = cli(target, "restore", str(latin_set / "latindb.dump"), "--db", "latindb")
    assert restored.returncode == 0, restored.stderr


def test_a_database_pg_dumpall_could_not_dump_is_said_with_pg_dump_s_own_error(target, home, tmp_path):
    """pg_dumpall ends with its own line, 'pg_dump failed on database "x", exiting', after pg_dump's
    error: the job's line said only that, the cause (a table the role may not read, the server gone)
    left to the log (QA)."""
    target.psql("CREATE ROLE lite LOGIN; CREATE DATABASE locked_db;")
    target.psql("CREATE TABLE secret_t (x int);", "locked_db")
    dumped = run_cli("dumpall", "--dsn", make_conninfo(target.dsn(), user="lite"), "--bin-dir", str(target.bin_dir),
                     "--output", str(tmp_path / "out" / "all.sql"))
    assert dumped.returncode == 1, dumped.stderr
    assert 'database "locked_db"' in dumped.stderr and "permission denied for table secret_t" in dumped.stderr, (
        dumped.stderr)
    assert not (tmp_path / "out").exists()  # nothing but its log is left


def test_a_set_whose_members_fail_says_why_for_each_of_them(target, home, tmp_path):
    """The set's line named the reasons of three failed members and no more: the others were not in
    the line at all, neither restored nor said to have failed (QA)."""
    names = [f"db{i}" for i in range(5)]
    for name in names:
        target.psql(f"CREATE DATABASE {name}")
        target.psql("CREATE TABLE t AS SELECT g AS x, md5(g::text) AS y FROM generate_series(1, 2000) g", name)
    out = tmp_path / "all.set"
    assert cli(target, "dumpall", "--set", "--output", str(out)).returncode == 0
    for member in json.loads((tmp_path / "all.set.manifest.json").read_text())["members"]:
        if member["database"] in names:  # a changed byte: the size is the same, its restore fails
            damage_unseen(out, member["file"])
    for name in names:
        target.drop_database(name)
    restored = cli(target, "restore", str(out))
    assert restored.returncode == 1, restored.stderr
    assert "5 of 6 database(s) did not restore" in restored.stderr, restored.stderr
    assert all(name in restored.stderr for name in names), restored.stderr


def test_a_database_named_twice_is_one_member_and_said_once(source, home, tmp_path):
    """`--db sales --db sales` made one member, but the set said it held 'sales, sales': another thing
    than a set of sales for delete's protection and a schedule's retention, and so listed (QA)."""
    out = tmp_path / "twice.set"
    assert cli(source, "dumpall", "--set", "--db", "sales", "--db", "sales", "--output", str(out)).returncode == 0
    manifest = json.loads((tmp_path / "twice.set.manifest.json").read_text())
    assert [m["database"] for m in manifest["members"]] == ["sales"]
    assert manifest["what"] == "cluster set of sales"


def test_verify_of_a_cluster_file_does_not_count_tables_of_several_databases_as_one(target, home, tmp_path):
    """A pg_dumpall file's tables were counted by name across its databases: two databases with a
    public.t each read as '(1 tables' data)' (QA)."""
    for name in ("one_db", "two_db"):
        target.psql(f"CREATE DATABASE {name}")
        target.psql("CREATE TABLE t AS SELECT 1 AS x", name)
    out = tmp_path / "all.sql"
    assert cli(target, "dumpall", "--output", str(out)).returncode == 0
    checked = run_cli("backups", "verify", str(out))
    assert checked.returncode == 0, checked.stderr
    said = checked.stdout + checked.stderr
    assert "reads to the end" in said and "(1 tables' data)" not in said, said


def test_a_database_with_a_line_break_in_its_name_is_said_before_pg_dumpall_runs(target, home, tmp_path):
    """pg_dumpall cannot dump a database whose name has a line break (it runs pg_dump through a
    shell): it stopped half way and the job's line was the end of its message, 'line'"' (QA)."""
    target.psql('CREATE DATABASE "new\nline";')
    dumped = cli(target, "dumpall", "--output", str(tmp_path / "out" / "all.sql"))
    assert dumped.returncode == 2, dumped.stderr
    assert "line break" in dumped.stderr and "RENAME TO" in dumped.stderr, dumped.stderr
    assert len(dumped.stderr.strip().splitlines()) == 1, dumped.stderr
    assert not (tmp_path / "out").exists()


def test_a_set_member_with_errors_ignored_says_the_first_and_what_to_do(source, target, home, tmp_path):
    """A set restored without its roles (--skip-globals) ended 'errors ignored by pg_restore: sales'
    and no more: the first error and what to do (--no-owner), which a single restore says, were left
    to the member's log (QA)."""
    out = tmp_path / "all.set"
    assert cli(source, "dumpall", "--set", "--output", str(out)).returncode == 0
    restored = cli(target, "restore", str(out), "--skip-globals", "--only-db", "sales")
    assert restored.returncode == 3, restored.stderr
    assert 'role "app_owner" does not exist' in restored.stderr and "--no-owner" in restored.stderr, restored.stderr


@pytest.mark.parametrize("name", ["sales", "Hr Data", "-leading", "it's \"quoted\""])
def test_an_advised_exclude_db_reads_back_as_the_database_s_name(name):
    """`--exclude-db -leading`, as a set's refusal advised it, is argparse's "expected one argument":
    a name that begins with a dash is given as `--exclude-db=-leading`."""
    from pgbackup_tui.cli import build_parser
    from pgbackup_tui.core.formatting import option_argument

    argv = ["restore", "x.set", "--dsn", "host=/nowhere", *shlex.split(option_argument("--exclude-db", name))]
    assert build_parser().parse_args(argv).exclude_db == [name]


def test_a_service_s_own_options_are_not_replaced_for_psql(tmp_path, monkeypatch):
    """psql runs a pg_dumpall file with `-c default_transaction_read_only=off` as a startup option; a
    conninfo's `options` replaced a service's own (a role to set, an endpoint) instead of adding to
    them (review): those stand, and the conninfo is left as it is."""
    services = tmp_path / "pg_service.conf"
    services.write_text("[prod]\nhost=db.example\noptions=-c role=dba\n[plain]\nhost=db.example\n")
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    monkeypatch.delenv("PGSERVICE", raising=False)
    monkeypatch.delenv("PGOPTIONS", raising=False)
    assert writable_sessions("service=prod dbname=postgres") == "service=prod dbname=postgres"
    assert "default_transaction_read_only=off" in writable_sessions("service=plain dbname=postgres")
    merged = writable_sessions("service=prod dbname=postgres options='-c work_mem=7MB'")  # the conninfo's win anyway
    assert "-c work_mem=7MB -c default_transaction_read_only=off" in merged, merged
