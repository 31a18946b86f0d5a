"""The restore dialog's table picker: the tables of the archive's TOC, as `restore --table` takes them.

Nothing checked restores everything; checked tables restore only those (RestorePlan.tables).
The names come from `backups show`'s reading of the archive (commands/backups.py show_data):
pg_restore --list of a pg_dump archive, in a thread worker of the dialog (`archive_tables`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, SelectionList

from ...commands.backups import show_data
from ...core.catalog import CatalogEntry, entry_for
from ...core.errors import PgBackupError
from ...core.identifiers import QualifiedName, parse_qualified_name
from ...core.verify import PG_DUMP_FORMATS
from .check_list import CheckList, name_options


def contents_tables(entry: CatalogEntry, data: dict[str, Any]) -> list[tuple[str, int | None]]:
    """(table, rows) of a backup: the manifest's exact names when it has them, else the TOC's reading.

    The manifest's names come from the server at dump time; show_data's come from pg_restore's
    listing, whose "namespace tag owner" line cannot be split right when a name holds a space.
    """
    manifest = entry.manifest
    if manifest is not None and manifest.toc.tables:
        return [(table.name, table.rows) for table in manifest.toc.tables]
    return [(str(item["name"]), item["rows"]) for item in data["contents"]["tables"]]


def archive_tables(path: Path, archive_format: str) -> list[str]:
    """The tables in the archive's TOC (qualified as SQL writes them); [] when it has no TOC to pick from."""
    if archive_format not in PG_DUMP_FORMATS:
        return []  # a SQL script restores whole
    entry = entry_for(path, indexed=True)
    if entry is None:
        return []
    if entry.manifest is not None and entry.manifest.toc.tables:
        return [table.name for table in entry.manifest.toc.tables]
    try:
        data = show_data(entry)
    except (PgBackupError, OSError):
        return []
    return [name for name, _rows in contents_tables(entry, data)]


class TocTables(Vertical):
    """A label and a SelectionList of table names; hidden while there is nothing to pick."""

    DEFAULT_CSS = """
    TocTables { height: auto; margin-top: 1; display: none; }
    TocTables.-shown { display: block; }
    TocTables Label { color: $text-muted; }
    TocTables SelectionList { height: auto; max-height: 6; }
    """

    NONE_CHECKED = "Tables (none checked: the whole archive)"

    def compose(self) -> ComposeResult:
        yield Label(self.NONE_CHECKED, id="toc-tables-label")
        yield CheckList(id="toc-tables-list")

    @on(SelectionList.SelectedChanged)
    def _say_what_is_checked(self) -> None:
        """The label follows the checks: on screen, a checked and an unchecked line differ in shade only."""
        count = len(self.query_one(SelectionList).selected)
        self.query_one("#toc-tables-label", Label).update(
            f"Tables ({count} checked: only {'this one' if count == 1 else 'these'})" if count else self.NONE_CHECKED)

    def set_tables(self, names: list[str]) -> None:
        """Offer these tables, none checked; hide the picker when there are none."""
        picker = self.query_one(SelectionList)
        picker.clear_options()
        picker.add_options(name_options(names))
        # Options added to a cleared list come without a highlight: space on the focused list did
        # nothing and no line showed where it would act until an arrow key was pressed.
        picker.highlighted = 0 if names else None
        self.set_class(bool(names), "-shown")
        self._say_what_is_checked()  # clear_options posts no SelectedChanged

    @property
    def chosen(self) -> tuple[QualifiedName, ...]:
        """The checked tables, in the order they were checked."""
        picker: SelectionList[str] = self.query_one(SelectionList)
        return tuple(parse_qualified_name(name) for name in picker.selected)
