"""A Tree that stays responsive with thousands of children under one node.

Textual's Tree measures the label of every line each time it rebuilds its lines (to size the
scroll area), by rendering it; and adding nodes one by one in one handler holds the event loop
until the last. A schema of 10,000 tables froze the UI for half a second. Here labels are
measured without rendering (they are fitted to the room left of the guides, `label_room`), and
big lists of children are added in batches, one per turn of the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

T = TypeVar("T")
DataT = TypeVar("DataT")
BATCH = 400  # children added per turn of the event loop (about 10 ms of work)


class BatchedTree(Tree[DataT], Generic[DataT]):
    """A Tree whose labels fit `label_room` and whose big child lists arrive in batches."""

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

    def add_leaves(self, node: TreeNode[DataT], items: Sequence[T], leaf: Callable[[T], tuple[str, DataT]],
                   then: Callable[[], None] | None = None) -> None:
        """Add a leaf under `node` for each item (`leaf` gives its label and data), BATCH at a
        time; `then` runs after the last. Stops if the node leaves the tree meanwhile (a reload)."""
        self._add_batch(node, iter(items), leaf, then)

    def _add_batch(self, node: TreeNode[DataT], items: Iterable[T], leaf: Callable[[T], tuple[str, DataT]],
                   then: Callable[[], None] | None) -> None:
        if self._tree_nodes.get(node.id) is not node:
            return  # removed (its parent was reloaded): the new node gets its own leaves
        iterator = iter(items)
        for count, item in enumerate(iterator, 1):
            label, data = leaf(item)
            node.add_leaf(Text(label), data)
            if count == BATCH:
                self.call_later(self._add_batch, node, iterator, leaf, then)
                return
        if then is not None:
            then()
