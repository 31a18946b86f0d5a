"""Pilot test: a detail line's text changes with a relayout of the screen only when its height does
(issue 15, point 3), and the height it predicts is the one the layout then gives it."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Static

from pgbackup_tui.ui.widgets.detail_line import update_in_place


class LineApp(App[None]):
    CSS = "#line { width: 20; height: auto; min-height: 1; max-height: 2; }"

    def compose(self) -> ComposeResult:
        yield Static("one line", id="line", markup=False)


async def test_a_relayout_only_when_the_height_changes_and_the_height_as_the_layout_gives_it() -> None:
    app = LineApp()
    async with app.run_test(size=(40, 10)) as pilot:
        line = app.query_one("#line", Static)
        await pilot.pause()
        assert line.size.height == 1
        cases = [
            ("another line", False, 1),  # same height: repainted only
            ("words that wrap onto a second line", True, 2),
            ("a\nb\nc\nd", False, 2),  # four lines, cut at max-height 2: still 2
            ("short again", True, 1),
            ("", False, 1),  # empty: min-height 1
        ]
        for text, relayout, height in cases:
            assert update_in_place(line, text) is relayout, text
            assert line._layout_required is relayout, text  # what Textual was asked for
            app.screen.refresh(layout=True)  # what a layout would give it, asked for or not
            await pilot.pause()
            assert line.size.height == height, text
            assert str(line.render()) == text
