"""Watching a running job: the server's progress views (server_probe.py), the child's files, and the ticker.

ProgressTracker is the runtime around a ProgressEstimator: every TICK_S it starts a poll, applies
what the last poll saw, reads the child's files (/proc/<pid>/fdinfo read positions, output size),
and emits ProgressUpdated(job_id, snapshot) -- so at most and at least about 4 updates a second.
The first poll, over TCP, times the link on the same connection (link.link_rate: 1 MiB fetched
twice, 0.4 s at 5 MB/s; never for a dry run): the data's prior pace. The monitor opens one
connection, no more: a server near max_connections must not refuse one of the job's own for it.
Nothing here may fail the job: a server that is too old, a role that may not read the view, or
any error in a poll switches to the fallback estimate (logged once); an error in the tracker
itself is logged once and the job goes on without progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from collections.abc import Callable

from ..connect import Target
from ..formatting import human_duration
from ..jobs import Job, ProgressUpdated
from .snapshot import ProgressSnapshot
from .estimator import ProgressEstimator
from .speed import TICK_S
from ..defaults import monitor_fits
from .server_probe import BackendProgress, ProbeUnavailable, ServerProbe

NO_DATA_S = 60.0  # a data phase this long without a byte moving (and no lock said) is said: see _said_if_no_data


class ProgressTracker:
    """Runs one job's progress: subclasses know what the job's lines and files mean."""

    fallback_estimate = "table counts and elapsed time"

    def __init__(self, job: Job, estimator: ProgressEstimator) -> None:
        self.job = job
        self.estimator = estimator
        self.probe: ServerProbe | None = None
        self.probe_failed: str | None = None
        self.last: ProgressSnapshot | None = None
        self.loop_cpu_s = 0.0  # CPU time of the ticks on the event loop's thread
        self._task: asyncio.Task | None = None
        self._poll: asyncio.Future | None = None
        self._broken = False
        self._watching = False  # watch_server was called (before it, the probe only times the link)
        self._data_bytes, self._data_moved_at = -1, 0.0  # the data's bytes as last seen moving, and when
        self._held: ProgressSnapshot | None = None  # hold()'s snapshot, said again each tick
        self._held_at = 0.0

    @property
    def cpu_s(self) -> float:
        """CPU seconds the progress monitoring cost this process (polls + ticks)."""
        return self.loop_cpu_s + (self.probe.cpu_s if self.probe else 0.0)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    def watch_server(self, target: Target, dbname: str, *, indexes: bool = False) -> None:
        """Start polling the server's progress views for the job's backends in `dbname` (and, with
        `indexes`, their index builds)."""
        if self.probe_failed is not None:
            return
        self._watching = True
        if self.probe is None:
            self.probe = ServerProbe(target, dbname, self.job.application_name, indexes=indexes)
        else:
            self.probe.watch(dbname, indexes=indexes)

    def watch_server_beside(self, tool: str, jobs: int, free: int | None, target: Target, dbname: str, *,
                            indexes: bool = False) -> None:
        """watch_server, where the monitor's connection fits beside the connections of `tool`'s
        `jobs` in the `free` ones this role has left (defaults.monitor_fits). Where it does not, the
        job runs without the server's word from the start: connected first, the monitor would take
        a connection the tool needs, which would then fail half way ("too many connections")."""
        if monitor_fits(jobs, free):
            self.watch_server(target, dbname, indexes=indexes)
            return
        if self.probe is not None:
            self.probe.close()
            self.probe = None
        self.fallback(f"no connection to spare for it beside {tool}'s: {free} free for this role in '{dbname}' "
                      "(its CONNECTION LIMIT, the role's, the server's)")

    def measure_link(self, target: Target, dbname: str) -> None:
        """As the ticks start, time the link to the server (link_rate: the data's prior over TCP) on
        the monitor's connection, opened to `dbname` (a restore's target may not exist yet: the job's
        watch_server moves it there). The bar stands still until it is timed."""
        if self.probe is None:
            self.probe = ServerProbe(target, dbname, self.job.application_name, time_link=True)

    async def stop(self) -> None:
        """Stop ticking and close the monitor connection (the job is over)."""
        self._held = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._poll is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self._poll), 3)
        if self.probe is not None:
            await asyncio.to_thread(self.probe.close)

    async def hold(self, phase: str) -> None:
        """Stop watching the server (the job's own step that follows needs its connection gone: a
        restore's swap of names) but go on saying where the job is: `phase`, and what it waits for
        (held_waiting), its elapsed time going on, no time left. Stopped instead, the job stood at
        the load's last snapshot ("86% indexes ... ETA 1s") for as long as its swap waited for a
        lock, in `jobs list` and the TUI. `current` is emptied: it names tables (jsonl's key too)."""
        await self.stop()
        if self.last is None or self._broken:
            return
        self._held = replace(self.last, phase=phase, current=(), eta_s=None, rate_bps=None, waiting=None)
        self._held_at = time.monotonic()
        self._task = asyncio.ensure_future(self._run_held())

    def held_waiting(self, what: str | None) -> None:
        """While held: what the job waits for now (None: nothing any more), said at once."""
        if self._held is not None:
            self._held = replace(self._held, waiting=what)
            self._guarded(self._emit_held)

    async def _run_held(self) -> None:
        while True:
            self._guarded(self._emit_held)
            await asyncio.sleep(TICK_S)

    def _emit_held(self) -> None:
        assert self._held is not None
        self._emit(replace(self._held, elapsed_s=self._held.elapsed_s + time.monotonic() - self._held_at))

    def emit_done(self) -> None:
        """The job succeeded: one last snapshot at exactly 100 %, phase done."""
        self._guarded(lambda: self._emit(self.estimator.done_snapshot(time.monotonic())))

    # -- what subclasses feed ----------------------------------------------------------------------
    def on_line(self, line: str) -> None:
        """A stderr line of the job's child (run_process's on_line)."""
        self._guarded(lambda: self.line(line, time.monotonic()))

    def enter_phase(self, phase: str) -> None:
        """The job moved on to `phase` (what came before it is over)."""
        self._guarded(lambda: self.estimator.enter_phase(phase, time.monotonic()))

    def finish_step(self, key: str) -> None:
        """A step the job runs itself (e.g. the verification pass) is over."""
        self._guarded(lambda: self.estimator.finish(key, time.monotonic()))

    def line(self, line: str, now: float) -> None:
        """Subclasses: what a verbose line says."""

    def observe_server(self, rows: list[BackendProgress], now: float) -> None:
        """Subclasses: what one poll of the progress views saw."""

    def observe_local(self, now: float) -> None:
        """Subclasses: read the child's files (each tick; always, and alone in the fallback)."""

    def fallback(self, reason: str) -> None:
        """The server cannot tell us any more: say so once and estimate without it."""
        self.probe_failed = reason
        self.estimator.estimate = self.fallback_estimate
        self.estimator.wait(None, time.monotonic())  # nobody can tell any more: do not say it still waits
        self.job.log(f"progress: cannot read the server's progress view ({reason}); "
                     f"estimating from {self.fallback_estimate}")

    # -- the ticker -----------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            if self.probe is not None and self.probe_failed is None and self._poll is None:
                self._poll = asyncio.ensure_future(asyncio.to_thread(self.probe.poll))
            if self._poll is not None:  # a slow poll: the tick emits what it has when its time is up
                await asyncio.wait({self._poll}, timeout=TICK_S)
            cpu_started = time.thread_time()
            self._guarded(self._tick)
            self.loop_cpu_s += time.thread_time() - cpu_started
            await asyncio.sleep(max(0.01, TICK_S - (time.monotonic() - started)))

    def _tick(self) -> None:
        now = time.monotonic()
        poll, rows = self._poll, None
        if poll is not None and poll.done():
            self._poll = None
            if self.probe is not None and self.probe.link_bps is not None:
                self.estimator.link_rate(self.probe.link_bps, now)
                self.probe.link_bps = None
            exc = poll.exception()
            if exc is not None and self.probe is not None and not self._watching:
                self.probe.close()  # it was only to time the link: the priors stay, watch_server starts anew
                self.probe = None
            elif isinstance(exc, ProbeUnavailable):
                self.fallback(str(exc))
            elif exc is not None:
                self.fallback(repr(exc))
            else:
                rows = poll.result()
        if rows is not None:
            waits = [row.phase for row in rows if row.kind == "wait"]
            self.estimator.wait(waits[0] if waits else None, now)
            self.observe_server([row for row in rows if row.kind != "wait"], now)
        self.observe_local(now)
        timing = self.probe is not None and self.probe.timing_link and not self.probe_failed
        if timing != self.estimator.timing_link:
            self.estimator.link_pending(timing)
        self._emit(self.estimator.snapshot(now))

    def _emit(self, snapshot: ProgressSnapshot) -> None:
        snapshot = self._said_if_no_data(snapshot, time.monotonic())
        self.last = snapshot
        self.job.emit(ProgressUpdated(self.job.id, snapshot))

    def _said_if_no_data(self, snapshot: ProgressSnapshot, now: float) -> ProgressSnapshot:
        """In the data phase, NO_DATA_S without a byte moving and nothing else said (no lock): it is
        said, and no time left. A link that froze (no reset, no FIN) or a server that stopped
        answering looked like a job going on at its last figure, with a time left that kept growing."""
        if not self._watching or self.probe_failed is not None:
            return snapshot  # bytes estimated from the clock or the output (no server view): no such claim
        if snapshot.phase != "data" or snapshot.waiting or snapshot.bytes_done != self._data_bytes:
            self._data_bytes, self._data_moved_at = snapshot.bytes_done, now
            return snapshot
        quiet = now - self._data_moved_at
        if quiet < NO_DATA_S:
            return snapshot
        return replace(snapshot, eta_s=None,
                       waiting=f"data from the server (none for {human_duration(quiet)}: the server or the "
                               "network may be stuck)")

    def _guarded(self, action: Callable[[], object]) -> None:
        """Progress is a display: a bug here is logged once and never reaches the job."""
        if self._broken:
            return
        try:
            action()
        except Exception as exc:
            self._broken = True
            self.job.log(f"progress: internal error, no more progress updates: {exc!r}", level="warning")
