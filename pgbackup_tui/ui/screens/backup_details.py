"""A backup's details: its manifest in brief, its checks, and its contents from the TOC.

The contents come from `backups show` (commands/backups.py show_data): for a pg_dump archive,
`pg_restore --list` is read in a thread worker (it may take a while on a big directory archive);
the counts by kind and the table list with rows appear when it answers. A cluster set lists its
members; a CSV copy its tables and files.

The Backups tab keeps a summary of each backup (backup_summaries.py): the worker reads the whole
manifest again (its tables with their rows), for this screen only. The table list shows a page
of rows at a time (paged_rows.py): a backup of 10,000 tables opens without freezing the UI.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from ...commands.backups import show_data
from ...core.catalog import CatalogEntry, entry_for
from ...core.catalog_entry import UNRECORDED_DATABASES, WHOLE_CLUSTER
from ...core.errors import PgBackupError
from ...core.formatting import human_bytes
from ...core.toc_contents import contents_text
from ..backups_view import BackupRow
from ..widgets.backups_pane import backup_date
from ..widgets.paged_rows import MORE_KEY, PagedRows
from ..widgets.toc_tables import contents_tables
from ..plain_text import plain


def summary_lines(row: BackupRow) -> list[str]:
    """What the manifest says, one fact a line (no I/O)."""
    size = human_bytes(row.size_bytes) if row.size_bytes is not None else "missing"
    lines = [f"status   {row.status}", f"path     {row.path}", f"holds    {row.holds}",
             f"created  {backup_date(row.created_at)} UTC   size {size}"]
    entry = row.entry
    if row.csv is not None:
        lines.append(f"source   {row.csv.database} on {row.csv.server}")
    if entry is None:
        return lines
    lines.insert(0, f"id       {entry.id}   format {entry.format}")
    manifest = entry.manifest
    if manifest is None:
        if entry.problem:
            lines.append(f"problem  {entry.problem}")
        return lines
    # What it is of, said as it is: "(all databases)" stood for roles alone and for a set of one
    # database too, and an adopted archive's server (none known) was blank: "shop on  (…)".
    databases = entry.databases
    if manifest.kind == "dump":
        of = manifest.database or "?"
    elif databases:
        of = ", ".join(databases) if len(databases) <= 3 else f"{len(databases)} databases"
    else:
        of = UNRECORDED_DATABASES if entry.holds == WHOLE_CLUSTER else f"no database ({entry.holds})"
    lines.append(f"source   {of} on {manifest.server or 'an unknown server (adopted)'} "
                 f"(PostgreSQL {manifest.server_version or '?'}, "
                 f"{manifest.dump_tool} {manifest.pg_dump_version or '?'})")
    # The newest first, each on a line or two (its first problem, or its conclusion: the last
    # check it passed): all its lines joined ran past the summary's height at 80x24, and the
    # newest check, the one the status comes from, was the one cut off.
    for check in reversed(manifest.verifications[-3:]):
        told = check.problems or check.checks[-1:]
        more = len(check.problems or check.checks) - 1
        said = (told[0] if told else "") + (f" (+{more} more: backups show)" if more > 0 else "")
        lines.append(f"{check.kind:<8} {backup_date(check.at)} {'ok' if check.ok else 'FAILED'}: {said}")
    if not manifest.verifications:
        lines.append("checks   none yet (v verifies, d drills)")
    return lines


class BackupDetails(ModalScreen[None]):
    """The details of one backup; Escape closes it."""

    DEFAULT_CSS = """
    BackupDetails { align: center middle; }
    BackupDetails > #details-box {
        width: 100%; max-width: 110; height: 100%; max-height: 40;
        border: thick $primary; border-title-color: $text; background: $surface; padding: 0 1;
    }
    BackupDetails #details-summary { height: auto; max-height: 9; overflow-y: auto; }
    BackupDetails #details-counts { height: auto; color: $text-accent; margin-top: 1; }
    BackupDetails #details-error { height: auto; color: $error; }
    BackupDetails DataTable { height: 1fr; margin-top: 1; }
    """

    BINDINGS = [
        Binding("escape", "close", "Close", id="backup_details.close"),
        Binding("q", "close", "Close", show=False, id="backup_details.close-q"),
    ]

    class ContentsRead(Message):
        """The worker read the backup's contents (show_data), or could not (`error`)."""

        def __init__(self, data: dict[str, Any] | None, error: str | None, entry: CatalogEntry | None = None) -> None:
            super().__init__()
            self.data = data
            self.error = error
            self.entry = entry  # with its whole manifest

    def __init__(self, row: BackupRow) -> None:
        super().__init__()
        self.row = row
        self._pages: PagedRows[tuple[str, int | None]] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="details-box") as box:
            box.border_title = plain(self.row.name)
            box.border_subtitle = "escape closes"
            yield Static("\n".join(summary_lines(self.row)), id="details-summary", markup=False)
            yield Static("reading the contents…", id="details-counts", markup=False)
            yield Static("", id="details-error", markup=False)
            table: DataTable[str | Text] = DataTable(id="details-tables", cursor_type="row", zebra_stripes=True)
            yield table

    def on_mount(self) -> None:
        self.query_one("#details-error").display = False
        table = self.query_one(DataTable)
        row = self.row
        if row.csv is not None:
            table.add_columns("table", "rows", "file")
            files = row.csv.manifest.get("files") or {}
            for item in row.csv.manifest.get("tables") or []:
                facts = files.get(item.get("file"), {}) if isinstance(files, dict) else {}
                table.add_row(Text(str(item.get("qualified"))), str(facts.get("rows", item.get("rows", "?"))),
                              Text(str(item.get("file"))))
            self.query_one("#details-counts", Static).update(f"{table.row_count} tables as CSV, with schema.sql")
        elif row.is_set and row.entry is not None and row.entry.manifest is not None:
            table.add_columns("member database", "size", "file")
            members = row.entry.manifest.extra.get("members")
            for member in members if isinstance(members, list) else []:
                table.add_row(Text(str(member.get("database"))), human_bytes(member.get("bytes")),
                              Text(str(member.get("file"))))
            self.query_one("#details-counts", Static).update(
                f"{table.row_count} databases and {row.entry.manifest.extra.get('globals', 'globals.sql')} (roles, "
                "tablespaces)")
        elif row.entry is not None:
            table.add_columns("table", "rows")
            self._read_contents()
        table.focus()

    @work(thread=True, exit_on_error=False, group="backup-details", description="read the backup's contents")
    def _read_contents(self) -> None:
        summary = self.row.entry
        assert summary is not None
        try:
            entry = entry_for(summary.path, indexed=summary.indexed) or summary  # the whole manifest, now
            data = show_data(entry)
        except (PgBackupError, OSError) as exc:
            self.post_message(self.ContentsRead(None, str(exc)))
            return
        self.post_message(self.ContentsRead(data, None, entry))

    def on_backup_details_contents_read(self, message: ContentsRead) -> None:
        counts_line = self.query_one("#details-counts", Static)
        error = message.error or (message.data or {}).get("toc_error")
        if error:
            line = self.query_one("#details-error", Static)
            line.update(f"contents cannot be read: {error}")
            line.display = True
        if message.data is None:
            counts_line.update("")
            return
        contents = message.data["contents"]
        counts = contents["counts"]
        counts_line.update(contents_text(counts, contents.get("large_objects"))
                           if counts else "no TOC to read (a SQL script): counts are the manifest's")
        table = self.query_one(DataTable)
        entry = message.entry or self.row.entry
        assert entry is not None
        self._pages = PagedRows(table, "tables")
        self._pages.show(contents_tables(entry, message.data),
                         lambda item: table.add_row(Text(item[0]), "?" if item[1] is None else f"{item[1]:,}"))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value == MORE_KEY and self._pages is not None:
            event.stop()
            self._pages.next_page()

    def action_close(self) -> None:
        self.dismiss(None)
