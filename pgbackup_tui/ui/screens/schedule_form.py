"""Add or edit a schedule: name, server, what, when (cron, with its next run shown as you type),
retention, verify / drill, the failure hook and notification URL names.

Validated with core's rules (schedules.validate_schedule) before the form closes; a compression the
schedule's pg_dump lacks is refused too, asked of its server from a worker (schedule_check.py), as
`schedule add` refuses it. Options the form does not show (tables, schemas, jobs...) are kept as
they were: edit them in config.toml or with `schedule add --replace`. Notification URLs are never
typed here: only their names (`pgbackup-tui schedule url NAME` stores a URL in notify.toml).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, tzinfo

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from ...core.defaults import needs_asking
from ...core.errors import ConfigError, PgBackupError
from ...core.schedule_view import clock_text, relative
from ...core.cluster_plans import SET_FORMATS
from ...core.schedules import (MAX_KEEP_DAYS, WHATS, Schedule, compress_text, local_zone, next_runs, read_compress,
                               validate_schedule)
from ..dump_choices import compress_problem
from ..widgets.option_box import OptionBox

FORMATS = ("custom", "directory", "tar", "plain")
# pg_dumpall of the whole cluster, the globals or the roles writes one SQL script: no format to pick
# (one saved was never used), shown as such in the disabled field.
SCRIPT = "sql"
SCRIPT_OPTIONS = [("one SQL script (pg_dumpall)", SCRIPT)]
WHAT_LABELS = {"database": "a database (pg_dump)", "cluster": "whole cluster (pg_dumpall)",
               "globals": "roles and tablespaces", "roles": "roles only", "set": "cluster set"}


class ScheduleForm(ModalScreen[Schedule | None]):
    """Dismisses with a valid Schedule (Save) or None (Cancel / Escape)."""

    DEFAULT_CSS = """
    ScheduleForm { align: center middle; }
    ScheduleForm > #schedule-form {
        width: 84;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    ScheduleForm #schedule-form-title { text-style: bold; color: $text-primary; }
    ScheduleForm #schedule-form-scroll { height: auto; max-height: 16; }
    ScheduleForm #schedule-form-fields {
        grid-size: 2;
        grid-columns: 12 1fr;
        grid-gutter: 0 1;
        height: auto;
    }
    ScheduleForm #schedule-form-fields Label { color: $text-muted; }
    ScheduleForm #schedule-form-fields Input, ScheduleForm #schedule-form-fields Select { width: 1fr; }
    ScheduleForm #schedule-form-checks { height: auto; }
    ScheduleForm #schedule-form-checks Checkbox { width: auto; }
    ScheduleForm #schedule-form-result { height: auto; min-height: 1; }
    ScheduleForm #schedule-form-result.-error { color: $text-error; }
    ScheduleForm #schedule-form-buttons { height: auto; align-horizontal: right; }
    ScheduleForm #schedule-form-buttons Button { margin-left: 1; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="schedule-form.cancel"),
        Binding("ctrl+s", "save", "Save", id="schedule-form.save"),
    ]

    def __init__(self, servers: list[str], existing: Schedule | None = None, *,
                 clock: Callable[[], datetime] | None = None, zone: tzinfo | None = None,
                 server: str | None = None, database: str | None = None,
                 taken: frozenset[str] = frozenset()) -> None:
        """`server`, `database`: where a new schedule starts (the tree's cursor), if anywhere.
        `taken`: the names of the schedules there are (a name of another one is refused here)."""
        super().__init__()
        self.servers = servers
        self.existing = existing
        self.taken = taken
        self.start_server = server if server in servers else servers[0]
        self.start_database = database or ""
        self.clock = clock
        self.zone = zone
        self._format_options: list[tuple[str, str]] = []  # what the format field offers now

    def compose(self) -> ComposeResult:
        s = self.existing
        with Vertical(id="schedule-form"):
            yield Static(f"Edit schedule {s.name}" if s else "Add a schedule", id="schedule-form-title", markup=False)
            with VerticalScroll(id="schedule-form-scroll"), Grid(id="schedule-form-fields"):
                yield Label("Name")
                yield Input(s.name if s else "", placeholder="e.g. nightly", id="schedule-name", compact=True)
                yield Label("Server")
                yield Select([(n, n) for n in self.servers], id="schedule-server", compact=True, allow_blank=False,
                             value=s.server if s and s.server in self.servers else self.start_server)
                yield Label("What")
                yield Select([(WHAT_LABELS[w], w) for w in WHATS], id="schedule-what", compact=True,
                             allow_blank=False, value=s.what if s else "database")
                yield Label("Database")
                yield Input(s.database or "" if s else self.start_database, placeholder="the database to dump",
                            id="schedule-database", compact=True)
                yield Label("Format")
                options, value = self._format_choice(s.what if s else "database")
                self._format_options = options
                yield Select(options, id="schedule-format", compact=True, allow_blank=False, value=value)
                yield Label("Compression")
                yield Input(compress_text(s.compress) if s else "", id="schedule-compress", compact=True,
                            placeholder="dump's measured default; or e.g. zstd:3, lz4, gzip:6, 6, none")
                yield Label("Cron")
                yield Input(s.cron if s else "30 2 * * *", placeholder="minute hour day month weekday",
                            id="schedule-cron", compact=True)
                yield Label("Next run")
                yield Static("", id="schedule-next", markup=False)
                yield Label("Keep last")
                yield Input(_text(s.keep_last if s else 7), placeholder="N newest (empty: no limit)",
                            id="schedule-keep-last", compact=True, type="integer")
                yield Label("Keep days")
                yield Input(_text(s.keep_days if s else None), placeholder="D days (empty: no limit)",
                            id="schedule-keep-days", compact=True, type="integer")
                yield Label("On failure")
                yield Input(s.on_failure or "" if s else "", placeholder="a shell command (optional)",
                            id="schedule-on-failure", compact=True)
                yield Label("Notify")
                yield Input(", ".join(s.notify) if s else "", placeholder="URL names from notify.toml, e.g. ops",
                            id="schedule-notify", compact=True)
            with Horizontal(id="schedule-form-checks"):
                yield OptionBox("keep newest verified", s.keep_verified if s else True, id="schedule-keep-verified",
                               compact=True)
                yield OptionBox("verify", s.verify if s else True, id="schedule-verify", compact=True)
                yield OptionBox("drill", s.drill if s else False, id="schedule-drill", compact=True)
            yield Static("", id="schedule-form-result", markup=False)
            with Horizontal(id="schedule-form-buttons"):
                yield Button("Save", variant="primary", id="schedule-form-save")
                yield Button("Cancel", id="schedule-form-cancel")

    def on_mount(self) -> None:
        self.query_one("#schedule-name", Input).focus()
        self._preview()
        self._what_changed()

    @on(Select.Changed, "#schedule-what")
    def _what_changed(self) -> None:
        """pg_dump's options go with a database's schedule (a cluster set's archives take a
        compression too); pg_dumpall of the whole cluster, globals or roles writes one SQL file."""
        what = str(self.query_one("#schedule-what", Select).value)
        self.query_one("#schedule-compress", Input).disabled = what not in ("database", "set")
        # Read for a database's schedule only (a set names its members itself): left as typed, it
        # looked as if a cluster set of "shop" would be saved.
        self.query_one("#schedule-database", Input).disabled = what != "database"
        fmt = self.query_one("#schedule-format", Select)
        options, value = self._format_choice(what)
        if options != self._format_options:  # another kind's formats: its own, with its value
            self._format_options = options
            fmt.set_options(options)
            fmt.value = value
        fmt.disabled = value == SCRIPT

    def _format_choice(self, what: str) -> tuple[list[tuple[str, str]], str]:
        """The format field's options for `what` and its value: pg_dump's formats for a database
        (its `format`), a set's archives' (its `set_format`), none for pg_dumpall's script."""
        s = self.existing
        if what == "database":
            return [(f, f) for f in FORMATS], s.format if s and s.what == "database" else "custom"
        if what == "set":
            return [(f, f) for f in SET_FORMATS], s.set_format if s and s.what == "set" else "custom"
        return SCRIPT_OPTIONS, SCRIPT

    @on(Input.Changed, "#schedule-cron")
    def _preview(self) -> None:
        """The next run of what is typed, or why it is not a cron expression."""
        shown = self.query_one("#schedule-next", Static)
        now = self.clock() if self.clock else datetime.now().astimezone()
        try:
            zone = self.zone or local_zone()  # a bad PGBACKUP_TUI_CRON_ZONE is said here, as the CLI says it
            nxt = next_runs(self.query_one("#schedule-cron", Input).value, now, 1, zone)[0]
        except PgBackupError as exc:
            shown.update(str(exc).split(": ", 1)[-1])
            return
        shown.update(f"{clock_text(nxt, zone)} ({relative(nxt, now)})")

    def _value(self, field_id: str) -> str:
        return self.query_one(f"#schedule-{field_id}", Input).value.strip()

    def build_schedule(self) -> Schedule:
        """The schedule as filled in; ConfigError naming what is wrong."""
        what = str(self.query_one("#schedule-what", Select).value)
        base = self.existing or Schedule(name="", server="", cron="")
        defaults = Schedule(name="", server="", cron="")
        chosen = str(self.query_one("#schedule-format", Select).value)
        # Each kind's own format only: the others go back to their defaults (not written), so that
        # an old form's `format` saved on a pg_dumpall schedule, never used, is dropped on this save.
        fmt = chosen if what == "database" and chosen in FORMATS else defaults.format
        set_format = chosen if what == "set" and chosen in SET_FORMATS else defaults.set_format
        keep_last, keep_days = (int(text) if (text := self._value(key)) else None for key in ("keep-last", "keep-days"))
        typed = self._value("compress")
        compress = read_compress(typed, "Compression") if typed and what in ("database", "set") else None
        schedule = replace(
            base, name=self._value("name"), server=str(self.query_one("#schedule-server", Select).value),
            what=what, database=(self._value("database") or None) if what == "database" else None,
            format=fmt, set_format=set_format, cron=self._value("cron"),
            keep_verified=self.query_one("#schedule-keep-verified", Checkbox).value,
            verify=self.query_one("#schedule-verify", Checkbox).value,
            drill=self.query_one("#schedule-drill", Checkbox).value,
            on_failure=self._value("on-failure") or None,
            notify=tuple(n.strip() for n in self._value("notify").split(",") if n.strip()), keep_last=keep_last,
            keep_days=keep_days, compress=compress)
        if what != "database" and base.what == "database":  # options of pg_dump do not apply to pg_dumpall
            schedule = replace(schedule, tables=(), schemas=(), exclude_tables=(), schema_only=False,
                               data_only=False, no_owner=False, no_privileges=False, jobs=None)
        if base.what == "set" and what != "set":  # a set's members and databases at a time are its own
            schedule = replace(schedule, databases=(), jobs=None)
        if what == "database" and base.what != "database":  # pg_dump writes no roles
            schedule = replace(schedule, with_role_passwords=False)
        if schedule.what == "database" and schedule.database is None:
            raise ConfigError("Database: name the database to dump")
        if schedule.name in self.taken and schedule.name != base.name:
            # An edit renamed to another schedule's name replaced that schedule, without a word (QA).
            raise ConfigError(f"Name: schedule '{schedule.name}' exists already; give another name")
        problem = compress_problem(schedule.format, schedule.compress) if schedule.what == "database" else None
        if problem is not None:
            raise ConfigError(problem)
        # In the form's words: validate_schedule names config.toml's keys ("keep_last = 0", "drill = true").
        for label, value in (("Keep last", schedule.keep_last), ("Keep days", schedule.keep_days)):
            if value is not None and value < 1:
                raise ConfigError(f"{label}: keep at least 1 (empty: no limit)")
        if schedule.keep_days is not None and schedule.keep_days > MAX_KEEP_DAYS:
            raise ConfigError(f"Keep days: at most {MAX_KEEP_DAYS} (100 years; empty: no limit)")
        if schedule.drill and schedule.what != "database":
            raise ConfigError(f"drill restores one database: a {schedule.what} backup cannot be drilled (tick verify)")
        return validate_schedule(schedule)

    @on(Button.Pressed, "#schedule-form-save")
    @on(Input.Submitted)
    def action_save(self) -> None:
        try:
            schedule = self.build_schedule()
        except ConfigError as exc:
            self._say(str(exc), error=True)
            return
        if needs_asking(schedule.compress):
            # Whether its pg_dump has lz4 / zstd: its server is asked (seconds at most), off the UI thread.
            self._say(f"asking server '{schedule.server}' which pg_dump its runs get, for {schedule.compress}…")
            self._check_compress(schedule)
            return
        self.dismiss(schedule)

    def _say(self, text: str, *, error: bool = False) -> None:
        result = self.query_one("#schedule-form-result", Static)
        result.update(text)
        result.set_class(error, "-error")

    @work(thread=True, exit_on_error=False, exclusive=True, group="schedule-form-check",
          description="compression check")
    def _check_compress(self, schedule: Schedule) -> None:
        from ...core.config import load_config
        from ...core.schedule_check import compress_refusal  # psycopg: loaded when a check needs it

        try:
            refused = compress_refusal(load_config(), schedule, "Compression")
        except PgBackupError as exc:  # the config itself: saving says it as well
            refused = str(exc)
        self.app.call_from_thread(self._compress_checked, schedule, refused)

    def _compress_checked(self, schedule: Schedule, refused: str | None) -> None:
        if self.app.screen is not self:  # cancelled meanwhile
            return
        if refused:
            self._say(refused.removesuffix("; nothing was saved"), error=True)
            return
        self.dismiss(schedule)

    @on(Button.Pressed, "#schedule-form-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def _text(value: int | None) -> str:
    return "" if value is None else str(value)
