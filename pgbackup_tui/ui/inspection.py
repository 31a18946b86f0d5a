"""What the tree shows, fetched off the UI thread: one call per server, one per database.

These functions block (psycopg) and run in thread workers; they return frozen snapshots so the
UI thread never shares mutable state with a worker. Errors stay core's: ConnectError for a
server that cannot be reached, PgBackupError for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.connect import Target, connect
from ..core.inspect import (
    DatabaseInfo,
    ExtensionInfo,
    SchemaInfo,
    ServerInfo,
    TableInfo,
    list_databases,
    list_extensions,
    list_schemas,
    list_tables,
    server_info,
)


@dataclass(frozen=True)
class ServerSnapshot:
    """A server's version and its databases, as of one connection."""

    info: ServerInfo
    databases: tuple[DatabaseInfo, ...]


@dataclass(frozen=True)
class DatabaseSnapshot:
    """One database's schemas, tables (all schemas) and extensions."""

    schemas: tuple[SchemaInfo, ...]
    tables: tuple[TableInfo, ...]
    extensions: tuple[ExtensionInfo, ...]

    def tables_in(self, schema: str) -> tuple[TableInfo, ...]:
        """The tables of one schema, in list_tables order."""
        return tuple(table for table in self.tables if table.schema == schema)


def inspect_server(target: Target) -> ServerSnapshot:
    """Connect to the target's maintenance database and read its version and databases."""
    with connect(target) as conn:
        return ServerSnapshot(info=server_info(conn), databases=tuple(list_databases(conn)))


def inspect_database(target: Target, dbname: str) -> DatabaseSnapshot:
    """Connect to `dbname` and read everything the tree and the Details tab show for it.

    Tables of every schema come in one query: a schema then opens without another round trip,
    and selecting a schema can say its size at once.
    """
    with connect(target, dbname) as conn:
        return DatabaseSnapshot(
            schemas=tuple(list_schemas(conn)),
            tables=tuple(list_tables(conn)),
            extensions=tuple(list_extensions(conn)),
        )


def probe_server(target: Target) -> ServerInfo:
    """Connect once and return what the server says about itself (the form's Test button)."""
    with connect(target) as conn:
        return server_info(conn)
