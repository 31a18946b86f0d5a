"""Before anything is written into the user's crontab (or unit dir): the exact lines, and y / n.

The lines are shown as written, unwrapped: at 80 columns a crontab line is cut before the schedule
it runs (`… -m pgbackup_tui run nightly >/dev/null`). The lines have the focus, so that ← / →
scroll them at once (with the No button focused no key scrolled them), and the row of buttons says so.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class CrontabConfirm(ModalScreen[bool]):
    """Shows `question` and `lines` (unwrapped, scrollable both ways); True for yes."""

    DEFAULT_CSS = """
    CrontabConfirm { align: center middle; }
    CrontabConfirm > #crontab-dialog {
        width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    CrontabConfirm #crontab-question { margin-bottom: 1; }
    CrontabConfirm #crontab-lines {
        height: auto;
        max-height: 14;
        background: $boost;
        overflow-x: auto;
    }
    CrontabConfirm #crontab-lines Static { width: auto; }
    CrontabConfirm #crontab-buttons { height: auto; align-horizontal: right; }
    CrontabConfirm #crontab-hint { width: 1fr; height: 3; content-align: left middle; color: $text-muted; }
    CrontabConfirm #crontab-buttons Button { margin-left: 2; }
    """
    BINDINGS = [
        Binding("y", "confirm", "Yes, write", id="crontab-confirm.yes"),
        Binding("n", "deny", "No", id="crontab-confirm.no"),
        Binding("escape", "deny", "Cancel", id="crontab-confirm.cancel"),
    ]

    def __init__(self, question: str, lines: str) -> None:
        super().__init__()
        self.question = question
        self.lines = lines

    def compose(self) -> ComposeResult:
        with Vertical(id="crontab-dialog"):
            yield Static(self.question, id="crontab-question", markup=False)
            with VerticalScroll(id="crontab-lines"):
                yield Static(self.lines, id="crontab-text", markup=False)
            with Horizontal(id="crontab-buttons"):
                yield Static("←/→ scroll the lines", id="crontab-hint", markup=False)
                yield Button("Write", variant="primary", id="crontab-yes")
                yield Button("No", id="crontab-no")

    def on_mount(self) -> None:
        # Not a button: Enter writes nothing, and the arrows read the lines whole.
        self.query_one("#crontab-lines", VerticalScroll).focus()

    @on(Button.Pressed, "#crontab-yes")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#crontab-no")
    def action_deny(self) -> None:
        self.dismiss(False)
