"""Progress counted in steps: the databases of a pg_dumpall, the members of a cluster set.

Where a job is a sequence of similar steps whose sizes we know (the databases' sizes from
pg_database_size), the percentage is the share of bytes in the steps done plus, for the steps
running, the share of their time so far at the pace seen; the ETA follows that pace. Simpler than
the table-level estimator (estimator.py), and honest about what it knows: nothing inside
a step but the clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..jobs import Job, ProgressUpdated
from .estimator import NOT_DONE_CAP
from .items import TAIL_FRACTION
from .snapshot import ProgressSnapshot


@dataclass
class Step:
    name: str
    weight: int  # bytes, or 1 where sizes are unknown
    started: float | None = None
    finished: float | None = None


@dataclass
class CountProgress:
    """A job's tracker (what Job.run expects: `last`, `stop()`, `emit_done()`)."""

    job: Job
    steps: list[Step]
    unit: str = "databases"
    estimate: str = "database sizes and the pace so far"
    last: ProgressSnapshot | None = None
    _origin: float = field(default_factory=time.monotonic)

    def start(self, name: str) -> None:
        step = self._step(name)
        if step is not None and step.started is None:
            step.started = time.monotonic()
            self.emit()

    def finish(self, name: str) -> None:
        step = self._step(name)
        if step is not None and step.finished is None:
            step.finished = time.monotonic()
            step.started = step.started or step.finished
            self.emit()

    def _step(self, name: str) -> Step | None:
        return next((step for step in self.steps if step.name == name), None)

    def snapshot(self, phase: str = "data") -> ProgressSnapshot:
        now = time.monotonic()
        total = sum(step.weight for step in self.steps) or 1
        done_weight = sum(step.weight for step in self.steps if step.finished is not None)
        done_time = sum((step.finished or now) - (step.started or now) for step in self.steps if step.finished)
        pace = done_time / done_weight if done_weight and done_time > 0 else None  # seconds per weight unit
        running = [step for step in self.steps if step.started is not None and step.finished is None]
        partial = 0.0
        for step in running:
            if pace:
                partial += min(step.weight * TAIL_FRACTION, (now - (step.started or now)) / pace)
        percent = min(100 * NOT_DONE_CAP, 100.0 * (done_weight + partial) / total)
        eta = pace * (total - done_weight - partial) if pace else None
        return ProgressSnapshot(
            elapsed_s=now - self._origin, phase=phase, percent=percent, bytes_done=int(done_weight + partial),
            bytes_total=total, current=tuple(step.name for step in running), eta_s=eta, estimate=self.estimate)

    def emit(self, phase: str = "data") -> None:
        snapshot = self.snapshot(phase)
        if self.last is not None and snapshot.percent < self.last.percent:
            snapshot = ProgressSnapshot(**{**snapshot.__dict__, "percent": self.last.percent})  # never backwards
        self.last = snapshot
        self.job.emit(ProgressUpdated(self.job.id, snapshot))

    async def stop(self) -> None:
        """Nothing runs in the background here."""

    def emit_done(self) -> None:
        total = sum(step.weight for step in self.steps)
        self.last = ProgressSnapshot(elapsed_s=time.monotonic() - self._origin, phase="done", percent=100.0,
                                     bytes_done=total, bytes_total=total, eta_s=0.0, estimate=self.estimate)
        self.job.emit(ProgressUpdated(self.job.id, self.last))
