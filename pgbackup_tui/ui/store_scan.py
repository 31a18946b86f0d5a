"""Reading the job store for the TUI: the jobs it does not show yet, each with its log tail.

Runs in a thread worker, never on the UI thread: it lists the store's folders, reads the small
JSON files of the new ones and up to LOG_TAIL_BYTES of each new job's log. The app passes in
the ids it has already seen (shown or left out), so a scan every SCAN_INTERVAL_S only loads
folders that are new: jobs the CLI, cron or another TUI started meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core import job_store
from ..core.job_follow import JobFollower, LogLines
from ..core.jobs import JobEvent
from .widgets.job_log import LOG_LINES_KEPT

SCAN_INTERVAL_S = 2.0
MAX_SHOWN = 50  # the newest jobs in the Jobs tab; `pgbackup-tui jobs list` shows them all
LOG_TAIL_BYTES = 512 * 1024  # about LOG_LINES_KEPT lines of pg_dump --verbose: all the pane keeps


@dataclass(frozen=True)
class FoundJob:
    """A job new to the app, and the (text, level) lines of its log read so far."""

    job: JobFollower
    lines: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ScanResult:
    found: tuple[FoundJob, ...]  # oldest first
    left_out: frozenset[str]  # new, but older than the newest `limit`


def scan(seen: frozenset[str], limit: int = MAX_SHOWN) -> ScanResult:
    """The jobs in the store whose id is not in `seen`: the newest `limit` with their log tail,
    the ids of the others. A folder still being written (no spec yet) is left for the next scan."""
    try:
        names = [entry.name for entry in job_store.jobs_root().iterdir()]
    except OSError:  # no store yet
        return ScanResult((), frozenset())
    records = [record for name in names if name not in seen and (record := job_store.load(name)) is not None]
    records.sort(key=lambda record: (record.created_at, record.id))
    cut = max(0, len(records) - limit)
    return ScanResult(tuple(with_log_tail(record) for record in records[cut:]),
                      frozenset(record.id for record in records[:cut]))


def with_log_tail(record: job_store.JobRecord) -> FoundJob:
    """A follower for `record`, having read the end of its log; following goes on from there."""
    job = JobFollower(record)
    job.skip_log(LOG_TAIL_BYTES)
    lines: list[tuple[str, str]] = []

    def collect(event: JobEvent | LogLines) -> None:
        if isinstance(event, LogLines):
            lines.extend(event.lines)

    job.subscribe_batched(collect)
    try:
        while job.read_log_chunk():
            pass
    finally:
        job.unsubscribe(collect)
    job.keep_summary()  # a finished one: its per-table details are not shown (no-op while it runs)
    return FoundJob(job, tuple(lines[-LOG_LINES_KEPT:]))
