"""What a front says of a job whose runner could not record its own end (runner.STATE_UNWRITABLE).

The runner stopped because it could not write its state or log (a full or read-only disk), so its
state.json says nothing of why: the front works it out from the disks and from the job's spec, and
says what the runner undid as it stopped (job_follow.JobFollower uses it).
"""

from __future__ import annotations

import os
from pathlib import Path

from . import job_store, paths
from .job_events import DISK_NEARLY_FULL_BYTES


def unwritable_state_message(job_folder: Path | None = None) -> str:
    """What to say when a runner could not even record its result (runner.STATE_UNWRITABLE): the
    folder of its state or of its log that is full or read-only, the first found, else both. A full
    disk is said by the mark the runner left in its job's `folder` (job_store.UNWRITABLE_MARK) too:
    by the time the runner has ended, the partial output it removed may have made room on that disk
    (the backups under PGBACKUP_TUI_HOME), and the job was said only to have "nothing kept"."""
    places = (("state", paths.state_dir()), ("log", paths.logs_dir()))
    folder = job_folder
    if folder is not None and (folder / f"{job_store.UNWRITABLE_MARK}ENOSPC").exists():
        return (f"the disk holding {places[0][1]} was full: the job could not write its state and was stopped; "
                f"{stopped_undid(folder)}")
    for what, folder in places:
        try:
            stats = os.statvfs(folder)
        except OSError:
            continue
        free = stats.f_bavail * stats.f_frsize
        if free < DISK_NEARLY_FULL_BYTES:
            return (f"the disk holding {folder} is full ({free} bytes free): the job could not write its {what} "
                    f"and was stopped; {stopped_undid(job_folder)}")
        if stats.f_flag & os.ST_RDONLY or not os.access(folder, os.W_OK):
            return (f"the job could not write its {what} under {folder} (read-only, or not ours to write); "
                    "nothing was kept")
    return f"the job could not write its state or log under {places[0][1]} or {places[1][1]}; nothing was kept"


def stopped_undid(job_folder: Path | None) -> str:
    """What the runner of the job in `job_folder` undid as it stopped, by the job's kind (its spec):
    a job that writes files removed its partial output; one that writes into a database has none,
    and "partial output removed" was said of restores too (QA). The front cannot read what the
    runner's cleanup found (it could not write it down): said as the plan makes it certain, and what
    the runner undoes as it stops as "is dropped": a server gone meanwhile keeps that database on record,
    dropped at a later start (job_recovery.py), which "was dropped" said was done."""
    spec = job_store.read_json(job_folder / job_store.SPEC) if job_folder is not None else None
    kind = str((spec or {}).get("kind") or "")
    plan = (spec or {}).get("plan") or {}
    plan = plan if isinstance(plan, dict) else {}
    dbname = str(plan.get("dbname") or "")
    if kind == "restore":
        if plan.get("create"):
            return f"the database '{dbname}' it was creating is dropped (as it stopped, else at a later start)"
        if plan.get("clean") or plan.get("single_transaction"):
            return f"'{dbname}' is as it was (the restore went beside it or into one transaction)"
        return (f"'{dbname}' is as it was if the restore ran as one transaction (a data-only archive), else it "
                "may be partly restored (restore again with --clean)")
    if kind == "csv-import":
        if plan.get("create"):
            return f"the database '{dbname}' it was creating is dropped (as it stopped, else at a later start)"
        return f"the tables whose import into '{dbname}' had committed stay (each is its own transaction)"
    if kind == "cluster-restore":
        return "what psql had run stays on the server (roles, and the databases it had made)"
    return "its partial output is removed (as it stopped, else at a later start)"
