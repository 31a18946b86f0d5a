"""Issue 15, point 1 and the restore's check: the measured defaults (core/defaults.py) reach the dump
and the restore, explicit flags win, and an archive whose manifest has checksums is checked by them
(no second read-through) and still refused, before the target is touched, when a byte changed."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from cliutil import run_cli
from pgbackup_tui.core.connect import connect, target_from_dsn
from pgbackup_tui.core.defaults import (
    MAX_AUTO_JOBS,
    fast_compression,
    free_connections,
    parallel_jobs,
    parse_compress,
    presets,
    serial_restore_reason,
    supports,
    usable_cores,
)
from pgbackup_tui.core.errors import UsageError
from pgbackup_tui.core.pgtools import find_client_tools
from test_cli_servers import assert_one_line_error


def test_parallel_jobs_follow_cores_and_leave_the_server_its_connections():
    assert parallel_jobs(2, 95) == 2
    assert parallel_jobs(64, 1000) == MAX_AUTO_JOBS
    assert parallel_jobs(16, 20) == 3  # a quarter of 20, minus the leader and our monitor
    assert parallel_jobs(16, 3) == 1  # a nearly full server: one job
    assert parallel_jobs(4, None) == 4  # the server did not say: the cores alone


def test_serial_restore_reasons():
    assert serial_restore_reason("custom", False, False, False) is None
    assert serial_restore_reason("directory", False, False, False) is None
    assert "tar" in serial_restore_reason("tar", False, False, False)
    assert "plain" in serial_restore_reason("plain", False, False, False)
    assert "single-transaction" in serial_restore_reason("custom", True, False, False)
    assert "TimescaleDB" in serial_restore_reason("custom", False, True, False)
    assert "one psql transaction" in serial_restore_reason("directory", False, False, True)


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("9", 9), ("zstd:1", "zstd:1"), ("LZ4", "lz4"),
                                             ("gzip:5", "gzip:5"), ("none", "none")])
def test_compress_specs(text, value):
    assert parse_compress(text) == value


@pytest.mark.parametrize("text", ["10", "zstd:23", "brotli", "lz4:0", "gzip:x"])
def test_bad_compress_specs(text):
    with pytest.raises(UsageError):
        parse_compress(text)


def test_presets_carry_the_measured_effect(sandbox):
    tools = find_client_tools(sandbox.major)
    fast, small, custom = presets(tools)
    assert (fast.name, small.name, custom.name) == ("fast", "small", "custom")
    assert fast.compress == fast_compression(tools)
    assert fast.time_ratio is not None and fast.time_ratio <= 1 / 1.8  # the bar, as measured
    assert fast.size_ratio is not None and fast.size_ratio <= 1.15
    assert "pg_dump -Fc" in fast.effect
    assert supports(tools, "gzip:1")


def test_cli_refuses_a_bad_compress_before_anything(sandbox, home):
    result = run_cli("dump", "--dsn", sandbox.dsn(), "--db", "shop", "--compress", "zstd:99")
    assert result.returncode == 2 and "zstd takes a level from 1 to 22" in result.stderr
    tools = find_client_tools(sandbox.major)
    if supports(tools, "lz4"):
        pytest.skip(f"pg_dump {tools.version} has lz4")
    result = run_cli("dump", "--dsn", sandbox.dsn(), "--db", "shop", "--compress", "lz4")
    assert_one_line_error(result, "--compress lz4", f"pg_dump {tools.version}")


@pytest.mark.parametrize("cluster", ["sandbox", "other_sandbox"])
def test_gzip_and_none_as_methods_work_with_every_pg_dump(request, home, tmp_path, cluster):
    """`gzip:N`, `gzip` and `none` are what pg_dump 16+ takes; pg_dump 15 takes levels only, and
    refused each at run time (exit 1). Each is given to a pg_dump as it takes it."""
    server = request.getfixturevalue(cluster)
    for spec in ("gzip:3", "gzip", "none"):
        out = tmp_path / f"{cluster}-{spec.replace(':', '_')}.dump"
        done = run_cli("dump", "--dsn", server.dsn(), "--db", "shop", "--table", "public.invoices",
                       "--compress", spec, "--output", str(out))
        assert done.returncode == 0, (spec, done.stderr)
        assert run_cli("backups", "verify", json.loads(Path(f"{out}.manifest.json").read_text())["id"]).returncode == 0


def test_default_dump_and_parallel_restore(sandbox, home, fresh_db_name):
    tools = find_client_tools(sandbox.major)
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", "shop")
    assert dumped.returncode == 0, dumped.stderr
    archive = Path(dumped.stdout.strip())
    assert archive.suffix == ".dump" and archive.is_file()  # custom format: one file
    manifest = json.loads(Path(f"{archive}.manifest.json").read_text())
    assert manifest["format"] == "custom"
    assert manifest["options"]["compress"] == fast_compression(tools)
    assert manifest["options"]["jobs"] == 1

    restored = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create",
                       "--progress", "plain")
    assert restored.returncode == 0, restored.stderr
    with connect(target_from_dsn(sandbox.dsn())) as conn:
        expected_jobs = parallel_jobs(usable_cores(), free_connections(conn))
    assert f"restoring with {expected_jobs} parallel job(s)" in restored.stderr
    assert restored.stderr.count(f"restored {archive.name} into '{fresh_db_name}'") == 1, restored.stderr  # once
    assert "its xxh3-128 matches the manifest's" in restored.stderr
    assert "reading it through once" not in restored.stderr
    assert sandbox.psql("SELECT count(*) FROM public.events", fresh_db_name).strip() == \
        sandbox.psql("SELECT count(*) FROM public.events", "shop").strip()


def test_explicit_flags_win(sandbox, home, fresh_db_name):
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", "shop", "--compress", "6")
    assert dumped.returncode == 0, dumped.stderr
    archive = Path(dumped.stdout.strip())
    assert json.loads(Path(f"{archive}.manifest.json").read_text())["options"]["compress"] == 6
    restored = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create",
                       "--jobs", "1", "--progress", "plain")
    assert restored.returncode == 0, restored.stderr
    assert "parallel job" not in restored.stderr


def test_a_changed_byte_is_refused_by_the_checksum_before_the_target(sandbox, home, tmp_path, fresh_db_name):
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", "shop")
    assert dumped.returncode == 0, dumped.stderr
    archive = Path(dumped.stdout.strip())
    copy = tmp_path / archive.name
    shutil.copy(archive, copy)
    shutil.copy(f"{archive}.manifest.json", f"{copy}.manifest.json")
    data = bytearray(copy.read_bytes())
    data[len(data) * 2 // 3] ^= 0x01  # inside compressed table data: pg_restore -l alone would not notice
    copy.write_bytes(bytes(data))
    result = run_cli("restore", str(copy), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    assert_one_line_error(result, str(copy), "xxh3-128 checksum differs from the manifest")
    assert sandbox.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{fresh_db_name}'").strip() == "0"


def test_jobs_the_server_has_no_connections_for_are_refused_before_anything(sandbox, home, tmp_path, fresh_db_name):
    """`dump -Fd --jobs 100000` read the database for minutes before pg_dump failed (exit 1), and a
    restore's `--jobs 200` failed as if the connection had been lost (QA): one line, exit 2, first."""
    out = tmp_path / "out"
    out.mkdir()
    dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", "shop", "--format", "directory", "--jobs", "100000",
                     "--output", str(out / "wide"))
    assert_one_line_error(dumped, "--jobs 100000", "connection(s) free", "pg_dump --jobs 100000 needs 100001")
    assert list(out.iterdir()) == []
    archive = out / "small.dump"
    assert run_cli("dump", "--dsn", sandbox.dsn(), "--db", "shop", "--table", "public.invoices",
                   "--output", str(archive)).returncode == 0
    restored = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create",
                       "--jobs", "200")
    assert_one_line_error(restored, "--jobs 200", "pg_restore --jobs 200 needs 201")
    assert sandbox.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{fresh_db_name}'").strip() == "0"


def test_free_connections_count_a_role_s_connection_limit(sandbox):
    role = "limited_" + uuid.uuid4().hex[:6]
    sandbox.psql(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 3")
    try:
        with connect(target_from_dsn(f"{sandbox.dsn()} user={role}")) as conn:
            assert free_connections(conn) == 2  # this session is one of its three
    finally:
        sandbox.psql(f"DROP ROLE {role}")
