"""Work items, the units of the progress model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# What a row costs on the wire, from PostgreSQL's formats: COPY sends neither a row's tuple header
# nor its line pointer (28 bytes on disk), and wraps each row's text in a CopyData message (5 bytes).
ROW_HEADER_BYTES = 28
COPY_FRAMING_PER_ROW = 5
STATEMENT_S = 0.001  # a statement's round trip, a prior: on the reference machine, to a local server
# Bytes COPY moves a second, a prior on the same machine: a table's on-disk bytes dumped (zstd:1; gzip
# is slower, no compression faster) or exported as CSV, a CSV file's bytes imported.
COPY_BPS = 60e6
# An item's last tenth is its tail, unlike the rest (an index's commit, a closing fsync): an item nobody
# measures claims none of it by the clock, and a measured item's pace is not taken from it.
TAIL_FRACTION = 0.9


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


def wire_bytes(heap: int, rows: int) -> int:
    """Bytes COPY sends for a table of `heap` bytes on disk and `rows` rows (-1: unknown): what a
    slow link has to carry. Text is about as long as the values on disk."""
    if rows < 0:
        return heap
    return max(COPY_FRAMING_PER_ROW * rows, heap - (ROW_HEADER_BYTES - COPY_FRAMING_PER_ROW) * rows)
