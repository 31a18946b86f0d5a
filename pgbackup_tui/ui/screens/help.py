"""`?`: what the keys do, read from the live bindings (so a remapped key shows as remapped)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..keymap import key_name

# How the app works; {names} are the keys of those binding ids, as remapped by the user.
ABOUT = (
    "↑ ↓ move, enter or {tree.open} opens a server, database or schema (loading what it holds), {tree.close} closes. "
    "{tree.toggle-check} checks a table, a schema or a whole database: one database at a time, because "
    "one backup is one database. {app.backup} backs up the database under the cursor: what is checked in "
    "it, or all of it. Jobs run side by side, each in a process of its own: they go on when you quit or "
    "the terminal closes. The Jobs tab shows them, also those the CLI or cron started, and streams their "
    "logs. In the backup dialog enter starts the backup from any field (space or ↓ opens a drop-down), esc "
    "closes it. Passwords you type are kept in memory only. ctrl+p opens the command palette: every action, by name."
)
ABOUT_KEYS = ("tree.open", "tree.close", "tree.toggle-check", "app.backup")


class HelpScreen(ModalScreen[None]):
    """A list of (keys, what they do) and a paragraph on how the app works; any of esc/q/? closes."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > #help-dialog {
        width: 80;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    /* Docked: the list's max-height of 100% is then what is left under the title. In the flow,
       the list was as tall as the whole dialog and its last lines fell below it. */
    HelpScreen #help-title { text-style: bold; color: $text-primary; dock: top; }
    HelpScreen #help-about { color: $text-muted; margin-bottom: 1; }
    HelpScreen > #help-dialog > VerticalScroll { height: auto; max-height: 100%; }
    HelpScreen > .help-screen--key { color: $text-accent; text-style: bold; }
    """
    COMPONENT_CLASSES = {"help-screen--key"}
    BINDINGS = [
        Binding("escape,q,question_mark", "close", "Close", id="help.close"),
    ]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        """`keys`: (key as shown, description) pairs, in the order to list them."""
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            yield Static("pgbackup-tui keys  (esc closes; ↑ ↓ scroll)", id="help-title")
            with VerticalScroll():
                about = ABOUT
                for binding_id in ABOUT_KEYS:
                    about = about.replace("{" + binding_id + "}", key_name(self.app, binding_id))
                yield Static(about, id="help-about", markup=False)
                yield Static(id="help-keys")

    def on_mount(self) -> None:
        key_style = self.get_component_rich_style("help-screen--key", partial=True)
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True, style=key_style)
        grid.add_column()
        for key, description in self.keys:
            grid.add_row(Text(key), Text(description))
        self.query_one("#help-keys", Static).update(grid)

    def action_close(self) -> None:
        self.dismiss(None)
