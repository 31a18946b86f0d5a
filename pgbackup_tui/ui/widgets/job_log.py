"""A job's log: raw subprocess text (no markup, ever), each line coloured by its level.

Log, not RichLog: Log renders lines lazily and never parses markup, so pg_dump's output (table
names may hold brackets) stays what it was. Log has no per-line style, so the level of every
line is kept alongside it and applied when the line is drawn, from component classes that use
the theme's colours.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import Log

LOG_LINES_KEPT = 5_000


class JobLog(Log):
    """A Log (no markup: raw subprocess text stays raw) that colours each line by its level."""

    COMPONENT_CLASSES = {"job-log--error", "job-log--warning", "job-log--command"}
    DEFAULT_CSS = """
    JobLog > .job-log--error {
        color: $error;
        text-style: bold;
    }
    JobLog > .job-log--warning {
        color: $warning;
    }
    JobLog > .job-log--command {
        color: $accent;
    }
    """
    STYLED_LEVELS = ("error", "warning", "command")

    def __init__(self, *, max_lines: int = LOG_LINES_KEPT, id: str | None = None) -> None:
        super().__init__(highlight=False, max_lines=max_lines, id=id)
        # One level per line, pruned with the lines: Log drops its oldest lines past max_lines
        # and the deque drops its oldest past the same length.
        self._levels: deque[str] = deque(maxlen=max_lines)

    def write_levelled(self, lines: Iterable[tuple[str, str]]) -> None:
        """Append (text, level) lines, one log line each."""
        texts: list[str] = []
        for text, level in lines:
            # Log drops empty lines and splits on line breaks; keep one line per entry so
            # that the levels stay aligned with the lines.
            for part in text.splitlines() or [""]:
                texts.append(part or " ")
                self._levels.append(level)
        if not texts:
            return
        # Follow the end unless the user scrolled up. Log's own auto-scroll decides before its
        # width (and so its scrollbar) is known and can stop one line short; scrolling after the
        # refresh, when the size has settled, does not.
        follow = self.auto_scroll and self.scroll_y >= self.max_scroll_y - 1
        self.write_lines(texts, scroll_end=False)
        if follow:
            self.scroll_end(animate=False)

    def clear(self) -> JobLog:
        self._levels.clear()
        return super().clear()

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        index = self.scroll_offset.y + y
        if 0 <= index < len(self._levels) and self._levels[index] in self.STYLED_LEVELS:
            style = self.get_component_rich_style(f"job-log--{self._levels[index]}", partial=True)
            # post_style: drawn over the line's own colour, which Log sets from $text.
            strip = Strip(Segment.apply_style(iter(strip), post_style=style), strip.cell_length)
        return strip
