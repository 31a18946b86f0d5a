"""Progress of a CSV export or import: one work item per table, fed by the job's own copy loop.

The copy runs in a worker thread and only writes plain counters here (the table it is on, rows and
bytes so far, the tables finished); the tracker's ticks, on the event loop, turn them into the
estimator's events, so the estimator is fed from one thread as it requires. An export measures a
table by rows over its expected rows (the planner's estimate), an import by the bytes of its CSV
file read so far over the file's size, which is exact.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..jobs import Job
from .estimator import ProgressEstimator
from .items import WorkItem
from .priors import COPY_BPS, SCHEMA_STEP_S, STATEMENT_S
from .tracker import ProgressTracker


@dataclass(frozen=True)
class TableWork:
    """One table to copy: `size` in the progress's byte units (heap size for an export, CSV bytes
    for an import); `rows` expected, -1 unknown."""

    key: str
    label: str
    size: int
    rows: int = -1


class CsvProgress(ProgressTracker):
    """Per table and overall progress for a CSV job (see the module's docstring)."""

    fallback_estimate = "rows and bytes copied"

    def __init__(self, job: Job, tables: list[TableWork], *, by_bytes: bool, steps: tuple[str, ...]) -> None:
        items = [WorkItem(key=f"step:{name}", phase="schema", cost_s=SCHEMA_STEP_S, kind="step", label=name)
                 for name in steps]
        items += [WorkItem(key=t.key, phase="data", cost_s=STATEMENT_S + t.size / COPY_BPS, label=t.label,
                           kind="table", bytes=t.size, rows=t.rows) for t in tables]
        super().__init__(job, ProgressEstimator(items, origin=time.monotonic(), estimate=self.fallback_estimate))
        self.by_bytes = by_bytes
        self.sizes = {t.key: t for t in tables}
        # Written by the copy thread, read by the ticks.
        self.current: str | None = None
        self.rows = 0
        self.bytes = 0
        self.finished: list[str] = []
        self.rows_copied: dict[str, int] = {}
        self._applied = 0

    # -- from the copy thread -----------------------------------------------------------------------
    def table_started(self, key: str) -> None:
        self.rows = self.bytes = 0
        self.current = key

    def table_advanced(self, rows: int, copied_bytes: int) -> None:
        self.rows, self.bytes = rows, copied_bytes

    def table_finished(self, key: str, rows: int | None = None) -> None:
        """`key` is done; `rows`: how many it copied, where the copy knows (an import's server count:
        its progress measures bytes)."""
        self.current = None
        if rows is not None:
            self.rows_copied[key] = rows
        self.finished.append(key)

    # -- on the loop ------------------------------------------------------------------------------
    # The tables finished since the last tick are taken in first, with their rows: a next phase, or
    # the job's end, closes what is left of the data without them.
    def enter_phase(self, phase: str) -> None:
        self._guarded(lambda: self.observe_local(time.monotonic()))
        super().enter_phase(phase)

    def emit_done(self) -> None:
        self._guarded(lambda: self.observe_local(time.monotonic()))
        super().emit_done()

    def observe_local(self, now: float) -> None:
        estimator = self.estimator
        while self._applied < len(self.finished):
            key = self.finished[self._applied]
            estimator.start(key, now)
            estimator.finish(key, now, rows_done=self.rows_copied.get(key))
            self._applied += 1
        current = self.current
        if current is None or current in self.finished:
            return
        work = self.sizes[current]
        if self.by_bytes:
            fraction = self.bytes / work.size if work.size else 0.0
        else:
            fraction = self.rows / work.rows if work.rows > 0 else 0.0
        estimator.observe(current, fraction, now, rows_done=self.rows)
