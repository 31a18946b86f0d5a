"""Ask for a server's password: masked, kept in memory by the app, never written anywhere."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class PasswordPrompt(ModalScreen[str | None]):
    """Dismisses with the typed password (Enter / OK) or None (Escape / Cancel)."""

    DEFAULT_CSS = """
    PasswordPrompt { align: center middle; }
    PasswordPrompt > #password-dialog {
        width: 64;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        padding: 1 2;
        border: thick $primary;
        background: $surface;
    }
    PasswordPrompt #password-title { text-style: bold; }
    PasswordPrompt #password-reason { color: $text-error; margin-bottom: 1; }
    PasswordPrompt #password-note { color: $text-muted; }
    PasswordPrompt #password-buttons { height: auto; align-horizontal: right; margin-top: 1; }
    PasswordPrompt #password-buttons Button { margin-left: 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="password.cancel")]

    def __init__(self, server: str, where: str, reason: str) -> None:
        super().__init__()
        self.server = server
        self.where = where
        self.reason = reason

    def compose(self) -> ComposeResult:
        with Vertical(id="password-dialog"):
            yield Static(f"Password for server {self.server} ({self.where})", id="password-title", markup=False)
            yield Static(self.reason, id="password-reason", markup=False)
            yield Input(password=True, placeholder="password", id="password-input")
            yield Static("Kept in memory for this session only; never saved.", id="password-note")
            with Horizontal(id="password-buttons"):
                yield Button("OK", variant="primary", id="password-ok")
                yield Button("Cancel", id="password-cancel")

    @on(Input.Submitted, "#password-input")
    @on(Button.Pressed, "#password-ok")
    def _submit(self) -> None:
        self.dismiss(self.query_one("#password-input", Input).value)

    @on(Button.Pressed, "#password-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
