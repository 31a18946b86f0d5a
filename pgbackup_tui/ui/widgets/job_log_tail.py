"""A finished job's log, read again from disk when the Jobs pane shows it.

The pane keeps log lines in memory only for the jobs that run and the one selected (up to 50
finished jobs of 5,000 lines each would otherwise stay in memory for nothing: the file has them);
selecting a finished job reads the end of its log again, as the store scan does for a job it
finds (ui/store_scan.py: the last LOG_TAIL_BYTES, about what the view keeps).
"""

from __future__ import annotations

from ...core import job_store
from ...core.job_follow import JobView
from ..store_scan import with_log_tail


def read_log_tail(job: JobView) -> list[tuple[str, str]]:
    """The (text, level) lines at the end of `job`'s log file ([] when it has none or it is gone)."""
    path = job.log_path
    if path is None:
        return []
    # A follower of the log alone (no spec, no state.json read: a finished dump's holds its manifest).
    record = job_store.JobRecord(job.id, path.parent, {}, {"log_path": str(path)})
    return list(with_log_tail(record).lines)
