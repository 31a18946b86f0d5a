"""Quitting while jobs run: they go on in their runners, unless the user cancels them first."""

from __future__ import annotations

from typing import Literal

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

QuitChoice = Literal["leave", "cancel"]


def quit_question(running: int, server_stops: str | None = None) -> str:
    """'2 jobs still running: they go on in the background (...). Quit?'; with `server_stops`
    (the demo's sandbox, stopped with the app), that the jobs on it fail."""
    if server_stops is not None:
        them = "it" if running == 1 else "them"
        return (f"{running} job(s) still running, and server '{server_stops}' stops when you quit (it is the "
                f"demo's sandbox): a job on it fails then. Quit anyway, or cancel {them} first?")
    if running == 1:
        return "1 job still running: it goes on in the background (pgbackup-tui jobs list). Quit?"
    return f"{running} jobs still running: they go on in the background (pgbackup-tui jobs list). Quit?"


class QuitScreen(ModalScreen[QuitChoice | None]):
    """Ask before quitting with `running` jobs of this session still running.

    Dismisses "leave" (y: quit, the jobs go on), "cancel" (c: cancel them, wait for their
    cleanup, then quit) or None (n, Escape: stay).
    """

    DEFAULT_CSS = """
    QuitScreen {
        align: center middle;
    }
    QuitScreen > #quit-dialog {
        width: 70;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        padding: 1 2;
        border: thick $primary;
        background: $surface;
    }
    QuitScreen #quit-question {
        width: 100%;
    }
    QuitScreen #quit-hint {
        width: 100%;
        margin-bottom: 1;
        color: $text-muted;
    }
    QuitScreen #quit-buttons {
        height: auto;
        align-horizontal: right;
    }
    QuitScreen #quit-buttons Button {
        margin-left: 1;
    }
    """

    BINDINGS = [
        Binding("y", "leave", "Quit, jobs go on", id="quit.leave"),
        Binding("c", "cancel_jobs", "Cancel jobs and quit", id="quit.cancel-jobs"),
        Binding("n", "stay", "Stay", id="quit.stay"),
        Binding("escape", "stay", "Stay", show=False, id="quit.escape"),
    ]

    def __init__(self, running: int, server_stops: str | None = None) -> None:
        super().__init__()
        self.running = running
        self.server_stops = server_stops

    def compose(self) -> ComposeResult:
        them = "it" if self.running == 1 else "them"
        with Vertical(id="quit-dialog"):
            yield Static(quit_question(self.running, self.server_stops), id="quit-question", markup=False)
            yield Static(f"y: quit · c: cancel {them} first, then quit · n: stay",
                         id="quit-hint", markup=False)
            with Horizontal(id="quit-buttons"):
                yield Button("Quit", variant="primary", id="quit-leave")
                yield Button("Cancel jobs, quit", variant="error", id="quit-cancel")
                yield Button("Stay", id="quit-stay")

    def on_mount(self) -> None:
        self.query_one("#quit-stay", Button).focus()  # a reflexive Enter changes nothing

    @on(Button.Pressed, "#quit-leave")
    def action_leave(self) -> None:
        self.dismiss("leave")

    @on(Button.Pressed, "#quit-cancel")
    def action_cancel_jobs(self) -> None:
        self.dismiss("cancel")

    @on(Button.Pressed, "#quit-stay")
    def action_stay(self) -> None:
        self.dismiss(None)
