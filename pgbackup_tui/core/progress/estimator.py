"""The progress model: work items with prior costs, this job's speed (speed.py), the time left
(time_left.py, its base), the ETA and the percentage -- steps 5 and 6 of the page in __init__.py.
Pure (no I/O, no clock of its own): callers pass `now` (time.monotonic()).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from .snapshot import PHASE_ORDER, ProgressSnapshot
from .items import WorkItem, is_data
from .shared_link import SharedLink
from .speed import RateMeter, SmoothedEta, SpeedLedger, pace_class
from .time_left import PARALLEL_PHASES, TimeLeft

NOT_DONE_CAP = 0.99  # a measured item claims no more (row estimates are estimates), nor a running job: 100 % is done
ETA_MIN_PERCENT = 5.0  # no ETA before this, nor before one smoothing time: too little is known
CHAINS_WATCHED = 32


class ProgressEstimator(TimeLeft):
    """Work items + observations -> snapshots. Not thread-safe: feed it from one thread.

    Bookkeeping is incremental (sums per phase, the set of running items), so a snapshot costs
    time in proportion to the items running, not to the thousands a restore may list.
    """

    def __init__(self, items: Iterable[WorkItem], *, origin: float, estimate: str, jobs: int = 1,
                 machine: float = 1.0) -> None:
        """`machine`: this machine's pace before the job shows one (speed.machine_pace())."""
        self.items: list[WorkItem] = list(items)
        self._by_key: dict[str, WorkItem] = {item.key: item for item in self.items}
        if len(self._by_key) < len(self.items):
            raise ValueError("two work items have one key")
        self._running: dict[str, WorkItem] = {}
        self._pending: dict[tuple[str, str], float] = defaultdict(float)  # pace_class -> prior cost not started yet
        self._pending_max: dict[str, float] = {}  # phase -> largest such item (for --jobs), cached
        self._done_bytes = self._done_rows = self._tables_done = 0
        self._recount()
        self.origin = origin  # monotonic time at which the job started
        self.ledger = SpeedLedger(machine)
        self.estimate = estimate
        self.jobs = max(1, jobs)
        self.phase = "preparing"
        self.waiting: str | None = None  # what a backend of the job waits for (wait())
        self._paused = False  # the ledger is paused for a wait (wait())
        self.timing_link = False  # the link is being timed: the bar stands still (link_pending())
        self.link: SharedLink | None = None  # with --jobs over TCP, once timed (link_rate())
        self._percent = 0.0
        self.moved = False  # the job's data has moved (or it has none, or is past it): the bar may move
        self._has_data = any(item.phase == "data" for item in self.items)
        self._idle_s = 0.0  # time that was no work: waits for a lock, a step that waits (info["wait"])
        self._idle_since: float | None = None  # ...since when the job is idle now, if it is
        self._eta = SmoothedEta()
        self._rate = RateMeter()  # bytes per second, shown during the data phase (the last one after it)

    # -- items ---------------------------------------------------------------------------------
    def remove_items(self, keys: Iterable[str]) -> None:
        """Forget items that will not run (e.g. entries a --use-list leaves out)."""
        gone = set(keys)
        self.items = [item for item in self.items if item.key not in gone]
        self._by_key = {item.key: item for item in self.items}
        self._running = {key: item for key, item in self._running.items() if key not in gone}
        self._has_data = any(item.phase == "data" for item in self.items)
        self._recount()

    def _recount(self) -> None:
        self._pending.clear()
        self._pending_max.clear()
        self._done_bytes = self._done_rows = self._tables_done = 0
        self._pending_wire = self._done_wire = 0  # bytes on the wire of the data items not started, done
        for item in self.items:
            if item.started_at is None and not item.done:
                self._pending[pace_class(item)] += item.cost_s
                self._pending_wire += item.info.get("wire", 0) if item.phase == "data" else 0
            if item.done:
                self._count_done(item)
        groups: dict[str, list[WorkItem]] = defaultdict(list)
        for item in self.items:
            if item.group is not None and item.phase in PARALLEL_PHASES:
                groups[item.group].append(item)
        heaviest = sorted(groups, key=lambda g: sum(item.cost_s for item in groups[g]), reverse=True)
        self._chains = [groups[group] for group in heaviest[:CHAINS_WATCHED]]
        self.bytes_total = sum(item.bytes for item in self.items if is_data(item))
        self.tables_total = sum(1 for item in self.items if is_data(item) and item.kind == "table")

    def reprice(self, key: str, cost_s: float) -> None:
        """A better prior for an item that has not started (a data item once the link is timed, the
        checksum pass once the archive's size is known). Running and finished items keep theirs:
        their speed evidence was counted against it."""
        item = self._by_key.get(key)
        if item is None or item.started_at is not None or item.done:
            return
        self._pending[pace_class(item)] -= item.cost_s
        item.cost_s = cost_s
        self._pending[pace_class(item)] += item.cost_s
        self._pending_max.pop(item.phase, None)

    def link_rate(self, bps: float, now: float) -> None:
        """The link to the server passes `bps` bytes a second (timed as the job starts): a data item
        takes at least its bytes on the wire (info["wire"]) at that rate, the running one too (its
        prior is the one its pace is measured against). The server is elsewhere: its work says
        nothing of this machine's pace."""
        self.ledger.remote = True
        self.link = SharedLink(bps) if self.jobs > 1 else None
        for item in self.items:
            wire = item.info.get("wire")
            if wire and not item.done:
                cost = max(item.cost_s, wire / bps / self.ledger.machine)
                if item.running:
                    item.cost_s = cost
                else:
                    self.reprice(item.key, cost)

    def link_pending(self, pending: bool) -> None:
        """The link is being timed (or no more): until it is, the data is priced as if the server
        were here, and the bar stands still (a dump of a 5 MB/s link showed 13 % after 0.3 s)."""
        self.timing_link = pending

    def get(self, key: str) -> WorkItem | None:
        return self._by_key.get(key)

    def running(self) -> list[WorkItem]:
        return list(self._running.values())

    # -- events --------------------------------------------------------------------------------
    def enter_phase(self, phase: str, now: float) -> None:
        """The job moved on to `phase`: what comes before it is over.

        With --jobs, data and index items overlap, so entering `indexes` does not end data items
        (pg_restore says when each finishes); everything else is strictly in order.
        """
        order = PHASE_ORDER[phase]
        if order < PHASE_ORDER[self.phase]:
            return
        self.phase = phase
        if order > PHASE_ORDER["data"]:
            self.moved = True  # the data is behind it (or there was none)
        overlapping = self.jobs > 1 and phase in PARALLEL_PHASES
        for item in self.items:
            if PHASE_ORDER[item.phase] >= order or item.done:
                continue
            if overlapping and item.phase in PARALLEL_PHASES:
                continue
            self._close(item, now)
        self._start_next_step(phase, now)
        self._track_idle(now)

    def start(self, key: str, now: float) -> WorkItem | None:
        """`key` started. In serial jobs that ends whatever ran before it."""
        item = self._by_key.get(key)
        if item is None or item.done or item.running:
            return item
        if PHASE_ORDER[item.phase] > PHASE_ORDER[self.phase]:
            self.enter_phase(item.phase, now)
        if self.jobs == 1 or item.phase not in PARALLEL_PHASES:
            for other in self.running():
                if other.kind != "step":
                    self._close(other, now)
        self._begin(item, now)
        return item

    def observe(self, key: str, fraction: float, now: float, rows_done: int | None = None) -> None:
        """A measured fraction (0..1) of a running item; starts it if no line said so yet."""
        item = self._by_key.get(key)
        if item is None or item.done:
            return
        if item.started_at is None:
            self.start(key, now)
        item.fraction = max(item.fraction, min(NOT_DONE_CAP, max(0.0, fraction)))
        if item.fraction > 0:
            self._note_moved(item)
        if not item.measured:
            # Speed evidence starts here, not at the start line: before it the statement may
            # have waited for a lock (an autovacuum of the table just loaded holds one for up to
            # deadlock_timeout) -- time that says nothing about speed.
            self.ledger.first_measured(item, now)
        item.measured = True
        if rows_done is not None:
            item.rows_done = max(item.rows_done, rows_done)

    def wait(self, what: str | None, now: float) -> None:
        """A backend of the job waits for `what` (e.g. "a lock held by pid 42 (psql)"), or no more.

        In a serial job, or one of --jobs before its data (one backend: nothing else moves), the
        time left stands still while it waits, since the work ahead is the same when the wait
        ends; and the time waited is no
        evidence of speed (measured items are counted up to the start of the wait and again from
        its end; an unmeasured one starts counting at its first measurement anyway).
        """
        if what and not self.waiting and self._serial:  # with --jobs in data or indexes the others go on
            self.ledger.pause(self._running.values(), now)
            self._paused = True
        elif self._paused and not what:
            self.ledger.resume(self._running.values(), now)
            self._paused = False
        self.waiting = what
        self._track_idle(now)

    @property
    def _serial(self) -> bool:
        """Whether one backend does all the work now: a job of one, or one of --jobs before its
        data (pg_dump -j's leader reads the catalog and locks every table before a worker starts)."""
        return self.jobs == 1 or self.phase not in PARALLEL_PHASES

    @property
    def _stalled(self) -> bool:
        """A job whose only working backend waits: no work is being done, the ETA and the bar stand still."""
        return bool(self.waiting) and self._serial

    def finish(self, key: str, now: float, rows_done: int | None = None) -> None:
        """`key` is over; `rows_done`: the rows it copied, where only its end tells (a CSV import)."""
        item = self._by_key.get(key)
        if item is not None and not item.done:
            if rows_done is not None:
                item.rows_done = max(item.rows_done, rows_done)
            self._close(item, now)
            if item.kind == "step":
                self._start_next_step(item.phase, now)

    def _begin(self, item: WorkItem, now: float) -> None:
        item.started_at = now
        self._pending[pace_class(item)] -= item.cost_s
        self._pending_wire -= item.info.get("wire", 0) if item.phase == "data" else 0
        self._pending_max.pop(item.phase, None)
        self._running[item.key] = item
        if item.info.get("wait"):
            self._track_idle(now)

    def _close(self, item: WorkItem, now: float) -> None:
        if item.running:
            del self._running[item.key]
            self.ledger.close(item, now)
            self._note_moved(item)
            if item.info.get("wait"):
                self._track_idle(now)
        else:  # never seen running: it counts as done, but says nothing about speed
            self._pending[pace_class(item)] -= item.cost_s
            self._pending_wire -= item.info.get("wire", 0) if item.phase == "data" else 0
            self._pending_max.pop(item.phase, None)
        item.finished_at = now
        item.fraction = 1.0
        if item.rows >= 0:
            item.rows_done = max(item.rows_done, item.rows)
        self._count_done(item)

    def _note_moved(self, item: WorkItem) -> None:
        """`item` has done some of its work (measured, or ended after it ran): if it moves data (or the job
        moves none and it is past the preparations), the job's work shows and the bar may move."""
        if item.phase == "data" or (not self._has_data and item.phase != "preparing" and not item.info.get("wait")):
            self.moved = True

    def _track_idle(self, now: float) -> None:
        """Count the time the job does no work: a serial job's backend waits for a lock, or a step that
        is a wait runs (a restore's target checked: other sessions may be ending)."""
        idle = self._stalled or any(item.info.get("wait") for item in self._running.values())
        if idle and self._idle_since is None:
            self._idle_since = now
        elif not idle and self._idle_since is not None:
            self._idle_s += max(0.0, now - self._idle_since)
            self._idle_since = None

    def worked_s(self, now: float) -> float:
        """The time the job has worked: its elapsed time less the time it waited (_track_idle)."""
        idle = self._idle_s + (max(0.0, now - self._idle_since) if self._idle_since is not None else 0.0)
        return max(0.0, now - self.origin - idle)

    def _count_done(self, item: WorkItem) -> None:
        self._done_wire += item.info.get("wire", 0) if item.phase == "data" else 0
        if is_data(item):
            self._done_bytes += item.bytes
            if item.kind == "table":
                self._tables_done += 1
                self._done_rows += item.rows_done

    def _start_next_step(self, phase: str, now: float) -> None:
        """Steps (work nobody names: "pg_dump reads the catalog") run one after another."""
        steps = [item for item in self.items if item.phase == phase and item.kind == "step" and not item.done]
        if steps and not any(step.running for step in steps):
            self._begin(steps[0], now)

    # -- estimating ----------------------------------------------------------------------------
    def speeds(self, now: float) -> dict[tuple[str, str], float]:
        """Seconds this machine takes per prior second, per pace_class (1.0 = as the constants say)."""
        return self.ledger.speeds(self._running.values(), now, paused=self._stalled)

    def snapshot(self, now: float) -> ProgressSnapshot:
        """The progress at `now`; call it at a steady pace (it smooths over calls)."""
        elapsed = max(0.0, now - self.origin)
        speeds = self.speeds(now)
        if self.link is not None and self.phase == "data":
            self.link.update(elapsed, self._done_wire + self._running_wire(done=True))
        remaining = self.remaining_s(now, speeds)
        eta = self._eta.update(elapsed, remaining, hold=self._stalled)
        self._track_idle(now)
        # The share of its time the job has worked, not of the clock's: a wait moves no bar. Nor does
        # anything before its data moves: time alone (a catalog read, a check, a wait nobody has seen
        # yet) is no work done, and a job refused or stopped there has done none.
        worked = self.worked_s(now)
        total = worked + eta
        raw = 100.0 * worked / total if total > 0 else 0.0
        if self.moved and not self._stalled and not self.timing_link:  # the bar stands still while nothing is known
            self._percent = min(100 * NOT_DONE_CAP, max(self._percent, raw))
        shown_eta = eta if (self._percent >= ETA_MIN_PERCENT and elapsed >= SmoothedEta.TIME_CONSTANT_S) else None
        return self._build(elapsed, self._percent, self._shown_phase(), shown_eta, now, speeds)

    def done_snapshot(self, now: float) -> ProgressSnapshot:
        """The last snapshot of a job that succeeded: 100 %, every item done."""
        for item in self.items:
            if not item.done:
                self._close(item, now)
        self._percent = 100.0
        return self._build(max(0.0, now - self.origin), 100.0, "done", 0.0, now, self.speeds(now))

    def _shown_phase(self) -> str:
        running = [item.phase for item in self._running.values() if item.kind != "step"]
        return min(running, key=PHASE_ORDER.__getitem__) if running else self.phase

    def _build(self, elapsed: float, percent: float, phase: str, eta: float | None, now: float,
               speeds: dict[tuple[str, str], float]) -> ProgressSnapshot:
        bytes_done = float(self._done_bytes)
        rows_done = self._done_rows
        for item in self._running.values():
            if is_data(item):
                bytes_done += item.bytes * self._fraction(item, now, speeds[pace_class(item)])
                if item.kind == "table":
                    rows_done += item.rows_done
        current = tuple(dict.fromkeys(item.label for item in self._running.values()
                                      if item.label and item.phase == phase))
        return ProgressSnapshot(
            elapsed_s=elapsed,
            phase=phase,
            percent=percent,
            bytes_done=int(bytes_done),
            bytes_total=self.bytes_total,
            rows_done=rows_done,
            tables_done=self._tables_done,
            tables_total=self.tables_total,
            current=current,
            eta_s=eta,
            rate_bps=self._rate.update(elapsed, bytes_done) if phase == "data" else self._rate.last,
            estimate=self.estimate,
            waiting=self.waiting if phase != "done" else None,
        )
