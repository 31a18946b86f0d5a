"""What a restore onto a server older than its client tools leaves out of their scripts.

pg_dump and pg_restore 17+ write settings at the head of every script (plain_script.NEWER_SETTINGS)
that an older server rejects; under psql's ON_ERROR_STOP the restore stopped at its first line.
psql runs the restore's scripts without them (said once in the job's log), and the failures of
pg_restore's own SET in each of its sessions are not counted as the restore's errors.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .plain_script import (file_chunks, first_major_setting, head_has, sets_unknown_settings, settings_unknown_to,
                           without_settings)


class SettingsLeftOut:
    """The settings a job's scripts are run without, for a target of `server_major` (None until the
    job has asked the server: then nothing is left out); the log's line said once per job."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self._log = log
        self._said = False

    def in_script(self, script: Path, server_major: int | None) -> frozenset[bytes]:
        """The settings `script` holds at its head that the target lacks: psql runs it without them."""
        lines = settings_unknown_to(server_major) if server_major is not None else frozenset()
        if not head_has(script, lines):
            return frozenset()
        if not self._said:
            self._said = True
            said = " and ".join(f"`{line.decode()}`" for line in sorted(lines))
            self._log(f"{said} in {script.name} is left out of what psql runs: PostgreSQL {server_major} has "
                      f"no such setting (pg_dump and pg_restore {first_major_setting(lines)} and newer write it in "
                      "every script)")
        return lines



def harmless_for(tools_major: int, server_major: int | None) -> frozenset[str]:
    """The statements pg_restore of `tools_major` runs in each session that fail on a target of
    `server_major` and change nothing (RestoreOutput.harmless): none when the target knows them."""
    if server_major is None or not sets_unknown_settings(tools_major, server_major):
        return frozenset()
    return frozenset(line.decode() for line in settings_unknown_to(server_major))


def discounted_line(tools_version: str, server_major: int | None, failed: int) -> str:
    """The log's line for the `failed` sessions whose SET was not counted as an error."""
    return (f"pg_restore {tools_version}'s `SET transaction_timeout = 0` failed in {failed} of its session(s): "
            f"PostgreSQL {server_major} has no such setting, and nothing else depends on it (not counted as an "
            "error)")


def rewrite_without(script: Path, lines: frozenset[bytes]) -> None:
    """`script` (a file of the job's own) written again without `lines` (plain_script.without_settings)."""
    cleaned = script.with_name(script.name + ".tmp")
    with cleaned.open("wb") as out:
        for chunk in without_settings(file_chunks(script), lines, [0]):
            out.write(chunk)
    cleaned.replace(script)
