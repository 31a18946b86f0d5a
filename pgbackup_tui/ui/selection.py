"""What the user has checked in the tree: a whole database or some of its tables.

Selection is per database, because one dump is one database. The tree owns the state and hands
out frozen Selection values; the summary line, the backup action and the palette read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.formatting import human_bytes
from ..core.identifiers import QualifiedName, one_line
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
        dbname = one_line(self.dbname)  # a name with a line break: the summary read "1 table in two"
        if self.whole_database:
            return f"database {dbname} — {size}"
        count = len(self.tables)
        noun = "table" if count == 1 else "tables"
        return f"{count} {noun} in {dbname} — {size}"


DatabaseKey = tuple[str, str]  # (server name, database name)


@dataclass(frozen=True)
class Checks:
    """The tree's check marks as a value: nothing, a whole database, or tables of one database.

    Every toggle returns a new Checks. Checking something in another database starts over
    there, because one backup is one database.
    """

    database: DatabaseKey | None = None
    whole: bool = False
    tables: dict[QualifiedName, TableInfo] = field(default_factory=dict, hash=False)

    def toggle_database(self, key: DatabaseKey) -> Checks:
        """Check the whole database, or uncheck it if it was checked whole."""
        if self.database == key and self.whole:
            return Checks()
        return Checks(key, whole=True)

    def toggle_tables(self, key: DatabaseKey, tables: tuple[TableInfo, ...],
                      every_table: tuple[TableInfo, ...]) -> Checks:
        """Check `tables` (a table or a schema's), or uncheck them if all were checked.

        Inside a database checked whole, this unchecks them from `every_table` (the database's
        tables): the whole database becomes "every table but these".
        """
        if self.database != key:
            chosen: dict[QualifiedName, TableInfo] = {}
        elif self.whole:
            chosen = {table.qualified: table for table in every_table}
        else:
            chosen = dict(self.tables)
        if tables and all(table.qualified in chosen for table in tables):
            for table in tables:
                chosen.pop(table.qualified, None)
        else:
            chosen.update((table.qualified, table) for table in tables)
        return Checks(key, tables=chosen) if chosen else Checks()

    def database_mark(self, key: DatabaseKey) -> str:
        """"x" checked whole, "-" some tables, " " nothing."""
        if self.database != key:
            return " "
        return "x" if self.whole else "-"

    def tables_mark(self, key: DatabaseKey, tables: tuple[TableInfo, ...]) -> str:
        """For a schema (or one table): "x" all checked, "-" some, " " none."""
        if self.database != key or not tables:
            return " "
        if self.whole:
            return "x"
        checked = sum(1 for table in tables if table.qualified in self.tables)
        return "x" if checked == len(tables) else "-" if checked else " "

    def selection(self, database_bytes: int | None) -> Selection | None:
        """The checks as a Selection (None when nothing is checked)."""
        if self.database is None:
            return None
        tables = tuple(sorted(self.tables.values(), key=lambda table: table.qualified))
        return Selection(*self.database, whole_database=self.whole, tables=tables, database_bytes=database_bytes)
