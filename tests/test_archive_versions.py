"""Which pg_dump wrote an archive, read from the archive itself, and what follows from it.

Real archives only: written by the older cluster's pg_dump and by the newest installed
pg_dump (both dumping the older cluster), so the majors come from what is installed, never from here.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cliutil import run_cli
from pgbackup_tui.core.archive import ArchiveInfo, _read_header, identify_archive, version_major
from pgbackup_tui.core.pgtools import CLIENT_DIRS_ENV, client_version, installed_client_tools, restrict_minimum
from test_restore_refusals import assert_one_line_error, database_exists

SOURCE = "shop"
FORMATS = {"custom": "shop.dump", "tar": "shop.tar", "directory": "shop.dir", "plain": "shop.sql"}


def wheel_bin(package: str) -> Path | None:
    """pginstall/bin inside an installed wheel, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@pytest.fixture(scope="module")
def older(sandbox, other_sandbox):
    """The older of the two installed majors (Debian's 15 beside the wheels' 18, or the 17 wheel
    beside the 18 one on a machine without Debian's server): these tests restore what a newer
    pg_dump wrote into it."""
    return min(sandbox, other_sandbox, key=lambda cluster: cluster.major)


@pytest.fixture
def fresh_db_name(older) -> Iterator[str]:
    """A database name nobody uses yet on the older cluster; dropped afterwards if it was created."""
    name = "t_" + uuid.uuid4().hex[:8]
    yield name
    older.drop_database(name)


@pytest.fixture
def empty_db(older, fresh_db_name: str) -> str:
    older.create_database(fresh_db_name)
    return fresh_db_name


@pytest.fixture(scope="module")
def newer_bin(older) -> Path:
    """The client tools of the newest installed major, newer than the older cluster's."""
    newest = max(installed_client_tools(), key=lambda tools: tools.major)
    assert newest.major > older.major, "these tests need client tools newer than the older cluster"
    return newest.bin_dir


@pytest.fixture(scope="module")
def older_major(older) -> int:
    return int(older.psql("SHOW server_version_num")) // 10000


@pytest.fixture(scope="module")
def system_bin(older_major, newer_bin) -> Path:
    """The installed client tools of the older cluster's own major (not the newest ones)."""
    for tools in installed_client_tools():
        if tools.major == older_major and tools.bin_dir != newer_bin:
            return tools.bin_dir
    raise AssertionError(f"no client tools of PostgreSQL {older_major} installed")


@pytest.fixture(scope="module")
def newer_archives(older, newer_bin, older_major, tmp_path_factory) -> dict[str, Path]:
    """The sample dumped by the newer pg_dump, through our own dump command (--bin-dir)."""
    assert client_version(newer_bin / "pg_dump")[0] > older_major, "need tools newer than the older cluster"
    folder = tmp_path_factory.mktemp("newer")
    made = {}
    for fmt, name in FORMATS.items():
        result = run_cli("dump", "--dsn", older.dsn(), "--db", SOURCE, "--format", fmt,
                         "--bin-dir", str(newer_bin), "--output", str(folder / name))
        assert result.returncode == 0, result.stderr
        made[fmt] = folder / name
        NEWER_DUMPS_SAID[fmt] = result.stderr
    return made


NEWER_DUMPS_SAID: dict[str, str] = {}  # each newer_archives dump's stderr, by format


