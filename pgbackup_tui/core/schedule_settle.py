"""Settling a schedule's last run that was stopped half way, and the schedule's name on its backups.

A run's front killed (kill -9, a reboot) while or after its job ran left its record saying
"running", and the backup its job made without the schedule's name: retention would never count,
nor delete, it. The next run of the schedule (schedule_run) gives the backup the name, and says
what became of the stopped run, as it was: before its checks, in its checks, in its retention, or
in its hooks once it had ended.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

from . import catalog, job_store
from .errors import PgBackupError
from .manifest import load_manifest, manifest_locked, save_manifest
from .retention import SCHEDULE_KEY, SCHEDULE_PATH_KEY, written_path


def settle_interrupted(name: str, last: dict[str, Any] | None) -> tuple[list[str], tuple[str, str] | None]:
    """The last run's front was stopped (kill -9, a reboot) while or after its job ran: it still says
    running, and its backup, if the job made one, was never tagged, so retention would never
    delete it. Tag it now and say what became of that run (its checks and retention did not run).
    The same for a run that failed after its job made the backup (the tag could not be written).
    Returns those lines, and (the line, the job's id) for a stopped run that made no backup: its
    failure was told to nobody (its front died before its hooks and notifications)."""
    job_id = (last or {}).get("job_id")
    if last and last.get("stage") == "telling":  # it had ended; what it made or did is on record already
        line = (f"the run started {last.get('started_at')}{f' (job {job_id})' if job_id else ''} "
                f"{last.get('status')}, then was stopped (killed, or the machine restarted) while its hooks and "
                "notifications ran: they may not have been told")
        # Its failure is told again: the hooks monitoring counts on may be the ones it never ran.
        return [line], ((line, str(job_id or "")) if last.get("status") != "succeeded" else None)
    if not last or last.get("status") not in ("running", "failed") or not job_id:
        return [], None
    record = job_store.load(str(job_id))
    if record is None or job_store.runner_alive(record.folder):
        return [], None
    output = Path(str(record.state.get("output_path") or ""))
    made = record.status == "succeeded" and record.state.get("output_path") and output.exists()
    if last.get("status") == "failed":
        # A run whose job made its backup, then failed to tag it (its disk full, say): retention
        # would never count, nor ever delete, that backup.
        if not made or tagged(output, name):
            return [], None
        tag_backup(output, name)
        return [f"the run started {last.get('started_at')} (job {job_id}) failed after its backup was made: "
                f"{output} is now this schedule's (retention counts it), not verified"], None
    if made:
        tag_backup(output, name)
        checked = checks_said(output)
        stage = last.get("stage")
        if stage == "retention":
            return [f"the run started {last.get('started_at')} (job {job_id}) was stopped during its retention: "
                    f"its backup {output} was made, {checked}; this run's retention finishes what it left"], None
        if stage == "checks":
            return [f"the run started {last.get('started_at')} (job {job_id}) was stopped during its checks: its "
                    f"backup {output} is this schedule's (retention counts it), {checked}"], None
        return [f"the run started {last.get('started_at')} (job {job_id}) was stopped before its checks and "
                f"retention: its backup {output} is now this schedule's (retention counts it), {checked}"], None
    ended = f"ended {record.status}" if record.status in job_store.FINAL_STATES else "stopped too, unfinished"
    line = (f"the run started {last.get('started_at')} (job {job_id}) was stopped (killed, or the machine restarted) "
            f"and made no backup; its job {ended}")
    return [line], (line, str(job_id))


def checks_said(archive: Path) -> str:
    """What the backup's checks say now, in words: "verified", "drilled", "not verified", "failed
    verification" (a run stopped during its checks may have recorded one, or not)."""
    manifest = load_manifest(archive)
    status = catalog.status_of(manifest) if manifest is not None else "complete"
    return "not verified" if status == "complete" else status


def tagged(archive: Path, schedule_name: str) -> bool:
    manifest = load_manifest(archive)
    return manifest is not None and manifest.extra.get(SCHEDULE_KEY) == schedule_name


def tag_backup(archive: Path, schedule_name: str) -> None:
    """Record the schedule in the manifest, under the lock catalog.record_check takes."""
    try:
        with manifest_locked(archive):
            manifest = load_manifest(archive)
            if manifest is None:
                raise PgBackupError(f"{archive}: the new backup has no manifest")
            manifest.extra[SCHEDULE_KEY] = schedule_name
            manifest.extra[SCHEDULE_PATH_KEY] = written_path(archive)  # retention: not a copy elsewhere
            save_manifest(archive, manifest)
    except OSError as exc:
        full = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
        raise PgBackupError(f"{archive}: made, but its manifest could not record schedule '{schedule_name}' "
                            f"({exc.strerror}{full}); a later run records it") from None
