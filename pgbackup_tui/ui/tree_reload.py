"""What F5 keeps: the nodes that were open (and how many tables each showed), the cursor's node
and the check marks.

A reload replaces a server's or a database's children with new nodes. Before that, the open
nodes below it are remembered by a key that survives the reload (names, not node ids); the tree
opens the new nodes with those keys as they arrive, and the checks keep the tables that still
exist.
"""

from __future__ import annotations

from textual.widgets.tree import TreeNode

from ..core.inspect import TableInfo
from .selection import Checks
from .tree_entries import DatabaseEntry, NodeEntry, SchemaEntry, ServerEntry, TableEntry

NodeKey = tuple[str, ...]


def node_key(data: NodeEntry | None) -> NodeKey | None:
    """A name for the node that a reload does not change (None for hints)."""
    if isinstance(data, ServerEntry):
        return (data.name,)
    if isinstance(data, DatabaseEntry):
        return (data.server, data.info.name)
    if isinstance(data, SchemaEntry):
        return (data.server, data.dbname, data.info.name)
    if isinstance(data, TableEntry):
        return (data.server, data.dbname, data.info.schema, data.info.name)
    return None


def open_keys(node: TreeNode[NodeEntry]) -> set[NodeKey]:
    """The keys of the open nodes below `node` (not `node` itself)."""
    keys: set[NodeKey] = set()
    for child in node.children:
        key = node_key(child.data)
        if child.is_expanded and key is not None:
            keys.add(key)
            keys |= open_keys(child)
    return keys


def tables_shown(node: TreeNode[NodeEntry]) -> dict[NodeKey, int]:
    """How many tables each open schema below `node` shows (it shows them a page at a time): a
    reload shows as many again, so that the cursor finds its table."""
    shown: dict[NodeKey, int] = {}
    for child in node.children:
        key = node_key(child.data)
        if isinstance(child.data, SchemaEntry) and child.is_expanded and key is not None:
            shown[key] = sum(1 for leaf in child.children if isinstance(leaf.data, TableEntry))
        elif child.is_expanded:
            shown |= tables_shown(child)
    return shown


def checks_after_reload(checks: Checks, database: tuple[str, str], tables: tuple[TableInfo, ...]) -> Checks:
    """The checks once `database` was read again: tables that are gone are unchecked, the others
    carry their new figures."""
    if checks.database != database or checks.whole:
        return checks
    now = {table.qualified: table for table in tables}
    kept = {name: now[name] for name in checks.tables if name in now}
    return Checks(database, tables=kept) if kept else Checks()
