"""The time a job's work left takes at this machine's pace: ProgressEstimator's base (estimator.py).

Serial work adds up. With --jobs, the data and index phases run side by side: their time is the
larger of their work shared among the workers and their critical path (the longest item, or a
heavy table's data followed by its indexes), and the longest item goes faster once it runs alone.
Over a link that the workers share, the bytes left on the wire bound it too (shared_link.py).
Pure: the estimator's bookkeeping is read, never changed, and callers pass `now`.
"""

from __future__ import annotations

from .items import TAIL_FRACTION, WorkItem
from .shared_link import SharedLink
from .speed import SMALL_ITEM_S, SpeedLedger, pace_class

PARALLEL_PHASES = frozenset({"data", "indexes"})  # what pg_dump/pg_restore --jobs run side by side


class TimeLeft:
    """The time-left part of ProgressEstimator, over its bookkeeping (set there)."""

    items: list[WorkItem]
    jobs: int
    ledger: SpeedLedger
    link: SharedLink | None
    _running: dict[str, WorkItem]  # the items running now
    _pending: dict[tuple[str, str], float]  # pace_class -> prior cost not started yet
    _pending_max: dict[str, float]  # phase -> largest such item, cached
    _pending_wire: int  # bytes on the wire of the data items not started
    _chains: list[list[WorkItem]]  # the heaviest tables' data and index items

    def speeds(self, now: float) -> dict[tuple[str, str], float]:
        """Seconds this machine takes per prior second, per pace_class: the estimator's."""
        raise NotImplementedError

    def _fraction(self, item: WorkItem, now: float, k: float) -> float:
        if item.done:
            return 1.0
        if item.started_at is None or not item.running:
            return 0.0
        if item.measured:
            return item.fraction
        by_clock = (now - item.started_at) / max(1e-6, item.cost_s * k)
        return min(TAIL_FRACTION, max(item.fraction, by_clock))

    def _left(self, item: WorkItem, now: float, k: float) -> float:
        """Seconds `item` still needs at pace k. One nobody measures that has run past its estimate
        is taken to be TAIL_FRACTION done: it needs a ninth of the time it has taken so far."""
        if item.running and not item.measured and item.started_at is not None:
            taken = now - item.started_at
            return max(item.cost_s * k - taken, taken * (1.0 - TAIL_FRACTION) / TAIL_FRACTION)
        return item.cost_s * (1.0 - self._fraction(item, now, k)) * k

    def remaining_s(self, now: float, speeds: dict[tuple[str, str], float] | None = None) -> float:
        """Seconds of work left at this machine's speed."""
        speeds = speeds or self.speeds(now)
        parallel = self.jobs > 1
        serial = par_sum = par_max = 0.0
        for (phase, size), cost in self._pending.items():
            if cost <= 1e-9:
                continue
            if parallel and phase in PARALLEL_PHASES:
                par_sum += cost * speeds[(phase, size)]
                largest = self._largest_pending(phase)
                par_max = max(par_max, largest * speeds[(phase, "small" if largest < SMALL_ITEM_S else "large")])
            else:
                serial += cost * speeds[(phase, size)]
        longest: tuple[float, float] = (0.0, 1.0)  # the longest running item: (time left, its pace)
        for item in self._running.values():
            k = self._item_speed(item, now, speeds[pace_class(item)])
            left = self._left(item, now, k)
            if parallel and item.phase in PARALLEL_PHASES:
                par_sum += left
                left = self._alone(item, now, left)
                par_max = max(par_max, left)
                longest = max(longest, (left, k))
            else:
                serial += left
        if parallel:
            par_max = max(par_max, self._longest_chain(now, speeds))
            left, k = longest
            others = (par_sum - left) / (self.jobs - 1)  # until the other workers' work is done
            if left >= par_max and others < left and not self.ledger.remote:
                # ...the longest item shares the machine with them; alone after that, it goes faster:
                # at a pace between the one it showed beside them and the machine's measured as the job
                # started (their geometric mean: how much the others took depends on the machine's load).
                par_max = others + (left - others) * (min(k, self.ledger.machine) / k) ** 0.5
        if self.link is not None:  # the workers share the link: all the data's wire bytes cross it
            par_max = max(par_max, self.link.time_left(self._pending_wire + self._running_wire(done=False)))
        return serial + max(par_max, par_sum / self.jobs)

    def _running_wire(self, *, done: bool) -> float:
        """The running data items' bytes on the wire done (or left), as far as they are measured."""
        return sum(item.info.get("wire", 0) * (item.fraction if done else 1.0 - item.fraction)
                   for item in self._running.values() if item.phase == "data")

    def _longest_chain(self, now: float, speeds: dict[tuple[str, str], float]) -> float:
        """With --jobs, a big table's indexes start only after its data: that chain can be the
        critical path. Watched for the heaviest tables only (small ones never are).

        A table's plain indexes are built side by side, but pg_restore runs an item that takes
        an exclusive lock on the table (info["exclusive"]: a primary key, a foreign key...) alone
        among the table's items: those add up.
        """
        longest = 0.0
        for items in self._chains:
            data = side_by_side = one_by_one = 0.0
            for item in items:
                if item.done:
                    continue
                k = self._item_speed(item, now, speeds[pace_class(item)]) if item.running else speeds[pace_class(item)]
                left = self._alone(item, now, self._left(item, now, k))
                if item.phase == "data":
                    data += left
                elif item.info.get("exclusive"):
                    one_by_one += left
                else:
                    side_by_side = max(side_by_side, left)
            longest = max(longest, data + one_by_one + side_by_side)
        return longest

    def _alone(self, item: WorkItem, now: float, left: float) -> float:
        """A running data item's time left once it has a shared link to itself (shared_link.py)."""
        if self.link is None or item.phase != "data" or not item.running:
            return left
        return self.link.alone(item.info.get("wire", 0) * (1.0 - item.fraction), left)

    def _item_speed(self, item: WorkItem, now: float, phase_k: float) -> float:
        """A running item's own recent pace, leaning on its phase's until it has shown some.

        With --jobs, items of one phase do not share a pace: a big table copied beside a run of
        small ones goes at its own speed, and it is the one the job waits for. (A serial job's
        phase pace is the running item's own already, and steadier.)
        """
        return phase_k if self.jobs == 1 else self.ledger.item_speed(item, now, phase_k)

    def _largest_pending(self, phase: str) -> float:
        if phase not in self._pending_max:
            self._pending_max[phase] = max((item.cost_s for item in self.items if item.phase == phase
                                            and item.started_at is None and not item.done), default=0.0)
        return self._pending_max[phase]