@pytest.fixture(scope="module")
def system_plain(older, system_bin, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("system") / "shop.sql"
    result = run_cli("dump", "--dsn", older.dsn(), "--db", SOURCE, "--format", "plain",
                     "--bin-dir", str(system_bin), "--output", str(path))
    assert result.returncode == 0, result.stderr
    return path


def test_a_dump_by_a_newer_pg_dump_warns_that_restoring_it_here_needs_allow_older_server(
        newer_archives, newer_bin, older_major, older, home, tmp_path):
    """A dump with the --bin-dir of a newer major said nothing of it: the restore onto its own server
    was refused (--allow-older-server) only when it was needed (QA). Said with the result, per format."""
    newer_major = client_version(newer_bin / "pg_dump")[0]
    for fmt in newer_archives:
        said = [line for line in NEWER_DUMPS_SAID[fmt].splitlines() if "--allow-older-server" in line]
        assert len(said) == 1 and said[0].startswith("pgbackup-tui: warning: pg_dump "), NEWER_DUMPS_SAID[fmt]
        assert (f"newer than the server's PostgreSQL {older_major}" in said[0]
                and f"older than PostgreSQL {newer_major}" in said[0]), said[0]
    # A csv export's schema dump is no backup to restore, and csv import has no such option: not said.
    exported = run_cli("csv", "export", "--dsn", older.dsn(), "--db", SOURCE, "--table", "inventory.warehouses",
                       "--bin-dir", str(newer_bin), "--output", str(tmp_path / "copy"))
    assert exported.returncode == 0 and "--allow-older-server" not in exported.stderr, exported.stderr


# -- reading the header ---------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_names_its_pg_dump_and_server(newer_archives, newer_bin, older_major, fmt):
    info = identify_archive(newer_archives[fmt])
    major, version = client_version(newer_bin / "pg_dump")
    assert info.format == fmt
    assert info.dump_version is not None and info.dump_version.startswith(version)
    assert info.dump_major == major and info.min_reader_major == major
    assert info.server_major == older_major
    assert info.writer_text == f"pg_dump {info.dump_version}"
    assert info.uses_restrict == (fmt == "plain")


def fake_header(version: tuple[int, int, int], server: str, dump: str, int_size: int = 4) -> bytes:
    """A custom-format header as pg_dump's WriteHead lays it out for `version`."""

    def write_int(value: int) -> bytes:
        return bytes([1 if value < 0 else 0]) + abs(value).to_bytes(int_size, "little")

    def write_str(text: str) -> bytes:
        raw = text.encode()
        return write_int(len(raw)) + raw

    head = b"PGDMP" + bytes(version) + bytes([int_size, 8, 1])
    head += bytes([1]) if version >= (1, 15, 0) else write_int(-1)  # algorithm byte, or level int
    head += b"".join(write_int(n) for n in (5, 4, 3, 2, 1, 125, 0))
    return head + write_str("db") + write_str(server) + write_str(dump) + b"\x00" * 16


@pytest.mark.parametrize("version", [(1, 12, 0), (1, 13, 0), (1, 14, 0), (1, 15, 0), (1, 16, 0)])
def test_header_layouts_across_archive_versions(version):
    data = fake_header(version, "13.4 (Ubuntu)", "16.1")
    info = _read_header(data, Path("x.dump"), "custom")
    assert (info.archive_version, info.server_version, info.dump_version) == (version, "13.4 (Ubuntu)", "16.1")
    assert info.dump_major == 16
    # 8-byte ints (another machine's pg_dump) read the same.
    wide = _read_header(fake_header(version, "12.1", "17.0", int_size=8), Path("x.dump"), "custom")
    assert wide.dump_version == "17.0"


def test_header_cut_short_keeps_the_format_version():
    data = fake_header((1, 16, 0), "18.1", "18.1")[:40]
    info = _read_header(data, Path("x.dump"), "custom")
    assert info.archive_version == (1, 16, 0) and info.dump_version is None
    assert info.min_reader_major == 17 and info.writer_text.startswith("pg_dump 17 or later")


def test_version_major():
    assert version_major("15.18 (Debian 15.18-0+deb12u1)") == 15
    assert version_major("18beta1") == 18 and version_major("9.6.24") == 9
    assert version_major(None) is None and version_major("") is None
    assert ArchiveInfo(Path("x"), "plain").min_reader_major is None


# -- choosing the tools and refusing before the target is touched ---------------------------------
@pytest.mark.parametrize("fmt", ["custom", "directory"])
def test_newer_archive_with_only_older_tools_names_the_real_version(
        older, home, newer_archives, system_bin, fresh_db_name, fmt):
    info = identify_archive(newer_archives[fmt])
    env = dict(os.environ, **{CLIENT_DIRS_ENV: str(system_bin)})
    result = run_cli("restore", str(newer_archives[fmt]), "--dsn", older.dsn(), "--db", fresh_db_name,
                     "--create", env=env)
    assert_one_line_error(result, f"written by pg_dump {info.dump_version}",
                          f"install postgresql-client-{info.dump_major}", "--bin-dir")
    assert not database_exists(older, fresh_db_name)


def test_newer_archive_into_an_older_server_is_refused_unless_allowed(older, home, newer_archives, newer_bin,
                                                                      empty_db):
    env = dict(os.environ, **{CLIENT_DIRS_ENV: ""})  # nothing but --bin-dir
    args = ("restore", str(newer_archives["custom"]), "--dsn", older.dsn(), "--db", empty_db,
            "--bin-dir", str(newer_bin))
    refused = run_cli(*args, env=env)
    assert_one_line_error(refused, "written by pg_dump", f"runs PostgreSQL {older.major}", "--allow-older-server")
    # Its example only where it holds (QA: an 18 archive on a 17 server named 17's own SET transaction_timeout).
    newer_major = client_version(newer_bin / "pg_dump")[0]
    assert ("SET transaction_timeout" in refused.stderr) == (older.major < 17 <= newer_major), refused.stderr
    result = run_cli(*args, "--allow-older-server", "--progress", "plain", env=env)
    # pg_restore of a newer major sets transaction_timeout, which an older server does not know:
    # one error, ignored (exit 3); every row is there.
    assert result.returncode in (0, 3), result.stderr
    assert f"restoring with {newer_bin}" in result.stderr
    assert older.psql("SELECT count(*) FROM public.events", empty_db) == \
        older.psql("SELECT count(*) FROM public.events", SOURCE)


def test_plain_file_from_a_newer_pg_dump_into_an_older_server(
        older, home, newer_archives, older_major, fresh_db_name):
    info = identify_archive(newer_archives["plain"])
    result = run_cli("restore", str(newer_archives["plain"]), "--dsn", older.dsn(), "--db", fresh_db_name,
                     "--create")
    assert_one_line_error(result, f"pg_dump {info.dump_version}", f"runs PostgreSQL {older_major}",
                          "--allow-older-server", "nothing was restored")
    assert not database_exists(older, fresh_db_name)
    # The override runs it. A pg_dump of 17+ writes SET transaction_timeout, which a server of 16 or
    # older refuses: psql stopped there (exit 1, the database dropped again), so the override could
    # never run such a file there. The line is left out for such a server, and the log says so.
    forced = run_cli("restore", str(newer_archives["plain"]), "--dsn", older.dsn(), "--db", fresh_db_name,
                     "--create", "--allow-older-server", "--progress", "plain")
    assert forced.returncode == 0, forced.stderr
    count = "SELECT count(*) FROM public.events"
    assert older.psql(count, fresh_db_name) == older.psql(count, SOURCE)
    sets_it = "SET transaction_timeout" in newer_archives["plain"].read_text(errors="replace")
    knows_it = older.psql("SELECT count(*) FROM pg_settings WHERE name = 'transaction_timeout'").strip() == "1"
    assert ("is left out of what psql runs" in forced.stderr) == (sets_it and not knows_it), forced.stderr


# -- --bin-dir ----------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["dump", "restore"])
def test_bin_dir_that_is_no_bin_dir(older, home, tmp_path, system_plain, fresh_db_name, command):
    empty = tmp_path / "empty"
    empty.mkdir()
    lead = ["dump"] if command == "dump" else ["restore", str(system_plain)]
    for bogus, needle in ((tmp_path / "missing", "no such directory"), (empty, "no pg_dump, pg_restore or psql")):
        result = run_cli(*lead, "--dsn", older.dsn(), "--db", fresh_db_name, "--bin-dir", str(bogus))
        assert_one_line_error(result, f"--bin-dir {bogus}", needle)


def test_bin_dir_overrides_the_profile(older, home, newer_bin, system_bin, tmp_path):
    added = run_cli("servers", "add", "sb", "--dsn", older.dsn(), "--bin-dir", str(system_bin))
    assert added.returncode == 0, added.stderr
    out = tmp_path / "over.dump"
    result = run_cli("dump", "--server", "sb", "--db", SOURCE, "--bin-dir", str(newer_bin), "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert identify_archive(out).dump_major == client_version(newer_bin / "pg_dump")[0]


# -- psql minors and \restrict --------------------------------------------------------------------
@pytest.fixture(scope="module")
def old_minor_bin() -> Path:
    """psql 16.2 from the pgserver wheel: older than psql's \\restrict (a test-only dependency)."""
    found = wheel_bin("pgserver")
    if found is None:
        pytest.skip("pgserver (an old-minor psql) has no wheel for this Python/platform")
    return found


def test_old_minor_psql_really_rejects_restrict(old_minor_bin, system_bin):
    from pgbackup_tui.core.pgtools import ClientTools, psql_knows_restrict

    major, version = client_version(old_minor_bin / "pg_dump")
    old = ClientTools(old_minor_bin, major, version)
    assert not psql_knows_restrict(old)
    system = ClientTools(system_bin, *client_version(system_bin / "pg_dump"))
    assert psql_knows_restrict(system)


def test_plain_file_prefers_a_psql_that_can_run_it(older, home, system_plain, old_minor_bin, fresh_db_name):
    assert identify_archive(system_plain).uses_restrict
    result = run_cli("restore", str(system_plain), "--dsn", older.dsn(), "--db", fresh_db_name, "--create",
                     "--bin-dir", str(old_minor_bin), "--progress", "plain")
    assert result.returncode == 0, result.stderr
    assert f"psql in {old_minor_bin} cannot run this file" in result.stderr
    assert older.psql("SELECT count(*) FROM public.events", fresh_db_name) == \
        older.psql("SELECT count(*) FROM public.events", SOURCE)


def test_plain_file_with_only_an_old_minor_psql_names_the_minor_needed(
        older, home, system_plain, old_minor_bin, fresh_db_name):
    major, version = client_version(old_minor_bin / "psql")
    env = dict(os.environ, **{CLIENT_DIRS_ENV: ""})  # nothing but --bin-dir
    result = run_cli("restore", str(system_plain), "--dsn", older.dsn(), "--db", fresh_db_name, "--create",
                     "--bin-dir", str(old_minor_bin), env=env)
    assert_one_line_error(result, "\\restrict", f"psql {version}", f"needs psql {restrict_minimum(major)} or later")
    assert not database_exists(older, fresh_db_name)
