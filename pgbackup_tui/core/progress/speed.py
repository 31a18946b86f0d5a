"""How fast this job really goes, learnt from the job itself: the speed factor k per pace class.

k = seconds spent / prior seconds of work done (1.0: as the priors say). Work is counted as it is
seen -- running items with a measured fraction at every snapshot, the others when they finish --
and fades with a memory of a fifth of the elapsed time (at least a second): a recent rate, on the
job's own time scale, so a job 20 times slower than the priors forgets as slowly, in evidence, as
one that matches them.

A class goes at the pace it has shown once it has PRIOR_S seconds of evidence (two ticks), and
leans on its prior until then (a geometric mix, by the share of those seconds it has): so the
speed the job shows takes over within a second, whatever the machine. The prior of a class:
 - in the data phase (bytes over the link), the data phase's pace so far, else the machine's;
 - in the other phases (client and server work: the verification pass, DDL, index builds,
   the closing fsync, the passes over the new archive), the machine's: the pace of all the work
   outside the data phase so far, never faded, leaning until it has PRIOR_S seconds of its own
   on the data phase's pace if that is faster than the priors, else on the priors (a slow data
   phase may be the link's doing, a fast one is the machine's).
A slow link therefore slows the data estimate but not the index builds after it (the steps
before the data were quick), and a slow machine slows everything (the steps before were slow).

Time that says nothing about speed is left out: an item counts from its first measurement, not
from its start line (the statement may have waited for a lock first), and nothing counts while
a serial job's backend waits (pause / resume). Pure: callers pass `now`.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Iterable

from .snapshot import PHASES
from .items import WorkItem

SMALL_ITEM_S = 0.1  # prior cost under which an item is "small": mostly round trips, not bytes
PRIOR_S = 0.5  # seconds of evidence after which a class goes at its own pace: two ticks
MEMORY_SHARE = 0.2  # evidence fades with a time constant of this share of the elapsed time
MEASURED_TAIL_FRACTION = 0.9  # an item measured this far says nothing more by when it ends

SIZES = ("small", "large")


def pace_class(item: WorkItem) -> tuple[str, str]:
    """Items that keep the same pace: a phase's small items (round trips), or its large ones (bytes)."""
    return item.phase, "small" if item.cost_s < SMALL_ITEM_S else "large"


def blend(prior: float, spent: float, work: float) -> float:
    """The pace `spent` / `work` shows, mixed with `prior` until PRIOR_S seconds of it are seen."""
    if spent <= 0:
        return prior
    shown = spent / max(work, spent / 1000.0)  # nothing done for a while: very slow, not infinitely
    weight = min(1.0, spent / PRIOR_S)
    return prior ** (1.0 - weight) * shown ** weight


class Evidence:
    """Seconds spent and prior seconds of work done, fading with age."""

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
    """The evidence of speed of one job: per pace class, and per running item."""

    def __init__(self, origin: float) -> None:
        self.origin = origin
        self._classes: dict[tuple[str, str], Evidence] = defaultdict(Evidence)
        self._items: dict[str, Evidence] = defaultdict(Evidence)  # running items' own pace
        self._counted: dict[str, tuple[float, float]] = {}  # running item -> (time, fraction) counted
        self._machine = [0.0, 0.0]  # (spent, work) outside the data phase, never faded

    def memory(self, now: float) -> float:
        return max(1.0, MEMORY_SHARE * (now - self.origin))

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
            if item.phase != "data":
                self._machine[0] += spent
                self._machine[1] += work
            if fraction < 1.0:
                self._items[item.key].add(spent, work, now, memory)
            self._counted[item.key] = (now, fraction)

    def close(self, item: WorkItem, now: float) -> None:
        """`item` finished: count the rest of it, then forget it. Not the last few per cent of one
        measured that far: what follows the last measurement (an index build's commit, a closing
        fsync) is not what the measured part was made of."""
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
        """Seconds this job takes per prior second, per pace_class (phase, size)."""
        running = list(running)
        if not paused:
            for item in running:
                if item.measured and item.fraction < MEASURED_TAIL_FRACTION:
                    self.bank(item, now, item.fraction)
        memory = self.memory(now)
        seen = {key: evidence.read(now, memory) for key, evidence in self._classes.items()}
        # A large step nobody measures that runs past its prior shows the machine is at least that
        # slow (a small one's overrun is round trips and scheduling: a 20 ms step taking 0.3 s is no
        # sign that the next pass over gigabytes will take 15 times its prior).
        floor = max(((now - item.started_at) / item.cost_s for item in running
                    if not item.measured and not item.info.get("no_evidence") and item.started_at is not None
                    and item.cost_s >= SMALL_ITEM_S and now - item.started_at > item.cost_s), default=0.0)
        data_seen = [seen.get(("data", size), (0.0, 0.0)) for size in SIZES]
        data = blend(max(floor, blend(1.0, *self._machine)), sum(s for s, _ in data_seen), sum(w for _, w in data_seen))
        machine = max(floor, blend(min(1.0, data), *self._machine))  # a slow data phase may be the link
        return {(phase, size): blend(data, *seen.get((phase, size), (0.0, 0.0))) if phase == "data"
                else max(floor, blend(machine, *seen.get((phase, size), (0.0, 0.0))))
                for phase in PHASES for size in SIZES}

    def item_speed(self, item: WorkItem, now: float, phase_k: float) -> float:
        """A running item's own recent pace, leaning on its class's until it has shown some."""
        if item.key not in self._items:
            return phase_k
        return blend(phase_k, *self._items[item.key].read(now, self.memory(now)))


class RateMeter:
    """Bytes per second over the last few seconds: the rate a pane shows (not a speed factor)."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float]] = deque()
        self.last: float | None = None

    def update(self, elapsed: float, bytes_done: float) -> float | None:
        samples = self._samples
        samples.append((elapsed, bytes_done))
        while len(samples) > 2 and samples[0][0] < elapsed - max(3.0, 0.1 * elapsed):
            samples.popleft()
        (t0, b0), (t1, b1) = samples[0], samples[-1]
        if t1 - t0 >= 0.5:
            self.last = max(0.0, (b1 - b0) / (t1 - t0))
        return self.last
