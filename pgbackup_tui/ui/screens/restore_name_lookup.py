"""A dialog's look at the target server: is the name of the database it would create free?
The base of RestoreDialog (restore_dialog.py) and CsvImportDialog (csv_import_dialog.py), which
build the plan and show what was found.

With "create new database", the name is looked up on the target server in a thread worker as it
is typed (one look per pause in the typing, not per key), and at Start if that look has not
answered yet: Start then waits for the answer and goes on only if the form is as it was. One
that exists is said on the dialog, and no job starts; a server that does not answer (unreachable,
a password needed) is left to the job's own check, as for the CLI.
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
        """Whether database `name` exists on `server` (None: the server did not answer; the job says why)."""

        def __init__(self, server: str, name: str, exists: bool | None) -> None:
            super().__init__()
            self.server = server
            self.name = name
            self.exists = exists

    targets: dict[str, Target]

    def __init__(self) -> None:
        super().__init__()
        # (server, name) -> whether that database exists, as last looked up (None: no answer).
        self._names: dict[tuple[str, str], bool | None] = {}
        self._looking_up: set[tuple[str, str]] = set()
        self._name_timer: Timer | None = None
        self._start_once_looked_up: tuple[str, str] | None = None  # Start pressed before the look answered

    def build_plan(self) -> LookupPlanT | None:
        raise NotImplementedError  # the dialog's

    def _refresh(self) -> None:
        raise NotImplementedError  # the dialog's

    def _plan_problem(self, plan: LookupPlanT | None) -> str | None:
        raise NotImplementedError  # the dialog's: why Start is off, in one line (None: it may start)

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

    def _checking_note(self, plan: LookupPlanT | None, label: str) -> str:
        """What the dialog says while Start waits for the look (a slow server, up to connect_timeout,
        must not look like an Enter that did nothing)."""
        if plan is not None and self._start_once_looked_up == self._name_key(plan):
            return f"checking that '{plan.dbname}' is free on {label}; it starts then"
        return ""

    def _start_when_looked_up(self, plan: LookupPlanT) -> bool:
        """At Start: True when the name `plan` would create has not been looked up yet; the look is
        then made, and the dialog starts once the server said the name is free."""
        if not plan.create or self._name_key(plan) in self._names:
            return False
        self._start_once_looked_up = self._name_key(plan)
        self._look_up_name_now()
        self._refresh()
        return True

    def _name_to_look_up(self) -> tuple[str, str] | None:
        """(server, name) of a database the form would create, when nobody has looked it up yet."""
        plan = self.build_plan()
        if plan is None or not plan.create or not plan.dbname:
            return None
        key = self._name_key(plan)
        return None if key in self._names or key in self._looking_up else key

    def _look_up_name_soon(self) -> None:
        if self._name_timer is not None:
            self._name_timer.stop()
        self._name_timer = self.set_timer(NAME_LOOKUP_DELAY_S, self._look_up_name_now)

    def _look_up_name_now(self) -> None:
        self._name_timer = None
        key = self._name_to_look_up()
        if key is not None:
            self._looking_up.add(key)
            self._look_up_name(key[0], self.targets[key[0]], key[1])

    @work(thread=True, exit_on_error=False, group="restore-name", description="is the new database's name free")
    def _look_up_name(self, server: str, target: Target, name: str) -> None:
        try:
            with connect(target, target.maintenance_db(name)) as conn:
                exists: bool | None = database_exists(conn, name)
        except (PgBackupError, psycopg.Error):
            exists = None  # unreachable, a password needed: the job's own check says it, as for the CLI
        self.post_message(self.NameLookedUp(server, name, exists))

    @on(NameLookedUp)
    def _name_looked_up(self, message: NameLookedUp) -> None:
        key = (message.server, message.name)
        self._looking_up.discard(key)
        self._names[key] = message.exists
        waiting, self._start_once_looked_up = self._start_once_looked_up, None
        self._refresh()
        plan = self.build_plan()
        if waiting == key and plan is not None and self._name_key(plan) == key:
            self.action_start()  # the form is as it was when Start was pressed
