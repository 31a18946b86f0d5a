"""The backup catalog through the real CLI on a real cluster: list, show, verify, drill, delete,
adopt; damage caught and named; foreign archives of every kind; backups that follow a renamed
profile; --output backups listed, and shown missing once moved away."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from cliutil import run_cli
from conftest import SAMPLE_WIDE_ROWS
from pgbackup_tui.core import paths
from pgbackup_tui.core.catalog import scan
from pgbackup_tui.core.config import load_config, save_config
from pgbackup_tui.core.server_profile import ServerProfile
from pgbackup_tui.core.drill_names import DRILL_PREFIX, drill_database_name, host_tag
from pgbackup_tui.core.pgtools import find_client_tools

SOURCE = "shop"


def dump(sandbox, *args: str) -> Path:
    done = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--progress", "none", *args)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def listed(*args: str) -> list[dict]:
    done = run_cli("backups", "list", "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def by_path(entries: list[dict], path: Path) -> dict:
    return next(e for e in entries if e["path"] == str(path))


def test_list_show_verify_and_a_flipped_byte(sandbox, home):
    archive = dump(sandbox, "--compress", "0")
    entry = by_path(listed(), archive)
    assert entry["status"] == "complete" and entry["database"] == SOURCE and entry["format"] == "custom"

    shown = run_cli("backups", "show", entry["id"][:5], "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    tables = {t["name"]: t["rows"] for t in data["contents"]["tables"]}
    assert tables["public.events"] == SAMPLE_WIDE_ROWS  # counted in the archive, exactly
    assert '"Sales & Ops".customers' in tables  # a schema name with spaces is read whole
    assert data["contents"]["counts"]["TABLE"] >= len(tables) - 1 and data["contents"]["counts"]["INDEX"] >= 1
    checksum = data["manifest"]["checksums"][""]
    assert checksum.startswith("xxh3-128:") and len(checksum) == 41 and data["manifest"]["schema_version"] == 2
    text = run_cli("backups", "show", entry["id"])
    assert "public.events" in text.stdout and f"{SAMPLE_WIDE_ROWS} rows" in text.stdout
    # `restore ID`, as every `backups` command takes it, said only "…/ID: no such file or directory" (QA).
    by_id = run_cli("restore", entry["id"][:6], "--dsn", sandbox.dsn(), "--db", "never_made", "--create")
    assert by_id.returncode == 2 and by_id.stderr.count("\n") == 1, by_id.stderr
    assert f"is backup {entry['id']}'s id" in by_id.stderr and f"pgbackup-tui restore {archive} " in by_id.stderr

    verified = run_cli("backups", "verify", entry["id"])
    assert verified.returncode == 0, verified.stderr
    assert by_path(listed(), archive)["status"] == "verified"

    # One byte in the middle of the table data: pg_restore alone would not notice (-Z0).
    with archive.open("r+b") as handle:
        handle.seek(archive.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0x01]))
    failed = run_cli("backups", "verify", entry["id"])
    assert failed.returncode == 1
    assert f"{archive}: its xxh3-128 checksum differs" in failed.stderr
    assert by_path(listed(), archive)["status"] == "failed verification"


def test_truncated_archives_are_caught_and_named(sandbox, home):
    custom = dump(sandbox)
    directory = dump(sandbox, "--format", "directory")
    entries = listed()
    with custom.open("r+b") as handle:
        handle.truncate(custom.stat().st_size // 2)
    cut = run_cli("backups", "verify", by_path(entries, custom)["id"])
    assert cut.returncode == 1 and f"{custom}: its xxh3-128 checksum differs" in cut.stderr
    assert f"{custom}: does not read to the end" in cut.stderr

    data_file = max((p for p in directory.iterdir() if p.name != "toc.dat"), key=lambda p: p.stat().st_size)
    with data_file.open("r+b") as handle:
        handle.truncate(data_file.stat().st_size // 2)
    cut = run_cli("backups", "verify", by_path(entries, directory)["id"])
    assert cut.returncode == 1 and f"{data_file}: its xxh3-128 checksum differs" in cut.stderr


def test_a_cut_archive_lists_as_changed_before_any_verify_and_loses_its_protection(sandbox, home):
    """A verified backup cut short behind our back listed as "verified" until someone verified it
    again, and `delete` protected it over the good one before it. Its size differs from the
    manifest's: it lists as changed, at the cost of a stat."""
    older = dump(sandbox)
    newer = dump(sandbox)
    entries = listed()
    for archive in (older, newer):
        assert run_cli("backups", "verify", by_path(entries, archive)["id"]).returncode == 0
    with newer.open("r+b") as handle:
        handle.truncate(1000)
    entry = by_path(listed(), newer)
    assert entry["status"] == "changed", entry
    shown = run_cli("backups", "show", entry["id"])
    assert "1000 bytes on disk" in shown.stdout + shown.stderr
    # --json said "changed" without why (the text's "changed (…)"); toc_error came only with an error.
    as_json = json.loads(run_cli("backups", "show", entry["id"], "--json").stdout)
    assert as_json["problem"] == entry["problem"] and "1000 bytes on disk" in as_json["problem"]
    assert as_json["toc_error"] and "toc_error" in json.loads(run_cli("backups", "show", str(older), "--json").stdout)
    refused = run_cli("backups", "delete", by_path(listed(), older)["id"])
    assert refused.returncode == 2 and "newest verified" in refused.stderr  # the good one is protected now


def test_a_check_that_ends_after_its_backup_was_deleted_records_nothing(sandbox, home):
    from pgbackup_tui.core.catalog import entry_for, record_check
    from pgbackup_tui.core.catalog_ops import delete
    from pgbackup_tui.core.manifest import Verification, manifest_path

    archive = dump(sandbox)
    entry = entry_for(archive)
    assert entry is not None
    delete(entry, [entry], force=True)  # while a verify of it reads the archive
    try:
        record_check(entry, Verification(kind="verify", at="now", ok=True))
    except Exception as exc:  # noqa: BLE001 - the one expected: UsageError
        assert "deleted while it was being checked" in str(exc)
    else:
        raise AssertionError("the check was recorded for a deleted backup")
    assert not manifest_path(archive).exists()
    assert not list(archive.parent.glob(f".{archive.name}*"))  # no lock file left either


def test_drill_restores_compares_and_drops(sandbox, home):
    archive = dump(sandbox, "--format", "tar")
    backup_id = by_path(listed(), archive)["id"]
    drilled = run_cli("backups", "drill", backup_id, "--dsn", sandbox.dsn(), timeout=300)
    assert drilled.returncode == 0, drilled.stderr
    assert "rows of" in drilled.stderr and "match the manifest" in drilled.stderr
    assert by_path(listed(), archive)["status"] == "drilled"
    assert sandbox.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'pgbackup_drill_%'").strip() == "0"
    manifest = json.loads(Path(str(archive) + ".manifest.json").read_text())
    drill = manifest["verifications"][-1]
    assert drill["kind"] == "drill" and drill["ok"] and drill["details"]["dropped"] is True
    # A drill that cannot reach its server says nothing of the backup: nothing is recorded (it was
    # recorded as "failed verification", which let `backups delete` remove the newest good backup).
    nowhere = run_cli("backups", "drill", backup_id, "--dsn", "host=/nonexistent port=5432 user=postgres")
    assert nowhere.returncode == 2, nowhere.stderr
    assert "could not run" in nowhere.stderr and "nothing was recorded" in nowhere.stderr
    assert "drop it by hand" not in nowhere.stderr and nowhere.stderr.count("\n") == 1, nowhere.stderr
    assert by_path(listed(), archive)["status"] == "drilled"
    assert json.loads(Path(str(archive) + ".manifest.json").read_text())["verifications"] == manifest["verifications"]
    # A role that may not create databases: the restore failed with its CREATE DATABASE statement
    # quoted. Now one line naming the role and what it needs, before anything runs; nothing recorded.
    role = "t_nodb_" + uuid.uuid4().hex[:6]
    sandbox.create_role(role)
    try:
        nodb = run_cli("backups", "drill", backup_id, "--dsn",
                       sandbox.dsn().replace(f"user={sandbox.superuser}", f"user={role}"))
    finally:
        sandbox.psql(f'DROP ROLE "{role}";')
    assert nodb.returncode == 2 and nodb.stderr.count("\n") == 1, nodb.stderr
    assert f"role '{role}'" in nodb.stderr and "neither CREATEDB nor superuser" in nodb.stderr, nodb.stderr
    assert "CREATE DATABASE" not in nodb.stderr and "nothing was recorded" in nodb.stderr, nodb.stderr
    assert json.loads(Path(str(archive) + ".manifest.json").read_text())["verifications"] == manifest["verifications"]
    refused = run_cli("backups", "delete", backup_id)
    assert refused.returncode == 2 and "--force" in refused.stderr, refused.stderr


