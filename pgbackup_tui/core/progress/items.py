"""Work items, the units of the progress model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from ..identifiers import QualifiedName
    from ..toc import TocEntry

# What a row costs on the wire, from PostgreSQL's formats: COPY sends neither a row's tuple header
# nor its line pointer (28 bytes on disk), and wraps each row's text in a CopyData message (5 bytes).
ROW_HEADER_BYTES = 28
COPY_FRAMING_PER_ROW = 5
# An item's last tenth is its tail, unlike the rest (an index's commit, a closing fsync): an item nobody
# measures claims none of it by the clock, and a measured item's pace is not taken from it.
TAIL_FRACTION = 0.9


class ItemInfo(TypedDict, total=False):
    """What the sources that observe an item need of it, and what they last saw."""

    local: bool  # work on this machine, wherever the server is (its pace is the machine's)
    no_evidence: bool  # its time says nothing of any pace (a wait, a step of fixed cost)
    wait: bool  # its time is no work (a restore's target checked: other sessions may be ending): it moves no bar
    wire: int  # data: its bytes on the wire (priced by the link; received bytes measure it)
    oid: int  # dump: the table's OID, as pg_stat_progress_copy names it
    name: QualifiedName  # dump: the table, as pg_dump's --verbose lines name it
    copying: bool  # dump: the last poll saw its COPY running
    seen_tuples: int  # dump: the most tuples a poll saw copied
    seen_copy_bytes: int  # dump: the most bytes a poll saw copied
    server_fraction: float  # dump: the share of its rows the server has sent
    wire_per_fraction: float  # dump: received bytes per share of rows (over a link)
    entry: TocEntry  # restore: its entry in the archive's TOC
    table: tuple[str, str] | None  # restore: (schema, name) of the table it fills or indexes, if known
    heap: float  # restore: the table's heap bytes it will write
    exclusive: bool  # restore: takes an exclusive lock on its table (a primary key, a foreign key)
    scan_share: float  # restore, an index: the share of its build's time its table's scan takes


@dataclass(eq=False)
class WorkItem:
    """One thing the job does, with its prior cost; the estimator keeps its progress."""

    key: str
    phase: str
    cost_s: float
    label: str = ""  # the table it is about, as SQL writes it (for `current`)
    kind: str = "object"  # table | large objects | database | index | step | object
    bytes: int = 0  # data items: size in the snapshot's byte units
    rows: int = -1  # data items: expected rows (-1: unknown)
    fraction: float = 0.0
    measured: bool = False  # fraction came from an observation, not from the clock
    rows_done: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    info: ItemInfo = field(default_factory=ItemInfo)
    group: str | None = None  # a table's data and its indexes: with --jobs the indexes wait for it

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.finished_at is None

    @property
    def done(self) -> bool:
        return self.finished_at is not None


def is_data(item: WorkItem) -> bool:
    """Items whose bytes and rows the snapshot counts: table data, large objects, whole databases."""
    return item.phase == "data" and item.kind in ("table", "large objects", "database")


def wire_bytes(heap: int, rows: int) -> int:
    """Bytes COPY sends for a table of `heap` bytes on disk and `rows` rows (-1: unknown): what a
    slow link has to carry. Text is about as long as the values on disk."""
    if rows < 0:
        return heap
    return max(COPY_FRAMING_PER_ROW * rows, heap - (ROW_HEADER_BYTES - COPY_FRAMING_PER_ROW) * rows)
