"""Toasts (App.notify) that fit an 80x24 terminal: brief, short-lived, and few at a time.

A toast is drawn over the screen, bottom right, and Textual lets it stay as long as its caller
asks. At 80x24 that was a third of the screen for 20 s and more: a job's result (a backup's whole
path) over four or five lines, several toasts stacked. Here, for every toast the app raises:

- it stays TIMEOUT_S of its severity at most (a caller may ask for less): a few seconds for
  information, longer for a warning, longest for an error;
- its title is one line; its message is whole, unless the caller says that the whole text is on
  screen or in a log already (`lines`: the Jobs tab has a job's result): then it is cut to that
  many lines, with "…";
- at most stacked_toasts(rows) are shown at once (2 at 24 rows): a new one pushes the oldest
  out, an information before a warning, a warning before an error;
- its text is plain (markup off): messages quote paths, SQL and config keys ("[servers.x]"),
  whose brackets would be taken for markup.

app.tcss sets the toast's box (TOAST_WIDTH, half the screen at most, no padding above and below)
so that the cut here matches the lines the toast shows.
"""

from __future__ import annotations

import textwrap

from textual.app import App
from textual.notifications import Notify, SeverityLevel

TIMEOUT_S: dict[SeverityLevel, float] = {"information": 4.0, "warning": 10.0, "error": 15.0}
TOAST_WIDTH = 60  # app.tcss: Toast's width, at most half the screen's
TOAST_FRAME = 3  # its left border and one cell of padding each side (app.tcss)
RACK_SCROLLBAR = 2  # the room Textual's ToastRack keeps for its scrollbar: the half is of what is left
SEVERITY_RANK: dict[SeverityLevel, int] = {"information": 0, "warning": 1, "error": 2}  # pushed out in this order
ROWS_PER_TOAST = 12  # one toast stacked for every this many rows of terminal: 2 at 24 rows


def text_width(screen_width: int) -> int:
    """The cells a toast's line holds on a screen `screen_width` cells wide."""
    return max(10, min(TOAST_WIDTH, (screen_width - RACK_SCROLLBAR) // 2) - TOAST_FRAME)


def stacked_toasts(screen_height: int) -> int:
    """How many toasts are shown at once on a screen `screen_height` rows high (1 at least)."""
    return max(1, screen_height // ROWS_PER_TOAST)


def cut_to_lines(text: str, width: int, lines: int) -> str:
    """`text` wrapped at `width` cells (long words folded, as the toast folds a path), its first
    `lines` lines, the last ending with "…" when some are left out."""
    wrapped = [part for line in text.splitlines() or [""]
               for part in textwrap.wrap(line, width, break_on_hyphens=False, replace_whitespace=False) or [""]]
    if len(wrapped) <= lines:
        return "\n".join(wrapped)
    kept = wrapped[:lines]
    kept[-1] = kept[-1][:width - 1].rstrip() + "…"
    return "\n".join(kept)


class ToastsApp(App[int]):
    """App.notify as the module docstring says; the app's other parts call notify as usual."""

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False, lines: int | None = None) -> None:
        """App.notify, its toast kept brief (see the module docstring); `lines`: cut the message to
        that many lines, for a text the user has in full elsewhere (None: whole)."""
        width = text_width(self.size.width)
        longest = TIMEOUT_S[severity]
        super().notify(message if lines is None else cut_to_lines(message, width, lines),
                       title=cut_to_lines(title, width, 1), severity=severity,
                       timeout=longest if timeout is None else min(timeout, longest), markup=markup)

    def on_notify(self, event: Notify) -> None:
        # Called before App's own handler (Textual calls a subclass's first), which then shows the
        # new toast: make room for it here. Private API: Textual has no public way to drop one toast.
        shown = list(self._notifications)
        extra = len(shown) + 1 - stacked_toasts(self.size.height)
        if extra > 0:
            least_first = sorted(shown, key=lambda toast: SEVERITY_RANK[toast.severity])  # stable: oldest first
            for notification in least_first[:extra]:
                self._unnotify(notification, refresh=False)  # App's handler refreshes the toasts
