"""A checkbox that is empty when unchecked.

Textual's Checkbox draws an X in both states, only dimmer when off: in many themes and terminals
an unchecked box reads as checked. This one draws the X only when checked.
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox

CHECKED, UNCHECKED = "X", " "


class OptionBox(Checkbox):
    """A Checkbox whose box is blank when it is off."""

    def render(self) -> Content:
        # A change of value repaints (a reactive), so the box follows it here.
        self.BUTTON_INNER = CHECKED if self.value else UNCHECKED
        return super().render()
