"""Issue 15, point 4: the checksum check of an archive with a manifest runs beside pg_restore where
the restore goes into a database the job creates, and still keeps the promise "a restore leaves
the target either done or as it was": a changed byte fails the job (exit 2, one line naming the
file), and the new database is dropped (at once, even while pg_restore runs). A restore into an
existing database waits for the check.

The changed byte is in the text of a COMMENT, which custom archives keep uncompressed in their
table of contents: pg_restore restores it without complaint, so only the checksum can catch it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from pathlib import Path

import pytest

from cliutil import run_cli
from pgbackup_tui.core import restore_archive
from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.jobs import JobState, LogLine
from pgbackup_tui.core.plans import RestorePlan
from pgbackup_tui.core.restore import RestoreJob
from test_restore_refusals import assert_one_line_error

COMMENT = "checked beside the restore"


@pytest.fixture(scope="module")
def source_db(sandbox):
    """A small database with a table comment (the bytes the tests change) and some rows."""
    name = "restore_check_src"
    sandbox.create_database(name)
    sandbox.psql(f"""
        CREATE TABLE items (id int PRIMARY KEY, note text);
        INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
        COMMENT ON TABLE items IS '{COMMENT}';
    """, name)
    yield name
    sandbox.drop_database(name)


@pytest.fixture
def changed_archive(sandbox, home, source_db, tmp_path) -> Path:
    """A pgbackup-tui dump of source_db (with its manifest) whose comment has one byte changed."""
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", source_db, "--format", "custom")
    assert dumped.returncode == 0, dumped.stderr
    archive = Path(dumped.stdout.strip())
    copy = tmp_path / archive.name
    shutil.copy(archive, copy)
    shutil.copy(f"{archive}.manifest.json", f"{copy}.manifest.json")
    data = bytearray(copy.read_bytes())
    at = data.find(COMMENT.encode())
    assert at > 0, "the comment is not stored as plain text in the archive"
    data[at] ^= 0x20  # "c" -> "C": still a valid archive that pg_restore restores
    copy.write_bytes(bytes(data))
    return copy


def databases(sandbox) -> set[str]:
    return set(sandbox.psql("SELECT datname FROM pg_database").split())


def test_a_changed_byte_fails_a_create_restore_and_leaves_no_database(sandbox, home, changed_archive,
                                                                      fresh_db_name):
    before = databases(sandbox)
    result = run_cli("restore", str(changed_archive), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create",
                     "--progress", "none")
    # Exit 2 (a bad archive), as when it was refused up front. Whether the check ended before the
    # database was created or while pg_restore filled it depends on timing (see the next test).
    assert_one_line_error(result, str(changed_archive), "xxh3-128 checksum differs from the manifest")
    assert databases(sandbox) == before  # no new database, no pgbackup_new_* left behind


async def test_a_change_found_while_pg_restore_runs_stops_it_and_drops_the_new_database(
        sandbox, home, changed_archive, fresh_db_name, monkeypatch):
    """The check is held back until pg_restore has started filling the new database: the job
    then fails with the check's error (exit 2) and the database is dropped."""
    restoring = threading.Event()
    real_compare = restore_archive.compare_checksums

    def compare_once_restoring(archive: Path, expected: dict[str, str]) -> list[str]:
        assert restoring.wait(60), "pg_restore never started"
        return real_compare(archive, expected)

    monkeypatch.setattr(restore_archive, "compare_checksums", compare_once_restoring)
    job = RestoreJob(RestorePlan(archive=changed_archive, target=target_from_dsn(sandbox.dsn()),
                                 dbname=fresh_db_name, create=True))
    job.subscribe(lambda event: restoring.set() if isinstance(event, LogLine) and event.text.startswith("$ ")
                  and "--dbname=" in event.text else None)
    before = databases(sandbox)
    result = await job.run()
    assert restoring.is_set()
    assert (result.state, result.exit_code) == (JobState.FAILED, 2), result.message
    assert "xxh3-128 checksum differs from the manifest" in result.message
    assert f"the new database '{fresh_db_name}' was dropped" in result.message
    assert databases(sandbox) == before  # the database it was filling is gone


