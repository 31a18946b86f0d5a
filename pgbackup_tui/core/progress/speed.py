"""How fast this machine really is, learnt from the work a job has done so far.

The speed factor k = seconds spent / prior seconds of work done (1.0: as the constants in
progress_dump.py / progress_restore_plan.py say), per pace class: a phase's small items (mostly
round trips) and its large ones (mostly bytes) each keep their own. Work is counted as it is seen --
running items with a measured fraction at every snapshot, the others when they finish -- and
fades with a time constant of 5 s or a tenth of the elapsed time, whichever is longer: a recent
rate, so a run of small tables after a big one is learnt within seconds. Until a class has
evidence of its own (1 prior second's worth) it leans on the square root of the other size's
factor, and that on the square root of the other phases' factor: part of a factor is the
machine, part the data it was measured on.

Time that says nothing about speed is left out: an item counts from its first measurement, not
from its start line (the statement may have waited for a lock first), and nothing counts while
a serial job's backend waits (pause / resume).

RateMeter is the other speed a pane shows: bytes per second over the last few seconds.

Pure, like the estimator that owns it: callers pass `now`.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Iterable

from .snapshot import PHASES
from .items import WorkItem

SMALL_ITEM_S = 0.1  # prior cost under which an item is "small": mostly round trips, not bytes
SIZE_SHARE = 0.5  # exponent: how much of the other size's speed factor a size inherits
PHASE_PRIOR_WEIGHT_S = 1.0  # seconds of prior work a phase's (or an item's) own speed must outweigh
JOB_PRIOR_WEIGHT_S = 2.0  # the same for the other phases' speed (the prior of each phase)
JOB_FACTOR_SHARE = 0.5  # exponent: how much of the other phases' speed factor a phase inherits
EVIDENCE_MEMORY_S = 5.0  # evidence fades with this time constant, or a tenth of the elapsed time
EVIDENCE_MEMORY_SHARE = 0.1
RATE_WINDOW_S = 3.0
MEASURED_TAIL_FRACTION = 0.9  # an item measured this far says nothing more by when it ends


SIZES = ("small", "large")


def pace_class(item: WorkItem) -> tuple[str, str]:
    """Items that keep the same pace: a phase's small items, or its large ones.

    A big table's speed says little about a small table's (a small one is mostly round trips,
    and its data compresses differently), so each size learns its own and leans on the other's
    only until it has shown some.
    """
    return item.phase, "small" if item.cost_s < SMALL_ITEM_S else "large"


class Evidence:
    """Seconds spent and prior seconds of work done, fading with age: a recent rate.

    The recent past says most about the next minute: a phase of small tables after a big one
    moves at its own pace, and the estimate should learn it within seconds, not be held back by
    the twenty seconds the big one took. Work is added as it is seen (SpeedLedger.bank), so a
    long item weighs by when its work happened, not all at the moment it finished.
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