def test_a_data_only_backup_is_listed_as_such_and_not_drilled_into_a_false_failure(sandbox, home):
    """It has no tables to restore into a scratch database: a drill would fail and mark a good
    backup as bad. It is refused, and verify (which needs no tables) passes."""
    archive = dump(sandbox, "--data-only")
    entry = by_path(listed(), archive)
    assert entry["holds"] == "data only"
    drilled = run_cli("backups", "drill", entry["id"], "--dsn", sandbox.dsn())
    assert drilled.returncode == 2 and "data-only backup cannot be drilled" in drilled.stderr
    assert run_cli("backups", "verify", entry["id"]).returncode == 0
    assert by_path(listed(), archive)["status"] == "verified"


def test_a_drill_drops_what_a_killed_drill_of_this_machine_left_and_nothing_else(sandbox, home):
    """A drill killed with SIGKILL cannot drop its scratch database: the next drill on the server
    does, when the name says this machine made it with a process that is gone."""
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid no longer runs
    left = drill_database_name(pid=gone.pid)
    running = drill_database_name(pid=os.getpid())  # a drill of this machine that still runs
    elsewhere = f"{DRILL_PREFIX}{'0' * 8 if host_tag() != '0' * 8 else '1' * 8}_{gone.pid}_deadbeef"
    for name in (left, running, elsewhere):
        sandbox.create_database(name)
    try:
        archive = dump(sandbox, "--schema-only")
        backup_id = by_path(listed(), archive)["id"]
        drilled = run_cli("backups", "drill", backup_id, "--dsn", sandbox.dsn(), timeout=300)
        assert drilled.returncode == 0, drilled.stderr
        assert f"dropped {left}" in drilled.stderr
        names = sandbox.psql(f"SELECT string_agg(datname, ' ') FROM pg_database WHERE datname LIKE '{DRILL_PREFIX}%'")
        assert left not in names and running in names and elsewhere in names
    finally:
        for name in (running, elsewhere, left):
            sandbox.psql(f'DROP DATABASE IF EXISTS "{name}"')


def test_a_drill_of_a_database_with_a_subscription_drops_its_scratch_database(sandbox, home, empty_db):
    """pg_dump keeps a subscription (connect = false, the slot's name kept): restored by the drill, it
    kept the scratch database from being dropped, drill after drill, and the drill said to drop it by
    hand, where DROP SUBSCRIPTION would have reached the publisher to drop its real slot (QA)."""
    subscription = f"sub_{empty_db}"
    sandbox.psql(f"CREATE TABLE t (a int); INSERT INTO t VALUES (1); CREATE SUBSCRIPTION {subscription} "
                 "CONNECTION 'host=/nonexistent dbname=publisher' PUBLICATION p WITH (connect = false);", empty_db)
    try:
        done = run_cli("dump", "--dsn", sandbox.dsn(), "--db", empty_db, "--progress", "none")
        assert done.returncode == 0, done.stderr
        backup_id = by_path(listed(), Path(done.stdout.strip()))["id"]
        drilled = run_cli("backups", "drill", backup_id, "--dsn", sandbox.dsn(), timeout=300)
        assert drilled.returncode == 0 and "could not drop" not in drilled.stderr, drilled.stderr
        assert "rows of 1 table match the manifest" in drilled.stderr, drilled.stderr  # it said "1 tables"
        checked = run_cli("backups", "verify", backup_id)
        assert "reads to the end (1 table's data)" in checked.stderr and "rows of 1 table match" in checked.stderr
        assert sandbox.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'pgbackup_drill_%'").strip() == "0"
    finally:  # the test database's own, and a scratch database's if one was left
        for database in sandbox.psql("SELECT d.datname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid "
                                     f"WHERE s.subname = '{subscription}'").split():
            sandbox.psql(f"ALTER SUBSCRIPTION {subscription} DISABLE; ALTER SUBSCRIPTION {subscription} "
                         f"SET (slot_name = NONE); DROP SUBSCRIPTION {subscription};", database)
            if database.startswith(DRILL_PREFIX):
                sandbox.drop_database(database)


def test_delete_keeps_the_newest_verified_unless_forced(sandbox, home):
    older, newer = dump(sandbox, "--schema-only"), dump(sandbox, "--schema-only")
    entries = listed()
    for path in (older, newer):
        assert run_cli("backups", "verify", by_path(entries, path)["id"]).returncode == 0
    refused = run_cli("backups", "delete", by_path(entries, newer)["id"])
    assert refused.returncode == 2 and "newest verified backup" in refused.stderr and newer.exists()
    assert run_cli("backups", "delete", by_path(entries, older)["id"]).returncode == 0
    assert not older.exists() and not Path(str(older) + ".manifest.json").exists()
    forced = run_cli("backups", "delete", by_path(entries, newer)["id"], "--force")
    assert forced.returncode == 0 and not newer.exists()
    assert not [e for e in listed() if e["path"] in (str(older), str(newer))]


