"""The backup dialog: pg_dump options and a live preview of the exact command that will run.

The preview is built by the same functions the job uses (`DumpPlan.validate`, `dump_argv`), so
what the user reads is what runs. Two things in it need the server: which pg_dump fits its
version, and, for a table selection, which relations are left out (`--exclude-table`). Both are
worked out once, in a thread worker, when the dialog opens; every later change of an option
only rebuilds the argv, which is pure and instant.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import psycopg
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, Select, Static, TextArea
from textual.worker import Worker, WorkerState

from ...core import paths
from .plan_dialog import PlanDialog
from ...core.connect import Target, connect
from ...core.defaults import fast_compression
from ...core.errors import PgBackupError, UsageError
from ...core.identifiers import QualifiedName
from ...core.pgtools import ClientTools, find_client_tools
from ...core.plans import (
    FORMAT_EXTENSION,
    FORMATS,
    DumpPlan,
    default_output_path,
    dump_argv,
    partial_path,
    safe_path_part,
    utc_stamp,
)
from ...core.selection import resolve_selection
from ..widgets.option_box import OptionBox

WORKING = "working out the exact command…"
# Formats whose archives pg_dump can compress, and the one it can write in parallel.
COMPRESSIBLE_FORMATS = ("custom", "directory")
PARALLEL_FORMAT = "directory"
NAMES_SHOWN = 3  # tables named in the summary line; more are counted


def multiline_command(argv: list[str]) -> str:
    """The argv as a shell command, one argument per line with `\\` continuations.

    Same quoting as plans.shell_preview (shlex), so it pastes into a shell as is; one argument
    per line because a table selection can carry dozens of --exclude-table arguments.
    """
    return " \\\n    ".join(shlex.quote(arg) for arg in argv)


def describe_selection(dbname: str, tables: tuple[QualifiedName, ...]) -> str:
    """'whole database shop' or '2 tables selected in shop: public.a, public.b'."""
    if not tables:
        return f"whole database {dbname}"
    noun = "table" if len(tables) == 1 else "tables"
    names = ", ".join(str(name) for name in tables[:NAMES_SHOWN])
    more = f" and {len(tables) - NAMES_SHOWN} more" if len(tables) > NAMES_SHOWN else ""
    return f"{len(tables)} {noun} selected in {dbname}: {names}{more}"


class BackupDialog(PlanDialog[DumpPlan]):
    """Options for one pg_dump; dismisses with the DumpPlan (Enter / Start) or None (Escape)."""

    DEFAULT_CSS = """
    BackupDialog {
        align: center middle;
    }
    BackupDialog > #backup-dialog {
        width: 100%;
        max-width: 110;
        height: 100%;
        max-height: 34;
        padding: 0 1;
        border: thick $primary;
        border-title-color: $text;
        background: $surface;
    }
    BackupDialog .row {
        height: 1;
        margin-top: 1;
    }
    BackupDialog .field-label {
        width: auto;
        padding-right: 1;
        color: $text-muted;
    }
    BackupDialog .gap {
        margin-left: 2;
    }
    BackupDialog #format {
        width: 16;
    }
    BackupDialog #compress {
        width: 9;
    }
    BackupDialog #jobs {
        width: 5;
    }
    BackupDialog #output-folder {
        width: 1fr;
    }
    BackupDialog Checkbox {
        margin-right: 2;
    }
    BackupDialog #backup-selection {
        color: $text-accent;
    }
    BackupDialog #command-title {
        margin-top: 1;
        color: $text-muted;
    }
    BackupDialog #command-preview {
        height: 1fr;
        min-height: 3;
        border: round $primary-muted;
    }
    BackupDialog #backup-error {
        color: $error;
        height: auto;
        max-height: 3;
    }
    BackupDialog #backup-buttons {
        height: 1;
        align-horizontal: right;
    }
    BackupDialog #backup-buttons Button {
        margin-left: 2;
    }
    """

    BINDINGS = [
        # Priority, so that Enter starts from any field; check_action lets it through to an
        # open drop-down and to a focused button (Enter on "Cancel" must cancel).
        Binding("enter", "start", "Start", id="backup_dialog.start", priority=True),
        Binding("escape", "cancel", "Cancel", id="backup_dialog.cancel"),
    ]

    class CommandResolved(Message):
        """The worker found the client tools and (for a selection) the relations left out."""

        def __init__(self, tools: ClientTools, exclude: tuple[QualifiedName | str, ...]) -> None:
            super().__init__()
            self.tools = tools
            self.exclude = exclude

    class CommandFailed(Message):
        """The worker could not work the command out; `error` is one line for the user."""

        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self, target: Target, server_major: int, dbname: str,
                 tables: tuple[QualifiedName, ...] = (), *, stamp: str | None = None, note: str | None = None) -> None:
        """`stamp` fixes the timestamp in previewed file names (for snapshot tests: no clock);
        `note` follows the selection line (e.g. that checks elsewhere are not in this backup)."""
        super().__init__()
        self.note = note
        self.stamp = stamp
        self.target = target
        self.server_major = server_major
        self.dbname = dbname
        self.tables = tuple(tables)
        self.default_folder = default_output_path(
            paths.backups_dir(), target.label, dbname, "custom", utc_stamp()).parent
        self._tools: ClientTools | None = None
        self._exclude: tuple[QualifiedName | str, ...] = ()
        self._resolve_error: str | None = None
        self._plan_error: str | None = None

    # -- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Vertical(id="backup-dialog") as dialog:
            dialog.border_title = f"Back up {self.dbname} on {self.target.label}"
            selection = describe_selection(self.dbname, self.tables) + (f" ({self.note})" if self.note else "")
            yield Static(selection, id="backup-selection", markup=False)
            with Horizontal(classes="row"):
                yield Label("Format", classes="field-label")
                yield Select([(fmt, fmt) for fmt in FORMATS], value="custom", allow_blank=False,
                             compact=True, id="format")
                yield Label("Compression", classes="field-label gap")
                yield Input(placeholder="default", restrict=r"[0-9]*", max_length=1, compact=True,
                            id="compress", tooltip="0 (none) to 9 (smallest); empty: pg_dump's default")
                yield Label("Jobs", classes="field-label gap")
                yield Input(value="1", restrict=r"[0-9]*", max_length=2, compact=True, id="jobs",
                            disabled=True, tooltip="parallel pg_dump workers (directory format only)")
            with Horizontal(classes="row"):
                yield OptionBox("schema only", compact=True, id="schema-only")
                yield OptionBox("data only", compact=True, id="data-only")
                yield OptionBox("no owner", compact=True, id="no-owner")
                yield OptionBox("no privileges", compact=True, id="no-privileges")
            with Horizontal(classes="row"):
                yield Label("Output folder", classes="field-label")
                yield Input(value=str(self.default_folder), compact=True, id="output-folder")
            yield Static("Command, as it will run (file stamped at start; no password in it):",
                         id="command-title", markup=False)
            yield TextArea(WORKING, read_only=True, soft_wrap=True, show_cursor=False, id="command-preview")
            yield Static("", id="backup-error", markup=False)
            with Horizontal(id="backup-buttons"):
                yield Button("Start", variant="primary", compact=True, disabled=True, id="backup-start")
                yield Button("Cancel", compact=True, id="backup-cancel")

    def on_mount(self) -> None:
        self.query_one("#format", Select).focus()
        self._resolve_command()
        self._refresh()

    # -- the command ---------------------------------------------------------------------------
    @work(thread=True, exit_on_error=False, group="backup-dialog", description="working out the pg_dump command")
    def _resolve_command(self) -> None:
        """Blocking lookups: pg_dump --version, and the relations a selection leaves out."""
        try:
            tools = find_client_tools(self.server_major, self.target.bin_dir, label=f"server '{self.target.label}'")
            exclude: tuple[QualifiedName | str, ...] = ()  # names, or patterns covering many (core/exclusion.py)
            if self.tables:
                with connect(self.target, self.dbname) as conn:
                    exclude = tuple(resolve_selection(conn, list(self.tables), self.dbname).exclude)
        except PgBackupError as exc:
            self.post_message(self.CommandFailed(str(exc)))
            return
        except psycopg.Error as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            self.post_message(self.CommandFailed(f"server '{self.target.label}': {first_line}"))
            return
        self.post_message(self.CommandResolved(tools, exclude))

    @on(CommandResolved)
    def _command_resolved(self, message: CommandResolved) -> None:
        self._tools, self._exclude = message.tools, message.exclude
        self._refresh()

    @on(CommandFailed)
    def _command_failed(self, message: CommandFailed) -> None:
        self._resolve_error = message.error
        self._refresh()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # A bug in the worker: say so here; the event bubbles on to the app's error dialog.
        if event.worker.group == "backup-dialog" and event.state == WorkerState.ERROR:
            self._resolve_error = f"could not work out the command: {event.worker.error!r}"
            self._refresh()

    # -- reading the form ----------------------------------------------------------------------
    @property
    def selected_format(self) -> str:
        return str(self.query_one("#format", Select).value)

    def build_plan(self, *, stamp: str | None = None) -> DumpPlan:
        """The plan the form describes (not validated). `stamp` names a custom-folder output."""
        fmt = self.selected_format
        compress_text = self.query_one("#compress", Input).value.strip()
        jobs_text = self.query_one("#jobs", Input).value.strip()
        return DumpPlan(
            target=self.target,
            dbname=self.dbname,
            format=fmt,  # type: ignore[arg-type]  # one of FORMATS: the Select offers nothing else
            tables=self.tables,
            jobs=int(jobs_text) if jobs_text else 1,
            compress=int(compress_text) if compress_text else self._default_compress(fmt),
            schema_only=self.query_one("#schema-only", Checkbox).value,
            data_only=self.query_one("#data-only", Checkbox).value,
            no_owner=self.query_one("#no-owner", Checkbox).value,
            no_privileges=self.query_one("#no-privileges", Checkbox).value,
            output=self._output_path(fmt, stamp or utc_stamp()),
        )

    def _default_compress(self, fmt: str) -> int | str | None:
        """An empty field: the measured default the job would choose (core/defaults.py), so that the
        preview shows it; before the tools are known, the job chooses."""
        if self._tools is None or fmt not in ("custom", "directory"):
            return None
        return fast_compression(self._tools)

    def _output_path(self, fmt: str, stamp: str) -> Path | None:
        """None for the default folder (the job then picks a unique name in it)."""
        text = self.query_one("#output-folder", Input).value.strip()
        if not text:
            return None
        folder = Path(text).expanduser()
        if folder == self.default_folder:
            return None
        return folder / f"{safe_path_part(self.dbname)}-{stamp}{FORMAT_EXTENSION[fmt]}"

    def _preview_file(self, plan: DumpPlan) -> tuple[str, Path]:
        """(format pg_dump runs with, the file it writes). Mirrors DumpJob: it writes NAME.partial,
        and a plain-format selection is dumped as custom first, then filtered into SQL."""
        final = plan.output or default_output_path(
            paths.backups_dir(), self.target.label, self.dbname, plan.format, self.stamp or utc_stamp())
        if plan.is_selection and plan.format == "plain":
            return "custom", final.with_name(f".{final.name}.selection.dump.partial")
        return plan.format, partial_path(final)

    # -- keeping the form consistent -------------------------------------------------------------
    @on(Select.Changed, "#format")
    def _format_changed(self) -> None:
        # A field that does not apply to the format is disabled, unless it holds a value that
        # makes the plan invalid: then it stays editable and the error line says why.
        fmt = self.selected_format
        compress = self.query_one("#compress", Input)
        compress.disabled = fmt not in COMPRESSIBLE_FORMATS and not compress.value.strip()
        jobs = self.query_one("#jobs", Input)
        jobs.disabled = fmt != PARALLEL_FORMAT and jobs.value.strip() in ("", "1")
        self._refresh()

    @on(Checkbox.Changed, "#schema-only, #data-only")
    def _exclusive_checkbox_changed(self, event: Checkbox.Changed) -> None:
        # schema-only and data-only exclude each other: ticking one unticks the other.
        if event.value:
            other = "#data-only" if event.checkbox.id == "schema-only" else "#schema-only"
            self.query_one(other, Checkbox).value = False
        self._refresh()

    @on(Checkbox.Changed, "#no-owner, #no-privileges")
    @on(Input.Changed)
    def _option_changed(self) -> None:
        self._refresh()

    def _refresh(self) -> None:
        """Rebuild the preview and the error line from the form; enable Start when it is valid."""
        preview = self.query_one("#command-preview", TextArea)
        self._plan_error = None
        try:
            plan = self.build_plan(stamp=self.stamp)
            plan.validate()
        except UsageError as exc:
            plan, self._plan_error = None, str(exc)
        if self._resolve_error is not None:
            text = "(no command: see the error below)"
        elif self._tools is None:
            text = WORKING
        elif plan is None:
            text = "(no command until the options fit together)"
        else:
            fmt, file = self._preview_file(plan)
            text = multiline_command(dump_argv(plan, self._tools, file, fmt=fmt, exclude_relations=self._exclude))
        if preview.text != text:
            preview.load_text(text)
            # TextArea repaints on load_text only when its height changes: a new --format or
            # folder (same number of lines) stayed stale on screen until the next resize.
            preview.refresh()
        error = self._resolve_error or self._plan_error or ""
        error_line = self.query_one("#backup-error", Static)
        error_line.update(error)
        error_line.display = bool(error)
        self.query_one("#backup-start", Button).disabled = not self.can_start
        self.refresh_bindings()

    @property
    def can_start(self) -> bool:
        """True once the command is worked out and the options fit together."""
        return self._tools is not None and self._resolve_error is None and self._plan_error is None

    # -- actions -----------------------------------------------------------------------------
    def action_start(self) -> None:
        if not self.can_start:
            return
        plan = self.build_plan()
        plan.validate()
        self.dismiss(plan)
