"""The Backups tab: the backups on disk for the focused server or database, newest first."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Static

from ...core.catalog import BackupEntry
from ...core.formatting import human_bytes


def backup_date(entry: BackupEntry) -> str:
    """"2026-11-22 07:32" (UTC) from the manifest's ISO timestamp (as written if it does not parse)."""
    try:
        moment = datetime.fromisoformat(entry.created_at)
    except ValueError:
        return entry.created_at or "?"
    if moment.utcoffset() is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M")


def backup_contents(entry: BackupEntry) -> str:
    """What a backup holds: "whole database", "2 tables", "schemas a, b"."""
    selection = entry.manifest.get("selection") or {}
    tables = selection.get("tables") or []
    schemas = selection.get("schemas") or []
    if tables:
        return ", ".join(tables) if len(tables) <= 2 else f"{len(tables)} tables"
    if schemas:
        return "schemas " + ", ".join(schemas)
    return "whole database"


class BackupsPane(Vertical):
    """A heading and a table of backups; the app restores the highlighted one on `r`."""

    DEFAULT_CSS = """
    BackupsPane #backups-heading { height: auto; padding: 0 1; color: $text-muted; }
    BackupsPane DataTable { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.server: str | None = None
        self.dbname: str | None = None
        self._entries: dict[str, BackupEntry] = {}

    def compose(self) -> ComposeResult:
        yield Static("focus a server or database to see its backups", id="backups-heading", markup=False)
        table: DataTable[str | Text] = DataTable(id="backups-table", cursor_type="row", zebra_stripes=True)
        # Narrow terminals see the first columns: when, how big, what is in it.
        table.add_columns("date (UTC)", "size", "contents", "format", "database")
        yield table

    def show_entries(self, server: str | None, dbname: str | None, entries: tuple[BackupEntry, ...]) -> None:
        """Replace the list with `entries` (backups of `server`, and of `dbname` if given)."""
        self.server, self.dbname = server, dbname
        table = self.query_one(DataTable)
        previous = self.selected_entry()
        table.clear()
        self._entries = {}
        for entry in entries:
            key = str(entry.path)
            self._entries[key] = entry
            table.add_row(backup_date(entry), human_bytes(entry.size_bytes), Text(backup_contents(entry)),
                          entry.format, Text(entry.database), key=key)
        if previous is not None and str(previous.path) in self._entries:
            table.move_cursor(row=table.get_row_index(str(previous.path)))
        self.query_one("#backups-heading", Static).update(self._heading(len(entries)))

    def _heading(self, count: int) -> str:
        if self.server is None:
            return "focus a server or database to see its backups"
        scope = f"{self.dbname} on {self.server}" if self.dbname else f"server {self.server}"
        if count == 0:
            return f"no backups of {scope} yet (b backs up)"
        return f"{count} backup{'s' if count != 1 else ''} of {scope} (r restores the highlighted one)"

    def selected_entry(self) -> BackupEntry | None:
        """The highlighted backup, or None when the list is empty."""
        table = self.query_one(DataTable)
        if not self._entries or table.cursor_row < 0 or table.cursor_row >= table.row_count:
            return None
        row_key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        return self._entries.get(str(row_key.value))
