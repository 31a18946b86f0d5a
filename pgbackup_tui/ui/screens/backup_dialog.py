"""The backup dialog: pg_dump options and a live preview of the exact command that will run.

The preview is built by the same functions the job uses (`DumpPlan.validate`, `dump_argv`), so
what the user reads is what runs. Two things in it need the server: which pg_dump fits its
version, and, for a table selection, which relations are left out (`--exclude-table`). Both are
worked out once, in a thread worker, when the dialog opens (with the choices fast / small /
custom and their measured effect, ui/dump_choices.py); every later change of an option only
rebuilds the argv, which is pure and instant.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from ...core.client_ssl import prefer_ssl
from ...core.connect import Target, connect
from ...core.errors import PgBackupError, UsageError
from ...core.identifiers import QualifiedName
from ...core.output_names import dump_run_target
from ...core.pgtools import ClientTools, find_client_tools
from ...core.plans import (
    FORMAT_EXTENSION,
    FORMATS,
    DumpPlan,
    default_output_path,
    dump_argv,
    safe_path_part,
    utc_stamp,
)
from ...core.selection import resolve_selection
from ..breakpoints import WIDTH_CLASSES
from ..dump_choices import (
    CHOICES,
    COMPRESS_HELP,
    COMPRESSIBLE_FORMATS,
    PARALLEL_FORMAT,
    JOBS_HELP,
    CUSTOM,
    Choices,
    compress_problem,
    describe_selection,
    effect_text,
    matching_choice,
    multiline_command,
    preset_fields,
    read_compress,
    read_jobs,
    resolve_choices,
    server_connections,
)
from ..widgets.option_box import OptionBox
from ..plain_text import plain

__all__ = ["BackupDialog", "describe_selection", "multiline_command"]

WORKING = "working out the exact command…"


class BackupDialog(PlanDialog[DumpPlan]):
    """Options for one pg_dump; dismisses with the DumpPlan (Enter / Start) or None (Escape)."""

    CSS_PATH = "backup_dialog.tcss"

    HORIZONTAL_BREAKPOINTS = WIDTH_CLASSES  # its own: its narrow layout (backup_dialog.tcss), whatever app shows it
    BINDINGS = [
        # Priority, so that Enter starts from any field; check_action lets it through to an
        # open drop-down and to a focused button (Enter on "Cancel" must cancel).
        Binding("enter", "start", "Start", id="backup_dialog.start", priority=True),
        Binding("escape", "cancel", "Cancel", id="backup_dialog.cancel"),
    ]

    @dataclass
    class CommandResolved(Message):
        """The worker found the client tools, (for a selection) the relations left out, the choices."""

        tools: ClientTools
        exclude: tuple[QualifiedName | str, ...]
        exclude_data: tuple[QualifiedName, ...]
        choices: Choices

    @dataclass
    class CommandFailed(Message):
        """The worker could not work the command out; `error` is one line for the user."""

        error: str

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
        self._exclude_data: tuple[QualifiedName, ...] = ()  # parents by INHERITS: definition only
        self._choices: Choices | None = None
        self._filled_compress = ""  # what the last preset put in the compression field
        self._resolve_error: str | None = None
        self._plan_error: str | None = None

    # -- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Vertical(id="backup-dialog") as dialog:
            dialog.border_title = plain(f"Back up {self.dbname} on {self.target.label}")
            selection = describe_selection(self.dbname, self.tables) + (f" ({self.note})" if self.note else "")
            yield Static(selection, id="backup-selection", markup=False)
            with Horizontal(classes="row", id="preset-row"):
                yield Label("Choice", classes="field-label")
                yield Select([(name, name) for name in CHOICES], value="fast", allow_blank=False, compact=True,
                             id="preset", tooltip="fast and small: measured defaults; custom: your own options")
                yield Static(effect_text("fast", None), id="preset-effect", markup=False)
            with Horizontal(classes="row", id="format-row"):
                yield Label("Format", classes="field-label")
                yield Select([(fmt, fmt) for fmt in FORMATS], value="custom", allow_blank=False,
                             compact=True, id="format")
                yield Label("Compression", classes="field-label gap")
                yield Input(placeholder="default", restrict=r"[0-9a-zA-Z:]*", max_length=8, compact=True,
                            id="compress", tooltip=COMPRESS_HELP)
                yield Label("Jobs", classes="field-label gap")
                yield Input(placeholder="auto", restrict=r"[0-9]*", max_length=2, compact=True, id="jobs",
                            disabled=True, tooltip=JOBS_HELP)
            with Horizontal(classes="row", id="option-row"):
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
            # Docked: on a short terminal the command's box gives way, never the reason Start is
            # off nor the buttons (at 60x20 they were below the dialog's edge).
            with Vertical(id="backup-footer"):
                yield Static("", id="backup-error", markup=False)
                with Horizontal(id="backup-buttons"):
                    yield Button("Start", variant="primary", compact=True, disabled=True, id="backup-start")
                    yield Button("Cancel", compact=True, id="backup-cancel")

    def on_mount(self) -> None:
        self.query_one("#preset", Select).focus()
        self._show_defaults()
        self._resolve_command()
        self._refresh()

    # -- the command ---------------------------------------------------------------------------
    @work(thread=True, exit_on_error=False, group="backup-dialog", description="working out the pg_dump command")
    def _resolve_command(self) -> None:
        """Blocking lookups: pg_dump --version, and the relations a selection leaves out."""
        try:
            label = f"server '{self.target.label}'"
            tools = find_client_tools(self.server_major, self.target.bin_dir, label=label)
            exclude: tuple[QualifiedName | str, ...] = ()  # names, or patterns covering many (core/exclusion.py)
            exclude_data: tuple[QualifiedName, ...] = ()
            if self.tables:
                with connect(self.target, self.dbname) as conn:
                    resolved = resolve_selection(conn, list(self.tables), self.dbname)
                exclude, exclude_data = tuple(resolved.exclude), resolved.exclude_data
            free, ssl_in_use = server_connections(self.target, self.dbname)
            # The pg_dump the job will run: one without SSL is passed over for an SSL server, or refused
            # here rather than after Start (the job's log says which was passed over).
            tools = prefer_ssl(tools, lambda accept: find_client_tools(self.server_major, self.target.bin_dir,
                                                                       label=label, accept=accept),
                               self.target, ssl_in_use, "pg_dump", lambda _said: None)
            choices = resolve_choices(tools, free)
        except PgBackupError as exc:
            self.post_message(self.CommandFailed(str(exc)))
            return
        except psycopg.Error as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            self.post_message(self.CommandFailed(f"server '{self.target.label}': {first_line}"))
            return
        self.post_message(self.CommandResolved(tools, exclude, exclude_data, choices))

    @on(CommandResolved)
    def _command_resolved(self, message: CommandResolved) -> None:
        still_preset = matching_choice(self._fields(), None) is not None
        self._tools, self._exclude, self._choices = message.tools, message.exclude, message.choices
        self._exclude_data = message.exclude_data
        self._show_defaults()
        choice = str(self.query_one("#preset", Select).value)
        if choice != CUSTOM and still_preset:  # the user has not typed their own options meanwhile
            self._apply_preset(choice)
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
        compress_text = self.query_one("#compress", Input).value
        jobs_text = self.query_one("#jobs", Input).value
        return DumpPlan(
            target=self.target,
            dbname=self.dbname,
            format=fmt,  # type: ignore[arg-type]  # one of FORMATS: the Select offers nothing else
            tables=self.tables,
            jobs=read_jobs(jobs_text, fmt, self._choices),
            compress=read_compress(compress_text, fmt, self._choices),
            schema_only=self.query_one("#schema-only", Checkbox).value,
            data_only=self.query_one("#data-only", Checkbox).value,
            no_owner=self.query_one("#no-owner", Checkbox).value,
            no_privileges=self.query_one("#no-privileges", Checkbox).value,
            output=self._output_path(fmt, stamp or utc_stamp()),
        )

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
        """(format pg_dump runs with, the file it writes): the rule DumpJob follows (output_names)."""
        final = plan.output or default_output_path(
            paths.backups_dir(), self.target.label, self.dbname, plan.format, self.stamp or utc_stamp())
        return dump_run_target(plan.format, final, selection=plan.is_selection)

    # -- the choices: fast, small, custom ------------------------------------------------------
    def _fields(self) -> tuple[str, str, str]:
        compress, jobs = (self.query_one(name, Input).value.strip() for name in ("#compress", "#jobs"))
        return self.selected_format, compress, jobs

    def _apply_preset(self, name: str) -> None:
        """Fill format, compression and jobs from a preset (custom leaves them as they are)."""
        if self._choices is None or name not in self._choices.presets or name == CUSTOM:
            return
        fmt, compress, jobs = preset_fields(self._choices.presets[name], self._choices)
        self._filled_compress = compress
        self.query_one("#format", Select).value = fmt
        self.query_one("#compress", Input).value = compress
        self.query_one("#jobs", Input).value = jobs

    @on(Select.Changed, "#preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        self._apply_preset(str(event.value))
        self._refresh()

    def _follow_fields(self) -> None:
        """Fields edited away from the chosen preset make the choice custom (until one is picked)."""
        preset = self.query_one("#preset", Select)
        if preset.value != CUSTOM and matching_choice(self._fields(), self._choices) != preset.value:
            preset.value = CUSTOM
        effect = effect_text(str(preset.value), self._choices) if self._resolve_error is None else ""
        self.query_one("#preset-effect", Static).update(effect)

    # -- keeping the form consistent -------------------------------------------------------------
    @on(Select.Changed, "#format")
    def _format_changed(self) -> None:
        # A field that does not apply to the format is disabled, unless it holds a value that
        # makes the plan invalid: then it stays editable and the error line says why.
        fmt = self.selected_format
        compress = self.query_one("#compress", Input)
        if fmt not in COMPRESSIBLE_FORMATS and compress.value.strip() == self._filled_compress:
            compress.value = ""  # a preset's compression, not the user's: it goes with the format
        compress.disabled = fmt not in COMPRESSIBLE_FORMATS and not compress.value.strip()
        jobs = self.query_one("#jobs", Input)
        jobs.disabled = fmt != PARALLEL_FORMAT and jobs.value.strip() in ("", "1")
        self._show_defaults()
        self._refresh()

    def _show_defaults(self) -> None:
        """What the empty compression and jobs fields stand for with this format: a tar or plain dump
        read "Compression 1" (the measured default of the formats that compress) and is not compressed;
        anything but a directory dump runs one job."""
        fmt = self.selected_format
        compressed = self._choices.fast_compress if self._choices is not None else "default"
        self.query_one("#compress", Input).placeholder = str(compressed) if fmt in COMPRESSIBLE_FORMATS else "none"
        self.query_one("#jobs", Input).placeholder = "auto" if fmt == PARALLEL_FORMAT else "1"

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
        self._follow_fields()
        preview = self.query_one("#command-preview", TextArea)
        self._plan_error = None
        try:
            plan = self.build_plan(stamp=self.stamp)
            problem = compress_problem(plan.format, plan.compress)
            if problem is not None:
                raise UsageError(problem)
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
            text = multiline_command(dump_argv(plan, self._tools, file, fmt=fmt, exclude_relations=self._exclude,
                                               exclude_data=self._exclude_data))
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
