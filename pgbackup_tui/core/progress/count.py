"""Progress counted in steps: the databases of a pg_dumpall, the members of a cluster set.

Each step is a work item of the data phase, priced as a tool's run over its bytes (the data a
database's dump holds, at a prior rate; over TCP at least its bytes at the link's timed rate): the
estimator does the rest as for any job, and the tracker's ticks carry the bar and the ETA between
the steps, at least 2 updates a second. A running step is measured where something tells how far
it is -- follow(): the bytes of a file fed to psql; follow_job(): a member job's own progress;
follow_output(): the file pg_dumpall writes -- and one nothing measures advances with the clock at
the pace the job has shown, to at most 90 %. A followed member that waits (a lock, a silent server)
makes the whole job wait, as a dump's own backend does: said with the member's name, no time left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..connect import Target
from ..jobs import Job
from .estimator import ProgressEstimator
from .files import output_size
from .items import TAIL_FRACTION, WorkItem
from .priors import COPY_BPS, OUTPUT_PER_HEAP, TOOL_START_S
from .speed import machine_pace
from .tracker import ProgressTracker

# A step that wrote less than this (the roles and tablespaces, an empty database: a few kilobytes,
# mostly DDL) says nothing of how many bytes a database's dump writes per byte of its data.
RATIO_EVIDENCE_BYTES = 1 << 20


@dataclass(frozen=True)
class Step:
    name: str
    weight: int  # bytes


class CountProgress(ProgressTracker):
    """A job made of steps (`bytes_per_s`: what a step's bytes cost before the job shows its pace)."""

    fallback_estimate = "database sizes and the pace so far"

    def __init__(self, job: Job, steps: list[Step], target: Target, *, bytes_per_s: float = COPY_BPS,
                 jobs: int = 1) -> None:
        """`target`: the server (over TCP its link is timed: the steps' bytes cross it)."""
        items = [WorkItem(f"step:{step.name}", "data", TOOL_START_S + step.weight / bytes_per_s, label=step.name,
                          kind="database", bytes=step.weight, info={"wire": step.weight}) for step in steps]
        super().__init__(job, ProgressEstimator(items, origin=time.monotonic() - job.elapsed_s,
                                                estimate=self.fallback_estimate, jobs=jobs, machine=machine_pace()))
        self.measure_link(target, target.default_dbname or "postgres")
        self._measures: dict[str, Callable[[], float | None]] = {}
        self._members: dict[str, Job] = {}  # step key -> the member job follow_job() measures it by
        self._output: Path | None = None
        self._output_at_start: dict[str, int] = {}  # step -> the output's size when it started
        self._written = self._weight_written = 0  # what the finished steps wrote, and their weights

    def follow(self, name: str, fraction: Callable[[], float | None]) -> None:
        """Measure step `name` while it runs by `fraction()` (0..1; None: nothing known yet)."""
        self._measures[f"step:{name}"] = fraction

    def follow_job(self, name: str, job: Job) -> None:
        """Measure step `name` by the job that runs it (a member of a set): the share of its time its
        own estimate says has passed -- its percentage until it shows an ETA, then elapsed / (elapsed
        + ETA), which its percentage holds back at times (while it times its link, at 99 %): a
        fraction that stops looks like a step gone a thousand times slower."""
        def fraction() -> float | None:
            snapshot = job.progress
            if snapshot is None:
                return None
            if snapshot.eta_s is None:
                return snapshot.percent / 100
            return snapshot.elapsed_s / max(1e-6, snapshot.elapsed_s + snapshot.eta_s)
        self.follow(name, fraction)
        self._members[f"step:{name}"] = job

    def follow_output(self, path: Path) -> None:
        """The steps write one after another into `path` (pg_dumpall's file): a running step is
        measured by what the file grew since it started, over its weight times the bytes the steps
        done wrote per byte of theirs (OUTPUT_PER_HEAP's for text before one wrote enough to tell). A
        database's size holds what its dump does not (its indexes), so this claims at most
        TAIL_FRACTION, as the clock would."""
        self._output = path

    def observe_local(self, now: float) -> None:
        waits = []
        for item in self.estimator.running():
            measure = self._measures.get(item.key)
            fraction = measure() if measure is not None else self._output_fraction(item)
            if fraction is not None:
                self.estimator.observe(item.key, fraction, now)
            member = self._members.get(item.key)
            snapshot = member.progress if member is not None else None
            if snapshot is not None and snapshot.waiting:
                waits.append(f"{snapshot.waiting} in {item.label}")
        if self._members:
            # A set's member blocked on a lock showed as the set running on, at a time left frozen
            # (its own pane said why; the set's, which the TUI and `jobs list` show, did not).
            self.estimator.wait(waits[0] if waits else None, now)

    def _output_fraction(self, item: WorkItem) -> float | None:
        if self._output is None or item.key not in self._output_at_start or item.bytes <= 0:
            return None
        per_byte = self._written / self._weight_written if self._written else OUTPUT_PER_HEAP[False]
        grown = output_size(self._output) - self._output_at_start[item.key]
        return min(TAIL_FRACTION, grown / (item.bytes * per_byte))

    def step_started(self, name: str) -> None:
        if self._output is not None:
            self._output_at_start[f"step:{name}"] = output_size(self._output)
        self._guarded(lambda: self.estimator.start(f"step:{name}", time.monotonic()))

    def step_finished(self, name: str) -> None:
        key = f"step:{name}"
        item, started = self.estimator.get(key), self._output_at_start.pop(key, None)
        if self._output is not None and item is not None and started is not None:
            written = output_size(self._output) - started
            if written >= RATIO_EVIDENCE_BYTES:
                self._written += written
                self._weight_written += item.bytes
        self._guarded(lambda: self.estimator.finish(key, time.monotonic()))
