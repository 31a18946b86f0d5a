"""A Tree that stays responsive with thousands of children under one node.

Textual's Tree rebuilds its list of lines after every change (a node added, opened, closed),
walking every line and measuring every label to size the scroll area. Measured on a schema of
10,000 tables: each rebuild took 35 ms, and adding them in batches still froze the UI for 0.6 s
(the batches, posted with call_later, ran back to back without yielding to the event loop).

So: big lists of children are shown a page at a time (`add_page`: the first `page_size`, then a
line that stands for the rest; the owner asks for the next page when that line is chosen), and
labels are measured without rendering them (they are fitted to the room left of the guides,
`label_room`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

T = TypeVar("T")
DataT = TypeVar("DataT")
PAGE_SIZE = 500  # children shown at a time: a rebuild of a few hundred lines takes a few ms


class BatchedTree(Tree[DataT], Generic[DataT]):
    """A Tree whose labels fit `label_room` and whose big child lists are shown a page at a time."""

    page_size = PAGE_SIZE
    _room: int | None = None  # the content width, read once per rebuild (not once per line)

    def label_room(self, node: TreeNode[DataT], icon: str = "") -> int:
        """Cells a label may take on its line: the width left of the guides and the icon."""
        depth, parent = 0, node.parent  # the hidden root's children have no guide
        while parent is not None and parent is not self.root:
            depth, parent = depth + 1, parent.parent
        width = self._room if self._room is not None else self.scrollable_content_region.width
        return width - self.guide_depth * depth - len(icon)

    def _build(self) -> None:
        # Tree's own rebuild of its lines, which measures every label: the width is read once.
        self._room = self.scrollable_content_region.width
        try:
            super()._build()
        finally:
            self._room = None

    def get_label_width(self, node: TreeNode[DataT]) -> int:
        # Called for every line on every rebuild: the name's length, capped at the room a
        # rendered label is fitted to, instead of rendering it (see the module docstring).
        icon = self.ICON_NODE if node.allow_expand else ""
        label = node.label
        length = label.cell_len if isinstance(label, Text) else len(str(label))
        return len(icon) + max(0, min(length, self.label_room(node, icon)))

    def add_page(self, node: TreeNode[DataT], items: Sequence[T], start: int, count: int,
                 leaf: Callable[[T], tuple[str, DataT]], more: Callable[[int], tuple[str, DataT]], *,
                 replacing: TreeNode[DataT] | None = None) -> None:
        """Add leaves under `node` for items[start:start + count] (`leaf` gives a label and data),
        then, if items are left, one leaf `more(shown)` that stands for them. `replacing`: the
        previous page's `more` leaf, which goes away; the cursor goes to the first leaf added."""
        if replacing is not None:
            self.cursor_line = -1  # its node goes away
            replacing.remove()
        end = min(len(items), start + max(1, count))
        added = [node.add_leaf(Text(label), data) for label, data in map(leaf, items[start:end])]
        if end < len(items):
            label, data = more(end)
            added.append(node.add_leaf(Text(label), data))
        if replacing is not None and added and self.last_line >= 0:  # last_line rebuilds the lines
            self.move_cursor(added[0])
