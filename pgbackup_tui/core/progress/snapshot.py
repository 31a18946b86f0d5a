"""What a job's progress looks like to its listeners: ProgressSnapshot, and how it reads.

Snapshots are made by estimator.ProgressEstimator (the model: work items, speed,
remaining time) from what tracker.ProgressTracker and its dump / restore subclasses
observe (dump.py, restore.py). They travel in ProgressUpdated events to the
TUI and the CLI, which only read them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from ..formatting import human_bytes, human_duration

PHASES: tuple[str, ...] = ("preparing", "schema", "data", "indexes", "finishing", "done")
PHASE_ORDER = {name: index for index, name in enumerate(PHASES)}


@dataclass(frozen=True)
class ProgressSnapshot:
    """One immutable reading of a job's progress, safe to hand to another thread or widget.

    percent: 0..100, never decreasing, exactly 100 when the job succeeded. Bytes are in the
    units of `bytes_total` (a dump: tables' heap + TOAST size; a restore: the same sizes from
    the backup's manifest, or archive bytes without one). `current`: the tables being copied or
    indexed, as SQL writes their names. `eta_s` is None until it can be believed.
    `estimate` says where the numbers come from (e.g. "pg_stat_progress_copy + table sizes",
    or "table counts and output size" when the server's progress view cannot be read).
    `waiting`: what a backend of the job is blocked on, e.g. "a lock held by pid 42 (psql)" --
    the answer to "is it hung?" (not in the jsonl object, whose keys are fixed).
    """

    elapsed_s: float
    phase: str
    percent: float
    bytes_done: int = 0
    bytes_total: int = 0
    rows_done: int = 0
    tables_done: int = 0
    tables_total: int = 0
    current: tuple[str, ...] = ()
    eta_s: float | None = None
    rate_bps: float | None = None
    estimate: str = ""
    waiting: str | None = None

    @property
    def blocked(self) -> bool:
        """A backend of the job waits (for a lock...): no time left can be told, however the bar stands."""
        return bool(self.waiting)

    def as_json(self) -> dict[str, Any]:
        """The `--progress jsonl` object: exactly the keys issue #4 promises to scripts."""
        return {
            "event": "progress",
            "elapsed_s": round(self.elapsed_s, 3),
            "phase": self.phase,
            "percent": round(self.percent, 1),
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "rows_done": self.rows_done,
            "tables_done": self.tables_done,
            "tables_total": self.tables_total,
            "current": list(self.current),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
        }

    def summary(self) -> str:
        """One human line: '42% data 310.0 MB/740.0 MB 1.2M rows 12/57 tables public.events ETA 0m31s'."""
        parts = [f"{math.floor(self.percent):3d}%", self.phase]  # never "100%" before it is
        if self.bytes_total:
            parts.append(f"{human_bytes(self.bytes_done)}/{human_bytes(self.bytes_total)}")
        if self.rows_done:
            parts.append(f"{human_count(self.rows_done)} rows")
        if self.tables_total:
            parts.append(f"{self.tables_done}/{self.tables_total} tables")
        if self.current:
            shown = ", ".join(self.current[:2]) + (f" +{len(self.current) - 2}" if len(self.current) > 2 else "")
            parts.append(shown)
        if self.rate_bps:
            parts.append(f"{human_bytes(self.rate_bps)}/s")
        if self.waiting:
            parts.append(f"waiting for {self.waiting}")
        if self.phase == "done" or self.eta_s is None or self.blocked:
            parts.append(f"{'in' if self.phase == 'done' else 'elapsed'} {human_duration(self.elapsed_s)}")
        else:
            parts.append(f"ETA {human_duration(self.eta_s)}")
        return " ".join(parts)


def human_count(count: float) -> str:
    """1234 -> '1.2k', 1_200_000 -> '1.2M'."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(count) >= size:
            return f"{count / size:.1f}{unit}"
    return f"{count:.0f}"


class JobProgress(Protocol):
    """What a Job needs of its progress tracker (tracker.ProgressTracker, count.CountProgress)."""

    last: ProgressSnapshot | None

    async def stop(self) -> None:
        """Stop watching: the job is over."""

    def emit_done(self) -> None:
        """The job succeeded: send the last snapshot, at exactly 100 %."""
