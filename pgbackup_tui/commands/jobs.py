"""`pgbackup-tui jobs list | show ID | log ID [--follow] | cancel ID`: the job store, headless.

Every job, whoever started it (the CLI, the TUI, a scheduled run), has a folder in the state dir
(core/job_store.py); these commands read it. `cancel` asks the job's runner to stop, as Ctrl-C
in the command that started it would, and waits for the job to end.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ..core import job_store, paths
from ..core.errors import EXIT_OK, UsageError
from ..core.formatting import human_bytes, human_duration
from ..core.identifiers import printable
from ..core.job_follow import JobFollower, snapshot_from_state
from ..core.jobs import LogLine


def _record(job_id: str) -> job_store.JobRecord:
    record = job_store.load(job_id)
    if record is None:
        matches = [r for r in job_store.list_jobs() if r.id.startswith(job_id)] if job_id else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            shown = ", ".join(sorted(r.id for r in matches)[:5])
            raise UsageError(f"job {job_id}: the prefix fits {len(matches)} jobs ({shown}); give more of the id")
        member_log = _member_log(job_id)
        if member_log is not None:
            raise UsageError(f"job {job_id}: ran inside another job (a cluster set's member, or a step of one), "
                             f"with no record of its own; its log: {member_log} (pgbackup-tui jobs log {job_id})")
        raise UsageError(f"job {job_id}: no such job (pgbackup-tui jobs list shows them)")
    return record


def _member_log(job_id: str) -> Path | None:
    """The log of a job run inside another (a cluster set's member: its set's log names its id),
    which has a log of its own but no record; None unless exactly one log's id starts with `job_id`."""
    folder = paths.logs_dir()
    if not job_id or not folder.is_dir():
        return None
    found = [log for log in folder.glob(f"*-{glob.escape(job_id)}*.log")
             if log.stem.rsplit("-", 1)[-1].startswith(job_id)]  # the id is the name's last part
    return found[0] if len(found) == 1 else None


def _print_log_file(path: Path) -> int:
    """A finished log, a line at a time (streamed, never held whole), as `jobs log` prints a job's."""
    with path.open(encoding="utf-8", errors="replace") as log:
        for line in log:
            print(printable(line.rstrip("\n")))
    sys.stdout.flush()
    return EXIT_OK


def job_summary(record: job_store.JobRecord) -> dict[str, Any]:
    """One job as `jobs list --json` and `jobs show` give it."""
    state = record.state
    snapshot = snapshot_from_state(state)
    started, finished = state.get("started_at"), state.get("finished_at")
    status, message = record.status, state.get("message")
    if status not in job_store.FINAL_STATES and not job_store.runner_alive(record.folder):
        # Its runner died, and its recovery (at this command's start) did not record its end. Not
        # "running" for as long as that lasts.
        snapshot = None
        if state.get("unsure_since"):  # the server could not say whether its last step was done
            status = "stopped"
            message = ("its runner stopped at its last step; whether that step was done cannot be told yet (the "
                       "server does not answer): looked at again by a later command")
        else:  # the state folder's disk full, or read-only
            status = "failed"
            message = ("its runner stopped without finishing; its end is not on record yet (the job's state could "
                       "not be written: a full or read-only disk?): a later command records it once it can")
    return {
        "id": record.id,
        "kind": record.spec.get("kind"),
        "title": record.spec.get("title"),
        "server": record.spec.get("server"),
        "database": record.spec.get("database"),
        "state": status,
        "created_at": _iso(record.created_at),
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "duration_s": round((finished or time.time()) - started, 3) if started else None,
        "exit_code": state.get("exit_code"),
        "message": message,
        "output_path": state.get("output_path"),
        "log_path": state.get("log_path"),
        "percent": round(snapshot.percent, 1) if snapshot else None,
        "progress": snapshot.summary() if snapshot and status == "running" else None,
        "cleanup_pending": state.get("cleanup_pending"),
    }


def _iso(stamp: Any) -> str | None:
    return datetime.fromtimestamp(float(stamp)).astimezone().isoformat(timespec="seconds") if stamp else None


def run_jobs(args: argparse.Namespace) -> int:
    command = args.jobs_command
    if command == "list":
        records = job_store.list_jobs()
        if args.json:
            print(json.dumps([job_summary(r) for r in reversed(records)], indent=2))
            return EXIT_OK
        if not records:
            print("no jobs yet", file=sys.stderr)
            return EXIT_OK
        for record in reversed(records):  # newest first
            info = job_summary(record)
            when = (info["started_at"] or info["created_at"] or "")[:19].replace("T", " ")
            extra = info["progress"] or (human_duration(info["duration_s"]) if info["duration_s"] else "")
            print(printable(f"{record.id}  {info['state']:<9}  {when}  {info['title']}  {extra}".rstrip()))
        return EXIT_OK
    if command == "log" and job_store.load(args.id) is None:
        member_log = _member_log(args.id) if not any(r.id.startswith(args.id) for r in job_store.list_jobs()) else None
        if member_log is not None:  # a set's member: its own log, though it has no record
            if args.follow:
                raise UsageError(f"job {args.id}: ran inside another job, with no record of its own to tell when it "
                                 f"ends: follow that job instead (its log names this one); its log: {member_log}")
            return _print_log_file(member_log)
    record = _record(args.id)
    if command == "show":
        info = job_summary(record)
        width = max(len(key) for key in info)
        for key, value in info.items():
            if value is not None:
                print(printable(f"{key:<{width}}  {value}"))
        output = record.state.get("output_path")
        if output and record.status == "succeeded":
            print(f"{'bytes':<{width}}  {human_bytes(int(record.state.get('bytes_written') or 0))}")
        return EXIT_OK
    if command == "log":
        return _log(record, follow=args.follow)
    if command == "cancel":
        return _cancel(record)
    raise UsageError(f"unknown jobs command {command!r}")


def _log(record: job_store.JobRecord, *, follow: bool) -> int:
    log_path = record.state.get("log_path")
    if log_path and not Path(str(log_path)).exists():  # printed nothing and said 0: as if it were empty
        raise UsageError(f"job {record.id}: its log {log_path} is gone (deleted or moved)")
    follower = JobFollower(record)
    follower.subscribe(lambda event: print(printable(event.text), flush=True) if isinstance(event, LogLine) else None)
    if not follow or follower.state.is_final:
        while follower.read_log_chunk():  # a chunk at a time: a long log is streamed, never held whole
            pass
        return EXIT_OK
    asyncio.run(follower.follow())
    return EXIT_OK


def _cancel(record: job_store.JobRecord) -> int:
    follower = JobFollower(record)
    if follower.state.is_final:
        print(f"job {record.id} has already ended ({follower.state.value})", file=sys.stderr)
        return EXIT_OK
    follower.skip_log()
    follower.cancel()
    result = asyncio.run(follower.follow())
    print(printable(f"job {record.id}: {result.state.value}: {result.message}"), file=sys.stderr)
    return EXIT_OK
