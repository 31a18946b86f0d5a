"""The Details tab: everything we know about the object under the tree's cursor."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from ...core.connect import target_from_profile
from ...core.formatting import human_bytes
from ...core.identifiers import one_line
from ..tree_entries import FAILED, LOADING, ServerEntry, TreeFocus

Rows = list[tuple[str, str]]


def describe_focus(focus: TreeFocus | None) -> tuple[str, Rows]:
    """A title and (label, value) rows for the focused object. Plain text, no markup."""
    if focus is None or focus.server is None:
        text = focus.hint.text if focus is not None and focus.hint is not None else "no server selected"
        return text, []
    if focus.table is not None:
        title, rows = _table_rows(focus)
    elif focus.schema is not None:
        title, rows = _schema_rows(focus)
    elif focus.database is not None:
        title, rows = _database_rows(focus)
    else:
        title, rows = _server_rows(focus.server)
    # Names as the tree shows them: a database "two<LF>lines" made the title "database two" and a
    # line "lines" under it (and a table's "database" row two lines).
    return one_line(title), [(label, one_line(value)) for label, value in rows]


def _server_rows(server: ServerEntry) -> tuple[str, Rows]:
    profile = server.profile
    rows: Rows = [("connects to", target_from_profile(profile).where())]
    if profile.dsn:
        rows.append(("dsn", profile.dsn))
    for key in ("user", "dbname", "sslmode", "service", "bin_dir"):
        value = getattr(profile, key)
        if value:
            rows.append((key.replace("_", " "), str(value)))
    rows += _status_rows(server.status, server.error)
    if server.snapshot is not None:
        info = server.snapshot.info
        rows += [
            ("version", info.version),
            ("connected as", info.current_user + (" (superuser)" if info.is_superuser else "")),
            ("role", "standby (in recovery)" if info.in_recovery else "primary"),
            ("databases", str(len(server.snapshot.databases))),
        ]
    return f"server {server.name}", rows


def _database_rows(focus: TreeFocus) -> tuple[str, Rows]:
    database = focus.database
    assert database is not None and focus.server is not None
    info = database.info
    rows: Rows = [
        ("server", focus.server.name + _version_suffix(focus.server)),
        ("size", human_bytes(info.size_bytes)),
        ("owner", info.owner),
        ("encoding", info.encoding),
    ]
    if not info.allow_connections:
        rows.append(("connections", "not allowed"))
    rows += _status_rows(database.status, database.error)
    snapshot = database.snapshot
    if snapshot is None:
        if database.status not in (LOADING, FAILED) and info.allow_connections:
            rows.append(("contents", "open it (enter) to load schemas, tables and extensions"))
        return f"database {info.name}", rows
    rows += [("schemas", str(len(snapshot.schemas))), ("tables", str(len(snapshot.tables)))]
    extensions = ", ".join(f"{ext.name} {ext.version}" for ext in snapshot.extensions) or "none"
    rows.append(("extensions", extensions))
    return f"database {info.name}", rows


def _schema_rows(focus: TreeFocus) -> tuple[str, Rows]:
    schema = focus.schema
    assert schema is not None and focus.server is not None
    top_level = [t for t in schema.tables if t.parent is None]
    rows: Rows = [
        ("database", f"{schema.dbname} on {focus.server.name}{_version_suffix(focus.server)}"),
        ("owner", schema.info.owner),
        ("tables", str(len(schema.tables))),
        ("size", human_bytes(sum(t.total_bytes for t in top_level))),
        ("rows (estimated)", _estimated_rows(sum(t.estimated_rows for t in top_level),
                                             all(t.rows_known for t in top_level))),
    ]
    return f"schema {schema.info.name}", rows


def _estimated_rows(rows: int, known: bool) -> str:
    """The planner's estimate; a floor when some table was never analyzed (the tree's "≥"). It
    read "0 (never analyzed: at least)" for a table, and a bare "0" for a schema of such tables
    that held rows."""
    return f"{rows:,}" if known else f"at least {rows:,} (never analyzed)"


def _table_rows(focus: TreeFocus) -> tuple[str, Rows]:
    table = focus.table
    assert table is not None and focus.server is not None
    info = table.info
    rows: Rows = [
        ("database", f"{table.dbname} on {focus.server.name}{_version_suffix(focus.server)}"),
        ("kind", ", ".join([info.kind] + (["hypertable"] if info.is_hypertable else []))),
        ("rows (estimated)", _estimated_rows(info.estimated_rows, info.rows_known)),
        ("data", human_bytes(info.data_bytes)),
        ("total with indexes", human_bytes(info.total_bytes)),
        ("owner", info.owner),
    ]
    if info.parent:
        rows.append(("partition of", info.parent))
    return f"{_TITLE_WORD.get(info.kind, 'table')} {info.qualified}", rows


# The Details title's first word for a relation of each kind (inspect.TableInfo.kind).
_TITLE_WORD = {"matview": "materialized view", "foreign": "foreign table", "partitioned": "partitioned table",
               "partition": "partition"}


def _status_rows(status: str, error: str | None) -> Rows:
    if status == LOADING:
        return [("status", "loading…")]
    if status == FAILED and error:
        return [("error", error)]
    return []


def _version_suffix(server: ServerEntry) -> str:
    if server.snapshot is None:
        return ""
    return f" (PostgreSQL {server.snapshot.info.version.split()[0]})"


class DetailsPane(VerticalScroll):
    """A title line and a two-column list of facts."""

    DEFAULT_CSS = """
    DetailsPane { padding: 0 1; }
    DetailsPane #details-title { text-style: bold; color: $text-primary; margin-bottom: 1; }
    DetailsPane > .details-pane--label { color: $text-muted; }
    """
    COMPONENT_CLASSES = {"details-pane--label"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.focus_info: TreeFocus | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="details-title", markup=False)
        yield Static(id="details-body", markup=False)

    def on_mount(self) -> None:
        self.show(None)

    def show(self, focus: TreeFocus | None) -> None:
        """Describe the focused object (None: nothing focused)."""
        self.focus_info = focus
        title, rows = describe_focus(focus)
        label_style = self.get_component_rich_style("details-pane--label", partial=True)
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True, style=label_style)
        grid.add_column(overflow="fold")
        for label, value in rows:
            grid.add_row(Text(label), Text(value))
        self.query_one("#details-title", Static).update(Text(title))
        self.query_one("#details-body", Static).update(grid)
