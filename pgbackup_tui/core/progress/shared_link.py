"""A link that the workers of a parallel job share (pg_dump or pg_restore --jobs over TCP).

Each worker's pace over a shared link is its share of it: a table copied beside another goes at
half its speed, and at all of it once alone. So with --jobs over a link the data left is timed as a
whole -- all its bytes on the wire at the rate they cross the link -- and a running table, once
alone, at that whole rate. The rate is the one the job shows (the data's bytes on the wire a second,
over the last seconds), the link's timed rate until it shows one: the probe can be wrong by half.
It stands for the link only while the link is what limits the job: while the data goes at less
than half the link's timed rate, the server is what limits it (or nothing moves: a link that hangs),
and each table keeps its own pace.
"""

from __future__ import annotations

from .speed import RateMeter


class SharedLink:
    """The link's rate for a parallel job's data, from its timing and from what the job shows."""

    def __init__(self, timed_bps: float) -> None:
        self.timed_bps = timed_bps
        self._meter = RateMeter()

    def update(self, elapsed: float, wire_done: float) -> None:
        """The data's bytes on the wire done so far (call while the data phase runs)."""
        self._meter.update(elapsed, wire_done)

    @property
    def rate(self) -> float:
        """Bytes a second the data crosses the link at: shown, or timed until the job shows one."""
        return self._meter.last if self._meter.last is not None else self.timed_bps

    @property
    def limits(self) -> bool:
        """Whether the link is what limits the data (it goes at half the timed rate or more)."""
        return self.rate >= 0.5 * self.timed_bps

    def time_left(self, wire_left: float) -> float:
        """Seconds the data still to cross needs, however the workers spread it (0 while the link is
        not what limits it: stalled, or the server slower)."""
        return wire_left / self.rate if self.limits else 0.0

    def alone(self, wire_left: float, left: float) -> float:
        """A running table's time left once it has the link to itself (`left`: at the pace it shows)."""
        return min(left, wire_left / self.rate) if self.limits else left
