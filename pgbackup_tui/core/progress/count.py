"""Progress counted in steps: the databases of a pg_dumpall, the members of a cluster set.

Each step is a work item of the data phase, priced by its size (a database's bytes at a prior
rate): the estimator does the rest as for any job, and the tracker's ticks carry the bar and the
ETA between the steps, at least 2 updates a second. A running step is measured where something
can tell how far it is (follow_job: a member job's own progress; follow_output: the file a step writes);
one nothing measures advances with the clock at the pace the job has shown, to at most 90 %.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..jobs import Job
from .estimator import ProgressEstimator
from .files import output_size
from .items import TAIL_FRACTION, WorkItem
from .priors import COPY_BPS, OUTPUT_PER_HEAP, STATEMENT_S
from .speed import machine_pace
from .tracker import ProgressTracker


@dataclass(frozen=True)
class Step:
    name: str
    weight: int  # bytes


class CountProgress(ProgressTracker):
    """A job made of steps (`bytes_per_s`: what a step's bytes cost before the job shows its pace)."""

    fallback_estimate = "database sizes and the pace so far"

    def __init__(self, job: Job, steps: list[Step], *, bytes_per_s: float = COPY_BPS, jobs: int = 1) -> None:
        items = [WorkItem(f"step:{step.name}", "data", STATEMENT_S + step.weight / bytes_per_s, label=step.name,
                          kind="database", bytes=step.weight) for step in steps]
        super().__init__(job, ProgressEstimator(items, origin=time.monotonic() - job.elapsed_s,
                                                estimate=self.fallback_estimate, jobs=jobs, machine=machine_pace()))
        self._members: dict[str, Job] = {}
        self._output: Path | None = None
        self._output_at_start: dict[str, int] = {}  # step -> the output's size when it started
        self.start()

    def follow_output(self, path: Path) -> None:
        """The steps write one after another into `path` (pg_dumpall's file): a running step is
        measured by what the file grew since it started, over its weight in plain text. A database's
        size holds what its dump does not (indexes, an empty database's catalog: 7 MB), so this
        claims at most TAIL_FRACTION, as the clock would; the pace it shows is the step's own."""
        self._output = path

    def follow_job(self, name: str, job: Job) -> None:
        """Measure step `name` by the job that runs it (a member of a set): its own percentage, once
        it shows an ETA -- before that its estimator knows too little, and the step goes by the clock."""
        self._members[f"step:{name}"] = job

    def observe_local(self, now: float) -> None:
        for item in self.estimator.running():
            member = self._members.get(item.key)
            fraction = _job_fraction(member) if member is not None else self._output_fraction(item)
            if fraction is not None:
                self.estimator.observe(item.key, fraction, now)

    def _output_fraction(self, item: WorkItem) -> float | None:
        if self._output is None or item.key not in self._output_at_start or item.bytes <= 0:
            return None
        grown = output_size(self._output) - self._output_at_start[item.key]
        return min(TAIL_FRACTION, grown / (item.bytes * OUTPUT_PER_HEAP[False]))

    def step_started(self, name: str) -> None:
        if self._output is not None:
            self._output_at_start[f"step:{name}"] = output_size(self._output)
        self._guarded(lambda: self.estimator.start(f"step:{name}", time.monotonic()))

    def step_finished(self, name: str) -> None:
        self._guarded(lambda: self.estimator.finish(f"step:{name}", time.monotonic()))


def _job_fraction(job: Job) -> float | None:
    snapshot = job.progress
    return snapshot.percent / 100 if snapshot is not None and snapshot.eta_s is not None else None