class SpeedLedger:
    """The evidence of speed of one job: per phase, and per running item."""

    def __init__(self, origin: float) -> None:
        self.origin = origin
        self._classes: dict[tuple[str, str], Evidence] = defaultdict(Evidence)  # per pace_class
        self._items: dict[str, Evidence] = defaultdict(Evidence)  # running items' own pace
        self._counted: dict[str, tuple[float, float]] = {}  # running item -> (time, fraction) counted

    def memory(self, now: float) -> float:
        return max(EVIDENCE_MEMORY_S, EVIDENCE_MEMORY_SHARE * (now - self.origin))

    def first_measured(self, item: WorkItem, now: float) -> None:
        """`item` has just been measured for the first time: its evidence starts here."""
        self._counted.setdefault(item.key, (now, item.fraction))

    def bank(self, item: WorkItem, now: float, fraction: float) -> None:
        """Count the time and work of `item` since it was last counted, up to `fraction`."""
        if item.info.get("no_evidence") or item.started_at is None:
            return
        since, counted = self._counted.get(item.key, (item.started_at, 0.0))
        if now > since and fraction >= counted:
            spent, work, memory = now - since, item.cost_s * (fraction - counted), self.memory(now)
            self._classes[pace_class(item)].add(spent, work, now, memory)
            if fraction < 1.0:
                self._items[item.key].add(spent, work, now, memory)
            self._counted[item.key] = (now, fraction)

    def close(self, item: WorkItem, now: float) -> None:
        """`item` finished: count the rest of it, then forget it.

        Not the last few per cent of one measured that far: what follows the last measurement
        (an index build's last pages and commit, a dump's closing fsync inside its last table)
        is not what the measured part was made of, and one such tail of a second or two read as
        speed would slow the estimate of everything after it."""
        if not (item.measured and item.fraction >= MEASURED_TAIL_FRACTION):
            self.bank(item, now, 1.0)
        self._counted.pop(item.key, None)
        self._items.pop(item.key, None)

    def pause(self, running: Iterable[WorkItem], now: float) -> None:
        """The job's backend starts waiting: count the measured items up to now."""
        for item in running:
            if item.measured:
                self.bank(item, now, item.fraction)

    def resume(self, running: Iterable[WorkItem], now: float) -> None:
        """The wait is over: the measured items count again from now, the wait left out."""
        for item in running:
            if item.measured and item.key in self._counted:
                self._counted[item.key] = (now, self._counted[item.key][1])

    def speeds(self, running: Iterable[WorkItem], now: float, *, paused: bool) -> dict[tuple[str, str], float]:
        """Seconds this machine takes per prior second, per pace_class (phase, size).

        Running items with a measured fraction are counted first (unless the job waits), up to
        MEASURED_TAIL_FRACTION: see close().
        """
        if not paused:
            for item in running:
                if item.measured and item.fraction < MEASURED_TAIL_FRACTION:
                    self.bank(item, now, item.fraction)
        memory = self.memory(now)
        seen = {key: self._classes[key].read(now, memory) for key in list(self._classes)}
        job_spent = sum(spent for spent, _ in seen.values())
        job_work = sum(work for _, work in seen.values())
        speeds = {}
        for phase in PHASES:
            own = [seen.get((phase, size), (0.0, 0.0)) for size in SIZES]
            # The machine, as the other phases show it (this phase's evidence counts below, once).
            other_spent = job_spent - sum(spent for spent, _ in own)
            other_work = job_work - sum(work for _, work in own)
            job_k = ((JOB_PRIOR_WEIGHT_S + other_spent) / (JOB_PRIOR_WEIGHT_S + other_work)) ** JOB_FACTOR_SHARE
            for size, (spent, work), (other_size_spent, other_size_work) in zip(SIZES, own, reversed(own), strict=True):
                other_size_k = ((PHASE_PRIOR_WEIGHT_S * job_k + other_size_spent)
                                / (PHASE_PRIOR_WEIGHT_S + other_size_work))
                prior = job_k ** (1.0 - SIZE_SHARE) * other_size_k ** SIZE_SHARE
                speeds[(phase, size)] = (PHASE_PRIOR_WEIGHT_S * prior + spent) / (PHASE_PRIOR_WEIGHT_S + work)
        return speeds

    def item_speed(self, item: WorkItem, now: float, phase_k: float) -> float:
        """A running item's own recent pace, leaning on its phase's until it has shown some."""
        if item.key not in self._items:
            return phase_k
        spent, work = self._items[item.key].read(now, self.memory(now))
        return (PHASE_PRIOR_WEIGHT_S * phase_k + spent) / (PHASE_PRIOR_WEIGHT_S + work)


class RateMeter:
    """Bytes per second over the last few seconds: the rate a pane shows (not a speed factor)."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float]] = deque()
        self.last: float | None = None

    def update(self, elapsed: float, bytes_done: float) -> float | None:
        samples = self._samples
        samples.append((elapsed, bytes_done))
        while len(samples) > 2 and samples[0][0] < elapsed - RATE_WINDOW_S:
            samples.popleft()
        (t0, b0), (t1, b1) = samples[0], samples[-1]
        if t1 - t0 >= 0.5:
            self.last = max(0.0, (b1 - b0) / (t1 - t0))
        return self.last
