"""core/tool_cache.py: what the client programs answered, kept on disk per binary version.

Each test has its own PGBACKUP_TUI_HOME (the `home` fixture), so its own cache file; the
in-process lru caches in front of it are cleared to stand for a new process (a new job).
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pgbackup_tui.core import defaults, pgtools, tool_cache
from pgbackup_tui.core.pgtools import client_version, installed_client_tools

LOWEST = min(pgtools.installed_client_tools(), key=lambda tools: tools.major)


def new_process() -> None:
    """Forget what this process asked, as a new job would start without it."""
    pgtools._version_of.cache_clear()
    pgtools._knows_restrict.cache_clear()
    defaults._supports.cache_clear()


@pytest.fixture
def asked(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The binaries whose `--version` really ran (the real probe still runs and answers)."""
    new_process()
    calls: list[str] = []
    real_ask: Callable[[str], tuple[int, str]] = pgtools._ask_version

    def counting_ask(real_path: str) -> tuple[int, str]:
        calls.append(real_path)
        return real_ask(real_path)

    monkeypatch.setattr(pgtools, "_ask_version", counting_ask)
    yield calls
    new_process()


def test_a_hit_gives_the_tools_a_fresh_search_finds(asked: list[str], home: Path) -> None:
    fresh = installed_client_tools()
    assert fresh and len(asked) == len(fresh)
    cache = tool_cache.cache_file()
    assert cache.is_relative_to(home)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
    new_process()
    asked.clear()
    assert installed_client_tools() == fresh
    assert asked == []  # no pg_dump ran: every answer came from the file


def test_the_compression_probe_is_kept_too(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    new_process()
    first = [defaults.supports(tools, "lz4") for tools in installed_client_tools()]
    new_process()

    def no_probe(pg_dump: str, method: str) -> bool:
        raise AssertionError(f"{pg_dump} was probed for {method} again")

    monkeypatch.setattr(defaults, "_ask_supports", no_probe)
    assert [defaults.supports(tools, "lz4") for tools in installed_client_tools()] == first
    new_process()


def copied_pg_dump(tmp_path: Path) -> Path:
    copy = tmp_path / "bin" / "pg_dump"
    copy.parent.mkdir()
    shutil.copy2(LOWEST.pg_dump, copy)
    return copy


def test_touching_the_binary_asks_again(asked: list[str], tmp_path: Path) -> None:
    copy = copied_pg_dump(tmp_path)
    assert client_version(copy) == (LOWEST.major, LOWEST.version)
    new_process()
    assert client_version(copy) == (LOWEST.major, LOWEST.version)
    assert asked == [str(copy)]  # the second came from the file
    status = copy.stat()
    os.utime(copy, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))
    new_process()
    assert client_version(copy) == (LOWEST.major, LOWEST.version)
    assert asked == [str(copy), str(copy)]


def test_a_replaced_binary_gives_its_own_version(asked: list[str], tmp_path: Path) -> None:
    copy = copied_pg_dump(tmp_path)
    assert client_version(copy) == (LOWEST.major, LOWEST.version)
    newer = LOWEST.major + 1
    # An upgrade as packagers do it: the new file is written beside and renamed over the old one.
    replacement = copy.with_name("pg_dump.new")
    replacement.write_text(f"#!/bin/sh\necho 'pg_dump (PostgreSQL) {newer}.3'\n")
    replacement.chmod(0o755)
    os.utime(replacement, ns=(copy.stat().st_atime_ns, copy.stat().st_mtime_ns))  # same mtime: size and inode differ
    os.replace(replacement, copy)
    new_process()
    assert client_version(copy) == (newer, f"{newer}.3")
    assert len(asked) == 2


@pytest.mark.parametrize("content", [b"\x00not json{", b"[]", b'{"format": 1, "binaries": []}',
                                     b'{"format": 1, "binaries": {"%s": {"stamp": "x", "results": 3}}}'])
def test_a_garbage_cache_is_ignored(asked: list[str], content: bytes) -> None:
    real = os.path.realpath(LOWEST.pg_dump)
    cache = tool_cache.cache_file()
    cache.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    cache.write_bytes(content.replace(b"%s", real.encode()))
    assert client_version(LOWEST.pg_dump) == (LOWEST.major, LOWEST.version)
    assert asked == [real]
    new_process()
    assert client_version(LOWEST.pg_dump) == (LOWEST.major, LOWEST.version)  # the file was rewritten whole
    assert asked == [real]


def test_a_wrongly_typed_answer_is_asked_again(asked: list[str]) -> None:
    real = os.path.realpath(LOWEST.pg_dump)
    client_version(LOWEST.pg_dump)
    cache = tool_cache.cache_file()
    cache.write_text(cache.read_text().replace(f'"{LOWEST.version}"', "null"))
    new_process()
    assert client_version(LOWEST.pg_dump) == (LOWEST.major, LOWEST.version)
    assert asked == [real, real]


def test_an_unwritable_cache_never_fails_a_lookup(asked: list[str], home: Path) -> None:
    (home / "cache").write_text("a file where the folder should be")
    assert client_version(LOWEST.pg_dump) == (LOWEST.major, LOWEST.version)
    new_process()
    assert client_version(LOWEST.pg_dump) == (LOWEST.major, LOWEST.version)
    assert len(asked) == 2
