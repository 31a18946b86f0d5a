"""Work items, the units of the progress model."""

from __future__ import annotations

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


def is_data(item: WorkItem) -> bool:
    """Items whose bytes and rows the snapshot counts: table data and large objects."""
    return item.phase == "data" and item.kind in ("table", "large objects")
