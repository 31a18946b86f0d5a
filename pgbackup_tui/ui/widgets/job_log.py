"""A job's log: raw subprocess text (no markup, ever), each line coloured by its level.

Log, not RichLog: Log renders lines lazily and never parses markup, so pg_dump's output (table
names may hold brackets) stays what it was. Log has no per-line style, so the level of every
line is kept alongside it and applied when the line is drawn, from component classes that use
the theme's colours.

Lines longer than the pane are wrapped (continuations indented), so that no part of a line is
out of sight (pg_dump's errors are long, the pane at 80 columns is not): the log keeps the lines
as written and wraps them again when its width changes.

Its size is the pane's (height 1fr), whatever it holds: lines written change its scrollbar, not
the layout of the screen. Log's virtual size asks for a relayout of the whole screen at every
change (about 10 ms with the app's widgets; two per write, the lines and then their width, which
Log measures in a thread of its own per write): here a change updates the scrollbars only, and the
rows, wrapped to the view as they are written, are as wide as the view.

The view keeps the last LOG_LINES_KEPT rows (pg_dump --verbose writes about four lines a table:
a dump of 10,000 tables, 40,000 lines), so its memory is bounded whatever the log's length; the
file on disk has every line. Once the view is full, its first row says so.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from pathlib import Path

from rich.cells import cell_len, chop_cells
from rich.segment import Segment
from textual import events
from textual.geometry import Size
from textual.reactive import Reactive
from textual.strip import Strip
from textual.widgets import Log

from .style_once import StyleOncePerRender

LOG_LINES_KEPT = 5_000
CONTINUATION = "  "  # the start of a wrapped line's continuation rows


class JobLog(StyleOncePerRender, Log):
    """A Log (no markup: raw subprocess text stays raw) that colours each line by its level; its style
    computed once a render (a write scrolls every row of the view)."""

    COMPONENT_CLASSES = {"job-log--error", "job-log--warning", "job-log--command", "job-log--note"}
    DEFAULT_CSS = """
    JobLog {
        /* Lines are wrapped to the view: Log's overflow (scroll) kept an empty sideways scrollbar,
           whose track took the log's last row. Auto: a view too narrow to wrap still scrolls. */
        overflow-x: auto;
    }
    JobLog > .job-log--note {
        color: $text-muted;
        text-style: italic;
    }
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
    # Widget's, without layout=True: the log's own size does not follow what it holds (see the top).
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

    def __init__(self, *, max_lines: int = LOG_LINES_KEPT, id: str | None = None) -> None:
        super().__init__(highlight=False, max_lines=max_lines, id=id)
        # One level per line, pruned with the lines: Log drops its oldest lines past max_lines
        # and the deque drops its oldest past the same length.
        self._levels: deque[str] = deque(maxlen=max_lines)
        self._written: deque[tuple[str, str]] = deque(maxlen=max_lines)  # as written, before wrapping
        self._wrap_width = 0
        self._end_seen = 0  # max_scroll_y as of the last write or resize: where "at the end" was
        self.log_path: Path | None = None  # the file with every line, named in the note once the view is full

    def write_levelled(self, lines: Iterable[tuple[str, str]], *, follow: bool | None = None) -> None:
        """Append (text, level) lines, each wrapped to the log's width; then to the end if `follow`
        (by default: if the view was at its end)."""
        texts: list[str] = []
        for text, level in lines:
            # Log drops empty lines and splits on line breaks; keep one line per entry so
            # that the levels stay aligned with the lines.
            for part in text.splitlines() or [""]:
                self._written.append((part, level))
                for row in self._wrap(part or " "):
                    texts.append(row)
                    self._levels.append(level)
        if not texts:
            return
        # Follow the end unless the user scrolled up. Log's own auto-scroll decides before its
        # width (and so its scrollbar) is known and can stop one line short; scrolling after the
        # refresh, when the size has settled, does not.
        if follow is None:
            follow = self.auto_scroll and self.scroll_y >= self.max_scroll_y - 1
        self.write_lines(texts, scroll_end=False)
        if follow:
            self.scroll_end(animate=False)
        self._end_seen = self.max_scroll_y

    def watch_virtual_size(self, size: Size) -> None:
        # What the layout would do for a scrolling widget (ScrollView._size_updated): the scrollbars
        # (shown or hidden, a layout then; their thumbs) and the scroll offsets kept in range.
        self._scrollbar_changes.clear()
        self._scroll_update(size)

    def _update_size(self, updates: int, lines: list[str]) -> None:  # type: ignore[override]  # a call, not a worker
        # Log's is a thread worker per write, measuring every line; here the rows are wrapped to the
        # view's width, which is their widest (no horizontal scrollbar), except in a view too narrow to wrap.
        if lines:
            width = self._wrap_width if self._wrap_width > len(CONTINUATION) else max(
                cell_len(self._process_line(line)) for line in lines)
            self._update_maximum_width(updates, width)

    @property
    def written_lines(self) -> list[str]:
        """The lines as written (before wrapping), oldest first."""
        return [text for text, _ in self._written]

    def _wrap(self, line: str) -> list[str]:
        width = self._wrap_width
        # Wrapped as Log will draw it: its tabs expanded (a COPY error's context line is the row's
        # tab-separated text), its control codes replaced.
        line = self._process_line(line)
        # An ASCII line is never wider than its length (cell_len is most of a flood's cost).
        if width <= len(CONTINUATION) or (line.isascii() and len(line) <= width) or cell_len(line) <= width:
            return [line]
        first, rest = _row_and_rest(line, width)
        rows = [first]
        while rest:
            row, rest = _row_and_rest(rest, width - len(CONTINUATION))
            rows.append(CONTINUATION + row)
        return rows

    def on_resize(self, event: events.Resize) -> None:
        # At the end before this resize (as the last write or resize left it; a taller view has
        # already pulled scroll_y down to its new end): still at the end after it. Left as it was,
        # a view that grew then shrank stopped short of the end, and so stopped following it:
        # a running job's new lines came in out of sight.
        following = self.scroll_y >= min(self._end_seen, self.max_scroll_y) - 1
        # Room left of a vertical scrollbar whether or not it shows (it comes with the lines).
        width = self.size.width - self.styles.scrollbar_size_vertical
        if width != self._wrap_width:
            # Scrolled up, the line read first stays first once wrapped again (it went to the end).
            reading = None if following else self._written_line_at(int(self.scroll_y))
            self._wrap_width = width
            written = list(self._written)
            self.clear()
            self.write_levelled(written, follow=reading is None)
            if reading is not None:
                self.scroll_to(y=self._row_of_written_line(reading), animate=False)
        elif following:
            self.scroll_end(animate=False)
        self._end_seen = self.max_scroll_y

    def _rows_dropped(self, rows_per_line: list[int]) -> int:
        # The view keeps its last max_lines rows and the lines as written their last max_lines
        # lines: the oldest lines kept may have rows the view has let go.
        return max(sum(rows_per_line) - len(self.lines), 0)

    def _written_line_at(self, row: int) -> int:
        """The line as written that the view's `row` is (a row) of, at the width the rows have."""
        rows_per_line = [len(self._wrap(text or " ")) for text, _ in self._written]
        row += self._rows_dropped(rows_per_line)
        for index, rows in enumerate(rows_per_line):
            if row < rows:
                return index
            row -= rows
        return max(len(rows_per_line) - 1, 0)

    def _row_of_written_line(self, index: int) -> int:
        """The view's row where the line as written `index` begins, at the width the rows have."""
        rows_per_line = [len(self._wrap(text or " ")) for text, _ in self._written]
        return max(sum(rows_per_line[:index]) - self._rows_dropped(rows_per_line), 0)

    def clear(self) -> JobLog:
        self._levels.clear()
        self._written.clear()
        return super().clear()

    @property
    def older_lines_hidden(self) -> bool:
        """Whether the view is full: its oldest rows went (or go) as new ones come; the file has them."""
        return self.max_lines is not None and len(self.lines) >= self.max_lines

    def note(self) -> str:
        """What the first row says once the view is full."""
        where = f": {self.log_path}" if self.log_path is not None else ""
        return f"… earlier lines are in the log file{where}"

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        if index == 0 and self.older_lines_hidden:
            # In place of the oldest row kept (it is in the file too): the view never shows an
            # older line as if the log began there.
            style = self.rich_style + self.get_component_rich_style("job-log--note", partial=True)
            return Strip([Segment(self.note(), style)]).crop_extend(0, self.size.width, self.rich_style)
        strip = super().render_line(y)
        if 0 <= index < len(self._levels) and self._levels[index] in self.STYLED_LEVELS:
            style = self.get_component_rich_style(f"job-log--{self._levels[index]}", partial=True)
            # post_style: drawn over the line's own colour, which Log sets from $text.
            strip = Strip(Segment.apply_style(iter(strip), post_style=style), strip.cell_length)
        return strip


def _row_and_rest(text: str, width: int) -> tuple[str, str]:
    """The first row of `text` at `width` cells, and what is left. The row ends after a space or a
    slash where one falls in its second half (a message is read by words, a path by folders), else
    at the width (a long word, a path without a slash there)."""
    if text.isascii():  # a cell a character: no need to measure (most lines, and a flood's)
        if len(text) <= width:
            return text, ""
        row = text[:width]
    else:
        if cell_len(text) <= width:
            return text, ""
        # Measured in a window (a character is at most two cells): a long line is chopped in
        # rows, not measured whole again for each.
        window = text[: 2 * width + 16]
        row = chop_cells(window, width)[0] if cell_len(window) > width else chop_cells(text, width)[0]
        row = row or text[0]  # a character wider than the row: on a row of its own, never none
    cut = max(row.rfind(" "), row.rfind("/")) + 1
    if cut > len(row) // 2:
        row = row[:cut]
    return row, text[len(row):]
