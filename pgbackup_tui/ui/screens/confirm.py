"""A yes/no question as a modal screen; destructive ones ask for the object's name first."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class ConfirmScreen(ModalScreen[bool]):
    """Ask `question`; dismisses True for yes, False for no or Escape.

    With `require_text` (e.g. a database name) "yes" only works once the user has typed that
    text exactly: a reflexive `y` must not drop a database.
    """

    DEFAULT_CSS = """
    ConfirmScreen {
        align: center middle;
    }
    ConfirmScreen > #confirm-dialog {
        width: 64;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        padding: 1 2;
        border: thick $primary;
        background: $surface;
    }
    ConfirmScreen #confirm-question {
        width: 100%;
        margin-bottom: 1;
    }
    ConfirmScreen #confirm-hint {
        color: $text-muted;
    }
    ConfirmScreen #confirm-hint.-mistyped {
        color: $error;
    }
    ConfirmScreen #confirm-text {
        margin-bottom: 1;
    }
    ConfirmScreen #confirm-buttons {
        height: auto;
        align-horizontal: right;
    }
    ConfirmScreen #confirm-buttons Button {
        margin-left: 2;
    }
    """

    BINDINGS = [
        Binding("y", "confirm", "Yes", id="confirm.yes"),
        Binding("n", "deny", "No", id="confirm.no"),
        Binding("escape", "deny", "Cancel", id="confirm.cancel"),
    ]

    def __init__(self, question: str, require_text: str | None = None) -> None:
        super().__init__()
        self.question = question
        self.require_text = require_text

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            # markup=False: questions name tables and databases, which may contain brackets.
            yield Static(self.question, id="confirm-question", markup=False)
            if self.require_text is not None:
                yield Static(self._hint, id="confirm-hint", markup=False)
                yield Input(placeholder=self.require_text, id="confirm-text")
            with Horizontal(id="confirm-buttons"):
                yield Button("Yes", variant="error" if self.require_text else "primary", id="confirm-yes",
                             disabled=self.require_text is not None)
                yield Button("No", id="confirm-no")

    def on_mount(self) -> None:
        if self.require_text is not None:
            self.query_one("#confirm-text", Input).focus()
        else:
            self.query_one("#confirm-no", Button).focus()

    @property
    def _hint(self) -> str:
        return f"Type {self.require_text} to confirm:"

    @property
    def text_matches(self) -> bool:
        """True when no text is required or the typed text is exactly the required one."""
        if self.require_text is None:
            return True
        return self.query_one("#confirm-text", Input).value == self.require_text

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "confirm":
            return self.text_matches
        return True

    @on(Input.Changed, "#confirm-text")
    def _text_changed(self) -> None:
        self.query_one("#confirm-yes", Button).disabled = not self.text_matches
        hint = self.query_one("#confirm-hint", Static)
        if hint.has_class("-mistyped"):  # typing again: back to the plain hint
            hint.remove_class("-mistyped")
            hint.update(self._hint)
        self.refresh_bindings()

    @on(Input.Submitted, "#confirm-text")
    def _text_submitted(self, event: Input.Submitted) -> None:
        if not self.text_matches:
            # Enter on a mistyped word did nothing, without a word: say why nothing happens.
            typed = event.value.strip() or "nothing"
            hint = self.query_one("#confirm-hint", Static)
            hint.update(f"{typed!r} is not {self.require_text}: type {self.require_text} exactly, or Esc to cancel")
            hint.add_class("-mistyped")
            return
        self.action_confirm()

    @on(Button.Pressed, "#confirm-yes")
    def _yes_pressed(self) -> None:
        self.action_confirm()

    @on(Button.Pressed, "#confirm-no")
    def _no_pressed(self) -> None:
        self.action_deny()

    def action_confirm(self) -> None:
        if self.text_matches:
            self.dismiss(True)

    def action_deny(self) -> None:
        self.dismiss(False)
