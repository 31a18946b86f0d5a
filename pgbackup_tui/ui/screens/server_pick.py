"""Pick a server for a drill: which one gets the scratch database (default: the backup's own)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Select, Static

from .plan_dialog import PlanDialog
from ..plain_text import plain


class ServerPick(PlanDialog[str]):
    """Ask which server; dismisses with its name (Enter / Start) or None (Escape)."""

    DEFAULT_CSS = """
    ServerPick { align: center middle; }
    ServerPick > #pick-box {
        width: 70; max-width: 100%; height: auto; padding: 0 1;
        border: thick $primary; border-title-color: $text; background: $surface;
    }
    ServerPick #pick-question { height: auto; margin-top: 1; }
    ServerPick #pick-server { width: 100%; margin-top: 1; }
    ServerPick #pick-buttons { height: 1; margin-top: 1; align-horizontal: right; }
    ServerPick #pick-buttons Button { margin-left: 2; }
    """

    BINDINGS = [
        Binding("enter", "start", "Start", id="server_pick.start", priority=True),
        Binding("escape", "cancel", "Cancel", id="server_pick.cancel"),
    ]

    def __init__(self, title: str, question: str, servers: list[str], default: str | None) -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.servers = servers
        self.default = default if default in servers else (servers[0] if servers else None)

    def compose(self) -> ComposeResult:
        with Vertical(id="pick-box") as box:
            box.border_title = plain(self.title_text)
            yield Static(self.question, id="pick-question", markup=False)
            yield Select([(name, name) for name in self.servers], value=self.default or Select.NULL,
                         allow_blank=self.default is None, compact=True, id="pick-server")
            with Horizontal(id="pick-buttons"):
                yield Button("Start", variant="primary", compact=True, id="pick-start")
                yield Button("Cancel", compact=True, id="pick-cancel")

    @property
    def chosen(self) -> str | None:
        value = self.query_one("#pick-server", Select).value
        return None if value is Select.NULL else str(value)

    @property
    def can_start(self) -> bool:
        return self.chosen is not None

    def action_start(self) -> None:
        if self.chosen is not None:
            self.dismiss(self.chosen)
