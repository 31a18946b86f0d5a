"""The Jobs pane's title line: the selected job's title, state and figures, fitted to its width.

One line high whatever it says (a relayout per frame of a running job would cost what issue 15
took out), so what does not fit is left out by whole parts (job_progress.TitleLine.fit) at each
paint, at the width the line has then: beside the tree at 80 columns (40 cells) it read "dump the
whole cluster of demo —", cut between the title and its state, and "… — running · data ·". Its
content is the whole line (what the pane at full width shows, and what tests read).
"""

from __future__ import annotations

from textual.app import RenderResult
from textual.content import Content
from textual.widgets import Static

from .job_progress import TitleLine


class JobTitle(Static):
    """A Static of one line that shows its TitleLine fitted to its width (show())."""

    DEFAULT_CSS = "JobTitle { height: 1; }"

    def __init__(self, text: str = "", *, id: str | None = None) -> None:
        super().__init__(text, id=id, markup=False)
        self._line = TitleLine(text)

    def show(self, line: TitleLine) -> None:
        """Show `line` (a repaint, never a relayout: the height is one line)."""
        if line != self._line:
            self._line = line
            self.update(str(line), layout=False)

    def render(self) -> RenderResult:
        return Content(self._line.fit(self.content_size.width))