async def test_an_archive_whose_last_verification_failed_is_checked_before_its_database_is_created(
        sandbox, home, source_db, fresh_db_name, monkeypatch):
    """A backup `backups verify` had failed was restored with --create as any other: the check ran
    beside pg_restore, so a slow one (a big archive) let the job create the database first and drop
    it again. The catalog's word is taken now: such an archive is checked before anything is made.
    The check here waits for whichever comes first: the database created, or the job saying it
    checks first."""
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", source_db, "--format", "custom")
    assert dumped.returncode == 0, dumped.stderr
    archive = Path(dumped.stdout.strip())
    data = bytearray(archive.read_bytes())
    data[data.find(COMMENT.encode())] ^= 0x20
    archive.write_bytes(bytes(data))
    backup_id = next(e["id"] for e in json.loads(run_cli("backups", "list", "--json").stdout)
                     if e["path"] == str(archive))
    verified = run_cli("backups", "verify", backup_id)
    assert verified.returncode == 1, verified.stdout + verified.stderr
    listed = {e["id"]: e["status"] for e in json.loads(run_cli("backups", "list", "--json").stdout)}
    assert listed[backup_id] == "failed verification"

    either = threading.Event()
    real_compare = restore_archive.compare_checksums

    def compare_after_either(path: Path, expected: dict[str, str]) -> list[str]:
        assert either.wait(60), "neither a CREATE DATABASE nor the check first"
        return real_compare(path, expected)

    monkeypatch.setattr(restore_archive, "compare_checksums", compare_after_either)
    job = RestoreJob(RestorePlan(archive=archive, target=target_from_dsn(sandbox.dsn()),
                                 dbname=fresh_db_name, create=True))
    said: list[str] = []

    def heard(event: object) -> None:
        if isinstance(event, LogLine):
            said.append(event.text)
            if event.text.startswith("created database") or "checked before a database is created" in event.text:
                either.set()

    job.subscribe(heard)
    before = databases(sandbox)
    result = await job.run()
    assert (result.state, result.exit_code) == (JobState.FAILED, 2), result.message
    assert "xxh3-128 checksum differs from the manifest" in result.message
    assert not [line for line in said if line.startswith("created database")], said
    assert "its last verification failed" in "\n".join(said)
    assert databases(sandbox) == before


def test_a_changed_byte_stops_a_whole_database_clean_before_the_swap(sandbox, home, changed_archive, empty_db):
    sandbox.psql("CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (7)", empty_db)
    before = databases(sandbox)
    result = run_cli("restore", str(changed_archive), "--dsn", sandbox.dsn(), "--db", empty_db, "--clean",
                     "--progress", "none")
    assert_one_line_error(result, str(changed_archive), "xxh3-128 checksum differs from the manifest")
    assert databases(sandbox) == before  # the copy built beside it was dropped
    assert sandbox.psql("SELECT id FROM keep_me", empty_db).strip() == "7"  # the target as it was
    assert sandbox.psql("SELECT count(*) FROM pg_class WHERE relname = 'items'", empty_db).strip() == "0"


def test_a_changed_byte_is_refused_before_an_existing_database_is_touched(sandbox, home, changed_archive, empty_db):
    result = run_cli("restore", str(changed_archive), "--dsn", sandbox.dsn(), "--db", empty_db, "--progress", "plain")
    assert result.returncode == 2, result.stderr
    assert "xxh3-128 checksum differs from the manifest" in result.stderr
    assert "--list" in result.stderr and "--dbname=" not in result.stderr  # listed, never restored into it
    assert sandbox.psql("SELECT count(*) FROM pg_class WHERE relname = 'items'", empty_db).strip() == "0"


def test_an_unchanged_archive_restores_with_the_check_beside(sandbox, home, source_db, fresh_db_name):
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", source_db)
    assert dumped.returncode == 0, dumped.stderr
    result = run_cli("restore", dumped.stdout.strip(), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create",
                     "--progress", "plain")
    assert result.returncode == 0, result.stderr
    assert "its checksum is checked beside the restore" in result.stderr
    assert "its xxh3-128 matches the manifest's" in result.stderr
    assert sandbox.psql("SELECT count(*) FROM items", fresh_db_name).strip() == "5000"
    assert sandbox.psql("SELECT obj_description('items'::regclass)", fresh_db_name).strip() == COMMENT


