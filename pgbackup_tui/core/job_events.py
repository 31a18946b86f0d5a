"""What a job says while it runs: its states, events, result, and the exceptions that end it.

Kept apart from the Job itself (jobs.py) because every front reads these — the CLI's reporter,
the TUI, a JobFollower reading a runner's state from disk — without running a job.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from .errors import EXIT_CANCELLED, EXIT_ERRORS_IGNORED, EXIT_FAILED, EXIT_OK
from .progress.snapshot import ProgressSnapshot

DISK_NEARLY_FULL_BYTES = 1 << 20  # a child that failed with less than this free most likely hit ENOSPC


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PARTIAL = "partial"

    @property
    def is_final(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


EXIT_CODE_FOR_STATE = {
    JobState.SUCCEEDED: EXIT_OK,
    JobState.FAILED: EXIT_FAILED,
    JobState.CANCELLED: EXIT_CANCELLED,
    JobState.PARTIAL: EXIT_ERRORS_IGNORED,
}


# How the job's last line (its result) is shown.
LOG_LEVEL_FOR_STATE = {
    JobState.SUCCEEDED: "info",
    JobState.PARTIAL: "warning",
    JobState.CANCELLED: "warning",
    JobState.FAILED: "error",
}


@dataclass(frozen=True)
class JobEvent:
    job_id: str


@dataclass(frozen=True)
class StateChanged(JobEvent):
    state: JobState


@dataclass(frozen=True)
class LogLine(JobEvent):
    text: str
    level: str = "info"  # info | warning | error | command


@dataclass(frozen=True)
class ProgressUpdated(JobEvent):
    progress: ProgressSnapshot


@dataclass(frozen=True)
class JobFinished(JobEvent):
    result: JobResult


@dataclass(frozen=True)
class Owned(JobEvent):
    """The job is about to create (`held`) or is done with (not `held`) something it must undo if it
    does not finish: a path ("path": its partial output) or a database ("database"). Listeners
    that keep the job's state on disk write it durably before the job goes on (runner.py)."""

    kind: str
    value: str
    held: bool = True
    stop_at: str | None = None  # for a path: the folder up to which empty parents it made go too
    # For a database, once the job has made it: its OID. A recovery drops a database of that name
    # only if it is still this one (a DBA may have dropped it and made another of the same name).
    identity: str | None = None
    # For a restore's swap (job_store.SWAPPED_IN): the name the database it replaced gets.
    previous: str | None = None


@dataclass(frozen=True)
class JobResult:
    state: JobState
    exit_code: int
    message: str
    log_path: Path | None
    duration_s: float
    output_path: Path | None = None
    bytes_written: int = 0
    errors_ignored: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    error: type[Exception] | None = None  # what ended a failed job (ConnectError, ArchiveError...)


@dataclass(frozen=True)
class Outcome:
    """What a job's _execute returns when it got to the end."""

    message: str
    output_path: Path | None = None
    bytes_written: int = 0
    errors_ignored: int = 0
    details: dict[str, Any] = field(default_factory=dict)


class Cancelled(Exception):
    """Raised inside a job once cancel() was requested."""


Listener = Callable[[JobEvent], None]


# What the job's own warnings start with in its log: the level of a line is not written there, and
# a front that reads the log (the CLI following a runner, the TUI) knows a warning by its words.
WARNING_PREFIX = "warning: "


def warning_text(line: str) -> str:
    """A logged warning as the job meant it: without the prefix its log line was given."""
    return line.removeprefix(WARNING_PREFIX)


# Every word classify_line looks for ("error:" holds "error"): a text with none of them is all info.
_NOT_INFO = ("error", "fatal:", "warning:")


def all_info(text: str) -> bool:
    """Whether every line of `text` is "info" to classify_line: a chunk of a log is mostly so,
    and one look at the whole saves one a line."""
    lowered = text.lower()
    return not any(word in lowered for word in _NOT_INFO)


def classify_line(line: str) -> str:
    lowered = line.lower()
    if lowered.startswith(WARNING_PREFIX):  # one of the job's own warnings, even one that quotes an error
        return "warning"
    if "error:" in lowered or "fatal:" in lowered or lowered.startswith("error"):
        return "error"
    if "warning:" in lowered:
        return "warning"
    return "info"


# A password a child's line quotes: psql --echo-errors copies a failing statement whole, and a
# pg_dumpall file's `ALTER ROLE x ... PASSWORD 'SCRAM-SHA-256$...'` (or a user mapping's
# `password 'x'`, a conninfo's password=x) would land in the log and on the terminal.
# A literal may be cut where psql's `LINE 1: ...` display cuts a long statement: to the line's end.
_SQL_PASSWORD = re.compile(r"(\bpassword\s+)(?:E?'(?:[^'\\]|''|\\.)*(?:'|$)|\$(\w*)\$.*?(?:\$\2\$|$))",
                           re.IGNORECASE)
