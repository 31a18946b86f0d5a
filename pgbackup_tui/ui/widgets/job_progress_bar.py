"""The Jobs pane's progress bar: Textual's, whose indeterminate animation runs at 4 frames a second
instead of 15.

While a job runs before its size is known (pg_dump reading the catalog of 10,000 tables: one to two
seconds of every dump), Textual's bar repaints 15 times a second, about 2 ms of the app's CPU each
(scripts/bench_tui.py: 3 % of a core for the animation alone). Four frames a second still show that
the job is alive; the bar's block moves in bigger steps.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import ProgressBar
from textual.widgets._progress_bar import Bar, ETAStatus, PercentageStatus

INDETERMINATE_FRAME_S = 0.25


class CalmBar(Bar):
    """Bar, animated at INDETERMINATE_FRAME_S while the total is unknown."""

    def watch_percentage(self, percentage: float | None) -> None:
        self.auto_refresh = None if percentage is not None else INDETERMINATE_FRAME_S


class JobProgressBar(ProgressBar):
    """ProgressBar with a CalmBar (what ProgressBar.compose yields, the bar's class aside)."""

    def compose(self) -> ComposeResult:
        if self.show_bar:
            yield (CalmBar(id="bar", clock=self._clock, bar_renderable=self.BAR_RENDERABLE)
                   .data_bind(ProgressBar.percentage)
                   .data_bind(ProgressBar.gradient))
        if self.show_percentage:
            yield PercentageStatus(id="percentage").data_bind(ProgressBar.percentage)
        if self.show_eta:
            yield ETAStatus(id="eta").data_bind(eta=ProgressBar._display_eta)
