"""Back up a whole server: pg_dumpall (everything, or roles and tablespaces), or a cluster set.

What it writes is said in words, with where it goes (the job picks the file name as the CLI's
`dumpall` does: backups/<server>/_cluster or _globals/<UTC stamp>). Role passwords are left out
unless asked: the file then holds no password hash, and restored roles need a new password.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from ...core import paths
from ...core.cluster_plans import SET_FORMATS, DumpallPlan
from ...core.connect import Target
from ...core.errors import UsageError
from ...core.plans import server_folder
from ..widgets.databases_at_a_time import TOO_FEW, count_of, databases_at_a_time
from ..widgets.option_box import OptionBox
from .plan_dialog import CheckedPlanDialog
from ..plain_text import plain

WHOLE, GLOBALS, CLUSTER_SET = "whole", "globals", "set"
CHOICES = [
    ("the whole server: one SQL file (pg_dumpall)", WHOLE),
    ("roles and tablespaces only (pg_dumpall --globals-only)", GLOBALS),
    ("a cluster set: globals + one archive per database", CLUSTER_SET),
]


def describe_dumpall(plan: DumpallPlan) -> str:
    """What the job will do and where it writes, in two or three lines."""
    where = paths.backups_dir() / server_folder(plan.target.label)
    if plan.set_format:
        lines = [f"globals.sql (pg_dumpall --globals-only), then one {plan.set_format} archive per database "
                 f"(pg_dump), {plan.jobs} at a time,", f"into a folder under {where / '_cluster'}/"]
    else:
        folder = "_globals" if plan.globals_only else "_cluster"
        what = "roles and tablespaces" if plan.globals_only else "every database, with roles and tablespaces"
        lines = [f"pg_dumpall: {what}, as one SQL file (psql restores it)", f"into {where / folder}/"]
    lines.append("role passwords: kept (the file holds their hashes)" if plan.with_role_passwords
                 else "role passwords: left out (--no-role-passwords); restored roles need a new one")
    return "\n".join(lines)


class DumpallDialog(CheckedPlanDialog[DumpallPlan]):
    """Options for one pg_dumpall; dismisses with the DumpallPlan (Enter / Start) or None (Escape)."""

    DEFAULT_CSS = """
    DumpallDialog { align: center middle; }
    DumpallDialog > #dumpall-box {
        width: 100%; max-width: 100; height: auto; max-height: 100%; overflow-y: auto; padding: 0 1;
        border: thick $primary; border-title-color: $text; background: $surface;
    }
    DumpallDialog .row { height: 1; margin-top: 1; }
    DumpallDialog .field-label { width: auto; padding-right: 1; color: $text-muted; }
    DumpallDialog #what { width: 1fr; }
    DumpallDialog #set-format { width: 16; }
    DumpallDialog #set-jobs { width: 5; }
    DumpallDialog #set-row.-hidden { display: none; }
    DumpallDialog #dumpall-summary { height: auto; margin-top: 1; color: $text-accent; }
    DumpallDialog #dumpall-error { height: auto; color: $error; }
    DumpallDialog #dumpall-buttons { height: 1; margin-top: 1; align-horizontal: right; }
    DumpallDialog #dumpall-buttons Button { margin-left: 2; }
    """

    BINDINGS = [
        Binding("enter", "start", "Start", id="dumpall_dialog.start", priority=True),
        Binding("escape", "cancel", "Cancel", id="dumpall_dialog.cancel"),
    ]

    def __init__(self, target: Target, what: str = WHOLE) -> None:
        super().__init__()
        self.target = target
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical(id="dumpall-box") as box:
            box.border_title = plain(f"Back up server {self.target.label}")
            with Horizontal(classes="row"):
                yield Label("What", classes="field-label")
                yield Select(CHOICES, value=self.what, allow_blank=False, compact=True, id="what")
            with Horizontal(classes="row", id="set-row"):
                yield Label("Archives", classes="field-label")
                yield Select([(f, f) for f in SET_FORMATS], value=SET_FORMATS[0], allow_blank=False, compact=True,
                             id="set-format")
                yield from databases_at_a_time("2", "set-jobs", gap=" ")
            with Horizontal(classes="row"):
                yield OptionBox("with role passwords", compact=True, id="role-passwords")
            yield Static("", id="dumpall-summary", markup=False)
            yield Static("", id="dumpall-error", markup=False)
            with Horizontal(id="dumpall-buttons"):
                yield Button("Start", variant="primary", compact=True, id="dumpall-start")
                yield Button("Cancel", compact=True, id="dumpall-cancel")

    def on_mount(self) -> None:
        self.query_one("#what", Select).focus()
        self._refresh()

    def build_plan(self) -> DumpallPlan:
        what = self.query_one("#what", Select).value
        passwords = self.query_one("#role-passwords", Checkbox).value
        if what == CLUSTER_SET:
            return DumpallPlan(target=self.target, with_role_passwords=passwords,
                               jobs=count_of(self.query_one("#set-jobs", Input)),
                               set_format=str(self.query_one("#set-format", Select).value))
        return DumpallPlan(target=self.target, globals_only=what == GLOBALS, with_role_passwords=passwords)

    def _problem(self, plan: DumpallPlan | None) -> str | None:
        if plan is None:
            return "nothing to back up"
        if plan.set_format and plan.jobs < 1:
            return TOO_FEW
        try:
            plan.validate()
        except UsageError as exc:
            return str(exc)
        return None

    @on(Select.Changed)
    @on(Checkbox.Changed)
    @on(Input.Changed)
    def _changed(self) -> None:
        self._refresh()

    def _refresh(self) -> None:
        self.query_one("#set-row").set_class(self.query_one("#what", Select).value != CLUSTER_SET, "-hidden")
        plan = self.build_plan()
        problem = self._problem(plan)
        self.query_one("#dumpall-summary", Static).update(describe_dumpall(plan))
        self.show_problem(problem, "dumpall")
