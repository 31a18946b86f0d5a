"""Messages the app's workers post back to the UI thread, named for what happened.

Workers never touch widgets: they post one of these with an immutable snapshot, and the app
hands it to the widget that shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from textual.message import Message

from ..core.inspect import ServerInfo
from ..core.job_follow import JobFollower
from .inspection import DatabaseSnapshot, ServerSnapshot
from .store_scan import FoundJob


@dataclass
class ServerInspected(Message):
    """A server answered: its version and databases."""

    server: str
    snapshot: ServerSnapshot


@dataclass
class DatabaseInspected(Message):
    """A database's schemas, tables and extensions were read."""

    server: str
    dbname: str
    snapshot: DatabaseSnapshot


@dataclass
class InspectionFailed(Message):
    """A server (dbname None) or a database could not be read; `error` is the one-line reason."""

    server: str
    dbname: str | None
    error: str
    needs_password: bool = False

    @classmethod
    def from_error(cls, server: str, dbname: str | None, exc: Exception) -> InspectionFailed:
        """From core's one-line errors, or from a query psycopg refused (e.g. no privilege)."""
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, psycopg.Error):
            where = f"database '{dbname}'" if dbname else "the server"
            text = f"server '{server}': reading {where} failed: {text}"
        return cls(server, dbname, text, needs_password=getattr(exc, "needs_password", False))


@dataclass
class ConnectionTested(Message):
    """The server form's Test button got an answer: `info` on success, else `error`."""

    info: ServerInfo | None
    error: str | None


@dataclass
class JobStarted(Message):
    """A job's runner was started from this app; `job` follows it."""

    job: JobFollower


@dataclass
class JobStartFailed(Message):
    """A job's runner could not be started (e.g. the state dir is not writable)."""

    title: str
    error: str


@dataclass
class StoreJobsFound(Message):
    """Jobs in the store that the app does not show yet (oldest first), and the ids of older
    ones left out to keep the list bounded."""

    found: tuple[FoundJob, ...]
    left_out: frozenset[str]


@dataclass
class StrayOutputLine(Message):
    """A line something wrote to descriptor 2 while the TUI ran (stray_output.py), said once."""

    line: str
