"""OneLineTable draws each cell as DataTable does, segment for segment: one_line_cell against Rich's
render of Styled(Padding(...)) over justifications, overflows, widths, paddings, styles with
backgrounds, wide characters and tabs; the whole table against DataTable with the cursor, zebra
stripes, markup and cells too narrow for their text (issue 15, point 3: the cells' cost)."""

from __future__ import annotations

import itertools

from rich.console import Console
from rich.padding import Padding
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.renderables.styled import Styled
from textual.widgets import DataTable

from pgbackup_tui.ui.widgets import one_line_table
from pgbackup_tui.ui.widgets.one_line_table import OneLineTable, one_line_cell

PRE = Style(color="#e0e0e0", bgcolor="#1e1e1e", italic=False) + Style.from_meta({"row": 3, "column": 4})
POST = Style(bgcolor="#004578")


def texts() -> list[Text]:
    styled = Text("orders ", style="bold")
    styled.append("12.5 MB", style=Style(color="green", bgcolor="#202020"))
    cells = [Text(""), Text("x"), styled, Text("数据库 café 🐘", style="#aaaaaa"), Text("a\tb\tc"),
             Text("a long target name@server-with-a-long-name")]
    variants = []
    for text, justify, overflow in itertools.product(cells, (None, "left", "right", "center", "full"),
                                                     (None, "ellipsis", "crop", "fold")):
        copy = text.copy()
        copy.justify, copy.overflow = justify, overflow  # type: ignore[assignment]
        variants.append(copy)
    return variants


def test_one_line_cell_gives_the_segments_rich_gives() -> None:
    console = Console(width=120, color_system="truecolor", legacy_windows=False)
    compared = 0
    for text in texts():
        for width, pad, (pre, post) in itertools.product((3, 4, 9, 18, 40), (0, 1, 2),
                                                          ((PRE, Style()), (PRE, POST), (Style(), Style()))):
            if width <= 2 * pad:
                continue
            options = console.options.update_dimensions(width, 1).update(no_wrap=True)
            expected = console.render_lines(Styled(Padding(text, (0, pad)), pre_style=pre, post_style=post), options)
            assert one_line_cell(console, options, text, pad, pre, post) == expected, (text, width, pad)
            compared += 1
    assert compared > 2_000


class TwoTables(App[None]):
    CSS = "DataTable { height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield DataTable(id="rich", cursor_type="row", zebra_stripes=True)
        yield OneLineTable(id="fast", cursor_type="row", zebra_stripes=True)


async def test_a_one_line_table_paints_what_a_data_table_paints(monkeypatch) -> None:
    drawn: list[Text] = []

    def counted(*args, **kwargs):
        drawn.append(args[2])
        return one_line_cell(*args, **kwargs)

    monkeypatch.setattr(one_line_table, "one_line_cell", counted)
    app = TwoTables()
    async with app.run_test(size=(70, 40)) as pilot:
        tables = [app.query_one("#rich", DataTable), app.query_one("#fast", DataTable)]
        for table in tables:
            table.fixed_columns = 1
            table.add_column("name", key="name", width=8)  # narrower than most of its cells
            table.add_column("figure", key="figure")
            table.add_column("note", key="note")
            for index, text in enumerate(texts()[::7]):
                table.add_row(text.copy(), Text(f"{index}.5 MB", justify="right"),
                              "[b]markup[/b] and [red]red[/red]" if index % 2 else "plain [not markup",
                              key=str(index), label=f"#{index}" if index % 3 else None)
            table.move_cursor(row=2)
        await pilot.pause()
        for table in tables:
            assert table.row_count > 10 and table.size.height >= 12
        width = min(table.size.width for table in tables)
        painted = []
        for table in tables:  # each with the focus (the header and cursor are drawn as it has it)
            table.focus()
            await pilot.pause()
            painted.append([list(strip) for strip in table.render_lines(Region(0, 0, width, 12))])
        assert painted[0] == painted[1]
        assert any("markup" in segment.text for line in painted[1] for segment in line)
        assert len(drawn) >= 3 * 11  # the cells in view went through one_line_cell, not DataTable's path
