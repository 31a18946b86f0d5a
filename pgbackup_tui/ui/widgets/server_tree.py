"""The left-hand tree: servers → databases → schemas → tables, loaded lazily, with check marks.

The tree never connects to anything. Opening a server or database that is not loaded yet puts
a "loading…" child under it and posts LoadRequested; the app runs the worker and hands the
result back through show_server / show_database / show_failure. Check marks (space) are kept
here, one database at a time, and announced with SelectionChanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from ...core.server_profile import ServerProfile
from ...core.inspect import TableInfo
from ..bindings import under_a_dialog
from ..inspection import DatabaseSnapshot, ServerSnapshot
from ..selection import Checks, Selection
from ..tree_entries import (
    FAILED,
    IDLE,
    LOADING,
    READY,
    DatabaseEntry,
    HintEntry,
    MoreEntry,
    NodeEntry,
    SchemaEntry,
    ServerEntry,
    TableEntry,
    TreeFocus,
)
from ..keymap import key_name
from ..tree_labels import describe_entry
from ..tree_reload import NodeKey, checks_after_reload, node_key, open_keys, tables_shown
from .batched_tree import BatchedTree


class ServerTree(BatchedTree[NodeEntry]):
    """Servers and what they hold; space checks databases, schemas and tables."""

    DEFAULT_CSS = """
    ServerTree > .server-tree--muted { color: $text-muted; }
    ServerTree > .server-tree--error { color: $text-error; }
    ServerTree > .server-tree--ok { color: $text-success; }
    ServerTree > .server-tree--mark { color: $text-warning; }
    ServerTree > .server-tree--check { color: $text-accent; text-style: bold; }
    """
    COMPONENT_CLASSES = Tree.COMPONENT_CLASSES | {
        "server-tree--muted", "server-tree--error", "server-tree--ok", "server-tree--mark", "server-tree--check",
    }
    BINDINGS = [
        Binding("space", "toggle_check", "Select", tooltip="Check or uncheck a table, schema or database",
                id="tree.toggle-check"),
        Binding("right", "open_node", "Open", show=False, tooltip="Open (load) the node, or go to its first child",
                id="tree.open"),
        Binding("left", "close_node", "Close", show=False, tooltip="Close the node, or go to its parent",
                id="tree.close"),
        Binding("home", "scroll_home", "First", show=False, tooltip="Go to the first line", id="tree.first"),
        Binding("end", "scroll_end", "Last", show=False, tooltip="Go to the last line", id="tree.last"),
    ]

    @dataclass
    class LoadRequested(Message):
        """A server (dbname None) or a database was opened and needs loading."""

        server: str
        dbname: str | None

    @dataclass
    class SelectionChanged(Message):
        selection: Selection | None

    @dataclass
    class CursorMoved(Message):
        focus: TreeFocus

    def __init__(self, *, id: str | None = None) -> None:
        self._checks = Checks()  # before Tree.__init__, which already draws the root's label
        super().__init__("servers", id=id)
        self.show_root = False
        self.guide_depth = 2
        self._server_nodes: dict[str, TreeNode[NodeEntry]] = {}
        self._database_nodes: dict[tuple[str, str], TreeNode[NodeEntry]] = {}
        self._reopen: set[NodeKey] = set()  # open before a reload (F5): opened again as they arrive
        self._reshow: dict[NodeKey, int] = {}  # tables an open schema showed before a reload (F5)
        self._cursor_key: NodeKey | None = None  # the cursor's node before a reload

    # -- filling -----------------------------------------------------------------------------
    def set_servers(self, profiles: Iterable[ServerProfile]) -> None:
        """Show these servers: keep unchanged ones as they are, reset edited ones, drop the rest."""
        wanted = {profile.name: profile for profile in profiles}
        for name in list(self._server_nodes):
            if name not in wanted:
                self._forget_server(name)
                self._server_nodes.pop(name).remove()
        self._remove_hints()
        for name, profile in wanted.items():
            node = self._server_nodes.get(name)
            if node is None:
                self._server_nodes[name] = self.root.add(Text(name), ServerEntry(profile), allow_expand=True)
            elif isinstance(node.data, ServerEntry) and node.data.profile != profile:
                self._forget_server(name)
                node.data = ServerEntry(profile)
                node.remove_children()
                node.collapse()
        if not wanted:
            add_key = key_name(self.app, "app.add-server")  # as the user remapped it
            self._add_hint(self.root, HintEntry(f"no servers yet: press {add_key} to add one"))
        for node in self._server_nodes.values():
            node.refresh()
        self.refresh()
        # The cursor's node may be gone (a removed server) with no NodeHighlighted for the line
        # that takes its place ("no servers yet"): the Details pane would go on showing it.
        self.call_after_refresh(lambda: self.post_message(self.CursorMoved(self.focus_info())))

    def show_config_error(self, message: str) -> None:
        """An unreadable config: no servers, the reason, and what to do."""
        self.clear()
        self._server_nodes.clear()
        self._database_nodes.clear()
        self._checks = Checks()
        self._add_hint(self.root, HintEntry(message, is_error=True))
        self._add_hint(self.root, HintEntry("fix config.toml (it was left untouched) and restart"))

    def show_server(self, name: str, snapshot: ServerSnapshot) -> None:
        node = self._server_nodes.get(name)
        if node is None or not isinstance(node.data, ServerEntry):
            return
        self._forget_server(name, keep_checks=True)
        node.data.status, node.data.snapshot, node.data.error = READY, snapshot, None
        node.remove_children()
        for info in snapshot.databases:
            entry = DatabaseEntry(name, info)
            child = node.add(Text(info.name), entry, allow_expand=info.allow_connections)
            self._database_nodes[entry.key] = child
        if not snapshot.databases:
            self._add_hint(node, HintEntry("no databases"))
        checked = self._checks.database
        if checked is not None and checked[0] == name and checked not in self._database_nodes:
            self._set_checks(Checks())  # its database is gone
        self._after_change(node)
        self._reopen_children(node)

    def show_database(self, server: str, dbname: str, snapshot: DatabaseSnapshot) -> None:
        node = self._database_nodes.get((server, dbname))
        if node is None or not isinstance(node.data, DatabaseEntry):
            return
        node.data.status, node.data.snapshot, node.data.error = READY, snapshot, None
        node.remove_children()
        for schema in snapshot.schemas:
            tables = snapshot.tables_in(schema.name)
            node.add(Text(schema.name), SchemaEntry(server, dbname, schema, tables), allow_expand=bool(tables))
        if not snapshot.schemas:
            self._add_hint(node, HintEntry("no user schemas"))
        checks = checks_after_reload(self._checks, (server, dbname), snapshot.tables)
        if checks != self._checks:
            self._set_checks(checks)
        self._after_change(node)
        self._reopen_children(node)

    def show_failure(self, server: str, dbname: str | None, error: str) -> None:
        """Put the reason on the node and close it; opening it again retries."""
        node = self._server_nodes.get(server) if dbname is None else self._database_nodes.get((server, dbname))
        if node is None or not isinstance(node.data, (ServerEntry, DatabaseEntry)):
            return
        node.data.status, node.data.error = FAILED, error
        node.remove_children()
        node.collapse()
        self._after_change(node)

    def reload(self, server: str, dbname: str | None = None) -> None:
        """Load a server or database again; what was open below it opens again as it arrives, the
        cursor goes back to its node, and the checks stay (minus tables that are gone)."""
        node = self._server_nodes.get(server) if dbname is None else self._database_nodes.get((server, dbname))
        if node is None:
            return
        self._reopen |= open_keys(node)
        self._reshow |= tables_shown(node)
        self._cursor_key = node_key(self.cursor_node.data) if self.cursor_node is not None else None
        if dbname is None:
            self._forget_server(server, keep_checks=True)
        node.expand()
        self._start_load(node)

    def load_idle_servers(self) -> None:
        """Connect to every server not loaded yet (closed), so each shows its version or its error."""
        for node in self._server_nodes.values():
            if isinstance(node.data, ServerEntry) and node.data.status == IDLE:
                self._start_load(node)

    # -- reading -----------------------------------------------------------------------------
    def is_open(self, server: str, dbname: str | None = None) -> bool:
        """Whether the user has opened this server or database (a prompt then makes sense)."""
        node = self._server_nodes.get(server) if dbname is None else self._database_nodes.get((server, dbname))
        return node is not None and node.is_expanded

    @property
    def selection(self) -> Selection | None:
        """What is checked, or None."""
        entry = self.database_entry(*self._checks.database) if self._checks.database else None
        return self._checks.selection(entry.info.size_bytes if entry is not None else None)

    def server_entry(self, name: str) -> ServerEntry | None:
        node = self._server_nodes.get(name)
        return node.data if node is not None and isinstance(node.data, ServerEntry) else None

    def database_entry(self, server: str, dbname: str) -> DatabaseEntry | None:
        node = self._database_nodes.get((server, dbname))
        return node.data if node is not None and isinstance(node.data, DatabaseEntry) else None

    def focus_info(self) -> TreeFocus:
        """The cursor's object and its ancestors."""
        found: dict[str, object] = {}
        node = self.cursor_node
        while node is not None:
            data = node.data
            for slot, kind in (("server", ServerEntry), ("database", DatabaseEntry), ("schema", SchemaEntry),
                               ("table", TableEntry), ("hint", HintEntry)):
                if isinstance(data, kind):
                    found[slot] = data
            node = node.parent
        return TreeFocus(**found)  # type: ignore[arg-type]

    # -- events ------------------------------------------------------------------------------
    def on_tree_node_expanded(self, event: Tree.NodeExpanded[NodeEntry]) -> None:
        node, data = event.node, event.node.data
        if isinstance(data, (ServerEntry, DatabaseEntry)) and data.status in (IDLE, FAILED):
            self._start_load(node)
        elif isinstance(data, SchemaEntry) and not node.children:
            # A page at a time: a schema of 10,000 tables must not freeze the UI (batched_tree.py).
            count = self._reshow.pop(node_key(data) or (), self.page_size)
            self._show_tables(node, data, 0, max(count, self.page_size))
            self._reopen_children(node)

    def on_tree_node_selected(self, event: Tree.NodeSelected[NodeEntry]) -> None:
        if isinstance(event.node.data, MoreEntry):
            self._next_page(event.node)

    def _show_tables(self, node: TreeNode[NodeEntry], schema: SchemaEntry, start: int, count: int,
                     replacing: TreeNode[NodeEntry] | None = None) -> None:
        """Tables start..start+count of the schema under its node, and a "… more" line for the rest."""
        self.add_page(node, schema.tables, start, count,
                      lambda table: (table.name, TableEntry(schema.server, schema.dbname, table)),
                      lambda shown: ("…", MoreEntry(schema, shown, self.page_size)), replacing=replacing)

    def _next_page(self, more: TreeNode[NodeEntry]) -> None:
        entry = more.data
        if isinstance(entry, MoreEntry) and more.parent is not None:
            self._show_tables(more.parent, entry.schema, entry.shown, entry.page, replacing=more)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[NodeEntry]) -> None:
        self.refresh_bindings()  # "Select" applies to some nodes only
        self.post_message(self.CursorMoved(self.focus_info()))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if under_a_dialog(self):
            return False  # the dialog takes these keys: not in the footer left in view under it
        if action == "toggle_check":
            data = self.cursor_node.data if self.cursor_node is not None else None
            checkable = isinstance(data, (SchemaEntry, TableEntry)) or (
                isinstance(data, DatabaseEntry) and data.info.allow_connections
            )
            return True if checkable else None
        return True

    def action_open_node(self) -> None:
        node = self.cursor_node
        if node is not None and isinstance(node.data, MoreEntry):
            self._next_page(node)
        elif node is not None and node.allow_expand:
            if node.is_expanded and node.children:
                self.move_cursor(node.children[0])
            else:
                node.expand()

    def action_close_node(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded:
            node.collapse()
        elif node.parent is not None and not node.parent.is_root:
            self.move_cursor(node.parent)

    def action_toggle_check(self) -> None:
        data = self.cursor_node.data if self.cursor_node is not None else None
        if isinstance(data, DatabaseEntry):
            self._apply(self._checks.toggle_database(data.key))
        elif isinstance(data, SchemaEntry):
            self._toggle_tables(data.server, data.dbname, data.tables)
        elif isinstance(data, TableEntry):
            self._toggle_tables(data.server, data.dbname, (data.info,))

    # -- check marks -------------------------------------------------------------------------
    def _toggle_tables(self, server: str, dbname: str, tables: tuple[TableInfo, ...]) -> None:
        entry = self.database_entry(server, dbname)
        every_table = entry.snapshot.tables if entry is not None and entry.snapshot is not None else ()
        self._apply(self._checks.toggle_tables((server, dbname), tables, every_table))

    def _apply(self, checks: Checks) -> None:
        """Adopt new checks, saying so when they replace another database's or a whole one."""
        before, previous = self._checks, self.selection
        if previous is not None and checks.database not in (None, before.database):
            self.notify(f"Selection is per database: unselected {previous.describe()}", title="Selection replaced")
        elif before.whole and before.database is not None and checks.database == before.database and not checks.whole:
            self.notify(f"{before.database[1]}: now a selection of tables, not the whole database")
        self._set_checks(checks)

    def _set_checks(self, checks: Checks) -> None:
        touched = {self._checks.database, checks.database} - {None}
        self._checks = checks
        for key in touched:
            node = self._database_nodes.get(key)  # type: ignore[arg-type]
            if node is not None:
                node.refresh()  # its children's lines are cached under its update count too
        self.refresh()
        self.post_message(self.SelectionChanged(self.selection))

    def _forget_server(self, name: str, *, keep_checks: bool = False) -> None:
        """Drop the database nodes' index (and, unless kept, the check marks) of a server."""
        for key in [key for key in self._database_nodes if key[0] == name]:
            del self._database_nodes[key]
        if not keep_checks and self._checks.database is not None and self._checks.database[0] == name:
            self._set_checks(Checks())

    def _reopen_children(self, node: TreeNode[NodeEntry]) -> None:
        """After a reload: open the children that were open before, put the cursor back."""
        for child in node.children:
            key = node_key(child.data)
            if key in self._reopen:
                self._reopen.discard(key)
                child.expand()
        if self._cursor_key is not None:
            self.call_after_refresh(self._restore_cursor)

    def _restore_cursor(self) -> None:
        for line in range(self.last_line + 1):
            node = self.get_node_at_line(line)
            if node is not None and node_key(node.data) == self._cursor_key:
                self._cursor_key = None
                self.move_cursor(node)
                return

    # -- internals ---------------------------------------------------------------------------
    def _start_load(self, node: TreeNode[NodeEntry]) -> None:
        data = node.data
        assert isinstance(data, (ServerEntry, DatabaseEntry))
        data.status, data.error = LOADING, None
        node.remove_children()
        self._add_hint(node, HintEntry("loading…"))
        self._after_change(node)
        if isinstance(data, ServerEntry):
            self.post_message(self.LoadRequested(data.name, None))
        else:
            self.post_message(self.LoadRequested(data.server, data.info.name))

    @staticmethod
    def _add_hint(parent: TreeNode[NodeEntry], hint: HintEntry) -> None:
        parent.add_leaf(Text(hint.text), hint)

    def _remove_hints(self) -> None:
        for child in list(self.root.children):
            if isinstance(child.data, HintEntry):
                child.remove()

    def _after_change(self, node: TreeNode[NodeEntry]) -> None:
        node.refresh()
        if node is self.cursor_node:
            self.post_message(self.CursorMoved(self.focus_info()))

    def render_label(self, node: TreeNode[NodeEntry], base_style: Style, style: Style) -> Text:
        icon = ""
        if node.allow_expand:
            icon = self.ICON_NODE_EXPANDED if node.is_expanded else self.ICON_NODE
        width = self.label_room(node, icon)  # figures give way to the name
        line = describe_entry(node.data, self._checks, self._part_style)
        label = line.fit(width) if width > 0 else line.plain()
        label.stylize(style)
        if icon:
            return Text.assemble((icon, base_style + Style(bold=True)), label)
        return label

    def describe(self, data: NodeEntry | None) -> Text:
        """The node's whole line (name, two spaces, figures), built at render time so check marks
        and theme colours stay current."""
        return describe_entry(data, self._checks, self._part_style).plain()

    def _part_style(self, part: str) -> Style:
        # Labels are also measured while the tree is built, which can come before CSS is applied.
        try:
            return self.get_component_rich_style(f"server-tree--{part}", partial=True)
        except KeyError:
            return Style()
