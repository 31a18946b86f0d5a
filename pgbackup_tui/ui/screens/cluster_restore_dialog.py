"""Restore a pg_dumpall file or a cluster set onto a server (a ClusterRestoreJob).

A pg_dumpall file goes through psql into the server's maintenance database, whole (roles that
exist already are kept and reported). A cluster set restores its globals first (unless
skipped), then each picked member database with --create, each as its own job, up to `jobs` at a
time; one the server has already (postgres), empty, is restored into instead, after them (the
summary says which is which). Every database it creates must not exist on the target: a whole-cluster file is meant for
an empty server.

When a server is picked, the dialog looks at it (in a thread worker) for what the restore would
refuse, naming a CLI flag, and says it before Start in its own words: a set's member whose database
the server holds already, not empty (core/set_occupied.py; --exclude-db: untick it), a database a
whole-cluster file creates that the server has (dumpall --set: back it up as a set), and a file or
set from a pg_dumpall newer than the server (--allow-older-server: the "allow older server" box,
offered then).
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, Select, SelectionList, Static

from ...core.cluster_plans import ClusterRestorePlan
from ...core.catalog import read_manifest
from ...core.cluster_file import sql_major
from ...core.connect import Target, connect
from ...core.errors import PgBackupError, UsageError
from ...core.identifiers import one_line
from ...core.set_occupied import existing_databases, occupied_databases, taken_databases
from ..widgets.check_list import CheckList, name_options
from ..widgets.databases_at_a_time import TOO_FEW, count_of, databases_at_a_time
from ..widgets.option_box import OptionBox
from .plan_dialog import CheckedPlanDialog
from ..plain_text import plain


# How often a server that holds a database the restore needs free is looked at again.
LOOK_AGAIN_S = 2.0

class ClusterRestoreDialog(CheckedPlanDialog[ClusterRestorePlan]):
    """Options for one cluster restore; dismisses with the plan (Enter / Start) or None (Escape)."""

    DEFAULT_CSS = """
    ClusterRestoreDialog { align: center middle; }
    ClusterRestoreDialog > #cluster-box {
        width: 100%; max-width: 100; height: auto; max-height: 100%; overflow-y: auto; padding: 0 1;
        border: thick $primary; border-title-color: $text; background: $surface;
    }
    ClusterRestoreDialog .row { height: 1; margin-top: 1; }
    ClusterRestoreDialog .field-label { width: auto; padding-right: 1; color: $text-muted; }
    ClusterRestoreDialog #cluster-server { width: 30; }
    ClusterRestoreDialog #cluster-jobs { width: 5; }
    ClusterRestoreDialog #cluster-members { height: auto; max-height: 8; margin-top: 1; }
    ClusterRestoreDialog #cluster-summary { height: auto; margin-top: 1; color: $text-accent; }
    ClusterRestoreDialog #cluster-error { height: auto; color: $error; }
    ClusterRestoreDialog #cluster-buttons { height: 1; margin-top: 1; align-horizontal: right; }
    ClusterRestoreDialog #cluster-buttons Button { margin-left: 2; }
    ClusterRestoreDialog #allow-older-row { display: none; }
    ClusterRestoreDialog #allow-older-row.-offered { display: block; }
    """

    BINDINGS = [
        Binding("enter", "start", "Start", id="cluster_restore_dialog.start", priority=True),
        Binding("escape", "cancel", "Cancel", id="cluster_restore_dialog.cancel"),
    ]

    class ServerLookedAt(Message):
        """What `server` is (None: it did not answer; the restore checks again): its major version, the
        set's databases it holds, not empty (name -> what it holds), those a file creates that it has,
        and the set's databases it holds at all (None: not known)."""

        def __init__(self, server: str, major: int | None, occupied: dict[str, str] | None,
                     taken: list[str], held: frozenset[str] | None = None) -> None:
            super().__init__()
            self.server = server
            self.major = major
            self.occupied = occupied
            self.taken = taken
            self.held = held

    def __init__(self, archive: Path, targets: dict[str, Target], members: list[str] | None,
                 default_server: str | None = None) -> None:
        """`members`: a set's databases (None for a pg_dumpall file, which restores whole)."""
        super().__init__()
        self.archive = archive
        self.targets = dict(targets)
        self.members = members
        self.default_server = default_server if default_server in self.targets else None
        self._looked_at: dict[str, ClusterRestoreDialog.ServerLookedAt | None] = {}  # by server (None: asked)
        manifest = read_manifest(archive) or {}  # what the restore's checks read too
        writer = manifest.get("pg_dump_major")
        self._writer = writer if isinstance(writer, int) else None
        # The oldest major its SQL is for: a roles-only or globals-only file's server's (sql_major).
        self._made_by = sql_major(manifest) if members is None else self._writer
        created = manifest.get("databases")
        # The databases a whole-cluster file creates (a set's members are `members`).
        self._created = [str(name) for name in created] if members is None and isinstance(created, list) else []

    def compose(self) -> ComposeResult:
        is_set = self.members is not None
        with Vertical(id="cluster-box") as box:
            box.border_title = plain(f"Restore {'cluster set' if is_set else 'pg_dumpall file'} {self.archive.name}")
            with Horizontal(classes="row"):
                yield Label("Onto server", classes="field-label")
                yield Select([(label, label) for label in self.targets], value=self.default_server or Select.NULL,
                             allow_blank=self.default_server is None, compact=True, id="cluster-server")
                if is_set:
                    yield from databases_at_a_time("1", "cluster-jobs", gap="  ")
            with Horizontal(classes="row", id="allow-older-row"):
                yield OptionBox("allow older server", compact=True, id="allow-older")
            if is_set:
                with Horizontal(classes="row"):
                    yield OptionBox("skip globals (the roles are there already)", compact=True, id="skip-globals")
                yield CheckList(*name_options(self.members or [], checked=True), id="cluster-members")
            yield Static("", id="cluster-summary", markup=False)
            yield Static("", id="cluster-error", markup=False)
            with Horizontal(id="cluster-buttons"):
                yield Button("Start", variant="primary", compact=True, id="cluster-start")
                yield Button("Cancel", compact=True, id="cluster-cancel")

    def on_mount(self) -> None:
        self.query_one("#cluster-server", Select).focus()
        self._refresh()

    def build_plan(self) -> ClusterRestorePlan | None:
        server = self.query_one("#cluster-server", Select).value
        if server is Select.NULL:
            return None
        target = self.targets[str(server)]
        allow_older = self.query_one("#allow-older-row").has_class("-offered") and self.query_one(
            "#allow-older", Checkbox).value
        if self.members is None:
            return ClusterRestorePlan(archive=self.archive, target=target, allow_older_server=allow_older)
        picked = tuple(self.query_one("#cluster-members", SelectionList).selected)
        return ClusterRestorePlan(archive=self.archive, target=target,
                                  jobs=count_of(self.query_one("#cluster-jobs", Input)),
                                  databases=() if len(picked) == len(self.members) else picked,
                                  skip_globals=self.query_one("#skip-globals", Checkbox).value,
                                  allow_older_server=allow_older)

    def _problem(self, plan: ClusterRestorePlan | None) -> str | None:
        if plan is None:
            return "pick the server to restore onto"
        if self.members is not None and not self.query_one("#cluster-members", SelectionList).selected:
            return "pick at least one database"
        if self.members is not None and plan.jobs < 1:
            return TOO_FEW
        newer = self._newer_than_server(plan)
        if newer is not None and not plan.allow_older_server:
            return newer
        looked_at = self._looked_at.get(str(self.query_one("#cluster-server", Select).value))
        occupied = (looked_at.occupied if looked_at is not None else None) or {}
        for name in plan.databases or tuple(self.members or ()):
            if name in occupied:
                return (f"database '{one_line(name)}' on {plan.target.label} is not empty ({occupied[name]}): a set "
                        "restores into new or empty databases; drop it first, or untick it")
        taken = looked_at.taken if looked_at is not None else []
        if taken:
            return (f"database '{one_line(taken[0])}' already exists on {plan.target.label}, and {self.archive.name} "
                    "creates it: a whole-cluster file is for a server without its databases; drop it first, or back "
                    "the cluster up as a cluster set (w), whose members restore one by one")
        try:
            plan.validate()
        except UsageError as exc:
            return str(exc)
        return None

    def _summary(self, plan: ClusterRestorePlan | None) -> str:
        if plan is None:
            return ""
        where = f"on {plan.target.label}"
        if self.members is None:
            return (f"psql -f {self.archive.name} into {plan.dbname} {where}, ON_ERROR_STOP: every role, "
                    "tablespace and database in it (a database that exists stops it there)")
        names = plan.databases or tuple(self.members)
        globals_text = "" if plan.skip_globals else "globals.sql through psql, then "
        looked_at = self._looked_at.get(str(self.query_one("#cluster-server", Select).value))
        held = looked_at.held if looked_at is not None else None
        if held is None:  # not looked at yet (or it did not answer): both ways, as the restore decides
            return (f"{globals_text}{len(names)} database(s) {where}, {plan.jobs} at a time: each created "
                    "with --create, or restored into it if it exists and is empty")
        # As the restore runs them: a database the server has (postgres, an empty one made for it) is
        # not created but restored into, after the new ones, one by one, each in one transaction.
        into = [name for name in names if name in held]
        fresh = len(names) - len(into)
        parts = [f"{fresh} new database(s) with --create {where}, {plan.jobs} at a time"] if fresh else []
        if into:
            names_into = ", ".join(one_line(name) for name in into)
            parts.append(f"into the existing {names_into} {'' if fresh else where + ' '}"
                         "(no --create), one transaction each")
        return globals_text + ("; then " if fresh else "").join(parts)

    @on(Select.Changed)
    @on(Checkbox.Changed)
    @on(Input.Changed)
    @on(SelectionList.SelectedChanged)
    def _changed(self) -> None:
        self._refresh()

    def _newer_than_server(self, plan: ClusterRestorePlan) -> str | None:
        """What the restore would refuse when the file or set is from a pg_dumpall newer than the
        server, as a line that names the dialog's option; None when it is not, or not known."""
        looked_at = self._looked_at.get(str(self.query_one("#cluster-server", Select).value))
        major = looked_at.major if looked_at is not None else None
        if self._made_by is None or major is None or self._made_by <= major:
            return None
        what = "set" if self.members is not None else "file"
        writer = self._writer
        said = (f"pg_dumpall {self._made_by} wrote it, for PostgreSQL {self._made_by} or newer"
                if writer in (None, self._made_by) else
                f"it holds a PostgreSQL {self._made_by} server's roles (pg_dumpall {writer} wrote them)")
        return (f"{said}; "
                f"'{plan.target.label}' runs {major}: tick “allow older server” if the {what} was made to fit")

    def _look_at_server(self) -> None:
        """Look at the picked server once: its version, and the set's databases it holds (not empty)."""
        server = self.query_one("#cluster-server", Select).value
        if server is Select.NULL or str(server) in self._looked_at:
            return
        self._looked_at[str(server)] = None
        self._read_server(str(server), self.targets[str(server)], list(self.members or ()))

    @work(thread=True, exit_on_error=False, group="cluster-server", description="what the target server holds")
    def _read_server(self, server: str, target: Target, members: list[str]) -> None:
        major: int | None = None
        occupied: dict[str, str] | None = None
        taken: list[str] = []
        held: frozenset[str] | None = None
        try:
            with connect(target) as conn:
                major = conn.info.server_version // 10000
            existing = existing_databases(target)
            occupied = occupied_databases(target, members, existing) if members else {}
            taken = taken_databases(self._created, existing)
            held = frozenset(existing.intersection(members))
        except (PgBackupError, psycopg.Error):
            pass  # unreachable, a password needed: the restore's own checks say it
        self.post_message(self.ServerLookedAt(server, major, occupied, taken, held))

    @on(ServerLookedAt)
    def _server_looked_at(self, message: ServerLookedAt) -> None:
        self._looked_at[message.server] = message
        self._refresh()
        if message.occupied or message.taken:
            # The dialog says "drop it first": once the DBA has, in another terminal, Start must
            # not stay off until the dialog is opened again. Looked at again while it stands.
            self.set_timer(LOOK_AGAIN_S, lambda: self._look_again(message.server))

    def _look_again(self, server: str) -> None:
        if self.is_attached and str(self.query_one("#cluster-server", Select).value) == server:
            self._read_server(server, self.targets[server], list(self.members or ()))

    def _refresh(self) -> None:
        self._look_at_server()
        plan = self.build_plan()
        offered = plan is not None and self._newer_than_server(plan) is not None
        self.query_one("#allow-older-row").set_class(offered, "-offered")
        plan = self.build_plan()
        problem = self._problem(plan)
        self.query_one("#cluster-summary", Static).update(self._summary(plan))
        self.show_problem(problem, "cluster")
