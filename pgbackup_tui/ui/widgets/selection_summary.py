"""The line under the tree that says what is checked: "3 tables in shop — 1.2 GB"."""

from __future__ import annotations

from textual.widgets import Static

from ..keymap import key_name
from ..selection import Selection

NOTHING_SELECTED = "nothing selected ({key} checks a table, schema or database)"


class SelectionSummary(Static):
    """One line; muted when nothing is selected."""

    DEFAULT_CSS = """
    SelectionSummary {
        height: 1;
        padding: 0 1;
        background: $boost;
        color: $text-muted;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    SelectionSummary.-selected { color: $text-accent; text-style: bold; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(NOTHING_SELECTED.format(key="space"), id=id, markup=False)
        self.selection: Selection | None = None

    def show(self, selection: Selection | None) -> None:
        """Say what `selection` holds (or that nothing is selected)."""
        self.selection = selection
        self.set_class(selection is not None, "-selected")
        nothing = NOTHING_SELECTED.format(key=key_name(self.app, "tree.toggle-check"))
        self.update(selection.describe() if selection is not None else nothing)
