"""What each line of the server tree stands for, as plain data.

The tree's nodes carry these; the Details tab and the app read them through TreeFocus. Server
and database entries change as they load (on the UI thread only); the others are frozen.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.server_profile import ServerProfile
from ..core.inspect import DatabaseInfo, SchemaInfo, TableInfo
from .inspection import DatabaseSnapshot, ServerSnapshot

IDLE, LOADING, READY, FAILED = "idle", "loading", "ready", "failed"


@dataclass
class ServerEntry:
    """A configured server and what we know about it so far."""

    profile: ServerProfile
    status: str = IDLE
    snapshot: ServerSnapshot | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return self.profile.name


@dataclass
class DatabaseEntry:
    """A database on a loaded server; `snapshot` once it was opened."""

    server: str
    info: DatabaseInfo
    status: str = IDLE
    snapshot: DatabaseSnapshot | None = None
    error: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.server, self.info.name)


@dataclass(frozen=True)
class SchemaEntry:
    server: str
    dbname: str
    info: SchemaInfo
    tables: tuple[TableInfo, ...] = ()


@dataclass(frozen=True)
class TableEntry:
    server: str
    dbname: str
    info: TableInfo


@dataclass(frozen=True)
class HintEntry:
    """A line that is not an object: "loading…", "no servers yet", a config error."""

    text: str
    is_error: bool = False


@dataclass(frozen=True)
class MoreEntry:
    """The line after a page of a schema's tables: the tables not shown yet (enter shows the next page).

    A schema of 10,000 tables shows them a page at a time: every rebuild of Textual's Tree walks
    all its lines, so a tree of 10,000 lines freezes the UI. Checking the schema still checks
    every table, shown or not (the checks hold the schema's tables, not the tree's nodes)."""

    schema: SchemaEntry
    shown: int  # tables shown above this line
    page: int  # how many the next page shows

    @property
    def left(self) -> int:
        return len(self.schema.tables) - self.shown


NodeEntry = ServerEntry | DatabaseEntry | SchemaEntry | TableEntry | HintEntry | MoreEntry


@dataclass(frozen=True)
class TreeFocus:
    """Where the cursor is, with every level above it (None when not applicable)."""

    server: ServerEntry | None = None
    database: DatabaseEntry | None = None
    schema: SchemaEntry | None = None
    table: TableEntry | None = None
    hint: HintEntry | None = None


def short_reason(error: str, server: str) -> str:
    """The error without its "server 'x' (host:port): " lead, which the node already shows."""
    lead = f"server '{server}' ("
    if error.startswith(lead) and "): " in error:
        return error.split("): ", 1)[1]
    return error


def table_marks(info: TableInfo) -> list[str]:
    """Words that set a table apart: partitioned, partition, matview, foreign, hypertable."""
    marks = [info.kind] if info.kind != "table" else []
    if info.is_hypertable:
        marks.append("hypertable")
    return marks
