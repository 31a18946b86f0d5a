"""The Backups tab: the backups on disk for the focused server or database, newest first.

Each row starts with its status badge and file name (what fits 40 columns at 80×24), then the
date, size and what it holds. A cluster set's members follow it, indented. The keys act on the
highlighted row (they are the pane's own bindings, so Delete here deletes a backup, never the
server): enter details, v verify, d drill, x/Delete delete, r restore, i csv import. The pane only
asks: it posts ActionRequested and the app does the work.

A long list shows a page of rows at a time (paged_rows.py): 5,000 backups show the newest 100
and a last row "4,900 more backups (enter)"; enter on it shows the next 100.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable, Static

from ...core.catalog import CatalogEntry
from ...core.formatting import human_bytes
from ...core.identifiers import one_line
from ..bindings import under_a_dialog
from ..backups_view import BADGES, BackupRow
from .one_line_table import OneLineTable
from .paged_rows import MORE_KEY, PagedRows


def backup_date(iso: str) -> str:
    """"2026-11-22 07:32" (UTC) from an ISO timestamp (as written if it does not parse)."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso or "?"
    if moment.utcoffset() is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M")


def row_applies(action: str, row: BackupRow | None) -> bool:
    """Whether a key of the pane applies to `row` (the app asks the core again when it runs)."""
    if row is None:
        return False
    entry = row.entry
    if action == "csv_import":
        return row.csv is not None
    if entry is None:  # a CSV copy: i imports it
        return action == "show"
    if action == "show":
        return True
    if action == "delete":
        return True
    if action == "verify":
        return entry.manifest is not None and entry.status != "missing"
    if action == "drill":
        manifest = entry.manifest
        return (manifest is not None and manifest.kind == "dump" and entry.status != "missing"
                and manifest.format in ("custom", "directory", "tar", "plain"))
    return True


