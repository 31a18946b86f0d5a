"""A SelectionList whose boxes are empty when unchecked.

Textual's SelectionList draws an X in every box, only in another colour when it is off: the
restore dialog's table list then read as all checked under "none checked: the whole archive"
(and a terminal with few colours shows no difference at all). As OptionBox does for Checkbox,
this one draws the X only in a checked box.

Its lines are names (tables, databases): `name_options` gives them as plain text on one line.
SelectionList reads a str prompt as markup: a table named "[/]x" raised MarkupError in the restore
dialog (the app froze, its terminal left as it was), "[red]t[/red]" read as "t".
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.segment import Segment
from textual.content import Content
from textual.strip import Strip
from textual.widgets import Checkbox, SelectionList
from textual.widgets.option_list import OptionDoesNotExist

from ..plain_text import plain
from .option_box import UNCHECKED


def name_options(names: Iterable[str], *, checked: bool = False) -> list[tuple[Content, str, bool]]:
    """(prompt, value, checked) for each name: the prompt the name as it is, never markup, on one line
    (plain_text.plain); the value the name itself."""
    return [(plain(name), name, checked) for name in names]


class CheckList(SelectionList[str]):
    """A SelectionList of strings that draws an unchecked box blank."""

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        try:
            selection = self.get_option_at_index(self.scroll_offset.y + y)
        except OptionDoesNotExist:
            return strip
        if selection.value in self.selected:
            return strip
        segments = list(strip)
        # SelectionList.render_line puts the box first: its left side, its X, its right side.
        if len(segments) < 2 or segments[1].text != Checkbox.BUTTON_INNER:
            return strip
        segments[1] = Segment(UNCHECKED, segments[1].style)
        return Strip(segments, strip.cell_length)
