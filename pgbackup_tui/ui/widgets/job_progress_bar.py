"""The Jobs pane's progress bar: Textual's bar and a percentage, drawn by one widget with no timer.

Textual's ProgressBar is three widgets (the bar, the percentage, the ETA), and while the total is
unknown its bar animates on a timer of its own (15 frames a second). At every frame of a running
job the bar and the percentage were painted apart: 2.2 ms of the app's CPU a frame, the most of
any widget of the Jobs pane, and the animation added frames of its own between the pane's
(scripts/bench_tui.py, a dump of 10,000 tables). This widget draws the same line (Textual's bar
renderable and colours, the percentage right-aligned after it) in one render. It has no timer: while
the size is unknown (pg_dump still reading the catalog), the pane moves the block at each of its
frames (step()), in the same repaint as the figures. It draws its line itself (Textual's Line API:
the Text's segments in a Strip): through render() Textual made the one line of Text into a visual
and laid it out at each frame, 1.3 ms of a 13 ms compositor pass at half the reference's pace.
"""

from __future__ import annotations

import time
from typing import cast

from rich.style import Style
from rich.text import Text
from textual.renderables.bar import Bar as BarRenderable
from textual.strip import Strip
from textual.widget import Widget

BAR_WIDTH = 32  # Textual's bar
PERCENT_WIDTH = 5  # " 100%"
BLOCK_SPEED = 12  # cells a second: at the pane's 2.5 frames a second, a step of about 5 cells
UNCHANGED = object()  # update()'s default: the total as it is


class JobProgressBar(Widget):
    """A bar of BAR_WIDTH cells, then the percentage ("--%" while the total is unknown)."""

    COMPONENT_CLASSES = {"job-progress-bar--bar", "job-progress-bar--complete", "job-progress-bar--indeterminate"}
    DEFAULT_CSS = f"""
    JobProgressBar {{ height: 1; width: {BAR_WIDTH + PERCENT_WIDTH}; }}
    JobProgressBar > .job-progress-bar--bar {{ color: $primary; background: $surface; }}
    JobProgressBar > .job-progress-bar--complete {{ color: $success; background: $surface; }}
    JobProgressBar > .job-progress-bar--indeterminate {{ color: $error; background: $surface; }}
    """

    def __init__(self, total: float | None = 100, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.total = total
        self.progress = 0.0
        self._since = time.monotonic()  # the indeterminate block's clock

    @property
    def percentage(self) -> float | None:
        """The fraction done, 0 to 1; None while the total is unknown."""
        if self.total is None:
            return None
        return 1.0 if self.total <= 0 else max(0.0, min(1.0, self.progress / self.total))

    def update(self, *, total: float | None | object = UNCHANGED, progress: float | None = None) -> None:
        """Set the total (None: unknown) and the progress, each if given (as Textual's ProgressBar.update);
        repaint when either changed."""
        total = self.total if total is UNCHANGED else cast("float | None", total)
        progress = self.progress if progress is None else progress
        if (total, progress) != (self.total, self.progress):
            if total is None and self.total is not None:
                self._since = time.monotonic()  # the block starts from the left
            self.total, self.progress = total, progress
            self.refresh()

    def step(self) -> None:
        """Move the indeterminate block to where the time says (nothing when the total is known)."""
        if self.total is None:
            self.refresh()

    def render_line(self, y: int) -> Strip:
        width, style = self.size.width, self.rich_style
        if y:
            return Strip.blank(width, style)
        text = self.bar_text()
        return Strip(text.render(self.app.console), text.cell_len).adjust_cell_length(width).apply_style(style)

    def bar_text(self) -> Text:
        """The line as it is now: the bar's cells, then the percentage."""
        percentage = self.percentage
        if percentage is None:
            style = self.get_component_rich_style("job-progress-bar--indeterminate")
            start, end = self._block(BAR_WIDTH)
            label = "--%"
        else:
            style = self.get_component_rich_style(
                "job-progress-bar--bar" if percentage < 1 else "job-progress-bar--complete")
            start, end = 0.0, BAR_WIDTH * percentage
            label = f"{round(100 * percentage)}%"
        bar = BarRenderable(highlight_range=(start, end), highlight_style=Style.from_color(style.color),
                            background_style=Style.from_color(style.bgcolor), width=BAR_WIDTH)
        console = self.app.console
        line = Text("", end="")
        for part in bar.__rich_console__(console, console.options):  # one Text: the bar's cells
            if isinstance(part, Text):
                line.append_text(part)
        line.append(label.rjust(PERCENT_WIDTH))
        return line

    def _block(self, width: int) -> tuple[float, float]:
        """Where the moving block is: Textual's animation (back and forth, into the corners), slower."""
        if self.app.animation_level == "none":
            return 0.0, float(width)
        block = 0.25 * width
        span = width + block
        start = (BLOCK_SPEED * (time.monotonic() - self._since)) % (2 * span)
        if start > span:
            start = 2 * span - start
        start -= block
        return max(0.0, start), min(start + block, float(width))
