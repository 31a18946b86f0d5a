"""Full garbage collections when the user is idle, not while the app builds something big.

CPython's cyclic collector starts a full (generation 2) collection when enough objects have
outlived two younger ones, that is right after the app has built something big, while the user
waits for it; and a full collection walks every object the app holds, holding the GIL. With the
Backups tab listing 5,000 backups (scripts/bench_tui_lists.py, load 3.9 on the 2-core VM), full
collections took 124-294 ms and the tab's longest frame gaps were 180-335 ms; with them off,
45-100 ms.

IdleCollector keeps the young collections (cheap, and they free most cyclic garbage) and moves
the full ones out of the way: generation 2's threshold is out of reach while the app runs, and a
timer runs gc.collect() once the user has not pressed a key or moved the mouse for IDLE_S and
younger collections have promoted objects since the last full one (as often as CPython would
consider one, at most every SPACING_S; at least every FORCE_S even when the user never pauses,
so cyclic garbage never piles up). The thresholds are put back when the app ends: tests run many
apps in one process.
"""

from __future__ import annotations

import gc
from time import monotonic
from typing import Any

from textual.app import App

IDLE_S = 2.0  # no key or mouse event for this long: the user is not waiting for a frame
CHECK_S = 1.0
SPACING_S = 30.0  # a full collection costs 50-150 ms here: at most 0.5 % of a core
FORCE_S = 120.0
OUT_OF_REACH = 1_000_000_000  # generation 2's threshold while the app runs
CONSIDER = 10  # collections of generation 1 before CPython considers a full one (its default)


class IdleCollector:
    """Defers full collections to idle moments while started (see the module docstring)."""

    def __init__(self) -> None:
        self._saved: tuple[int, int, int] | None = None
        self._last_input = self._last_full = monotonic()
        self.collections = 0  # full collections run here

    def start(self, app: App[Any]) -> None:
        """Take generation 2 off the allocation path and check for idleness every CHECK_S."""
        if self._saved is None:
            self._saved = gc.get_threshold()
            gc.set_threshold(self._saved[0], self._saved[1], OUT_OF_REACH)
            app.set_interval(CHECK_S, self.check)

    def stop(self) -> None:
        """Put CPython's thresholds back."""
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def input_seen(self) -> None:
        """A key or mouse event came: the user may be waiting for the next frame."""
        self._last_input = monotonic()

    def check(self) -> bool:
        """Run a full collection if one is due and the user is idle (or it is long overdue)."""
        now = monotonic()
        due = gc.get_count()[2] >= CONSIDER and now - self._last_full >= SPACING_S
        if self._saved is None or not due:
            return False
        if now - self._last_input < IDLE_S and now - self._last_full < FORCE_S:
            return False
        gc.collect()
        self._last_full = monotonic()
        self.collections += 1
        return True
