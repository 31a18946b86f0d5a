"""Issue 14's bar for one job's snapshots, given its real duration: the benchmark's and the model
tests' one definition of "honest".

  - |percent - 100 * elapsed / duration| <= 10 points over the updates after 5 %
  - after 25 %, |ETA - time left| within 20 % of the time left, or within 2 s when under 10 s are left
  - the percentage never goes back, and the last update is exactly 100 with phase "done"
  - at least 2 updates a second (judged by the caller: it knows when they arrived)
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from .snapshot import ProgressSnapshot

MAX_PERCENT_OFF = 10.0
MAX_ETA_SHARE_OFF = 0.20
SHORT_LEFT_S, SHORT_ETA_OFF_S = 10.0, 2.0


@dataclass(frozen=True)
class Verdict:
    duration_s: float
    percent_off: float  # worst |percent - time share| after 5 %, in points
    eta_off: float  # worst ETA error after 25 %, as a share of the time left (where that is the bar)
    eta_off_s: float  # worst ETA error after 25 %, in seconds (the bar under 10 s left)
    eta_ok: bool
    monotonic: bool
    ends_at_100: bool

    @property
    def honest(self) -> bool:
        return self.percent_off <= MAX_PERCENT_OFF and self.eta_ok and self.monotonic and self.ends_at_100


def judge(snapshots: list[ProgressSnapshot], duration_s: float) -> Verdict:
    running = [s for s in snapshots if s.phase != "done"]
    percent_off = max((abs(s.percent - 100 * s.elapsed_s / duration_s) for s in running if s.percent >= 5),
                      default=0.0)
    eta_off = eta_off_s = 0.0
    eta_ok = True
    for s in running:
        left = duration_s - s.elapsed_s
        if s.percent < 25 or s.eta_s is None or left <= 0:
            continue
        off = abs(s.eta_s - left)
        eta_off_s = max(eta_off_s, off)
        if left < SHORT_LEFT_S:
            eta_ok = eta_ok and off <= SHORT_ETA_OFF_S
        else:
            eta_off = max(eta_off, off / left)
            eta_ok = eta_ok and off <= MAX_ETA_SHARE_OFF * left
    return Verdict(duration_s=duration_s, percent_off=percent_off, eta_off=eta_off, eta_off_s=eta_off_s, eta_ok=eta_ok,
                   monotonic=all(a.percent <= b.percent for a, b in pairwise(snapshots)),
                   ends_at_100=bool(snapshots) and snapshots[-1].percent == 100 and snapshots[-1].phase == "done")
