"""A dialog's look at the target server: is the name of the database it would create free?
The base of RestoreDialog (restore_dialog.py) and CsvImportDialog (csv_import_dialog.py), which
build the plan and show what was found.

With "create new database", the name is looked up on the target server in a thread worker as it
is typed (one look per pause in the typing, not per key), and at Start if that look has not
answered yet: Start then waits for the answer and goes on only if the form is as it was. One
that exists is said on the dialog, and no job starts; a server that does not answer (unreachable,
a password needed) is left to the job's own check, as for the CLI.

A dialog whose plan goes into a database that must exist and be empty (the restore dialog's "into":
neither create nor --clean; _looks_inside) has that database looked up and into the same way: one
that is missing or holds objects is said before Start (the job refused it only once started: the
dialog had said "into the existing, empty database" of one that was neither).
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

import psycopg
from textual import on, work
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Select

from ...core.connect import Target, connect
from ...core.errors import PgBackupError
from ...core.inspect import database_exists
from ...core.set_occupied import occupied_databases
from .plan_dialog import PlanDialog

NAME_LOOKUP_DELAY_S = 0.3  # after the last key typed in the name: one look at the server per pause, not per key


class CreatesDatabase(Protocol):
    """A plan that may create database `dbname` (RestorePlan, CsvImportPlan)."""

    @property
    def create(self) -> bool: ...

    @property
    def dbname(self) -> str: ...


LookupPlanT = TypeVar("LookupPlanT", bound=CreatesDatabase)


class NameLookupDialog(PlanDialog[LookupPlanT], Generic[LookupPlanT]):
    """Looks up whether the database the form would create exists (see the module doc)."""

    SERVER_SELECT = "#target-server"  # the Select of the target server

    class NameLookedUp(Message):
        """Whether database `name` exists on `server` (None: the server did not answer; the job says why),
        and, when looked into, what it holds (held: "" empty, "3 relations, ..." not; None: not looked into)."""

        def __init__(self, server: str, name: str, exists: bool | None, held: str | None = None) -> None:
            super().__init__()
            self.server = server
            self.name = name
            self.exists = exists
            self.held = held

    targets: dict[str, Target]

    def __init__(self) -> None:
        super().__init__()
        # (server, name) -> whether that database exists, as last looked up (None: no answer).
        self._names: dict[tuple[str, str], bool | None] = {}
        # (server, name) -> what that existing database holds ("" nothing), once looked into (_looks_inside).
        self._held: dict[tuple[str, str], str] = {}
        self._looking_up: set[tuple[str, str]] = set()
        self._name_timer: Timer | None = None
        self._start_once_looked_up: tuple[str, str] | None = None  # Start pressed before the look answered

    def build_plan(self) -> LookupPlanT | None:
        raise NotImplementedError  # the dialog's

    def _refresh(self) -> None:
        raise NotImplementedError  # the dialog's

    def _plan_problem(self, plan: LookupPlanT | None) -> str | None:
        raise NotImplementedError  # the dialog's: why Start is off, in one line (None: it may start)

    def _looks_inside(self, plan: LookupPlanT) -> bool:
        """Whether `plan` goes into an existing database that must be empty: it is then looked up and
        into (the dialog's; by default no plan does)."""
        return False

    @property
    def can_start(self) -> bool:
        plan = self.build_plan()
        return plan is not None and self._plan_problem(plan) is None

    def action_start(self) -> None:
        plan = self.build_plan()
        if plan is None or self._plan_problem(plan) is not None:
            return
        if self._start_when_looked_up(plan):  # not looked up yet (typed a moment ago)
            return
        self.dismiss(plan)

    def _name_key(self, plan: LookupPlanT) -> tuple[str, str]:
        return str(self.query_one(self.SERVER_SELECT, Select).value), plan.dbname

    def _name_taken(self, plan: LookupPlanT) -> bool:
        """Whether the database `plan` would create exists, as last looked up (False: free or not known)."""
        return plan.create and bool(self._names.get(self._name_key(plan)))

    def _target_missing(self, plan: LookupPlanT) -> bool:
        """Whether the existing database `plan` goes into (_looks_inside) is not there, as last looked up
        (False: there or not known)."""
        return self._looks_inside(plan) and self._names.get(self._name_key(plan)) is False

    def _target_held(self, plan: LookupPlanT) -> str:
        """What the existing database `plan` goes into (_looks_inside) holds, as last looked into
        ("": empty or not known)."""
        return self._held.get(self._name_key(plan), "") if self._looks_inside(plan) else ""

    def _needs_look(self, plan: LookupPlanT) -> bool:
        """Whether the database `plan` creates, or goes into, has not been looked up (or into) yet."""
        if not plan.dbname or not (plan.create or self._looks_inside(plan)):
            return False
        key = self._name_key(plan)
        if key not in self._names:
            return True
        return self._looks_inside(plan) and bool(self._names[key]) and key not in self._held

    def _checking_note(self, plan: LookupPlanT | None, label: str) -> str:
        """What the dialog says while Start waits for the look (a slow server, up to connect_timeout,
        must not look like an Enter that did nothing)."""
        if plan is not None and self._start_once_looked_up == self._name_key(plan):
            if not plan.create:
                return f"checking that '{plan.dbname}' on {label} is there and empty; it starts then"
            return f"checking that '{plan.dbname}' is free on {label}; it starts then"
        return ""

    def _start_when_looked_up(self, plan: LookupPlanT) -> bool:
        """At Start: True when the name `plan` would create has not been looked up yet; the look is
        then made, and the dialog starts once the server said the name is free."""
        if not self._needs_look(plan):
            return False
        self._start_once_looked_up = self._name_key(plan)
        self._look_up_name_now()
        self._refresh()
        return True

    def _name_to_look_up(self) -> tuple[str, str] | None:
        """(server, name) of a database the form would create, when nobody has looked it up yet."""
        plan = self.build_plan()
        if plan is None or not self._needs_look(plan):
            return None
        key = self._name_key(plan)
        return None if key in self._looking_up else key

    def _look_up_name_soon(self) -> None:
        if self._name_timer is not None:
            self._name_timer.stop()
        self._name_timer = self.set_timer(NAME_LOOKUP_DELAY_S, self._look_up_name_now)

    def _look_up_name_now(self) -> None:
        self._name_timer = None
        key = self._name_to_look_up()
        plan = self.build_plan()
        if key is not None and plan is not None:
            self._looking_up.add(key)
            self._look_up_name(key[0], self.targets[key[0]], key[1], self._looks_inside(plan))

    @work(thread=True, exit_on_error=False, group="restore-name", description="is the new database's name free")
    def _look_up_name(self, server: str, target: Target, name: str, inside: bool) -> None:
        exists: bool | None = None
        held: str | None = None
        try:
            with connect(target, target.maintenance_db(name)) as conn:
                exists = database_exists(conn, name)
            if exists and inside:
                held = ""  # not known, should the look into it fail: the job's own check says it
                held = occupied_databases(target, [name], {name}).get(name, "")
        except (PgBackupError, psycopg.Error):
            pass  # unreachable, a password needed, no CONNECT on that database: the job's own check says it
        self.post_message(self.NameLookedUp(server, name, exists, held))

    @on(NameLookedUp)
    def _name_looked_up(self, message: NameLookedUp) -> None:
        key = (message.server, message.name)
        self._looking_up.discard(key)
        self._names[key] = message.exists
        if message.held is not None:
            self._held[key] = message.held
        waiting, self._start_once_looked_up = self._start_once_looked_up, None
        self._refresh()
        plan = self.build_plan()
        if waiting == key and plan is not None and self._name_key(plan) == key:
            self.action_start()  # the form is as it was when Start was pressed
