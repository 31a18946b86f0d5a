"""CSV import of a CSV copy (`csv import`): its schema first, then each table's data in its own transaction.

With "create the database", a name that exists on the target server is said on the dialog (looked
up as it is typed, and at Start: restore_name_lookup.py), as the restore dialog does, and no job
starts: the job failed with it, in the CLI's words ("drop --create").
"""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label, Select, SelectionList, Static

from ...core.connect import Target
from ...core.csv_plans import CsvImportPlan
from ...core.errors import UsageError
from ...core.identifiers import parse_qualified_name
from ..widgets.check_list import CheckList, name_options
from ..widgets.option_box import OptionBox
from .restore_name_lookup import NameLookupDialog
from ..plain_text import plain
from ..breakpoints import WIDTH_CLASSES


class CsvImportDialog(NameLookupDialog[CsvImportPlan]):
    """Target server and database, and which tables; dismisses with the CsvImportPlan or None."""

    DEFAULT_CSS = """
    CsvImportDialog { align: center middle; }
    CsvImportDialog > #csv-import-box {
        width: 100%; max-width: 100; height: auto; max-height: 100%; overflow-y: auto; padding: 0 1;
        border: thick $primary; border-title-color: $text; background: $surface;
    }
    CsvImportDialog .row { height: 1; margin-top: 1; }
    CsvImportDialog .field-label { width: auto; padding-right: 1; color: $text-muted; }
    CsvImportDialog #csv-server { width: 30; }
    CsvImportDialog.-narrow #csv-server { width: 1fr; }  /* the database's name kept 6 cells */
    CsvImportDialog #csv-db { width: 1fr; }
    CsvImportDialog #csv-import-tables { height: auto; max-height: 8; margin-top: 1; }
    CsvImportDialog #csv-import-summary { height: auto; margin-top: 1; color: $text-accent; }
    CsvImportDialog #csv-import-error { height: auto; color: $error; }
    CsvImportDialog #csv-import-buttons { height: 1; margin-top: 1; align-horizontal: right; }
    CsvImportDialog #csv-import-buttons Button { margin-left: 2; }
    """

    SERVER_SELECT = "#csv-server"
    HORIZONTAL_BREAKPOINTS = WIDTH_CLASSES  # under 69 columns the server drop-down gives the name room
    BINDINGS = [
        Binding("enter", "start", "Start", id="csv_import_dialog.start", priority=True),
        Binding("escape", "cancel", "Cancel", id="csv_import_dialog.cancel"),
    ]

    def __init__(self, source: Path, tables: list[str], targets: dict[str, Target], default_server: str | None,
                 source_db: str) -> None:
        super().__init__()
        self.source = source
        self.tables = tables
        self.targets = dict(targets)
        self.default_server = default_server if default_server in self.targets else next(iter(self.targets), None)
        self.source_db = source_db

    def compose(self) -> ComposeResult:
        with Vertical(id="csv-import-box") as box:
            box.border_title = plain(f"CSV import of {self.source.name}")
            with Horizontal(classes="row"):
                yield Label("Server", classes="field-label")
                yield Select([(label, label) for label in self.targets], value=self.default_server or Select.NULL,
                             allow_blank=self.default_server is None, compact=True, id="csv-server")
                yield Label("  Database", classes="field-label")
                yield Input(value=f"{self.source_db}_csv" if self.source_db else "", compact=True, id="csv-db")
            with Horizontal(classes="row"):
                yield OptionBox("create the database (it must not exist)", value=True, compact=True, id="csv-create")
            yield CheckList(*name_options(self.tables, checked=True), id="csv-import-tables")
            yield Static("schema.sql through psql in one transaction, then each table's COPY in its own "
                         "transaction (a bad row names its file and line; the tables before it stay), "
                         "then schema-post.sql", id="csv-import-summary", markup=False)
            yield Static("", id="csv-import-error", markup=False)
            with Horizontal(id="csv-import-buttons"):
                yield Button("Start", variant="primary", compact=True, id="csv-import-start")
                yield Button("Cancel", compact=True, id="csv-import-cancel")

    def on_mount(self) -> None:
        self.query_one("#csv-db", Input).focus()
        self._refresh()

    def build_plan(self) -> CsvImportPlan | None:
        server = self.query_one("#csv-server", Select).value
        if server is Select.NULL:
            return None
        picked = list(self.query_one("#csv-import-tables", SelectionList).selected)
        tables = () if len(picked) == len(self.tables) else tuple(parse_qualified_name(t) for t in picked)
        return CsvImportPlan(source=self.source, target=self.targets[str(server)],
                             dbname=self.query_one("#csv-db", Input).value.strip(),
                             create=self.query_one("#csv-create", Checkbox).value, tables=tables)

    def _plan_problem(self, plan: CsvImportPlan | None) -> str | None:
        if plan is None:
            return "pick the target server"
        if not self.query_one("#csv-import-tables", SelectionList).selected:
            return "pick at least one table"
        try:
            plan.validate()
        except UsageError as exc:
            return str(exc)
        if self._name_taken(plan):
            return (f"database '{plan.dbname}' already exists on {plan.target.label}: type a new name, or untick "
                    "“create the database” to import into it")
        return None

    @on(Select.Changed)
    @on(Checkbox.Changed)
    @on(Input.Changed)
    @on(SelectionList.SelectedChanged)
    def _changed(self) -> None:
        self._refresh()

    def _refresh(self) -> None:
        plan = self.build_plan()
        problem = self._plan_problem(plan)
        self.show_problem(problem, "csv-import")
        note = self._checking_note(plan, plan.target.label) if plan is not None and problem is None else ""
        if note:  # Start stays on: it was pressed, the dialog goes on once the name is known to be free
            error = self.query_one("#csv-import-error", Static)
            error.update(note)
            error.display = True
        if self._name_to_look_up() is not None:
            self._look_up_name_soon()
