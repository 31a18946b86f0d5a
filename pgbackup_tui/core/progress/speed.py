"""How fast this job goes, learnt from the job itself: the speed factor k per pace class (step 4 of
the page in __init__.py: k = seconds spent / prior seconds of work done, 1.0 as the priors say).

Work is counted as it is seen: running items with a measured fraction at every snapshot, the
others when they finish. Time that says nothing about speed is left out: an item counts from its
first measurement, not from its start line (the statement may have waited for a lock first), and
nothing counts while a serial job's backend waits (pause / resume). Pure, apart from machine_pace:
callers pass `now`.
"""

from __future__ import annotations

import functools
import math
import time
import zlib
from collections import defaultdict, deque
from collections.abc import Iterable

from .items import TAIL_FRACTION, WorkItem
from .priors import REFERENCE_ZLIB_BPS
from .snapshot import PHASES

SMALL_ITEM_S = 0.1  # prior cost under which an item is "small": mostly round trips, not bytes
TICK_S = 0.25  # the tracker observes the job and emits a snapshot this often
PRIOR_S = 2 * TICK_S  # evidence after which a class goes at its own pace: two observations

SIZES = ("small", "large")


@functools.cache
def _sample() -> bytes:
    """0.6 MB of COPY-like text, made when first asked for: 13 ms that every command's start paid."""
    return b"".join(b"%d\tlabel %d\t%f\n" % (i, 7 * i, i / 3) for i in range(20_000))


def machine_pace() -> float:
    """This machine's k before the job shows one: its CPU time for a fixed piece of compression work
    over the reference machine's (about 4 ms; CPU time, not the clock's, which a busy process
    stretches: what the machine can do, not how busy it happens to be)."""
    sample = _sample()
    started = time.thread_time()
    zlib.compress(sample, 1)
    return min(100.0, max(0.01, (time.thread_time() - started) * REFERENCE_ZLIB_BPS / len(sample)))


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


class SpeedLedger:
    """The evidence of speed of one job: per pace class, and per running item."""

    def __init__(self, machine: float = 1.0) -> None:
        self.machine = machine
        # (spent, work) per pace class, and per running item (its own pace)
        self._classes: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
        self._items: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        self._counted: dict[str, tuple[float, float]] = {}  # running item -> (time, fraction) counted
        self._paused_at: dict[str, float] = {}  # unmeasured running item -> when the wait began
        self.remote = False  # the server is elsewhere (over TCP): its work says nothing of this machine
        # (spent, work) by (ran on this machine?, bulk work?): the machine's pace
        self._machine = {(here, bulk): [0.0, 0.0] for here in (True, False) for bulk in (True, False)}

    def first_measured(self, item: WorkItem, now: float) -> None:
        """`item` has just been measured for the first time: its evidence starts here."""
        self._counted[item.key] = (now, item.fraction)
        self._paused_at.pop(item.key, None)

    def bank(self, item: WorkItem, now: float, fraction: float) -> None:
        """Count the time and work of `item` since it was last counted, up to `fraction`."""
        if item.info.get("no_evidence") or item.started_at is None:
            return
        since, counted = self._counted.get(item.key, (item.started_at, 0.0))
        if now > since and fraction >= counted:
            pools = [self._classes[pace_class(item)]]
            if fraction < 1.0:
                pools.append(self._items[item.key])
            pools.append(self._machine[bool(item.info.get("local")), item.cost_s >= SMALL_ITEM_S])
            for pool in pools:
                pool[0] += now - since
                pool[1] += item.cost_s * (fraction - counted)
            self._counted[item.key] = (now, fraction)

    def close(self, item: WorkItem, now: float) -> None:
        """`item` finished: count the rest of it, then forget it. Not the last few per cent of one
        measured that far: what follows the last measurement (an index build's commit, a closing
        fsync) is not what the measured part was made of."""
        if not (item.measured and item.fraction >= TAIL_FRACTION):
            self.bank(item, now, 1.0)
        self._counted.pop(item.key, None)
        self._items.pop(item.key, None)
        self._paused_at.pop(item.key, None)

    def pause(self, running: Iterable[WorkItem], now: float) -> None:
        """The job's backend starts waiting: count the measured items up to now (an unmeasured one
        counts from its start when it ends: the wait is taken out of it at resume)."""
        for item in running:
            if item.measured:
                self.bank(item, now, item.fraction)
            elif item.started_at is not None:
                self._paused_at[item.key] = now

    def resume(self, running: Iterable[WorkItem], now: float) -> None:
        """The wait is over: the measured items count again from now, the unmeasured ones from their start
        plus the wait: the wait left out of both."""
        for item in running:
            if item.measured and item.key in self._counted:
                self._counted[item.key] = (now, self._counted[item.key][1])
            elif item.key in self._paused_at and item.started_at is not None:
                since, counted = self._counted.get(item.key, (item.started_at, 0.0))
                self._counted[item.key] = (since + max(0.0, now - self._paused_at.pop(item.key)), counted)

    def speeds(self, running: Iterable[WorkItem], now: float, *, paused: bool) -> dict[tuple[str, str], float]:
        """Seconds this job takes per prior second, per pace_class (phase, size)."""
        if not paused:
            for item in running:
                if item.measured and item.fraction < TAIL_FRACTION:
                    self.bank(item, now, item.fraction)
        seen, none = self._classes, (0.0, 0.0)
        machine = self.machine
        for bulk in (False, True):  # round trips until bulk work has shown a pace
            pools = [self._machine[here, bulk] for here in (True, False) if here or not self.remote]
            spent, work = sum(p[0] for p in pools), sum(p[1] for p in pools)
            machine = blend(self.machine, spent, work) if spent > 0 else machine
        return {(phase, size): blend(blend(machine, *seen.get((phase, other), none)) if phase == "data" else machine,
                                     *seen.get((phase, size), none))
                for phase in PHASES for size, other in zip(SIZES, reversed(SIZES), strict=True)}

    def item_speed(self, item: WorkItem, now: float, phase_k: float) -> float:
        """A running item's own pace, leaning on its class's until it has shown some."""
        if item.key not in self._items:
            return phase_k
        return blend(phase_k, *self._items[item.key])


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


class SmoothedEta:
    """The ETA: the time left as estimated, followed with a time constant (a tenth of the elapsed
    time, at most TIME_CONSTANT_S) so that one reading does not make it jump; held while `hold`."""

    TIME_CONSTANT_S = 1.0

    def __init__(self) -> None:
        self._eta: float | None = None
        self._last_t = 0.0

    def update(self, elapsed: float, remaining: float, *, hold: bool = False) -> float:
        if self._eta is None:
            eta = remaining
        elif hold:
            eta = self._eta
        else:
            step = max(0.0, elapsed - self._last_t)
            predicted = max(0.0, self._eta - step)
            constant = max(0.05, min(self.TIME_CONSTANT_S, 0.1 * elapsed))
            eta = predicted + (1.0 - math.exp(-step / constant)) * (remaining - predicted)
        self._eta, self._last_t = eta, elapsed
        return eta