_CONNINFO_PASSWORD = re.compile(r"(\b(?:ssl)?password\s*=\s*)(?:'{1,2}(?:[^'\\]|\\.)*(?:'{1,2}|$)|[^\s'\"]+)",
                                re.IGNORECASE)
_URI_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]*@", re.IGNORECASE)


def without_secrets(line: str) -> str:
    """A child's line with any password it quotes blanked (most lines hold none: two looks each)."""
    if "password" in line.lower():
        line = _CONNINFO_PASSWORD.sub(r"\1…", _SQL_PASSWORD.sub(r"\1'…'", line))
    if "://" in line:
        line = _URI_PASSWORD.sub(r"\1…@", line)
    return line


# A statement psql copies as it was written may put a password's literal on the lines after its
# keyword (`PASSWORD` then `'x'`), or run the literal itself over lines.
_KEYWORD_ENDS_LINE = re.compile(r"\bpassword\s*$", re.IGNORECASE)
# A literal opened after the keyword and not closed on its line: plain ('...': a backslash is a
# character), escaped (E'...': it escapes) or dollar-quoted ($tag$...).
_LITERAL_LEFT_OPEN = re.compile(r"\bpassword\s+(?:(E)'(?:[^'\\]|''|\\.)*|'(?:[^']|'')*|\$(\w*)\$(?:(?!\$\2\$).)*)$",
                                re.IGNORECASE)
_PLAIN_CLOSES = re.compile(r"^(?:[^']|'')*'")
_ESCAPED_CLOSES = re.compile(r"^(?:[^'\\]|''|\\.)*'")
# A tool's own line, not the rest of a statement psql copies: what a literal carried ends there
# (pg_restore's "errors ignored on restore: N" must never be blanked: the job's outcome reads it).
_TOOL_LINE = re.compile(r"^(?:psql|pg_restore|pg_dump|pg_dumpall)\b.*?:|^(?:ERROR|WARNING|NOTICE|DETAIL|HINT|CONTEXT|"
                        r"STATEMENT|FATAL|LOG|INFO|LINE \d+):|^Command was:", re.IGNORECASE)
MAX_CARRIED_LINES = 5  # a literal that runs on longer is no password: the lines after it are shown


class SecretBlanker:
    """without_secrets over one child's lines, in order: a password's literal on the line after its
    keyword, or over several lines, is blanked too (each child gets its own: the state is its). What
    a line carries over ends at the next line of the tool's own, and after MAX_CARRIED_LINES."""

    def __init__(self) -> None:
        self._awaiting_literal = False  # the last line ended with the keyword
        self._open_literal: re.Pattern[str] | None = None  # the end of a literal that runs on
        self._carried = 0  # lines blanked for a literal that runs on

    def __call__(self, line: str) -> str:
        if _TOOL_LINE.match(line.lstrip()):
            self._awaiting_literal, self._open_literal = False, None
        said = line  # what is looked at for a keyword or a literal left open
        if self._open_literal is not None:
            closed = self._open_literal.match(line)
            if closed is None:
                self._carried += 1
                if self._carried <= MAX_CARRIED_LINES:
                    return "…"  # the literal runs on over this whole line
                self._open_literal = None
            else:
                line = said = "…" + line[closed.end() - 1:]
                self._open_literal = None
        elif self._awaiting_literal:
            rest = line.lstrip()
            if rest:
                self._awaiting_literal = False
                if rest[0] in "'$" or rest[:2].upper() == "E'":
                    keyword = "password "
                    said = keyword + rest
                    line = line[:len(line) - len(rest)] + without_secrets(said)[len(keyword):]
        line = without_secrets(line)
        if "password" in said.lower():
            self._awaiting_literal = _KEYWORD_ENDS_LINE.search(said) is not None
            left_open = _LITERAL_LEFT_OPEN.search(said)
            if left_open is not None:
                escaped, tag = left_open.group(1), left_open.group(2)
                self._carried = 0
                self._open_literal = (re.compile(r"^.*?" + re.escape(f"${tag}$")) if tag is not None else
                                      _ESCAPED_CLOSES if escaped else _PLAIN_CLOSES)
        return line


_last_stamp: tuple[int, str] = (-1, "")


def log_stamp() -> str:
    """Now, as a job's log writes it (UTC, to the second), formatted once a second: a restore logs
    a line per archive entry, thousands in a few seconds."""
    global _last_stamp
    second = int(time.time())
    if _last_stamp[0] != second:
        _last_stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
    return _last_stamp[1]
