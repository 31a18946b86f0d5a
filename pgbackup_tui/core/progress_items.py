"""Work items, the units of the progress model, and the evidence of speed they leave behind."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class WorkItem:
    """One thing the job does, with its prior cost; the estimator keeps its progress."""

    key: str
    phase: str
    cost_s: float
    label: str = ""  # the table it is about, as SQL writes it (for `current`)
    kind: str = "object"  # table | large objects | index | step | object
    bytes: int = 0  # data items: size in the snapshot's byte units
    rows: int = -1  # data items: expected rows (-1: unknown)
    fraction: float = 0.0
    measured: bool = False  # fraction came from an observation, not from the clock
    rows_done: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    info: dict[str, Any] = field(default_factory=dict)  # what the sources need (oid, dump id...)
    group: str | None = None  # a table's data and its indexes: with --jobs the indexes wait for it

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.finished_at is None

    @property
    def done(self) -> bool:
        return self.finished_at is not None


class Evidence:
    """Seconds spent and prior seconds of work done, fading with age: a recent rate.

    The recent past says most about the next minute: a phase of small tables after a big one
    moves at its own pace, and the estimate should learn it within seconds, not be held back by
    the twenty seconds the big one took. Work is added as it is seen (ProgressEstimator._bank),
    so a long item weighs by when its work happened, not all at the moment it finished.
    """

    __slots__ = ("spent", "work", "at")

    def __init__(self) -> None:
        self.spent = self.work = 0.0
        self.at: float | None = None

    def add(self, spent: float, work: float, now: float, memory: float) -> None:
        self.read(now, memory)
        self.spent += spent
        self.work += work

    def read(self, now: float, memory: float) -> tuple[float, float]:
        if self.at is not None and now > self.at:
            fade = math.exp(-(now - self.at) / memory)
            self.spent, self.work = self.spent * fade, self.work * fade
        self.at = now if self.at is None else max(self.at, now)
        return self.spent, self.work


def is_data(item: WorkItem) -> bool:
    """Items whose bytes and rows the snapshot counts: table data and large objects."""
    return item.phase == "data" and item.kind in ("table", "large objects")
