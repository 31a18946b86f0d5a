"""The Jobs pane's result line: the selected job's outcome, in at most RESULT_LINES lines.

A failure's message is long (what failed, why, what to do) and the pane beside the tree is 40
cells wide at 80x24: cut at its height, it stopped mid-sentence with nothing to say so ("…; drop
it" of "drop it first, or leave it out…"). Cut here, its last line ends with "…"; the log below
has the whole line, and so has the content (what tests and a wider pane read).
"""

from __future__ import annotations

from textual.app import RenderResult
from textual.content import Content
from textual.widgets import Static

from ..toasts import cut_to_lines

RESULT_LINES = 2


class JobResultLine(Static):
    """A Static that shows its text in at most RESULT_LINES lines of its width, "…" where it is cut."""

    DEFAULT_CSS = f"JobResultLine {{ height: auto; max-height: {RESULT_LINES}; }}"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)

    def render(self) -> RenderResult:
        width = self.content_size.width
        text = str(self.content)
        most = self.styles.max_height  # one line on a short Jobs pane (jobs_heights.py)
        lines = int(most.value) if most is not None and most.is_cells else RESULT_LINES
        return Content(cut_to_lines(text, width, lines) if width > 0 and text else text)
