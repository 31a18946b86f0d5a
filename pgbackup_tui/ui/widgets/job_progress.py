"""What the Jobs pane shows of a job's progress: the text bar in its row, the title line above
the bar, and the paths line.

Pure functions of the job's state and its latest progress snapshot, so the pane, its tests and
any other view render progress the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text

from ...core.formatting import human_bytes, human_duration
from ...core.job_follow import JobView
from ...core.jobs import JobState
from ...core.progress import ProgressSnapshot, human_count
from ...core.identifiers import one_line

BAR_WIDTH = 8
FINISHED_OK = (JobState.SUCCEEDED, JobState.PARTIAL)
# Jobs on a whole server (pg_dumpall, a cluster set, their restore): their database is only the one
# they connect to (postgres), which "postgres@prod" in the target column read as the job's target.
CLUSTER_KINDS = frozenset({"dumpall", "cluster-restore"})


def target_text(job: JobView) -> str:
    """What the job acts on, as the Jobs table's target column says it: "shop@prod", "prod (cluster)"."""
    if job.kind in CLUSTER_KINDS:
        return f"{job.server} (cluster)"
    return one_line(f"{job.database}@{job.server}")  # a name with a line break: the row's one line still


@dataclass(frozen=True)
class ProgressView:
    """What the pane shows of a job's progress; made in one place, progress_view()."""

    fraction: float | None  # 0..1, or None while it cannot be told (indeterminate)
    cell: str  # the text bar in the table
    bytes_text: str
    details: tuple[str, ...]  # phase, current object, ETA: the line above the log, in parts
    waiting: str = ""  # "waiting for a lock held by pid 42 (psql)" while a backend of the running job is blocked


def text_bar(fraction: float | None, tick: int = 0, width: int = BAR_WIDTH) -> str:
    """'█████░░░░░  50%'; with fraction None a short block that moves one cell per tick."""
    if fraction is None:
        block = 3 if width > 4 else 1
        travel = width - block
        position = tick % (2 * travel) if travel else 0
        position = position if position <= travel else 2 * travel - position
        return "░" * position + "█" * block + "░" * (travel - position) + "     "
    fraction = min(1.0, max(0.0, fraction))
    filled = round(fraction * width)
    return "█" * filled + "░" * (width - filled) + f" {fraction * 100:3.0f}%"


def progress_view(job: JobView, snapshot: ProgressSnapshot | None, tick: int = 0) -> ProgressView:
    """The job's progress as the pane shows it, from its state and its latest snapshot (None before
    the first one).

    The detail line: phase · what a backend waits for · table(s) being copied or indexed · tables
    done · rows · rate · time left, and which estimate it is when the server's progress view could
    not be read (e.g. "table counts and output size").
    """
    state = job.state
    running = state == JobState.RUNNING
    if snapshot is None:
        fraction, bytes_text, detail_parts = None, "", []
    else:
        fraction = snapshot.percent / 100
        bytes_text = (f"{human_bytes(snapshot.bytes_done)} / {human_bytes(snapshot.bytes_total)}"
                      if snapshot.bytes_total else "")
        detail_parts = detail(snapshot, running)
    if state in FINISHED_OK:
        fraction, cell = 1.0, text_bar(1.0)
    elif running:
        cell = text_bar(fraction, tick)
    elif state == JobState.QUEUED:
        cell = "queued"
    else:  # failed / cancelled: where it stopped, if known
        cell = text_bar(fraction) if fraction is not None else "—"
    if job.result is not None and job.result.bytes_written:
        bytes_text = human_bytes(job.result.bytes_written)
    waiting = f"waiting for {snapshot.waiting}" if running and snapshot is not None and snapshot.blocked else ""
    return ProgressView(fraction, cell, bytes_text, tuple(detail_parts), waiting)


def detail(snapshot: ProgressSnapshot, running: bool) -> list[str]:
    """The parts of the detail line (see progress_view); a finished job keeps only its totals."""
    blocked = running and snapshot.blocked
    parts = [snapshot.phase] if snapshot.phase and (running or snapshot.phase == "done") and not blocked else []
    if blocked:  # first: the answer to "is it hung?" must not be cut off
        parts.append(f"waiting for {snapshot.waiting}")
    current = snapshot.current
    if running and current:
        parts.append(", ".join(current[:2]) + (f" +{len(current) - 2}" if len(current) > 2 else ""))
    if snapshot.tables_total:
        parts.append(f"{snapshot.tables_done}/{snapshot.tables_total} tables")
    if snapshot.rows_done:
        parts.append(f"{human_count(snapshot.rows_done)} rows")
    if running and snapshot.rate_bps:
        parts.append(f"{human_bytes(snapshot.rate_bps)}/s")
    if running and snapshot.eta_s is not None and not blocked:  # blocked, nobody can say how long
        parts.append(f"about {human_duration(snapshot.eta_s)} left")
    if running and snapshot.estimate and not snapshot.estimate.startswith("pg_stat_progress_copy"):
        parts.append(f"estimated from {snapshot.estimate}")
    return parts


