"""A DataTable whose cells of one line of Text are drawn with the calls Rich makes for them, minus
Rich's layers: the same segments, sooner (a page of 32 rows x 7 cells painted from scratch in 43 ms
against 55; a cell 0.055-0.10 ms against 0.09-0.16, depending on the host's pace).

DataTable draws each cell as `console.render_lines(Styled(Padding(cell, (0, pad)), pre, post))`:
three renderables, each dispatched by the console, each pass over the segments a generator of its
own. For a Text cell one line high, one_line_cell makes the same calls in the same order
(Text.wrap with the justify, overflow and wrapping Text.__rich_console__ would pick, the lines
joined and rendered, split and cropped to the width, the padding beside them, the styles applied
before and after) without the dispatch. Where the time goes: a frame of the Backups tab paints
the rows in view (about 200 cells) from scratch, and most of that frame was these cells; the Jobs
table draws 3-4 cells again at each frame of a running job. tests/test_ui_one_line_table.py
compares the two paths' segments over justifications, overflows, widths, styles with backgrounds,
wide characters, tabs, the cursor and zebra stripes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from rich.console import Console, ConsoleOptions, JustifyMethod, OverflowMethod
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable

from .style_once import StyleOncePerRender

DEFAULT_JUSTIFY: JustifyMethod = "default"  # Text.__rich_console__'s, when neither the Text nor the options say
DEFAULT_OVERFLOW: OverflowMethod = "fold"
CellType = TypeVar("CellType")


def one_line_cell(console: Console, options: ConsoleOptions, cell: Text, pad: int,
                  pre_style: Style, post_style: Style) -> list[list[Segment]]:
    """What `console.render_lines(Styled(Padding(cell, (0, pad)), pre_style, post_style), options)`
    gives for `options` one line high (height=1) and more than 2 * `pad` cells wide."""
    width = options.max_width
    inner = width - 2 * pad
    if options.height != 1 or inner < 1:
        raise ValueError(f"one line more than {2 * pad} cells wide, not {options.height} x {width}")
    padding_style = console.get_style("none")  # Padding's default style
    # Padding: the Text rendered `inner` wide (Text.__rich_console__), split, cropped and padded.
    lines = cell.wrap(console, inner,
                      justify=cell.justify or options.justify or DEFAULT_JUSTIFY,
                      overflow=cell.overflow or options.overflow or DEFAULT_OVERFLOW,
                      tab_size=(console.tab_size if cell.tab_size is None else cell.tab_size) or 8,
                      no_wrap=cell.no_wrap if cell.no_wrap is not None else bool(options.no_wrap))
    rendered: Iterable[Segment] = Text("\n").join(lines).render(console, end=cell.end)
    if padding_style:
        rendered = Segment.apply_style(rendered, padding_style)
    first = next(iter(Segment.split_and_crop_lines(rendered, inner, include_new_lines=False, pad=True,
                                                   style=padding_style)), None)
    side = [Segment(" " * pad, padding_style)] if pad else []
    padded = [*side, *(first if first is not None else [Segment(" " * inner, padding_style)]), *side]
    # Styled's styles. The outer render_lines would split the line at its end ("\n", which Padding
    # adds) and find it `width` wide already: the same segments.
    return [list(Segment.apply_style(padded, style=pre_style, post_style=post_style))]


class OneLineTable(StyleOncePerRender, DataTable[CellType]):
    """DataTable, with the cells of its rows one line high drawn by one_line_cell when they are Text
    (after DataTable's own formatting: a str cell is Text by then): the same segments, the same cache.
    Its style is computed once a render (StyleOncePerRender), not once a line."""

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> list[list[Segment]]:
        row_key = self._row_locations.get_key(row_index) if row_index >= 0 else None
        column_key = self._column_locations.get_key(column_index) if column_index >= 0 else None
        row = self.rows.get(row_key) if row_key is not None else None
        if row is None or row_key is None or column_key is None or row.height != 1 or width <= 2 * self.cell_padding:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = (row_key, column_key, base_style, cursor, hover, self._show_hover_cursor, self._update_count,
               self._pseudo_class_state)  # DataTable's CellCacheKey
        lines = self._cell_render_cache.get(key)
        if lines is not None:
            return lines
        cell = self._get_row_renderables(row_index).cells[column_index]
        if type(cell) is not Text or "\n" in cell.plain:  # a subclass may render itself its own way
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        fixed = row_index < self.fixed_rows or column_index < self.fixed_columns
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, fixed, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css")
        options = self.app.console_options.update_dimensions(width, 1).update(no_wrap=True)
        pre_style = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style
        lines = one_line_cell(self.app.console, options, cell, self.cell_padding, pre_style, post_style)
        self._cell_render_cache[key] = lines
        return lines
