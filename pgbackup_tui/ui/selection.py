"""What the user has checked in the tree: a whole database or some of its tables.

Selection is per database, because one dump is one database. The tree owns the state and hands
out frozen Selection values; the summary line, the backup action and the palette read them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.formatting import human_bytes
from ..core.identifiers import QualifiedName
from ..core.inspect import TableInfo


@dataclass(frozen=True)
class Selection:
    """A whole database (`whole_database`) or the checked tables of one database."""

    server: str
    dbname: str
    whole_database: bool = False
    tables: tuple[TableInfo, ...] = ()
    database_bytes: int | None = None

    @property
    def qualified_names(self) -> tuple[QualifiedName, ...]:
        """The checked tables as pg_dump --table takes them; empty for a whole database."""
        if self.whole_database:
            return ()
        return tuple(table.qualified for table in self.tables)

    @property
    def total_bytes(self) -> int | None:
        """On-disk size of what is selected (indexes included), None when unknown."""
        if self.whole_database:
            return self.database_bytes
        chosen = {table.qualified for table in self.tables}
        # A partitioned table's size already includes its partitions: count those only once.
        return sum(
            table.total_bytes
            for table in self.tables
            if table.parent_qualified is None or table.parent_qualified not in chosen
        )

    def describe(self) -> str:
        """One line: "3 tables in shop — 1.2 GB" or "database shop — 1.2 GB"."""
        size = human_bytes(self.total_bytes)
        if self.whole_database:
            return f"database {self.dbname} — {size}"
        count = len(self.tables)
        noun = "table" if count == 1 else "tables"
        return f"{count} {noun} in {self.dbname} — {size}"