def compact_cells(view: ProgressView, tick: int) -> tuple[str, str]:
    """The progress and bytes cells where the pane is too narrow for the bar and "done / total":
    the percentage alone (the bar under the table shows the selected job's), the bytes done."""
    if view.cell.endswith("%"):
        cell = view.cell[-4:]
    elif view.fraction is None and view.cell.startswith(("░", "█")):  # running, how far cannot be told yet
        cell = text_bar(None, tick, width=4).rstrip()
    else:  # queued: the state says it (and "queued" would keep the column 6 cells wide); or "—"
        cell = "" if view.cell == "queued" else view.cell
    return cell, view.bytes_text.split(" / ")[0]


def row_cells(job: JobView, snapshot: ProgressSnapshot | None, tick: int, state_style: Style,
              target_width: int | None, *, compact: bool = False) -> list[Text]:
    """The job's row in the Jobs table (kind, target, state, progress, bytes, elapsed, left); the
    target is cut to `target_width` (None: whole); `compact`: see compact_cells."""
    view = progress_view(job, snapshot, tick)
    cell, bytes_text = compact_cells(view, tick) if compact else (view.cell, view.bytes_text)
    elapsed = human_duration(job.elapsed_s) if job.started_at is not None else ""
    eta_s = snapshot.eta_s if snapshot is not None else None
    blocked = snapshot is not None and snapshot.blocked
    left = human_duration(eta_s) if job.state == JobState.RUNNING and eta_s is not None and not blocked else ""
    target = Text(target_text(job), no_wrap=True)
    if target_width is not None:
        target.truncate(target_width, overflow="ellipsis")
    return [
        Text(job.kind),
        target,
        Text(job.state.value, style=state_style),
        Text(cell, justify="right") if compact else Text(cell),
        Text(bytes_text, justify="right"),
        Text(elapsed, justify="right"),
        Text(left, justify="right"),
    ]


@dataclass(frozen=True)
class TitleLine:
    """The selected job's line above its bar, in parts, so that a narrow pane (40 cells beside the
    tree at 80 columns) can show whole parts of it rather than cut a phrase in the middle."""

    head: str  # said first: the job's title, or what it waits for (then the title follows it)
    state: str = ""  # after the head (" — succeeded"); left out before the head is cut (the job's row says it)
    details: tuple[str, ...] = ()  # after " · ", left out from the last when they do not fit
    # Said instead of the head where the head does not fit: "blocked by pid 29081 (migration) — …" for
    # "waiting for a lock held by pid 29081 (migration) — …", which beside the tree (40 cells) was cut
    # to "waiting for a lock held by pid 29081 (m…", the one who holds it lost.
    brief: str = ""

    def __str__(self) -> str:
        text = f"{self.head} — {self.state}" if self.state else self.head
        return SEPARATOR.join((text, *self.details))

    def fit(self, width: int) -> str:
        """The line in `width` cells: whole, or the head and state with as many details as fit and
        "…" for the rest; where the head and state do not fit, the head (its state is in the job's
        row, above), cut with "…" if it must be."""
        text = str(self)
        if width <= 0 or cell_len(text) <= width:
            return text
        if self.brief and cell_len(self.head) > width:
            return TitleLine(self.brief, self.state, self.details).fit(width)
        shown = f"{self.head} — {self.state}" if self.state else self.head
        if cell_len(shown) > width:
            shown = self.head
            if cell_len(shown) > width:
                return _cut(shown, width)
        else:
            for part in self.details:
                if cell_len(shown) + cell_len(SEPARATOR) + cell_len(part) + cell_len(MORE) > width:
                    break
                shown += SEPARATOR + part
        return shown + MORE if cell_len(shown + MORE) <= width else shown


SEPARATOR = " · "
LOCK_HELD_BY = "a lock held by "  # how the server probe (core/progress/server_probe.py) names a lock's holder
MORE = " …"  # where details were left out: the pane at its full width (`z`) has them


def _cut(text: str, width: int) -> str:
    line = Text(text, no_wrap=True)
    line.truncate(width, overflow="ellipsis")  # the part of a name it keeps says more than none of it
    return line.plain


def title_line(job: JobView, view: ProgressView) -> TitleLine:
    """The selected job's line above its bar (what it waits for first, so that a narrow pane shows it)."""
    title = one_line(job.title)  # one line high: "dump two<LF>lines on prod" showed "dump two"
    if view.waiting:
        brief = view.waiting.replace(f"waiting for {LOCK_HELD_BY}", "blocked by ", 1)
        return TitleLine(f"{view.waiting} — {title}", brief=f"{brief} — {title}" if brief != view.waiting else "")
    return TitleLine(title, job.state.value, view.details)


def paths_text(job: JobView, message: str) -> str:
    """The selected job's output and log paths; the output only where its result `message` does
    not name it already (a narrow pane need not show it twice)."""
    paths = []
    output = job.result.output_path if job.result is not None else None
    if output is not None and str(output) not in message:
        paths.append(f"output: {output}")
    if job.log_path is not None:
        paths.append(f"log: {job.log_path}")
    return "\n".join(paths)
