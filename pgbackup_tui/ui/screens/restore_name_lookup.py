"""The restore dialog's look at the target server: is the name of the database it would create free?
RestoreDialog's base (restore_dialog.py), which builds the plan and shows what was found.

With "create new database", the name is looked up on the target server in a thread worker as it
is typed (one look per pause in the typing, not per key), and at Start if that look has not
answered yet: Start then waits for the answer and goes on only if the form is as it was. One
that exists is said on the dialog, and no job starts; a server that does not answer (unreachable,
a password needed) is left to the job's own check, as for the CLI.
"""

from __future__ import annotations

import psycopg
from textual import on, work
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Select

from ...core.connect import Target, connect
from ...core.errors import PgBackupError
from ...core.inspect import database_exists
from ...core.plans import RestorePlan
from .plan_dialog import PlanDialog

NAME_LOOKUP_DELAY_S = 0.3  # after the last key typed in the name: one look at the server per pause, not per key


class NameLookupDialog(PlanDialog[RestorePlan]):
    """Looks up whether the database the form would create exists (see the module doc)."""

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

    def build_plan(self) -> RestorePlan | None:
        raise NotImplementedError  # RestoreDialog's

    def _refresh(self) -> None:
        raise NotImplementedError  # RestoreDialog's

    def _name_key(self, plan: RestorePlan) -> tuple[str, str]:
        return str(self.query_one("#target-server", Select).value), plan.dbname

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
