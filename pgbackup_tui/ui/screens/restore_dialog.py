"""The restore dialog: which archive, into which server and database, with which options.

The archive is identified as soon as its path is typed (format, or one line saying why it is
not an archive), in a thread worker (restore_lookups.py) since the path may be on a slow mount. The database name
defaults to `<source db>_restored`, a new database, so that a restore never touches the
source unless the user picks it. Restoring into an existing database with --clean replaces it
(or, for an archive of some tables, those tables): Start stays disabled until the user has typed
that database's name and the dialog has shown what the restore will drop, worked out by a dry
run of the real job (the archive read through, the target's dependent views looked up).

What the catalog says of the archive is said before Start: a backup whose last verification
failed is warned of (the restore checks it before it creates anything), one changed on disk since
it was made is refused, as the restore would refuse it. With "create new database", the name is
looked up on the target server as it is typed (restore_name_lookup.py, this dialog's base): one
that exists is said on the dialog, and no job starts. Without it nor --clean, the database named is
looked up and into the same way: one that is not there, or not empty, is said, and no job starts.

An archive from a newer pg_dump than the target server runs (the server's version is looked up
when both are known) is refused by the restore unless the user says it was made to fit: the
dialog says so before Start and offers what the CLI's --allow-older-server does ("allow older
server"), which the restore's refusal names.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, TypeAlias

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, Select, SelectionList, Static

from ...core.archive import ArchiveInfo
from .restore_name_lookup import NameLookupDialog
from ...core.connect import Target
from ...core.errors import UsageError
from ...core.identifiers import QualifiedName, one_line
from ...core.plans import RestorePlan
from ...core.restore import RestoreJob
from ...core.restore_data import is_data_only
from ...core.restore_preview import LINE_BREAK_IN_NAME
from ...core.timescale import JOBS_NOTE
from ..restore_text import JOBS_TIP, RESTORED_SUFFIX, restore_summary, suggested_database, table_clean
from ..widgets.option_box import OptionBox
from ..widgets.toc_tables import TocTables
from .. import restore_lookups as lookups
from ..plain_text import plain
from ..breakpoints import WIDTH_CLASSES

__all__ = ["RESTORED_SUFFIX", "RestoreDialog", "restore_summary", "suggested_database"]

class RestoreDialog(NameLookupDialog[RestorePlan]):
    """Options for one restore; dismisses with the RestorePlan (Enter / Start) or None (Escape)."""

    CSS_PATH = "restore_dialog.tcss"
    # Under 30 rows (80x24) the form loses its blank lines and the tables list shrinks, so that the
    # plan (what is created, dropped, restored) shows under the options before Start.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    HORIZONTAL_BREAKPOINTS = WIDTH_CLASSES  # under 69 columns the server drop-down gives the name room

    BINDINGS = [
        # Priority, so that Enter starts from any field; check_action lets it through to an
        # open drop-down and to a focused button.
        Binding("enter", "start", "Start", id="restore_dialog.start", priority=True),
        Binding("escape", "cancel", "Cancel", id="restore_dialog.cancel"),
    ]

    class CleanPreviewed(Message):
        """A dry run of `plan` said what it would do (lines), or why it cannot (error)."""

        def __init__(self, plan: RestorePlan, lines: list[str], error: str | None) -> None:
            super().__init__()
            self.plan = plan
            self.lines = lines
            self.error = error

    # What the workers found (restore_lookups.py); handled below.
    ServerMajorRead: TypeAlias = lookups.ServerMajorRead
    ArchiveChecked: TypeAlias = lookups.ArchiveChecked

    def __init__(self, archive: Path | None, targets: dict[str, Target], default_server: str | None,
                 default_dbname: str | None) -> None:
        super().__init__()
        self.archive = archive
        self.targets = dict(targets)
        self.default_server = default_server if default_server in self.targets else next(iter(self.targets), None)
        self.default_dbname = default_dbname
        self._info: ArchiveInfo | None = None
        self._manifest: dict[str, Any] | None = None
        self._archive_error: str | None = None
        self._suggested_db = suggested_database(None, default_dbname)
        self._preview: RestoreDialog.CleanPreviewed | None = None  # what the last dry run of a --clean said
        self._previewing: RestorePlan | None = None
        self._doubt: tuple[str, str] | None = None  # (catalog status, one line) when the catalog doubts the archive
        self._majors: dict[str, int | None] = {}  # each target server's major, as looked up (None: no answer)

    # -- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Vertical(id="restore-dialog") as dialog:
            dialog.border_title = "Restore a backup"
            with Horizontal(classes="row"):
                yield Label("Archive", classes="field-label")
                yield Input(value=str(self.archive) if self.archive else "", placeholder="path of a backup",
                            compact=True, id="archive")
            yield Static("", id="archive-status", markup=False)
            yield TocTables(id="restore-tables")
            with Horizontal(classes="row"):
                yield Label("Server", classes="field-label")
                yield Select([(label, label) for label in self.targets], value=self.default_server or Select.NULL,
                             allow_blank=self.default_server is None, compact=True, id="target-server")
                yield Label("Database", classes="field-label gap")
                yield Input(value=self._suggested_db, compact=True, id="target-db")
            with Horizontal(classes="row"):
                yield OptionBox("create new database", value=True, compact=True, id="create")
                yield OptionBox("--clean (replace it)", compact=True, disabled=True, id="clean")
            with Horizontal(classes="row"):
                yield Label("Jobs", classes="field-label")
                yield Input(placeholder="auto", restrict=r"[0-9]*", max_length=2, compact=True, id="jobs",
                            tooltip=JOBS_TIP)
                yield OptionBox("single transaction", compact=True, id="single-transaction", classes="gap")
                yield OptionBox("no owner", compact=True, id="no-owner")
            # A row of its own, shown for an archive from a newer pg_dump than the server (_newer_than_server):
            # beside the others it was out of sight in a narrow dialog.
            with Horizontal(classes="row", id="allow-older-row"):
                yield OptionBox("allow older server", compact=True, id="allow-older")
            with Horizontal(classes="row", id="confirm-row"):
                yield Label("", classes="field-label", id="confirm-label")
                yield Input(compact=True, id="confirm-db")
            yield Static("", id="restore-summary", markup=False)
            yield Static("", id="restore-warning", markup=False)
            # Docked: on a short terminal the rest scrolls; why Start is off and the buttons stay in view.
            with Vertical(id="restore-footer"):
                # What the catalog says against the archive: in view when Start is pressed, as the error is.
                yield Static("", id="restore-doubt", markup=False)
                yield Static("", id="restore-error", markup=False)
                with Horizontal(id="restore-buttons"):
                    yield Button("Start", variant="primary", compact=True, disabled=True, id="restore-start")
                    yield Button("Cancel", compact=True, id="restore-cancel")

    def on_mount(self) -> None:
        archive = self.query_one("#archive", Input)
        (self.query_one("#target-db", Input) if archive.value else archive).focus()
        self._check_archive(archive.value)
        self._refresh()

    # -- the archive ---------------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="restore-archive",
          description="identifying the archive")
    def _check_archive(self, path_text: str) -> None:
        self.post_message(lookups.check_archive(path_text))

    @on(ArchiveChecked)
    def _archive_checked(self, message: ArchiveChecked) -> None:
        if message.path_text != self.query_one("#archive", Input).value:
            return  # the user has typed on since; a newer check is on its way
        self._info, self._manifest, self._archive_error = message.info, message.manifest, message.error
        self._doubt = message.doubt
        self.query_one(TocTables).set_tables(message.tables)
        database = self.query_one("#target-db", Input)
        suggestion = suggested_database(message.manifest, self.default_dbname)
        # Follow the archive with the default name until the user types their own.
        if database.value in ("", self._suggested_db) and suggestion:
            self._suggested_db = suggestion
            database.value = suggestion
        if self._data_only:  # it can only load into a database that exists
            self.query_one("#create", Checkbox).value = False
        self._refresh()

    @property
    def _source_name_has_line_break(self) -> bool:
        """The archive's database (its manifest's) has a line break in its name, and pg_restore reads it."""
        source = str((self._manifest or {}).get("database") or "")
        return ("\n" in source or "\r" in source) and self._info is not None and self._info.format != "plain"

    @property
    def _data_only(self) -> bool:
        """The archive holds rows only (dump --data-only, as its manifest or a plain file's first entry
        says): it loads into existing tables."""
        return is_data_only(None, self._manifest or {}, self._info.first_entry_type if self._info else None)

    # -- reading the form ----------------------------------------------------------------------
    @property
    def needs_typed_name(self) -> bool:
        """An existing database whose objects --clean drops: the user must type its name."""
        return not self.query_one("#create", Checkbox).value and self.query_one("#clean", Checkbox).value

    @property
    def typed_name_matches(self) -> bool:
        return self.query_one("#confirm-db", Input).value == self.query_one("#target-db", Input).value.strip()

    def build_plan(self) -> RestorePlan | None:
        """The plan the form describes (not validated); None until archive and server are known."""
        server = self.query_one("#target-server", Select).value
        if self._info is None or server is Select.NULL:
            return None
        jobs_text = self.query_one("#jobs", Input).value.strip()
        return RestorePlan(
            archive=self._info.path, target=self.targets[str(server)],
            dbname=self.query_one("#target-db", Input).value.strip(),
            create=self.query_one("#create", Checkbox).value,
            clean=self.query_one("#clean", Checkbox).value,
            jobs=int(jobs_text) if jobs_text else None,  # chosen at the start, where the archive and target allow
            single_transaction=self.query_one("#single-transaction", Checkbox).value,
            no_owner=self.query_one("#no-owner", Checkbox).value,
            tables=self.picked_tables,
            allow_older_server=self._allow_older_offered and self.query_one("#allow-older", Checkbox).value,
        )

    def _looks_inside(self, plan: RestorePlan) -> bool:
        """A restore "into" an existing database (neither create nor --clean; not a data-only archive,
        which checks its tables instead): it must be there and empty, as the job checks
        (restore_target.check_target), so the dialog looks first (restore_name_lookup.py)."""
        return not plan.create and not plan.clean and not self._data_only

    @property
    def picked_tables(self) -> tuple[QualifiedName, ...]:
        """The tables checked in the TOC (restore --table); empty: the whole archive."""
        return self.query_one(TocTables).chosen

    def _plan_problem(self, plan: RestorePlan | None) -> str | None:
        """Why Start is disabled, in one line (None: it may start)."""
        if plan is None:
            return None if self._info is None else "pick a target server"
        if not plan.dbname:
            return "type the name of the target database"
        try:
            plan.validate(self._info.format if self._info else None)
        except UsageError as exc:
            return str(exc)
        if self._info is not None and self._info.creates_database is not None:
            return (f"written by pg_dump --create: it makes and fills database '{self._info.creates_database}' "
                    "itself, whatever the target; run it with psql, or dump without --create")
        if self._doubt is not None and self._doubt[0] != "failed verification":
            return self._doubt[1]  # changed on disk: the restore would refuse it
        newer = self._newer_than_server(plan)
        if newer is not None and not plan.allow_older_server:
            return newer
        if self._data_only and plan.create:
            return ("a data-only archive holds no table definitions, so it cannot create a database: untick "
                    "“create new database” and name one that has its tables")
        whole_clean = plan.clean and not table_clean(plan, bool((self._manifest or {}).get("restore_list")))
        if self._source_name_has_line_break and (plan.create or whole_clean):
            # The restore reads the database's own SQL from pg_restore --create, which refuses such a
            # name: the job failed at once, after Start, with the dialog's default (create) ticked.
            return f"{LINE_BREAK_IN_NAME}: untick “create new database”, restore into one of another name made first"
        if self._name_taken(plan):
            return (f"database '{one_line(plan.dbname)}' already exists on {plan.target.label}: type a new name, or "
                    "untick “create new database” and tick --clean to replace it")
        if self._target_missing(plan):
            return (f"database '{one_line(plan.dbname)}' does not exist on {plan.target.label}: tick “create new "
                    "database” to create it, or type the name of one that is there")
        if held := self._target_held(plan):
            return (f"database '{one_line(plan.dbname)}' on {plan.target.label} is not empty ({held}): tick --clean to "
                    "replace it (or, with tables checked, those tables), or restore into a new database")
        if self.needs_typed_name and not self.typed_name_matches:
            return f"--clean replaces what is in '{plan.dbname}': type its name to confirm"
        if plan.clean:
            preview = self._preview_of(plan)
            if preview is None:
                return "working out what --clean will drop…"
            return preview.error
        return None

    def _newer_than_server(self, plan: RestorePlan | None) -> str | None:
        """The line of lookups.newer_than_server for the target picked; None without a plan."""
        if plan is None:
            return None
        major = self._majors.get(str(self.query_one("#target-server", Select).value))
        return lookups.newer_than_server(self._info, major, plan.target.label)

    @property
    def _allow_older_offered(self) -> bool:
        return self.query_one("#allow-older-row").has_class("-offered")

    # -- the target server's version --------------------------------------------------------------
    def _look_up_major(self) -> None:
        """Ask the target server its version, once per server, when the archive says which pg_dump wrote it."""
        server = self.query_one("#target-server", Select).value
        if self._info is None or self._info.dump_major is None or server is Select.NULL or str(server) in self._majors:
            return
        self._majors[str(server)] = None  # asked: one look per server
        self._read_major(str(server), self.targets[str(server)])

    @work(thread=True, exit_on_error=False, group="restore-server-major", description="the target server's version")
    def _read_major(self, server: str, target: Target) -> None:
        self.post_message(lookups.read_server_major(server, target))

    @on(ServerMajorRead)
    def _server_major_read(self, message: ServerMajorRead) -> None:
        self._majors[message.server] = message.major
        self._refresh()

    def _preview_of(self, plan: RestorePlan) -> CleanPreviewed | None:
        preview = self._preview
        return preview if preview is not None and preview.plan == plan else None

    # -- what --clean will drop ------------------------------------------------------------------
    @work(exclusive=True, exit_on_error=False, group="restore-clean-preview", description="dry run of --clean")
    async def _preview_clean(self, plan: RestorePlan) -> None:
        result = await RestoreJob(replace(plan, dry_run=True)).run()
        lines = list(result.details.get("dry_run", []))
        self.post_message(self.CleanPreviewed(plan, lines, None if lines else result.message))

    @on(CleanPreviewed)
    def _clean_previewed(self, message: CleanPreviewed) -> None:
        self._preview = message
        self._previewing = None
        self._refresh()

    # -- keeping the form consistent -------------------------------------------------------------
    @on(Input.Changed, "#archive")
    def _archive_changed(self, event: Input.Changed) -> None:
        self._info, self._manifest, self._archive_error = None, None, None
        self.query_one(TocTables).set_tables([])
        self._check_archive(event.value)
        self._refresh()

    @on(Checkbox.Changed, "#create")
    def _create_changed(self, event: Checkbox.Changed) -> None:
        # --create and --clean exclude each other: a new database has nothing to clean.
        clean = self.query_one("#clean", Checkbox)
        if event.value:
            clean.value = False
        clean.disabled = event.value
        self._refresh()

    @on(Checkbox.Changed, "#clean, #single-transaction, #no-owner, #allow-older")
    @on(Input.Changed, "#target-db, #jobs, #confirm-db")
    @on(Select.Changed, "#target-server")
    @on(SelectionList.SelectedChanged)
    def _option_changed(self) -> None:
        self._refresh()

    def _refresh(self) -> None:
        """Status, confirm row, summary and error line from the form; enable Start when it may."""
        status_text, is_error = lookups.archive_status(self._info, self._manifest, self._archive_error,
                                                       self.query_one("#archive", Input).value, self._data_only)
        status = self.query_one("#archive-status", Static)
        status.update(status_text)
        status.set_class(is_error, "-invalid")

        dbname = self.query_one("#target-db", Input).value.strip()
        self.query_one("#confirm-row").set_class(self.needs_typed_name, "-needed")
        self._look_up_major()
        offered = self._newer_than_server(self.build_plan()) is not None
        self.query_one("#allow-older-row").set_class(offered, "-offered")
        self.query_one("#confirm-label", Label).update(plain(f"Type {dbname} to confirm:"))

        plan = self.build_plan()
        if (plan is not None and plan.clean and self.typed_name_matches and self._preview_of(plan) is None
                and self._previewing != plan and self._info is not None):
            self._previewing = plan
            self._preview_clean(plan)
        problem = self._plan_problem(plan)
        timescale = bool((self._manifest or {}).get("timescaledb"))
        fmt = self._info.format if self._info else None
        selection_archive = bool((self._manifest or {}).get("restore_list"))
        summary = (restore_summary(plan, fmt, timescale=timescale, selection_archive=selection_archive,
                                   data_only=self._data_only) if plan is not None and fmt and dbname else "")
        preview = self._preview_of(plan) if plan is not None else None
        if preview is not None and preview.lines:
            summary = "\n".join(preview.lines[1:])  # the first line only says the archive reads
        self.query_one("#restore-summary", Static).update(summary)
        # A slow server (up to connect_timeout) must not look like an Enter that did nothing.
        note = self._checking_note(plan, plan.target.label) if plan is not None and problem is None else ""
        lines = (("#restore-warning", self._source_warning(plan)), ("#restore-doubt", self._doubt_warning),
                 ("#restore-error", problem or note))
        for widget_id, text in lines:
            line = self.query_one(widget_id, Static)
            line.update(text)
            line.display = bool(text)  # no blank rows: 24 lines are few
        self.query_one("#restore-start", Button).disabled = plan is None or problem is not None
        self.refresh_bindings()
        if self._name_to_look_up() is not None:
            self._look_up_name_soon()
        # The footer (docked) may have grown a line over the field being typed in: keep that field in
        # view, above it (QA at 80x24: the confirmation was typed blind).
        if self.focused is not None:
            self.call_after_refresh(self.focused.scroll_visible, animate=False)

    @property
    def _doubt_warning(self) -> str:
        """A failed verification is warned of; a changed archive is the error line's (_plan_problem)."""
        return self._doubt[1] if self._doubt is not None and self._doubt[0] == "failed verification" else ""

    def _source_warning(self, plan: RestorePlan | None) -> str:
        manifest = self._manifest or {}
        if plan is not None and plan.jobs is not None and plan.jobs > 1 and manifest.get("timescaledb"):
            return JOBS_NOTE  # the restore uses one job for a TimescaleDB archive (core/timescale.py)
        if plan is None or plan.create or not manifest:
            return ""
        if manifest.get("server") == plan.target.label and manifest.get("database") == plan.dbname:
            return f"this is the database the backup was taken from ({one_line(plan.dbname)} on {plan.target.label})"
        return ""