class BackupsPane(Vertical):
    """A heading and a table of backups; its keys ask the app to act on the highlighted row."""

    DEFAULT_CSS = """
    BackupsPane #backups-heading { height: auto; padding: 0 1; color: $text-muted; }
    BackupsPane DataTable { height: 1fr; }
    """

    BINDINGS = [
        Binding("v", "request('verify')", "Verify", tooltip="Verify the backup: checksums, read to the end, tools",
                id="backups.verify"),
        Binding("d", "request('drill')", "Drill", tooltip="Test-restore it into a scratch database, compare rows",
                id="backups.drill"),
        Binding("x", "request('delete')", "Delete", tooltip="Delete the backup (asks first)", id="backups.delete"),
        Binding("delete", "request('delete')", "Delete", show=False, key_display="del",
                tooltip="Delete the backup (asks first)", id="backups.delete-key"),
        # The app's r does the same; the pane's own shows among the keys above, which 80 columns
        # of footer fit (the app's came after ? q a b and was cut).
        Binding("r", "request('restore')", "Restore", tooltip="Restore the backup (the restore dialog)",
                id="backups.restore"),
        Binding("i", "request('csv_import')", "Import", tooltip="Import a CSV copy into a database",
                id="backups.csv-import"),
    ]

    class ActionRequested(Message):
        """The user asked for `action` (show, verify, drill, delete, restore, csv_import) on `row`."""

        def __init__(self, action: str, row: BackupRow) -> None:
            super().__init__()
            self.action = action
            self.row = row

    class RowHighlighted(Message):
        """Another row is highlighted (the app refreshes which keys apply)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.server: str | None = None
        self.dbname: str | None = None
        self._rows: dict[str, BackupRow] = {}
        self._pages: PagedRows[BackupRow] | None = None  # once composed

    def compose(self) -> ComposeResult:
        yield Static("focus a server or database to see its backups", id="backups-heading", markup=False)
        # Its cells drawn as OneLineTable draws them: a page's frame is mostly the rows in view painted.
        table: DataTable[str | Text] = OneLineTable(id="backups-table", cursor_type="row", zebra_stripes=True)
        # Narrow terminals see the first columns: the status and the file name.
        table.add_columns("status", "file", "date (UTC)", "size", "holds")
        self._pages = PagedRows(table, "backups")
        yield table

    def show_rows(self, server: str | None, dbname: str | None, rows: tuple[BackupRow, ...]) -> None:
        """Replace the list with `rows` (of `server`, and of `dbname` if given). The cursor stays on its
        backup, but on the top row it stays on the top row: there it follows the newest backup."""
        self.server, self.dbname = server, dbname
        table = self.query_one(DataTable)
        previous = self.selected_row()
        # The list opens on its newest backup. A dump that ends puts its backup above it; the cursor
        # kept on the older one by name, and r restored that, not the backup just made. A backup
        # the DBA moved down to stays chosen (a new one coming in does not take the cursor).
        if previous is not None and table.cursor_row == 0 and rows and rows[0].key not in self._rows:
            previous = rows[0]
        table.clear()
        self._rows = {row.key: row for row in rows}
        keys = list(self._rows)
        colours = self.app.get_css_variables()

        def add(row: BackupRow) -> None:
            text, colour = BADGES.get(row.status, (row.status, "text"))
            badge = Text(text, style=f"bold {colours.get(colour, '')}".strip())
            name = Text(("  └ " if row.member else "") + one_line(row.name))
            size = human_bytes(row.size_bytes) if row.size_bytes is not None else "-"
            # one_line: a table named "line<LF>break" in a selection showed as `public."line`.
            table.add_row(badge, name, backup_date(row.created_at), size, Text(one_line(row.holds)), key=row.key)

        kept = keys.index(previous.key) if previous is not None and previous.key in self._rows else -1
        assert self._pages is not None
        self._pages.show(rows, add, at_least=kept)
        if kept >= 0:
            table.move_cursor(row=kept)
        self.query_one("#backups-heading", Static).update(self._heading(rows))

    def _heading(self, rows: Sequence[BackupRow]) -> str:
        if self.server is None:
            return "focus a server or database to see its backups"
        scope = f"{self.dbname} on {self.server}" if self.dbname else self.server
        # A set's members are rows under it, not backups of their own (one set of 10 databases was
        # "11 backups of demo").
        backups = [row for row in rows if not row.member]
        if not backups:
            return f"no backups of {scope} yet (b backs up)"
        # Listed with every server, the backups of none in the config are counted apart (each
        # row says where it is from): "2 backups of shop on prod + 1 from elsewhere".
        elsewhere = sum(1 for row in backups if row.other_server is not None)
        own = len(backups) - elsewhere
        text = f"{own} backup{'s' if own != 1 else ''} of {scope}"
        return text + (f" + {elsewhere} from elsewhere" if elsewhere else "") + "; enter: details"

    @property
    def rows(self) -> list[BackupRow]:
        """The rows listed, in order (the last ones may still be on their way into the table)."""
        return list(self._rows.values())

    @property
    def shown(self) -> int:
        """How many of the rows are in the table (the others behind its last row, a page at a time)."""
        return self._pages.shown if self._pages is not None else 0

    def selected_entry(self) -> CatalogEntry | None:
        """The highlighted backup's catalog entry (None for a CSV copy or an empty list)."""
        row = self.selected_row()
        return row.entry if row is not None else None

    def selected_row(self) -> BackupRow | None:
        """The highlighted row, or None when the list is empty."""
        table = self.query_one(DataTable)
        if not self._rows or table.cursor_row < 0 or table.cursor_row >= table.row_count:
            return None
        row_key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        return self._rows.get(str(row_key.value))

    def select_path(self, key: str) -> bool:
        """Move the cursor to the row of this path (str), showing its page; False when it is not listed."""
        if key not in self._rows or self._pages is None:
            return False
        self._pages.reveal(list(self._rows).index(key))
        table = self.query_one(DataTable)
        table.move_cursor(row=table.get_row_index(key))
        return True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if under_a_dialog(self):
            return False  # the dialog takes these keys: not in the footer left in view under it
        if action == "request" and parameters:
            return row_applies(str(parameters[0]), self.selected_row()) or None
        return True

    def action_request(self, action: str) -> None:
        row = self.selected_row()
        if row is not None and row_applies(action, row):
            self.post_message(self.ActionRequested(action, row))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value == MORE_KEY and self._pages is not None:
            self._pages.next_page()
        else:
            self.action_request("show")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.refresh_bindings()
        self.post_message(self.RowHighlighted())
