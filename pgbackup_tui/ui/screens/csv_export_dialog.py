"""CSV export of a table selection: schema.sql + one CSV per table into one new folder (`csv export`)."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from ...core import paths
from ...core.connect import Target
from ...core.csv_plans import CsvExportPlan
from ...core.errors import UsageError
from ...core.identifiers import QualifiedName
from ...core.plans import safe_path_part, utc_stamp
from .plan_dialog import PlanDialog
from ..plain_text import plain

NAMES_SHOWN = 4


def default_csv_folder(server: str, dbname: str, stamp: str) -> Path:
    """backups/<server>/<db>/<stamp>.csv: beside the database's backups, where the Backups tab finds it."""
    return paths.backups_dir() / safe_path_part(server) / safe_path_part(dbname) / f"{stamp}.csv"


class CsvExportDialog(PlanDialog[CsvExportPlan]):
    """The tables and the folder; dismisses with the CsvExportPlan (Enter / Start) or None (Escape)."""

    DEFAULT_CSS = """
    CsvExportDialog { align: center middle; }
    CsvExportDialog > #csv-export-box {
        width: 100%; max-width: 100; height: auto; max-height: 100%; overflow-y: auto; padding: 0 1;
        border: thick $primary; border-title-color: $text; background: $surface;
    }
    CsvExportDialog .row { height: 1; margin-top: 1; }
    CsvExportDialog .field-label { width: auto; padding-right: 1; color: $text-muted; }
    CsvExportDialog #csv-output { width: 1fr; }
    CsvExportDialog #csv-tables, CsvExportDialog #csv-export-summary { height: auto; margin-top: 1; }
    CsvExportDialog #csv-export-summary { color: $text-accent; }
    CsvExportDialog #csv-export-error { height: auto; color: $error; }
    CsvExportDialog #csv-export-buttons { height: 1; margin-top: 1; align-horizontal: right; }
    CsvExportDialog #csv-export-buttons Button { margin-left: 2; }
    """

    BINDINGS = [
        Binding("enter", "start", "Start", id="csv_export_dialog.start", priority=True),
        Binding("escape", "cancel", "Cancel", id="csv_export_dialog.cancel"),
    ]

    def __init__(self, target: Target, dbname: str, tables: tuple[QualifiedName, ...],
                 stamp: str | None = None) -> None:
        super().__init__()
        self.target = target
        self.dbname = dbname
        self.tables = tables
        self.stamp = stamp or utc_stamp()

    def compose(self) -> ComposeResult:
        names = ", ".join(str(t) for t in self.tables[:NAMES_SHOWN])
        more = f" and {len(self.tables) - NAMES_SHOWN} more" if len(self.tables) > NAMES_SHOWN else ""
        with Vertical(id="csv-export-box") as box:
            box.border_title = plain(f"CSV export from {self.dbname} on {self.target.label}")
            yield Static(f"{len(self.tables)} table(s): {names}{more}", id="csv-tables", markup=False)
            with Horizontal(classes="row"):
                yield Label("Folder", classes="field-label")
                yield Input(value=str(default_csv_folder(self.target.label, self.dbname, self.stamp)), compact=True,
                            id="csv-output")
            yield Static("schema.sql (what the tables need, as a selection dump keeps it), schema-post.sql "
                         "(indexes, constraints) and one CSV per table with a header, in one snapshot",
                         id="csv-export-summary", markup=False)
            yield Static("", id="csv-export-error", markup=False)
            with Horizontal(id="csv-export-buttons"):
                yield Button("Start", variant="primary", compact=True, id="csv-export-start")
                yield Button("Cancel", compact=True, id="csv-export-cancel")

    def on_mount(self) -> None:
        self.query_one("#csv-output", Input).focus()
        self._refresh()

    def build_plan(self) -> CsvExportPlan:
        output = Path(self.query_one("#csv-output", Input).value.strip()).expanduser().absolute()
        return CsvExportPlan(target=self.target, dbname=self.dbname, output=output, tables=self.tables)

    def _problem(self) -> str | None:
        if not self.query_one("#csv-output", Input).value.strip():
            return "type the folder to create"
        try:
            self.build_plan().validate()
        except UsageError as exc:
            return str(exc)
        return None

    @on(Input.Changed)
    def _changed(self) -> None:
        self._refresh()

    def _refresh(self) -> None:
        problem = self._problem()
        self.show_problem(problem, "csv-export")

    @property
    def can_start(self) -> bool:
        return self._problem() is None

    def action_start(self) -> None:
        if self._problem() is None:
            self.dismiss(self.build_plan())
