"""What the backup and restore dialogs share: Enter starts, Escape cancels, Start/Cancel buttons.

Enter is a priority binding so it starts the dialog from any field, except where Enter already
means something: on a focused button (it presses it) or in an open drop-down (it picks an item).
It never toggles a box or a list's item, also while Start is off (space does).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from textual import events, on
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Select, SelectionList, Static

PlanT = TypeVar("PlanT")


class PlanDialog(ModalScreen[PlanT | None], Generic[PlanT]):
    """Subclasses define `can_start`, `action_start`, and buttons whose ids end in -start / -cancel."""

    @property
    def can_start(self) -> bool:
        raise NotImplementedError

    def action_start(self) -> None:
        raise NotImplementedError

    def action_cancel(self) -> None:
        self.dismiss(None)

    def show_problem(self, problem: str | None, prefix: str) -> None:
        """Say in `#PREFIX-error` why Start is off (the line is hidden when nothing is wrong), and
        enable `#PREFIX-start` only then."""
        error = self.query_one(f"#{prefix}-error", Static)
        error.update(problem or "")
        error.display = problem is not None
        self.query_one(f"#{prefix}-start", Button).disabled = problem is not None
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action != "start":
            return True
        focused = self.focused
        if isinstance(focused, Button):
            return False
        if focused is not None and any(isinstance(node, Select) and node.expanded
                                       for node in focused.ancestors_with_self):
            return False
        # None shows the key greyed out (footer, keys panel) wherever the focus is, as Enter starts
        # nothing then (the error line says why); the key still goes on to the focused widget,
        # which `on_key` below keeps from a box or the list.
        return True if self.can_start else None

    def on_key(self, event: events.Key) -> None:
        # Start is off: the key that starts, passed on, toggled the focused box (--clean unticked by
        # an Enter meant to start, its name not typed yet) or a table of the list: a choice changed
        # by the key that never changes one (space does). Stopped here, before the app gives it to
        # the box's or the list's own binding. Start's key as the keymap has it, not always Enter.
        if self.can_start or not isinstance(self.focused, (Checkbox, SelectionList)):
            return
        active = self.active_bindings.get(event.key)
        if active is not None and active.binding.action == "start":
            event.stop()
            event.prevent_default()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_start()

    @on(Button.Pressed)
    def _button_pressed(self, event: Button.Pressed) -> None:
        button_id = event.button.id or ""
        if button_id.endswith("-start"):
            self.action_start()
        elif button_id.endswith("-cancel"):
            self.action_cancel()


class CheckedPlanDialog(PlanDialog[PlanT]):
    """A dialog whose plan comes from `build_plan()` and whose one problem (or None) from
    `_problem(plan)`: Start applies exactly when there is none."""

    def build_plan(self) -> PlanT | None:
        raise NotImplementedError

    def _problem(self, plan: PlanT | None) -> str | None:
        raise NotImplementedError

    @property
    def can_start(self) -> bool:
        return self._problem(self.build_plan()) is None

    def action_start(self) -> None:
        plan = self.build_plan()
        if plan is not None and self._problem(plan) is None:
            self.dismiss(plan)
