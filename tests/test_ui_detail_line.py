"""Pilot test: a detail line's text changes with a relayout of the screen only when its height does
(issue 15, point 3), and the height it predicts is the one the layout then gives it."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Static

from pgbackup_tui.ui.widgets.detail_line import hold_height, update_in_place


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


def layout_asked(line: Static) -> bool:
    """Whether a layout of the screen was asked for `line` since the last one."""
    return line._layout_required


async def test_a_height_held_and_released_asks_for_a_layout_only_when_the_line_then_changes_height() -> None:
    app = LineApp()
    async with app.run_test(size=(40, 10)) as pilot:
        line = app.query_one("#line", Static)
        update_in_place(line, "words that wrap onto a second line")
        await pilot.pause()
        assert line.size.height == 2

        hold_height(line, True)  # the height it has: nothing to lay out
        assert not layout_asked(line)
        assert update_in_place(line, "short") is False  # held at 2: no shorter
        app.screen.refresh(layout=True)
        await pilot.pause()
        assert line.size.height == 2

        update_in_place(line, "again words that wrap onto two")  # the final text fills the held height
        hold_height(line, False)
        assert not layout_asked(line)
        app.screen.refresh(layout=True)
        await pilot.pause()
        assert line.size.height == 2

        hold_height(line, True)
        update_in_place(line, "short")
        hold_height(line, False)  # released over a shorter text: now it shrinks
        assert layout_asked(line)
        await pilot.pause()
        assert line.size.height == 1