def test_foreign_archives_of_every_kind_are_recognised_and_adopted(sandbox, home, tmp_path):
    tools = find_client_tools(sandbox.major)
    root = home / "backups" / "by-hand"
    root.mkdir(parents=True)
    env = dict(os.environ, PGDATABASE=SOURCE)
    conn = ["--dbname", sandbox.dsn(SOURCE)]
    for fmt, name in (("c", "shop.dump"), ("t", "shop.tar"), ("d", "shop.dir"), ("p", "shop.sql")):
        subprocess.run([tools.pg_dump, *conn, "-F", fmt, "-f", str(root / name)], check=True, env=env)
    with (root / "shop.sql").open("rb") as plain, gzip.open(root / "shop.sql.gz", "wb") as packed:
        shutil.copyfileobj(plain, packed)
    subprocess.run([tools.pg_dumpall, "--dbname", sandbox.dsn(), "--globals-only", "-f", str(root / "all.sql")],
                   check=True, env=env)
    (root / "notes.txt").write_text("not a dump\n")

    found = {Path(e["path"]).name: e for e in listed()}
    expected = {"shop.dump": "custom", "shop.tar": "tar", "shop.dir": "directory", "shop.sql": "plain",
                "shop.sql.gz": "plain.gz", "all.sql": "dumpall"}
    for name, fmt in expected.items():
        assert found[name]["status"] == "foreign" and found[name]["format"] == fmt, found[name]
    assert tools.version in found["shop.dump"]["holds"]
    assert "notes.txt" not in found

    # Adopt one from outside the backup dir: it joins the index, keeps its id, and verifies.
    outside = tmp_path / "elsewhere.dump"
    shutil.copy(root / "shop.dump", outside)
    adopted = run_cli("backups", "adopt", str(outside))
    assert adopted.returncode == 0, adopted.stderr
    entry = by_path(listed(), outside)
    assert entry["status"] == "complete" and entry["database"] == SOURCE and entry["indexed"]
    assert adopted.stdout.startswith(entry["id"])
    assert run_cli("backups", "verify", entry["id"]).returncode == 0
    shown = run_cli("backups", "show", entry["id"]).stdout.splitlines()  # its server line read blank (QA)
    assert any(line.startswith("server      unknown (made elsewhere and adopted") for line in shown), shown
    # pg_dump --schema-only / --data-only made elsewhere: both were adopted as "whole database" (QA).
    # A plain script's too, from its entries' comments (review).
    for option, holds in (("--schema-only", "schema only"), ("--data-only", "data only")):
        for fmt, suffix in (("-Fc", "dump"), ("-Fp", "sql")):
            made = tmp_path / f"elsewhere{option}.{suffix}"
            subprocess.run([tools.pg_dump, *conn, fmt, option, "-f", str(made)], check=True, env=env)
            assert run_cli("backups", "adopt", str(made)).returncode == 0
            assert by_path(listed(), made)["holds"] == holds, (fmt, option)
    # Adopted again (a script that adopts what it finds): it exited 2; now said, exit 0, nothing changed.
    manifest = Path(f"{outside}.manifest.json")
    recorded = manifest.read_bytes()
    again = run_cli("backups", "adopt", str(outside))
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"{entry['id']} verified {outside} ") and \
        again.stdout.rstrip().endswith("; already in the catalog, nothing changed"), again.stdout
    assert manifest.read_bytes() == recorded and by_path(listed(), outside)["id"] == entry["id"]
    # Another archive in its place (the same size, another byte), its manifest left beside it: no
    # longer that backup. Refused, one line; the manifest (the id, the checks) kept as it was.
    data = bytearray(outside.read_bytes())
    data[len(data) // 2] ^= 0xFF
    outside.write_bytes(bytes(data))
    refused = run_cli("backups", "adopt", str(outside))
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert f"{outside}: not adopted: listed as backup {entry['id']}, but the archive there now is not" in refused.stderr
    assert "checksum differs" in refused.stderr and f"move {manifest.name} aside" in refused.stderr
    assert manifest.read_bytes() == recorded
    # pg_dumpall --globals-only holds roles and tablespaces, not a cluster; a pipe is not an archive.
    globals_adopted = run_cli("backups", "adopt", str(root / "all.sql"))
    assert globals_adopted.returncode == 0, globals_adopted.stderr
    assert by_path(listed(), root / "all.sql")["holds"] == "roles and tablespaces"
    piped = subprocess.run(["bash", "-c", f'"$0" -m pgbackup_tui backups adopt <(cat "{outside}")', sys.executable],
                           capture_output=True, text=True, timeout=60)
    assert piped.returncode == 2 and "not a regular file" in piped.stderr, piped.stderr


def test_a_gzipped_whole_cluster_is_adopted_as_a_whole_cluster(sandbox, home, tmp_path):
    """`pg_dumpall | gzip` was adopted as "roles and tablespaces": its \\connect lines were looked
    for in the compressed bytes, so delete's keep-the-newest-verified saw no cluster backup there."""
    tools = find_client_tools(sandbox.major)
    script = subprocess.run([tools.pg_dumpall, "--dbname", sandbox.dsn(), "--exclude-database", SOURCE],
                            check=True, capture_output=True, timeout=60).stdout
    packed = tmp_path / "cluster.sql.gz"
    packed.write_bytes(gzip.compress(script))
    adopted = run_cli("backups", "adopt", str(packed))
    assert adopted.returncode == 0, adopted.stderr
    entry = by_path(listed(), packed)
    assert entry["format"] == "dumpall.gz" and entry["holds"] == "whole cluster", entry
    # Cut before its closing line, the gzip stream whole: adopted as a complete whole cluster; the
    # stream cut: a traceback (EOFError) (QA). Both refused in one line, as a cut plain file is.
    cut = tmp_path / "cut.sql.gz"
    cut.write_bytes(gzip.compress(script[:len(script) // 2]))
    stream_cut = tmp_path / "stream-cut.sql.gz"  # past what a sniff reads of it: comments of random text
    padded = script[:1000] + b"".join(b"-- %s\n" % os.urandom(32).hex().encode() for _ in range(20000)) + script[1000:]
    whole = gzip.compress(padded)
    stream_cut.write_bytes(whole[:len(whole) // 2])
    for path in (stream_cut, cut):
        refused = run_cli("backups", "adopt", str(path))
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
        assert f"{path}: truncated or damaged gzip" in refused.stderr and not Path(f"{path}.manifest.json").exists()


def test_a_fifo_in_the_backup_dir_does_not_hang_the_list(home):
    """`mkfifo backups/stream.dump` (to stream a dump elsewhere): sniffing opened it, which waits
    for a writer, and `backups list` never returned."""
    folder = home / "backups" / "by-hand"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "stream.dump")
    done = run_cli("backups", "list", "--json", timeout=20)
    assert done.returncode == 0, done.stderr
    assert not [e for e in json.loads(done.stdout) if e["path"].endswith("stream.dump")]
    # One put in place of a backup's archive: verify read it, waiting for good too.
    (folder / "stream.dump.manifest.json").write_text(json.dumps({"schema_version": 2, "kind": "dump",
                                                                  "format": "custom", "database": "x"}))
    checked = run_cli("backups", "verify", str(folder / "stream.dump"), timeout=20)
    assert checked.returncode == 1 and "not a regular file" in checked.stderr, checked.stdout + checked.stderr


def test_an_empty_id_or_path_is_refused_as_such(home):
    """`backups delete "$ID"` / `backups adopt "$FILE"` with the variable unset: the empty id was a
    prefix of every backup ("the prefix fits N backups"), and the empty path was the current folder."""
    for command in ("show", "verify", "delete"):
        done = run_cli("backups", command, "")
        assert done.returncode == 2 and "backup id is empty" in done.stderr, done.stderr
    adopted = run_cli("backups", "adopt", "")
    assert adopted.returncode == 2 and "the path is empty" in adopted.stderr, adopted.stderr
    assert len(adopted.stderr.strip().splitlines()) == 1


def test_a_prefix_names_each_backup_it_fits_once(tmp_path):
    """Copies and old paths of one backup share its id: each was counted and named, "the prefix fits
    6 backups (5f14…, 515f…, 5c3c…, 5c8c…, 515f…)" of four backups, one of them twice (QA)."""
    from pgbackup_tui.core.catalog import CatalogEntry, find
    from pgbackup_tui.core.errors import UsageError

    entries = [CatalogEntry(backup_id, tmp_path / name, status) for backup_id, name, status in (
        ("5f149d88", "a.sql.gz", "verified"), ("515f31a3", "b.dir", "complete"), ("5c3cd3f6", "c.sql", "complete"),
        ("515f31a3", "old/b.dir", "missing"), ("5c8c6cc1", "d.dir", "complete"),
        ("5f149d88", "old/a.sql.gz", "missing"))]
    with pytest.raises(UsageError) as caught:
        find("5", entries)
    assert str(caught.value) == ("backup 5: the prefix fits 4 backups (5f149d88, 515f31a3, 5c3cd3f6, 5c8c6cc1); "
                                 "give more of the id, or the backup's path")


def test_a_partial_left_behind_is_not_offered_for_adoption_nor_adopted(sandbox, home):
    """verify / drill of a dump's .partial said "has no manifest (a foreign archive); adopt it first",
    and adopt took it in: one still being written then went missing at its rename."""
    archive = dump(sandbox, "--table", "public.invoices")
    left = archive.with_name(archive.name + ".partial")
    shutil.copy(archive, left)  # what a dump killed between its last byte and its rename leaves
    entry = by_path(listed(), left)
    assert entry["status"] == "incomplete"
    checked = run_cli("backups", "verify", entry["id"])
    assert checked.returncode == 2 and "incomplete" in checked.stderr and "adopt" not in checked.stderr, checked.stderr
    adopted = run_cli("backups", "adopt", str(left))
    assert adopted.returncode == 2 and "work file (.partial)" in adopted.stderr, adopted.stdout + adopted.stderr
    assert not Path(f"{left}.manifest.json").exists()


def test_adopting_a_cut_tar_archive_does_not_speak_of_a_restore(sandbox, home, tmp_path):
    """adopt said "...(x.dat is cut short); nothing was restored": a restore's words, where none was asked for."""
    tools = find_client_tools(sandbox.major)
    archive = tmp_path / "cut.tar"
    subprocess.run([tools.pg_dump, "--dbname", sandbox.dsn(SOURCE), "-F", "t", "-t", "public.events", "-f",
                    str(archive)], check=True)
    with archive.open("r+b") as handle:
        handle.truncate(archive.stat().st_size // 2)
    adopted = run_cli("backups", "adopt", str(archive))
    assert adopted.returncode == 2 and "truncated tar archive" in adopted.stderr, adopted.stderr
    assert "restored" not in adopted.stderr
    # A directory archive's uncompressed (or lz4, zstd) data file cut short: pg_restore reads it to its end
    # without a word, its rows ran on into the next table's, and it was adopted as complete, then
    # verified; a drill failed it (QA).
    folder = tmp_path / "cut.dir"
    subprocess.run([tools.pg_dump, "--dbname", sandbox.dsn(SOURCE), "-F", "d", "-Z", "0", "-t", "public.events",
                    "-t", "public.invoices", "-f", str(folder)], check=True)
    listing = subprocess.run([tools.pg_restore, "--list", str(folder)], capture_output=True, text=True, check=True)
    first = next(line.split(";")[0] for line in listing.stdout.splitlines() if " TABLE DATA " in line)
    data_file = folder / f"{first}.dat"
    with data_file.open("r+b") as handle:
        handle.truncate(data_file.stat().st_size // 2)
    adopted = run_cli("backups", "adopt", str(folder))
    assert adopted.returncode == 2, adopted.stdout + adopted.stderr
    assert f"{folder}: does not read to the end (a table's data is cut short: " in adopted.stderr, adopted.stderr
    assert not Path(f"{folder}.manifest.json").exists()


def test_an_excluded_table_is_said_in_what_a_backup_holds(sandbox, home, tmp_path):
    """A dump with --exclude-table was listed as "whole database"."""
    out = tmp_path / "but.dump"
    done = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--schema-only", "--exclude-table",
                   "public.documents", "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert by_path(listed(), out)["holds"] == "schema only but public.documents"


def test_renamed_profile_keeps_its_backups(sandbox, home):
    assert run_cli("servers", "add", "old-name", "--dsn", sandbox.dsn()).returncode == 0
    done = run_cli("dump", "--server", "old-name", "--db", SOURCE, "--schema-only", "--progress", "none")
    assert done.returncode == 0, done.stderr
    archive = Path(done.stdout.strip())
    config = load_config()
    profile = config.remove_server("old-name")
    config.add_server(ServerProfile(**{**profile.__dict__, "name": "new-name"}))
    save_config(config)
    mine = listed("--server", "new-name")
    assert [e["path"] for e in mine] == [str(archive)]
    assert mine[0]["server"] == "new-name" and mine[0]["server_written_as"] == "old-name"
    # Several profiles of one cluster: a backup is shown under the profile it was written under
    # while that profile exists; it was shown under whichever was added last (QA).
    assert run_cli("servers", "add", "other", "--dsn", sandbox.dsn()).returncode == 0
    done = run_cli("dump", "--server", "other", "--db", SOURCE, "--schema-only", "--progress", "none")
    assert done.returncode == 0, done.stderr
    assert run_cli("servers", "add", "old-name", "--dsn", sandbox.dsn()).returncode == 0
    servers = {e["path"]: e["server"] for e in listed()}
    assert servers[done.stdout.strip()] == "other" and servers[str(archive)] == "old-name"


def test_a_server_lists_the_files_in_its_folder_on_the_command_line_as_in_the_tui(sandbox, home):
    """A copy without its manifest and a dump's .partial left in a server's folder: the Backups tab
    listed them under that server (backups_view.rows_in_scope), `backups list --server` left them
    out: two answers to which backups are the server's."""
    from pgbackup_tui.ui.backups_view import rows_in_scope

    assert run_cli("servers", "add", "prod", "--dsn", sandbox.dsn()).returncode == 0
    done = run_cli("dump", "--server", "prod", "--db", SOURCE, "--schema-only", "--progress", "none")
    assert done.returncode == 0, done.stderr
    archive = Path(done.stdout.strip())
    copy, partial = archive.parent / "copied-by-hand.dump", archive.parent / "cut.dump.partial"
    shutil.copy(archive, copy)
    partial.write_bytes(archive.read_bytes()[:100])
    on_the_command_line = {e["path"]: e["status"] for e in listed("--server", "prod")}
    assert on_the_command_line == {str(archive): "complete", str(copy): "foreign", str(partial): "incomplete"}
    in_the_tui = rows_in_scope(scan(), [], load_config().server("prod"), None, paths.backups_dir())
    assert {str(row.path) for row in in_the_tui} == set(on_the_command_line)


def test_output_backups_are_listed_and_shown_missing_when_moved(sandbox, home, tmp_path):
    output = tmp_path / "elsewhere" / "shop.dump"
    output.parent.mkdir()
    archive = dump(sandbox, "--schema-only", "--output", str(output))
    assert archive == output
    assert by_path(listed(), output)["status"] == "complete"
    output.rename(tmp_path / "moved.dump")
    assert by_path(listed(), output)["status"] == "missing"
    text = run_cli("backups", "list")
    assert "missing" in text.stdout and str(output) in text.stdout
    # Moved with its manifest, then adopted where it is now: back in the catalog with its id and history
    # (adopt said "already in the catalog" and took nothing in).
    moved = tmp_path / "moved.dump"
    was = by_path(listed(), output)["id"]
    Path(str(output) + ".manifest.json").rename(Path(str(moved) + ".manifest.json"))
    adopted = run_cli("backups", "adopt", str(moved))
    assert adopted.returncode == 0, adopted.stderr
    assert by_path(listed(), moved)["id"] == was
    # The old path stays listed (never forgotten by itself: a drive only unmounted would lose its
    # backups), under an id of its own, and says where the backup is now and how to forget it.
    stale = by_path(listed(), output)
    assert stale["status"] == "missing" and stale["id"] != was, stale
    assert f"the same backup is listed at {moved} (moved, or a copy)" in stale["problem"], stale
    assert f"backups delete {output}" in stale["problem"], stale
    forgotten = run_cli("backups", "delete", str(output))
    assert forgotten.returncode == 0, forgotten.stderr
    assert all(entry["path"] != str(output) for entry in listed()) and moved.exists()
    again = run_cli("backups", "adopt", str(moved))
    assert again.returncode == 0 and again.stdout.startswith(f"{was} ") and "already in the catalog" in again.stdout
    # A copy of it (with its manifest) adopted while it is still listed: an id of its own, so that
    # each can be named (the same id twice left `find` unable to pick either).
    copy = tmp_path / "copy" / "moved.dump"
    copy.parent.mkdir()
    shutil.copy2(moved, copy)
    shutil.copy2(Path(str(moved) + ".manifest.json"), Path(str(copy) + ".manifest.json"))
    adopted = run_cli("backups", "adopt", str(copy))
    assert adopted.returncode == 0, adopted.stderr
    copy_id = by_path(listed(), copy)["id"]
    assert copy_id != was and by_path(listed(), moved)["id"] == was
    assert json.loads(Path(str(copy) + ".manifest.json").read_text())["copy_of"] == was
    for backup_id in (was, copy_id):
        shown = run_cli("backups", "verify", backup_id)
        assert shown.returncode == 0, shown.stderr
    # A copy damaged on its way listed "verified" on the original's word: its bytes are checked.
    damaged = tmp_path / "damaged" / "moved.dump"
    damaged.parent.mkdir()
    data = bytearray(moved.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    shutil.copy2(Path(str(moved) + ".manifest.json"), Path(str(damaged) + ".manifest.json"))
    assert run_cli("backups", "adopt", str(damaged)).returncode == 0
    assert by_path(listed(), damaged)["status"] == "failed verification"
    # The same archive by another path is no copy: its manifest keeps its id.
    alias = tmp_path / "alias"
    alias.mkdir()
    (alias / "moved.dump").symlink_to(moved)
    (alias / "moved.dump.manifest.json").symlink_to(Path(str(moved) + ".manifest.json"))
    aliased = run_cli("backups", "adopt", str(alias / "moved.dump"))  # said as listed, at the path it is listed at
    assert aliased.returncode == 0 and aliased.stdout.startswith(f"{was} "), aliased.stdout + aliased.stderr
    assert f" {moved} (" in aliased.stdout and "already in the catalog" in aliased.stdout, aliased.stdout
    assert all(entry["path"] != str(alias / "moved.dump") for entry in listed())
    assert json.loads(Path(str(moved) + ".manifest.json").read_text())["id"] == was

    # A damaged manifest is said, and adopt does not write over it.
    sidecar = Path(str(moved) + ".manifest.json")
    sidecar.write_text(sidecar.read_text()[:100])
    entry = by_path(listed(), moved)
    assert entry["problem"] and "cannot be read" in entry["problem"]
    # `backups list` said only "foreign" (as if it had no manifest): the problem was in --json alone (README audit).
    line = next(line for line in run_cli("backups", "list").stdout.splitlines() if line.endswith(f"  {moved}"))
    assert "foreign" in line and f"its manifest {sidecar.name} cannot be read" in line, line
    refused = run_cli("backups", "adopt", str(moved))
    assert refused.returncode == 2 and "not written over" in refused.stderr
    assert len(sidecar.read_text()) == 100

    # A damaged index is said as an entry of its own, and the next --output dump does not write over it.
    index = home / "catalog-index.json"
    index.write_text(index.read_text()[:20])
    assert any(e["path"] == str(index) and "damaged" in (e["problem"] or "") for e in listed())
    third = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--progress", "none", "--schema-only",
                    "--output", str(tmp_path / "third.dump"))
    assert third.returncode == 0, third.stderr
    assert len(index.read_text()) == 20
    # Said on stderr (cron mails it), not only in the job's log: the backup is out of the catalog.
    assert "could not add" in third.stderr and "backups adopt" in third.stderr, third.stderr
    assert "[Errno" not in third.stderr, third.stderr  # Python's repr of the error, in a DBA's mail (QA)
    # adopt then: the damaged index said in one line, exit 2 (a file of ours to mend), not 1 (a job failed).
    adopted = run_cli("backups", "adopt", str(tmp_path / "third.dump"))
    assert adopted.returncode == 2 and adopted.stderr.count("\n") == 1 and "damaged" in adopted.stderr, adopted.stderr
    assert len(index.read_text()) == 20
    # A backup under the backup dir, never in the index, is deleted without the index being read.
    inside = dump(sandbox, "--schema-only")
    deleted = run_cli("backups", "delete", by_path(listed(), inside)["id"], "--force")
    assert deleted.returncode == 0 and not inside.exists(), deleted.stderr


def test_a_csv_copy_is_not_listed_as_foreign_dumps(sandbox, home, tmp_path):
    """A `csv export` folder holds a schema.sql (a plain dump's first line): it is no backup of the catalog's."""
    out = tmp_path / "copy"
    exported = run_cli("csv", "export", "--dsn", sandbox.dsn(), "--db", SOURCE, "--table", "public.events",
                       "--output", str(out))
    assert exported.returncode == 0, exported.stderr
    adopted = run_cli("backups", "adopt", str(out / "schema.sql"))
    assert adopted.returncode in (0, 2)  # a user may still adopt the file by hand; the scan itself must not list it
    listing = [Path(e["path"]) for e in listed() if not e.get("indexed")]
    assert not [p for p in listing if out in p.parents]


def test_a_running_dump_s_partial_is_listed_as_its_and_cannot_be_deleted(sandbox, home):
    """A dump's .partial listed as "left by a dump that did not finish" while the dump ran, and
    `delete` removed it under the job, which then failed."""
    holder = psycopg.connect(sandbox.dsn(SOURCE))
    holder.execute("LOCK TABLE public.events IN ACCESS EXCLUSIVE MODE")  # the dump waits for it
    front = subprocess.Popen([sys.executable, "-m", "pgbackup_tui", "dump", "--dsn", sandbox.dsn(), "--db", SOURCE,
                              "--progress", "none"], stdout=subprocess.PIPE,  # into the backup dir, as by default
                             stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list((home / "backups").rglob("*.partial")):
            time.sleep(0.1)
        [partial] = list((home / "backups").rglob("*.partial"))
        entry = next((e for e in listed() if e["path"] == str(partial)), None)
        assert entry is not None and entry["status"] == "being written", listed()
        refused = run_cli("backups", "delete", entry["id"], "--force")
        assert refused.returncode == 2 and "jobs cancel" in refused.stderr, refused.stderr
        assert partial.exists()
    finally:
        holder.rollback()
        holder.close()
    _out, err = front.communicate(timeout=120)
    assert front.returncode == 0, err


def test_a_newer_verified_table_backup_does_not_take_the_whole_one_s_protection(sandbox, home, empty_db):
    """Protection went to the newest verified backup of the database whatever it held: a newer
    verified dump of one table left the only verified whole-database backup deletable without
    --force."""
    sandbox.psql("CREATE TABLE a (i int); CREATE TABLE b (i int); INSERT INTO a VALUES (1)", empty_db)
    made = []
    for options in ((), ("--table", "a")):
        dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", empty_db, "--progress", "none", *options)
        assert dumped.returncode == 0, dumped.stderr
        made.append(dumped.stdout.strip())
        time.sleep(1.1)  # the names are stamped to the second
    ids = {e["path"]: e["id"] for e in json.loads(run_cli("backups", "list", "--json").stdout)}
    for path in made:
        assert run_cli("backups", "verify", ids[path]).returncode == 0
    refused = run_cli("backups", "delete", ids[made[0]])
    assert refused.returncode == 2 and "newest verified backup" in refused.stderr and "whole database" in refused.stderr
    assert Path(made[0]).exists()


SCRATCH_DATABASES = "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgbackup_drill_%'"


def _hang_up_mid_drill(sandbox, backup_id: str, on_hang_up) -> tuple[int, str]:
    """`backups drill` in a process whose SIGHUP handling is `on_hang_up`, sent a SIGHUP once its
    scratch database exists (or once it ended: the caller's assertions then say so); (exit, stderr)."""
    drill = subprocess.Popen([sys.executable, "-m", "pgbackup_tui", "backups", "drill", backup_id, "--dsn",
                              sandbox.dsn()], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             stdin=subprocess.DEVNULL, env=dict(os.environ),
                             preexec_fn=lambda: signal.signal(signal.SIGHUP, on_hang_up))
    deadline = time.monotonic() + 60
    while sandbox.psql(SCRATCH_DATABASES).strip() == "0" and drill.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    drill.send_signal(signal.SIGHUP)
    _out, err = drill.communicate(timeout=120)
    return drill.returncode, err


def test_a_drill_whose_terminal_hangs_up_drops_its_scratch_database(sandbox, home):
    """SIGINT and SIGTERM dropped the drill's scratch database; a hang-up (an SSH drop, the drill
    runs in the foreground) left a full copy behind until the next drill on that server."""
    archive = dump(sandbox)
    code, err = _hang_up_mid_drill(sandbox, by_path(listed(), archive)["id"], signal.SIG_DFL)
    assert code != 0, err
    assert sandbox.psql(SCRATCH_DATABASES).strip() == "0", err
    assert by_path(listed(), archive)["status"] == "complete"  # a stopped drill says nothing of the backup


def test_a_copy_made_by_hand_under_the_backup_dir_is_reached_by_its_path(sandbox, home):
    """Two files with one manifest id under the backup dir (a `cp` of a backup and its manifest):
    every command said "the prefix fits 2 backups" and none could name either."""
    original = dump(sandbox, "--schema-only")
    copy = original.with_name("copy.dump")
    shutil.copy2(original, copy)
    shutil.copy2(Path(str(original) + ".manifest.json"), Path(str(copy) + ".manifest.json"))
    backup_id = by_path(listed(), original)["id"]
    assert by_path(listed(), copy)["id"] == backup_id
    ambiguous = run_cli("backups", "show", backup_id)
    # Both have the whole id: the paths tell them apart ("give more of the id" could not be followed).
    assert ambiguous.returncode == 2 and "2 copies share this id" in ambiguous.stderr and str(copy) in ambiguous.stderr
    shown = run_cli("backups", "show", str(copy))
    assert shown.returncode == 0 and str(copy) in shown.stdout, shown.stderr
    deleted = run_cli("backups", "delete", str(copy), "--force")
    assert deleted.returncode == 0, deleted.stderr
    assert not copy.exists() and original.exists()


def test_a_drill_in_a_process_that_ignores_hang_ups_goes_on(sandbox, home):
    """`run` (a schedule's drill) and nohup ignore SIGHUP on purpose, so that what follows the
    drill (retention, notifications) still happens: the drill must not take a hang-up as a cancel."""
    archive = dump(sandbox)
    code, err = _hang_up_mid_drill(sandbox, by_path(listed(), archive)["id"], signal.SIG_IGN)
    assert code == 0, err
    assert by_path(listed(), archive)["status"] == "drilled"


def test_a_backup_of_tables_and_a_schema_says_it_holds_both(sandbox, home):
    """`holds` said only the tables of a backup of tables and a schema (and nothing of schema-only
    there), and so delete's protection took it for a backup of those tables alone (QA)."""
    both = dump(sandbox, "--table", "public.events", "--schema", "inventory")
    schema_only = dump(sandbox, "--table", "public.events", "--schema-only")
    entries = listed()
    assert by_path(entries, both)["holds"] == "public.events + schema inventory"
    assert by_path(entries, schema_only)["holds"] == "public.events (schema only)"
    # Its contents are the selection's (the entries a restore restores), not the whole TOC's: it said
    # 4 schemas and 3 functions, what pg_dump wrote around the tables (QA).
    shown = json.loads(run_cli("backups", "show", by_path(entries, both)["id"], "--json").stdout)
    contents = shown["contents"]
    assert sum(contents["counts"].values()) == len(shown["manifest"]["restore_list"]), contents
    assert contents["counts"]["SCHEMA"] == 1 and "FUNCTION" not in contents["counts"], contents
    assert shown["manifest"]["toc"]["counts"] == contents["counts"]  # the manifest says the same
    assert contents["not_restored"]["FUNCTION"] >= 1, contents  # said apart
    assert [t["name"] for t in contents["tables"]] == ["inventory.stock", "inventory.warehouses", "public.events"]
    text = run_cli("backups", "show", by_path(entries, both)["id"]).stdout
    assert "function" not in text.split("contents    ")[1].split("\n")[0], text
    assert "(in the archive, around the selection: not restored)" in text, text


def test_holds_quotes_a_schema_name_as_sql_would(tmp_path):
    """A schema-only selection of schema "we.ird" was listed as holding `schema we.ird`, which reads
    as table ird of schema we (QA). Its tables were already written as SQL writes them."""
    from pgbackup_tui.core.catalog import CatalogEntry
    from pgbackup_tui.core.manifest import Manifest

    def holds(schemas: list[str], tables: list[str] = []) -> str:  # noqa: B006 - read only
        manifest = Manifest(selection={"schemas": schemas, "tables": tables}, options={"schema_only": True})
        return CatalogEntry("5f149d88", tmp_path / "a.dump", "complete", manifest=manifest).holds

    assert holds(["we.ird"]) == 'schema "we.ird" (schema only)'
    assert holds(["inventory", "Sales", "select"]) == 'schemas inventory, "Sales", "select" (schema only)'
    assert holds(["a b"], ['public."Order Items"']) == 'public."Order Items" + schema "a b" (schema only)'


def test_verify_of_a_moved_backup_or_a_damaged_manifest_says_which(sandbox, home, tmp_path):
    """Both were 'has no manifest (a foreign archive); adopt it first: <a path that is not there>' (QA)."""
    moved = dump(sandbox, "--output", str(tmp_path / "here" / "moved.dump"))
    (tmp_path / "elsewhere").mkdir()
    for path in (moved, Path(f"{moved}.manifest.json")):
        path.rename(tmp_path / "elsewhere" / path.name)
    gone = by_path(listed(), moved)
    assert gone["status"] == "missing"
    done = run_cli("backups", "verify", gone["id"])
    assert done.returncode == 2 and f"{moved}: missing (moved or deleted)" in done.stderr, done.stderr
    assert "backups adopt NEW_PATH" in done.stderr
    # Deleting it forgets it, and says so (it printed nothing at all, exit 0).
    forgot = run_cli("backups", "delete", str(moved))
    assert forgot.returncode == 0 and forgot.stdout.startswith(f"forgot {gone['id']} {moved}"), forgot.stdout
    assert not [e for e in listed() if e["path"] == str(moved)]

    damaged = dump(sandbox, "--output", str(tmp_path / "damaged.dump"))
    sidecar = Path(f"{damaged}.manifest.json")
    sidecar.write_text(sidecar.read_text().replace(",", "", 1))
    done = run_cli("backups", "verify", by_path(listed(), damaged)["id"])
    assert done.returncode == 2 and f"its manifest {sidecar} cannot be read" in done.stderr, done.stderr


def test_a_backup_on_read_only_storage_is_verified_and_said_not_recorded(sandbox, home, tmp_path):
    """verify (and drill) stopped with 'Read-only file system' on the manifest's lock, after the
    check had run: its result was lost, exit 1 (QA)."""
    from small_disk import read_only

    folder = tmp_path / "ro"
    archive = dump(sandbox, "--output", str(folder / "r.dump"))
    backup_id = by_path(listed(), archive)["id"]
    before = Path(f"{archive}.manifest.json").read_text()
    with read_only(folder):
        done = run_cli("backups", "verify", backup_id)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"{backup_id} verify passed (not recorded)"
        assert "could not be recorded beside" in done.stderr and "Read-only file system" in done.stderr
        kept = Path(f"{archive}.manifest.json").read_text()
    assert kept == before
    # adopt there said "error: …/.foreign.dump.manifest.json.PID.tmp: Read-only file system", exit 1 (QA).
    foreign = folder / "foreign.dump"
    shutil.copy2(archive, foreign)
    with read_only(folder):
        refused = run_cli("backups", "adopt", str(foreign))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert f"{foreign}: not adopted: its manifest foreign.dump.manifest.json cannot be written" in refused.stderr
    assert ".tmp" not in refused.stderr and not Path(f"{foreign}.manifest.json").exists()
    # A copy of a listed backup, manifest and all, needs an id of its own written there: it said
    # "error: …/.copy.dump.manifest.json.lock: Read-only file system", exit 1 (QA).
    copy = folder / "copy.dump"
    shutil.copy2(archive, copy)
    shutil.copy2(f"{archive}.manifest.json", f"{copy}.manifest.json")
    with read_only(folder):
        refused = run_cli("backups", "adopt", str(copy))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert f"{copy}: not adopted: a copy of backup {backup_id} ({archive}), it needs an id of its own" in refused.stderr
    assert ".lock" not in refused.stderr and not [e for e in listed() if e["path"] == str(copy)]
    # delete there said "error: …/.r.dump.manifest.json.lock: Read-only file system", exit 1 (QA).
    with read_only(folder):
        refused = run_cli("backups", "delete", backup_id, "--force")
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
        assert f"{archive} cannot be deleted: its folder {folder} takes no changes" in refused.stderr
        assert "nothing was deleted" in refused.stderr and ".lock" not in refused.stderr
    assert archive.exists() and by_path(listed(), archive)["status"] == "complete"  # its verify was not recorded
    # A directory archive read-only in a folder that is not: nothing could go, but the manifest kept
    # the delete's mark, and the whole backup listed as a delete "stopped half way" (QA).
    directory = dump(sandbox, "--schema-only", "--format", "directory", "--output", str(tmp_path / "d.dir"))
    directory_id = by_path(listed(), directory)["id"]
    with read_only(directory):
        refused = run_cli("backups", "delete", directory_id, "--force")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert f"{directory} cannot be deleted: {directory} takes no changes" in refused.stderr, refused.stderr
    assert "nothing was deleted" in refused.stderr
    assert by_path(listed(), directory)["status"] == "complete"
    # The home read-only, the archive's folder not: adopt said "error: …/catalog-index.json.lock:
    # Read-only file system", a lock file for the cause, and left the manifest beside the archive (QA).
    writable = tmp_path / "rw"
    writable.mkdir()
    elsewhere = writable / "foreign.dump"
    shutil.copy2(foreign, elsewhere)
    with read_only(home):
        refused = run_cli("backups", "adopt", str(elsewhere))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert f"{elsewhere}: not adopted: the catalog's folder {home} cannot be written (Read-only file system)" \
        in refused.stderr and ".lock" not in refused.stderr, refused.stderr
    assert not Path(f"{elsewhere}.manifest.json").exists() and str(elsewhere) not in {e["path"] for e in listed()}
    # delete of a backup kept outside the backup dir (in the index) removed its files, then said the
    # index's lock file, exit 1, and listed it as missing: refused before anything goes (QA).
    with read_only(home):
        refused = run_cli("backups", "delete", directory_id, "--force")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert f"{directory} not deleted: the catalog's folder {home} cannot be written" in refused.stderr, refused.stderr
    assert directory.exists() and by_path(listed(), directory)["status"] == "complete"



def test_a_backup_another_process_reads_is_not_deleted(sandbox, home):
    """A reader that is no job (a drill or verify runs in the process that asked; a DBA's own
    pg_restore) lost its files under `backups delete`, --force or not (schedules QA): refused,
    naming the process, until it has let go."""
    archive = dump(sandbox, "--schema-only")
    backup_id = by_path(listed(), archive)["id"]
    reader = subprocess.Popen([sys.executable, "-c", "import sys, time; f = open(sys.argv[1], 'rb'); "
                               "print(flush=True); time.sleep(60)", str(archive)], stdout=subprocess.PIPE)
    try:
        assert reader.stdout is not None and reader.stdout.readline()  # the file is open
        refused = run_cli("backups", "delete", backup_id, "--force")
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
        assert f"is being read by process {reader.pid} (python" in refused.stderr, refused.stderr
        assert archive.exists()
    finally:
        reader.kill()
        reader.wait()
    deleted = run_cli("backups", "delete", backup_id, "--force")
    assert deleted.returncode == 0, deleted.stderr
    assert not archive.exists()


# -- what the manifest's writers leave beside the backup ----------------------------------------
def hidden_files(folder: Path) -> list[str]:
    """The hidden names in a backup's folder: a manifest's temp or lock files, left or not."""
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


def test_a_verify_killed_as_it_renames_its_manifest_into_place_leaves_no_litter(sandbox, home):
    """A verify killed (SIGKILL) while it wrote the manifest left `.NAME.manifest.json.PID.tmp` beside
    the archive for ever, and every verify and drill left `.NAME.manifest.json.lock` (QA). strace
    stops the verify at the one rename it makes (its manifest's temp file onto the manifest) and
    kills it there: the temp file is written, the rename not made."""
    if shutil.which("strace") is None:
        pytest.skip("needs strace to kill the verify at its manifest's rename")
    archive = dump(sandbox, "--schema-only")
    backup_id = by_path(listed(), archive)["id"]
    before = Path(f"{archive}.manifest.json").read_text()
    killed = subprocess.run(["strace", "-qq", "-e", "signal=none", "-o", os.devnull,
                             "-e", "inject=rename,renameat,renameat2:error=EIO:signal=KILL",
                             sys.executable, "-m", "pgbackup_tui", "backups", "verify", backup_id],
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert killed.returncode == -signal.SIGKILL or killed.returncode == 128 + signal.SIGKILL, killed
    assert Path(f"{archive}.manifest.json").read_text() == before  # killed before its rename
    left = hidden_files(archive.parent)
    assert any(name.endswith(".tmp") for name in left), left  # what the killed verify left

    assert by_path(listed(), archive)["status"] == "complete"
    assert hidden_files(archive.parent) == []  # its writer is dead: the listing took its temp file away
    assert run_cli("backups", "verify", backup_id).returncode == 0
    assert hidden_files(archive.parent) == []  # the lock the verify recorded its result under is gone too
    drilled = run_cli("backups", "drill", backup_id, "--dsn", sandbox.dsn(), timeout=300)
    assert drilled.returncode == 0, drilled.stderr
    assert hidden_files(archive.parent) == [] and by_path(listed(), archive)["status"] == "drilled"


def test_a_directory_archive_deleted_in_part_is_said_so(sandbox, home):
    """A file of a directory archive that may not be removed (immutable here): rmtree stopped half
    way, and delete said "its folder … takes no changes; nothing was deleted" of an archive that had
    lost most of its files (QA). It says what was removed, and it lists as incomplete."""
    archive = dump(sandbox, "--format", "directory", "--table", "public.invoices", "--table", "public.documents")
    backup_id = by_path(listed(), archive)["id"]
    last = [item.path for item in os.scandir(archive)][-1]  # rmtree's own order: the others go first
    if subprocess.run(["chattr", "+i", last], capture_output=True).returncode != 0:
        pytest.skip("needs chattr +i (root, on ext4 or the like) to make a file that cannot be removed")
    try:
        refused = run_cli("backups", "delete", backup_id, "--force")
    finally:
        subprocess.run(["chattr", "-i", last], check=True)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert f"{archive} could not be deleted whole: {last} cannot be removed" in refused.stderr, refused.stderr
    assert "nothing was deleted" not in refused.stderr and "files were removed before that" in refused.stderr
    assert by_path(listed(), archive)["status"] == "incomplete"
    assert run_cli("backups", "delete", backup_id, "--force").returncode == 0 and not archive.exists()


def test_delete_takes_the_temp_and_lock_files_killed_writers_left(sandbox, home, tmp_path):
    """A backup written with --output, in a folder of the user's: a manifest temp file of a writer
    gone (named the way write_private_file names it, with the pid of a process that has ended) and a
    lock file nobody holds, as a SIGKILL leaves them. Deleting the backup leaves the folder empty."""
    archive = dump(sandbox, "--schema-only", "--output", str(tmp_path / "mine" / "b.dump"))
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid no longer runs
    archive.with_name(f".{archive.name}.manifest.json.{gone.pid}.tmp").write_text("{")
    archive.with_name(f".{archive.name}.manifest.json.lock").touch()
    deleted = run_cli("backups", "delete", by_path(listed(), archive)["id"])
    assert deleted.returncode == 0, deleted.stderr
    assert os.listdir(archive.parent) == []


WRITING = """
import fcntl, os, sys, time
archive = sys.argv[1]
folder, name = os.path.split(archive)
held = []
for path in (f"{folder}/.{name}.manifest.json.{os.getpid()}.tmp", f"{folder}/.{name}.manifest.json.lock"):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    held.append(fd)
print("held", flush=True)
time.sleep(600)
"""


def test_a_listing_takes_what_dead_writers_left_and_not_what_a_live_one_holds(sandbox, home, tmp_path):
    """A temp file whose writer is gone goes at the next listing; one a live writer holds (its temp
    file, the manifest's lock it writes under) stays until that writer is gone."""
    archive = dump(sandbox, "--schema-only", "--output", str(tmp_path / "mine" / "b.dump"))
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid no longer runs
    dead_tmp = archive.with_name(f".{archive.name}.manifest.json.{gone.pid}.tmp")
    dead_tmp.write_text("{")
    writer = subprocess.Popen([sys.executable, "-c", WRITING, str(archive)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "held\n"
        live = [f".{archive.name}.manifest.json.lock", f".{archive.name}.manifest.json.{writer.pid}.tmp"]
        listed()
        assert hidden_files(archive.parent) == sorted(live)
    finally:
        writer.kill()
        writer.wait()
    listed()
    assert hidden_files(archive.parent) == []


def test_checks_recorded_at_once_by_many_processes_all_land_and_leave_no_lock_file(sandbox, home):
    """The manifest's lock file is removed by each writer as it ends: done carelessly, a writer that
    waited on the removed file and one that made a new one would both write, and a check be lost."""
    archive = dump(sandbox, "--schema-only")
    writers, each = 6, 15
    script = ("import sys\n"
              "from pathlib import Path\n"
              "from pgbackup_tui.core.catalog import entry_for, record_check\n"
              "from pgbackup_tui.core.manifest import Verification\n"
              "entry = entry_for(Path(sys.argv[1]))\n"
              "for n in range(int(sys.argv[2])):\n"
              "    record_check(entry, Verification(kind='verify', at=sys.argv[3] + str(n), ok=True))\n")
    started = [subprocess.Popen([sys.executable, "-c", script, str(archive), str(each), f"w{w}-"],
                                stderr=subprocess.PIPE, text=True) for w in range(writers)]
    for process in started:
        _out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    recorded = json.loads(Path(f"{archive}.manifest.json").read_text())["verifications"]
    assert sorted(check["at"] for check in recorded) == sorted(f"w{w}-{n}" for w in range(writers) for n in range(each))
    assert hidden_files(archive.parent) == []


@pytest.mark.parametrize("command", ["show", "verify", "adopt"])
def test_a_bin_dir_that_is_no_bin_dir_is_refused_before_anything_runs(sandbox, home, tmp_path, command):
    """`backups verify/show --bin-dir /nonexistent` went on with the tools found elsewhere (QA)."""
    archive = dump(sandbox, "--schema-only")
    given = by_path(listed(), archive)["id"] if command != "adopt" else str(archive)
    before = Path(f"{archive}.manifest.json").read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    for bogus, needle in ((Path("/nonexistent"), "no such directory"), (empty, "no pg_dump, pg_restore or psql")):
        result = run_cli("backups", command, given, "--bin-dir", str(bogus))
        assert result.returncode == 2, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and f"--bin-dir {bogus}" in lines[0] and needle in lines[0], result.stderr
    assert Path(f"{archive}.manifest.json").read_text() == before  # no check ran, none recorded


def test_an_archive_moved_without_its_manifest_is_adopted_as_the_backup_it_is(sandbox, home, tmp_path):
    """`mv backup.dump /mnt/offsite/` leaves the manifest behind: adopted there, the archive was a
    foreign one of an unknown server ("?"), unverified, beside its own backup listed as missing (QA).
    Its bytes are the missing backup's (size, then checksums): it takes that backup's id, server and
    checks; the old path, still listed, says where it is now."""
    archive = dump(sandbox, "--schema-only")
    was = by_path(listed(), archive)
    assert run_cli("backups", "verify", was["id"]).returncode == 0
    moved = tmp_path / "offsite" / archive.name
    moved.parent.mkdir()
    shutil.move(archive, moved)
    adopted = run_cli("backups", "adopt", str(moved))
    assert adopted.returncode == 0, adopted.stderr
    now = by_path(listed(), moved)
    assert (now["id"], now["status"], now["server"]) == (was["id"], "verified", was["server"]), now
    stale = by_path(listed(), archive)
    assert stale["status"] == "missing" and f"the same backup is listed at {moved}" in stale["problem"], stale
    # Its id names the one that is there (the old path's entry shares it: "2 copies share this id").
    verified = run_cli("backups", "verify", was["id"])
    assert verified.returncode == 0, verified.stderr
    assert len(json.loads(Path(f"{moved}.manifest.json").read_text())["verifications"]) == 2
    assert len(json.loads(Path(f"{archive}.manifest.json").read_text())["verifications"]) == 1
    # Not to delete: which of the two is meant is for a path to say.
    refused = run_cli("backups", "delete", was["id"])
    assert refused.returncode == 2 and "2 copies share this id" in refused.stderr, refused.stderr
    assert moved.exists()
    forgotten = run_cli("backups", "delete", str(archive))
    assert forgotten.returncode == 0, forgotten.stderr
    assert moved.exists() and by_path(listed(), moved)["id"] == was["id"]


def test_a_database_s_list_shows_the_sets_and_cluster_files_that_hold_it(sandbox, home, tmp_path):
    """`backups list --db DB` listed DB's dumps only: not a cluster set with a member of DB, nor a
    pg_dumpall file that holds it (ours, or one adopted), where a DBA looking for a way to restore
    DB would find it. Now they are listed, each marked as what it is."""
    suffix = uuid.uuid4().hex[:6]
    wanted, other = f"ls_{suffix}", f"ls_{suffix}_other"  # small ones: a cluster file of shop takes seconds
    for name in (wanted, other):
        sandbox.create_database(name)
    try:
        sandbox.psql("CREATE TABLE items (id int); INSERT INTO items VALUES (1), (2);", wanted)
        own = Path(run_cli("dump", "--dsn", sandbox.dsn(), "--db", wanted, "--progress", "none").stdout.strip())

        def dumpall(*args: str) -> Path:
            done = run_cli("dumpall", "--dsn", sandbox.dsn(), "--progress", "none", *args)
            assert done.returncode == 0, done.stderr
            return Path(done.stdout.strip())

        held = dumpall("--set", "--db", wanted, "--db", other)
        not_held = dumpall("--set", "--db", other)
        # A DBA's own pg_dumpall file (the other tests' databases left out: shop alone takes seconds),
        # adopted; pgbackup-tui's own record their databases as they are written.
        cluster = tmp_path / "cluster.sql"
        subprocess.run([find_client_tools(sandbox.major).pg_dumpall, "--dbname", sandbox.dsn(), "-f", str(cluster),
                        "--exclude-database", "shop", "--exclude-database", "t_*"], check=True, capture_output=True)
        adopted = run_cli("backups", "adopt", str(cluster))
        assert adopted.returncode == 0, adopted.stderr
        entries = {Path(e["path"]): e for e in listed("--db", wanted)}
        other_entries = {Path(e["path"]) for e in listed("--db", other)}
        text = run_cli("backups", "list", "--db", wanted).stdout
        lines = {Path(line.split()[-1]): line for line in text.splitlines()}
    finally:
        for name in (wanted, other):
            sandbox.drop_database(name)
    assert set(entries) == {own, held, cluster}, entries
    assert entries[own]["kind"] == "dump" and entries[own]["databases"] == [wanted]
    assert entries[held]["kind"] == "cluster-set" and sorted(entries[held]["databases"]) == [wanted, other]
    assert entries[cluster]["kind"] == "dumpall" and {wanted, other} <= set(entries[cluster]["databases"])
    assert set(lines) == set(entries)
    assert f"  cluster set holding {wanted} and 1 other database  " in lines[held], lines[held]
    others = len(entries[cluster]["databases"]) - 1
    assert f"  pg_dumpall file holding {wanted} and {others} other databases  " in lines[cluster], lines[cluster]
    assert "  whole database  " in lines[own] and "holding" not in lines[own]
    assert other_entries == {held, not_held, cluster}


def test_a_backup_of_a_database_named_with_a_line_break_lists_on_one_row(sandbox, home):
    """`backups list` printed a database's line break as it is, so its backup took two rows and
    the second began with the rest of the name (TUI QA): it shows the break as \\n, on one row."""
    name = "two\nlines " + uuid.uuid4().hex[:6]
    sandbox.create_database(name)
    try:
        done = run_cli("dump", "--dsn", sandbox.dsn(), "--db", name, "--progress", "none")
        assert done.returncode == 0, done.stderr
        rows = [row for row in run_cli("backups", "list").stdout.splitlines() if "lines " + name[-6:] in row]
        assert len(rows) == 1 and "two\\nlines" in rows[0], rows
    finally:
        sandbox.drop_database(name)
