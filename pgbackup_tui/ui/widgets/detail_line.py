"""Update a Static's text with a relayout of the screen only when its height changes.

Static.update(text) asks for a layout of the whole screen (Textual lays out a screen at once),
which is what most of a short job's cost was made of (issue 15, point 3): the Jobs pane's detail
lines change as a job starts, runs and ends, mostly within the height they have. Here the new
text's height at the widget's width (what the layout would give it, min- and max-height included) is
compared with the height it has: the same, and only the line is repainted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import cast

from textual.css.scalar import Scalar
from textual.css.styles import RulesMap
from textual.widgets import Static


def update_in_place(line: Static, text: str) -> bool:
    """Show `text` in `line`; whether that needed a relayout (its height changed, or it has none yet)."""
    line.update(text, layout=False)
    return _layout_if_height_changes(line)


def _layout_if_height_changes(line: Static) -> bool:
    """Ask for a relayout when the height the layout would give `line` now is not the one it has."""
    width, height = line.content_size
    if not line.display or width <= 0:
        line.refresh(layout=True)
        return True
    # As Widget.get_content_height asks it (the styles read like the RulesMap the signature names).
    wanted = line.visual.get_height(cast("RulesMap", line.styles), width)
    min_height, max_height = line.styles.min_height, line.styles.max_height
    if min_height is not None and min_height.is_cells:
        wanted = max(wanted, int(min_height.value))
    if max_height is not None and max_height.is_cells:
        wanted = min(wanted, int(max_height.value))
    if wanted != height:
        line.refresh(layout=True)
        return True
    return False


def hold_height(line: Static, hold: bool) -> None:
    """While `hold`, `line` is never shorter than it is now (a layout of the screen, e.g. for a row
    added, would otherwise measure a blank line as one line high and the next text as two: another
    layout); released, its stylesheet's min-height again.

    Neither asks for a layout of its own when the line's height stays what it is: the rule is set
    without the style's setter (which would ask for one: a layout of the screen as every job starts
    and another as it ends, a third of the Jobs pane's CPU over a dump of a few seconds), and the
    next layout, whatever asks for it, reads it."""
    inline = line.styles.inline
    if hold:
        height = line.size.height
        held = inline.min_height
        if height > 0 and (held is None or not held.is_cells or held.value < height):
            inline.set_rule("min_height", Scalar.from_number(height))  # the height it has: nothing to lay out
    elif inline.clear_rule("min_height"):
        _layout_if_height_changes(line)


@contextlib.contextmanager
def heights_held(lines: Iterable[Static], hold: bool) -> Iterator[None]:
    """Show the lines' new texts inside: while `hold`, each is held (hold_height) before them, no
    shorter; else released after them, so that a layout comes only if the final texts' height is
    not the one held."""
    lines = list(lines)
    for line in lines if hold else ():
        hold_height(line, True)
    yield
    for line in () if hold else lines:
        hold_height(line, False)
