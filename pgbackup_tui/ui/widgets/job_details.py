"""The Jobs pane's details of the selected job: its title line, progress bar, result and paths.

The pane (jobs_pane.py) hands it the job and its last progress snapshot at each frame; a line is
updated only when its text changed, with a relayout only when its height does (detail_line.py).
"""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from ...core.job_follow import JobView
from ...core.jobs import JobState
from ...core.progress import ProgressSnapshot
from .detail_line import heights_held, update_in_place
from .job_progress import FINISHED_OK, paths_text, progress_view, title_line
from .job_progress_bar import JobProgressBar
from .job_result_line import JobResultLine
from .job_title import JobTitle


class JobDetails(Vertical):
    """The selected job's title, bar, result and paths (the pane's log is below it); a short pane's
    compact lines are in the pane's CSS (its class, jobs_heights.py)."""

    DEFAULT_CSS = """
    JobDetails { height: auto; }
    JobDetails > #job-title { height: 1; margin-top: 1; text-style: bold; }
    JobDetails > #job-progress { height: 1; }
    JobDetails > #job-result.-succeeded { color: $success; }
    JobDetails > #job-result.-failed { color: $error; }
    JobDetails > #job-result.-cancelled, JobDetails > #job-result.-partial { color: $warning; }
    JobDetails > #job-paths { height: auto; min-height: 1; max-height: 4; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._texts: dict[str, str] = {}  # each detail line as shown

    def compose(self) -> ComposeResult:
        yield JobTitle("No jobs yet.", id="job-title")
        yield JobProgressBar(total=100, id="job-progress")
        yield JobResultLine(id="job-result")
        yield Static("", id="job-paths", markup=False)

    def on_mount(self) -> None:
        self.query_one("#job-progress").display = False

    def _show(self, selector: str, text: str, *, layout: bool = True) -> None:
        """Update a line of the details when its text changed, with a relayout only when its height
        does (layout=False: the height it has; a job's paths and result keep the last one's as it starts)."""
        if self._texts.get(selector) != text:
            self._texts[selector] = text
            line = self.query_one(selector, Static)
            if layout:
                update_in_place(line, text)
            else:
                line.update(text, layout=False)

    def show(self, job: JobView, snapshot: ProgressSnapshot | None, tick: int) -> bool:
        """Show `job`'s details; whether its bar's block moves (running, size not known): frames wanted."""
        view = progress_view(job, snapshot, tick)
        self.query_one("#job-title", JobTitle).show(title_line(job, view))  # one line high, fitted at each paint

        bar = self.query_one("#job-progress", JobProgressBar)
        shown = not job.state.is_final or job.state in FINISHED_OK  # queued: at 0, no relayout as it starts
        if bar.display != shown:
            bar.display = shown
        percent = round(100 * (view.fraction or 0.0))  # whole percents: the label shows no more
        moving = job.state == JobState.RUNNING and view.fraction is None
        if moving:
            if bar.total is not None:
                bar.update(total=None)
        elif shown and (bar.total != 100 or bar.progress != percent):
            bar.update(total=100, progress=percent)

        result = self.query_one("#job-result", Static)
        for state in JobState:
            result.set_class(job.result is not None and job.result.state == state, f"-{state.value}")
        message = job.result.message if job.result is not None else ""
        holding = job.result is None  # see _show: no shorter as it starts and runs
        with heights_held((self.query_one(selector, Static) for selector in ("#job-result", "#job-paths")), holding):
            self._show("#job-result", message, layout=not holding)
            self._show("#job-paths", paths_text(job, message), layout=job.state != JobState.QUEUED)
        return moving