async def test_a_cancel_while_the_check_still_runs_after_pg_restore_drops_the_new_database_at_once(
        sandbox, home, source_db, fresh_db_name, monkeypatch):
    """pg_restore is done, the check is not (held back here): a cancel does not wait for it."""
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", source_db)
    assert dumped.returncode == 0, dumped.stderr
    release = threading.Event()
    real_compare = restore_archive.compare_checksums

    def compare_when_released(archive: Path, expected: dict[str, str]) -> list[str]:
        release.wait(60)
        return real_compare(archive, expected)

    monkeypatch.setattr(restore_archive, "compare_checksums", compare_when_released)
    job = RestoreJob(RestorePlan(archive=Path(dumped.stdout.strip()), target=target_from_dsn(sandbox.dsn()),
                                 dbname=fresh_db_name, create=True))
    restored = threading.Event()
    job.subscribe(lambda event: restored.set() if isinstance(event, LogLine) and event.text.startswith("$ ")
                  and "--dbname=" in event.text else None)
    before = databases(sandbox)
    running = asyncio.ensure_future(job.run())
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        seen_running = False
        while not (seen_running and job._process is None):  # pg_restore started, and is over
            assert loop.time() < deadline and not running.done(), "pg_restore never ran to its end"
            seen_running = seen_running or (restored.is_set() and job._process is not None)
            await asyncio.sleep(0.005)
        cancelled_at = loop.time()
        job.cancel()
        await asyncio.wait([running], timeout=30)
        took = loop.time() - cancelled_at
    finally:
        release.set()
    result = await running
    assert took < 5, f"the cancel waited {took:.1f} s for the check"
    assert result.state == JobState.CANCELLED, result.message
    assert databases(sandbox) == before  # the database it had filled is gone


def test_a_changed_plain_file_is_refused_and_its_drill_fails(sandbox, home, source_db, empty_db):
    """A plain SQL backup was restored, and drilled ("drilled", over its failed verification),
    without its checksum looked at: a row changed since the backup went in, exit 0."""
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", source_db, "--format", "plain")
    assert dumped.returncode == 0, dumped.stderr
    archive = Path(dumped.stdout.strip())
    data = archive.read_bytes()
    row = b"\n42\t" + sandbox.psql("SELECT md5('42')", source_db).strip().encode()
    assert row in data
    archive.write_bytes(data.replace(row, row[:-1] + (b"0" if row[-1:] != b"0" else b"1")))  # same size
    into = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", empty_db, "--progress", "plain")
    assert into.returncode == 2 and "checksum differs from the manifest" in into.stderr, into.stderr
    assert sandbox.psql("SELECT count(*) FROM pg_class WHERE relname = 'items'", empty_db).strip() == "0"
    new_db = empty_db + "_new"
    made = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", new_db, "--create")
    assert made.returncode == 2 and "checksum differs from the manifest" in made.stderr, made.stderr
    assert new_db not in databases(sandbox)
    backup_id = next(e["id"] for e in json.loads(run_cli("backups", "list", "--json").stdout)
                     if e["path"] == str(archive))
    drilled = run_cli("backups", "drill", backup_id, "--dsn", sandbox.dsn())
    assert drilled.returncode != 0, drilled.stdout + drilled.stderr
    after = next(e for e in json.loads(run_cli("backups", "list", "--json").stdout) if e["id"] == backup_id)
    assert after["status"] == "failed verification", after


def test_a_changed_archive_whose_manifest_is_damaged_is_refused(sandbox, home, changed_archive, empty_db):
    """Its manifest (its checksum) unreadable, the changed archive was restored as a foreign one,
    unchecked: the changed comment went in, exit 0."""
    sidecar = Path(f"{changed_archive}.manifest.json")
    sidecar.write_text(sidecar.read_text().replace(",", "", 1))
    into_existing = run_cli("restore", str(changed_archive), "--dsn", sandbox.dsn(), "--db", empty_db)
    assert_one_line_error(into_existing, str(changed_archive), "its manifest", "cannot be read", "nothing was restored")
    assert sandbox.psql("SELECT count(*) FROM pg_class WHERE relname = 'items'", empty_db).strip() == "0"
    new_db = f"{empty_db}_new"
    created = run_cli("restore", str(changed_archive), "--dsn", sandbox.dsn(), "--db", new_db, "--create")
    assert_one_line_error(created, "cannot be read", "nothing was restored")
    assert new_db not in databases(sandbox)


def test_an_archive_grown_since_whose_manifest_has_no_checksums_is_refused(sandbox, home, source_db, fresh_db_name):
    """A manifest from before checksums: its size is all that tells the archive changed. Listed
    "changed", garbage appended to it (which pg_restore reads through) verified, drilled, and restored."""
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", source_db, "--format", "custom")
    assert dumped.returncode == 0, dumped.stderr
    archive = Path(dumped.stdout.strip())
    sidecar = Path(f"{archive}.manifest.json")
    manifest = json.loads(sidecar.read_text())
    del manifest["checksums"]
    sidecar.write_text(json.dumps(manifest))
    with archive.open("ab") as grown:
        grown.write(b"garbage\n")

    verified = run_cli("backups", "verify", str(archive))
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert "bytes on disk" in verified.stderr
    restored = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    assert_one_line_error(restored, str(archive), "bytes on disk", "no checksum", "nothing was restored")
    assert fresh_db_name not in databases(sandbox)
