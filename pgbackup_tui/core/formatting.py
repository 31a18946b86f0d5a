"""Human-readable sizes and durations, shared by the CLI and the TUI."""

from __future__ import annotations


def human_bytes(size: float | None) -> str:
    """1536 -> '1.5 kB' (binary multiples, short units)."""
    if size is None:
        return "?"
    size = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PB"


def human_duration(seconds: float | None) -> str:
    """75 -> '1m15s'; 3725 -> '1h02m'."""
    if seconds is None:
        return "?"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
