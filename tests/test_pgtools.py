"""core/pgtools.py: choosing client binaries by major version, on this machine's real installs.

The real tools are Debian's PostgreSQL 15 in /usr/lib/postgresql/15/bin. To have a second
major around we put small scripts named pg_dump on PATH that print another version: enough
for the choice, which only reads `--version`.
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

DEBIAN_15 = Path("/usr/lib/postgresql/15/bin")


def fake_client_dir(root: Path, version_line: str) -> Path:
    """A bin dir whose client tools only answer --version with `version_line`."""
    root.mkdir(parents=True)
    for tool in TOOLS:
        script = root / tool
        script.write_text(f"#!/bin/sh\necho '{tool} (PostgreSQL) {version_line}'\n")
        script.chmod(0o755)
    return root


def test_finds_debian_15_for_a_15_server() -> None:
    tools = find_client_tools(15)
    assert tools.bin_dir == DEBIAN_15
    assert tools.major == 15 and tools.version.startswith("15.")
    for tool in TOOLS:
        assert getattr(tools, tool) == str(DEBIAN_15 / tool)
        assert os.access(tools.path(tool), os.X_OK)


def test_older_server_gets_the_lowest_newer_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    newer = fake_client_dir(tmp_path / "pg17", "17.2")
    monkeypatch.setenv("PATH", f"{newer}{os.pathsep}{os.environ['PATH']}")
    assert find_client_tools(12).bin_dir == DEBIAN_15  # 15 is the lowest >= 12, not 17
    assert find_client_tools(15).bin_dir == DEBIAN_15
    chosen = find_client_tools(16)
    assert (chosen.bin_dir, chosen.major, chosen.version) == (newer, 17, "17.2")


def test_server_newer_than_any_client_names_the_version_needed() -> None:
    with pytest.raises(ToolNotFoundError) as caught:
        find_client_tools(99, label="server 'prod'")
    message = str(caught.value)
    assert message.startswith("server 'prod' runs PostgreSQL 99 but the newest pg_dump here is 15")
    assert str(DEBIAN_15) in message and "postgresql-client-99" in message
    assert "\n" not in message


def test_profile_bin_dir_is_preferred(tmp_path: Path) -> None:
    profile_dir = tmp_path / "profile-bin"
    profile_dir.mkdir()
    for tool in TOOLS:
        (profile_dir / tool).symlink_to(DEBIAN_15 / tool)
    tools = find_client_tools(15, bin_dir=str(profile_dir))
    assert tools.bin_dir == profile_dir and tools.major == 15
    assert tools.pg_dump == str(profile_dir / "pg_dump")
    assert candidate_bin_dirs(str(profile_dir))[0] == profile_dir
    # The same binaries twice are listed once (the profile's spelling wins).
    assert DEBIAN_15 not in candidate_bin_dirs(str(profile_dir))


def test_profile_bin_dir_used_when_new_enough_else_falls_back(tmp_path: Path) -> None:
    old = fake_client_dir(tmp_path / "pg96", "9.6.24")
    assert find_client_tools(15, bin_dir=str(old)).bin_dir == DEBIAN_15
    # ... but when it is new enough for the server it is used, even though 15 is also there.
    assert find_client_tools(9, bin_dir=str(old)).bin_dir == old
    newer = fake_client_dir(tmp_path / "pg17", "17.2")
    assert find_client_tools(15, bin_dir=str(newer)).bin_dir == newer  # not the closer 15

    empty = tmp_path / "empty"
    empty.mkdir()
    for bogus in (tmp_path / "does-not-exist", empty):
        assert find_client_tools(15, bin_dir=str(bogus)).bin_dir == DEBIAN_15
        assert bogus not in candidate_bin_dirs(str(bogus))


def test_candidates_skip_debian_pg_wrapper() -> None:
    # /usr/bin/pg_dump is postgresql-common's dispatcher, not a fixed version.
    assert Path("/usr/bin/pg_dump").resolve().name == "pg_wrapper"
    dirs = candidate_bin_dirs()
    assert DEBIAN_15 in dirs and Path("/usr/bin") not in dirs


def test_tools_for_archive() -> None:
    assert tools_for_archive(15).bin_dir == DEBIAN_15
    assert tools_for_archive(11).bin_dir == DEBIAN_15
    assert tools_for_archive(None).major == 15  # unknown writer: the newest
    with pytest.raises(ToolNotFoundError) as caught:
        tools_for_archive(18, label="archive /b/shop.dump")
    message = str(caught.value)
    assert message.startswith("archive /b/shop.dump was written by pg_dump 18 but the newest pg_restore here is 15")
    assert "postgresql-client-18" in message


def test_no_client_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgtools, "_WELL_KNOWN_GLOBS", ())
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolNotFoundError, match=r"^the server runs PostgreSQL 15 but no pg_dump was found"):
        find_client_tools(15)


def test_missing_tool_in_a_bin_dir(tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "pg_dump").symlink_to(DEBIAN_15 / "pg_dump")
    tools = find_client_tools(15, bin_dir=str(partial))
    assert tools.pg_dump == str(partial / "pg_dump")
    with pytest.raises(ToolNotFoundError, match="pg_restore is missing from"):
        _ = tools.pg_restore
    with pytest.raises(ValueError):
        tools.path("rm")


def test_client_version_runs_the_binary_once() -> None:
    major, version = client_version(DEBIAN_15 / "pg_dump")
    assert major == 15 and version.startswith("15.")
    before = pgtools._version_of.cache_info().hits
    assert client_version(str(DEBIAN_15 / "pg_dump")) == (major, version)
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
