"""Progress estimation (see the modules)."""

from .snapshot import PHASES, ProgressSnapshot, human_count

__all__ = ["PHASES", "ProgressSnapshot", "human_count"]
