"""Schedules as the CLI (`schedule list`, `schedule next`) and the TUI's Schedules tab show them.

Times: cron runs a schedule in this machine's time zone, so next runs are computed there; they
are also shown in the server's own zone (`SHOW timezone`, when the server answers), which is what
a DBA reads in the server's log. The clock is a parameter: the TUI's snapshot test fixes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .config import Config
from .errors import PgBackupError
from .formatting import human_duration
from .schedules import Schedule, local_zone, next_runs

BADGES = {"succeeded": "✔ ok", "failed": "✘ failed", "cancelled": "✘ cancelled", "running": "… running",
          "stopped": "✘ stopped"}  # stopped: killed, or the machine restarted (schedule_run.last_run_as_it_stands)


def server_zone(config: Config, server: str) -> tuple[tzinfo | None, str]:
    """The server's time zone (SHOW timezone) and its name; (None, why) when it cannot be read."""
    import psycopg

    from .connect import connect, target_from_profile

    try:
        with connect(target_from_profile(config.server(server))) as conn:
            row = conn.execute("SHOW timezone").fetchone()
    except (PgBackupError, psycopg.Error) as exc:
        return None, f"unknown ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    name = str(row[0]) if row else "UTC"
    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError):
        return None, f"{name} (not a zone this machine knows)"


def _span(seconds: float) -> str:
    if seconds < 48 * 3600:
        return human_duration(seconds)
    days, rest = divmod(int(seconds), 86400)
    return f"{days}d{rest // 3600:02d}h"


def relative(moment: datetime, now: datetime) -> str:
    """'in 5h12m' / '3m10s ago' / 'in 6d20h'."""
    seconds = (moment - now).total_seconds()
    return f"in {_span(seconds)}" if seconds >= 0 else f"{_span(-seconds)} ago"


def clock_text(moment: datetime, zone: tzinfo, *, year: bool = True) -> str:
    """'2026-03-29 03:00 CEST' (or without the year) in `zone`."""
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or ''}".strip()[0 if year else 5:]


def short_name(name: str, cells: int) -> str:
    """`name` in at most `cells` characters: cut in the middle with "…", where names of one family
    differ ("nightly-orders-eu-…" and "nightly-orders-us-…" would read the same cut at the end). A
    63-character name took the Schedules tab's whole width at 80x24, its other columns out of sight."""
    if len(name) <= cells:
        return name
    head = cells // 2
    return f"{name[:head]}…{name[len(name) - (cells - 1 - head):]}"


@dataclass
class ScheduleRow:
    """One schedule, ready to show."""

    name: str
    cron: str
    what: str
    server: str
    next_at: datetime | None
    next_text: str  # "12-03 02:30 CET (in 5h12m)"
    last_text: str  # "12-02 02:31 CET (21h43m ago)" or "never"
    badge: str  # "✔ ok", "✘ failed", "" (never run)
    retention: str
    last: dict[str, Any] | None


def schedule_row(schedule: Schedule, last: dict[str, Any] | None, now: datetime,
                 zone: tzinfo | None = None) -> ScheduleRow:
    """What the list and the tab show of `schedule` at `now` (times in `zone`, default local)."""
    zone = zone or local_zone()
    nxt = next_runs(schedule.cron, now, 1, zone)[0]
    last_text, badge = "never", ""
    if last:
        try:
            when = datetime.fromisoformat(str(last.get("finished_at") or last.get("started_at")))
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            last_text = f"{clock_text(when, zone, year=False)} ({relative(when, now)})"
        except ValueError:
            last_text = "?"
        badge = BADGES.get(str(last.get("status")), str(last.get("status") or ""))
    return ScheduleRow(schedule.name, schedule.cron, schedule.describe, schedule.server, nxt,
                       f"{clock_text(nxt, zone, year=False)} ({relative(nxt, now)})", last_text, badge,
                       schedule.retention_text, last)
