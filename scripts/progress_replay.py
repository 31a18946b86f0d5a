"""Replay recorded jobs through the current ProgressEstimator: tune it in seconds, not hours.

    .venv/bin/python scripts/bench_progress.py --record /tmp/recordings
    .venv/bin/python scripts/progress_replay.py /tmp/recordings/*.pickle

The estimator is pure: everything it knows arrives through its methods, each with the time it
happened (`now`). bench_progress.py --record swaps in RecordingEstimator, which keeps the work
items as they were planned and every call made to it; replaying those calls into a fresh
ProgressEstimator gives the snapshots the current constants and code would have shown on that
very run, with the run's real duration to judge them by. A real run still has the last word
(the recorded fractions come from the code that ran: a change to what is observed, such as
index_fraction, needs new recordings).
"""

from __future__ import annotations

import argparse
import copy
import pickle
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pgbackup_tui.core.progress import count as progress_count, dump as progress_dump  # noqa: E402
from pgbackup_tui.core.progress import restore as progress_restore  # noqa: E402
from pgbackup_tui.core.progress.estimator import ProgressEstimator  # noqa: E402

RECORDED_CALLS = ("remove_items", "enter_phase", "start", "observe", "finish", "wait", "reprice",
                  "link_rate", "link_pending", "snapshot", "done_snapshot")


class RecordingEstimator(ProgressEstimator):
    """A ProgressEstimator that remembers its plan and every call made to it."""

    def __init__(self, items, *, origin: float, estimate: str, jobs: int = 1, machine: float = 1.0) -> None:
        items = list(items)
        self.recording: dict[str, Any] = {"items": copy.deepcopy(items), "origin": origin, "estimate": estimate,
                                          "jobs": jobs, "machine": machine, "calls": []}
        self._depth = 0
        super().__init__(items, origin=origin, estimate=estimate, jobs=jobs, machine=machine)

    def _record(self, name: str, *args: Any, **kwargs: Any) -> None:
        if self._depth == 0:  # what the trackers call, not what the estimator calls on itself
            self.recording["calls"].append((name, copy.deepcopy(args), dict(kwargs)))


def _recorded(name: str):
    def method(self, *args, **kwargs):
        self._record(name, *args, **kwargs)
        self._depth += 1
        try:
            return getattr(ProgressEstimator, name)(self, *args, **kwargs)
        finally:
            self._depth -= 1
    method.__name__ = name
    return method


for _name in RECORDED_CALLS:
    setattr(RecordingEstimator, _name, _recorded(_name))


def install() -> None:
    """Make the dump, restore and step trackers build RecordingEstimators."""
    # Replacing the class the modules look up by name is the point here, so mypy is told to let it be.
    progress_dump.ProgressEstimator = RecordingEstimator  # type: ignore[misc]
    progress_restore.ProgressEstimator = RecordingEstimator  # type: ignore[misc]
    progress_count.ProgressEstimator = RecordingEstimator  # type: ignore[misc]


def save(estimator: RecordingEstimator, duration_s: float, path: Path) -> None:
    recording = dict(estimator.recording, duration_s=duration_s)
    with open(path, "wb") as out:
        pickle.dump(recording, out)


def replay(recording: dict[str, Any], trace_s: float | None = None) -> list:
    """The snapshots a fresh estimator gives for the recorded calls (with `trace_s`, a line every
    that many seconds: the time share, the percent, the ETA against the time left, the speeds)."""
    estimator = ProgressEstimator(copy.deepcopy(recording["items"]), origin=recording["origin"],
                                  estimate=recording["estimate"], jobs=recording["jobs"],
                                  machine=recording.get("machine", 1.0))
    snapshots: list = []
    total, next_t = recording["duration_s"], 0.0
    for name, args, kwargs in recording["calls"]:
        if not hasattr(estimator, name):  # a recording made by older code (expect_wait is gone)
            continue
        if name == "reprice" and "wire" in getattr(estimator.get(args[0]), "info", {}):
            continue  # older recordings kept link_rate's own reprices: link_rate makes them here
        result = getattr(estimator, name)(*args, **kwargs)
        if name in ("snapshot", "done_snapshot"):
            snapshots.append(result)
            if trace_s is not None and (result.elapsed_s >= next_t or result.phase == "done"):
                next_t = result.elapsed_s + trace_s
                eta = "  -  " if result.eta_s is None else f"{result.eta_s:5.1f}"
                speeds = " ".join(f"{phase[:4]}/{size[0]} {k:.2f}" for (phase, size), k in
                                  estimator.speeds(args[0]).items() if phase in ("data", "indexes", "finishing"))
                print(f"  t={result.elapsed_s:5.1f} ideal {100 * result.elapsed_s / total:5.1f} shown "
                      f"{result.percent:5.1f} eta {eta} left {total - result.elapsed_s:5.1f} {result.phase:9} {speeds}")
    return snapshots


def main() -> None:
    from bench_progress import accuracy  # the same figures as the benchmark

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recordings", nargs="+", type=Path)
    parser.add_argument("--trace", type=float, nargs="?", const=1.0, default=None, metavar="STEP_S",
                        help="print an update every STEP_S seconds (default 1)")
    args = parser.parse_args()
    for path in args.recordings:
        with open(path, "rb") as source:
            recording = pickle.load(source)
        figures = accuracy(replay(recording, args.trace), recording["duration_s"])
        print(f"{path.name:28} " + "  ".join(f"{name} {value}" for name, value in figures.items()))


if __name__ == "__main__":
    main()
