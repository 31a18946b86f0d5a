"""One run of a schedule (`pgbackup-tui run NAME`, from cron, a systemd timer or the TUI's Run now).

1. Take the schedule's lock (flock on `state/schedules/NAME.lock`, held for the whole run): a
   second run while one is going exits at once with a line naming the running job (ScheduleBusy,
   exit 2: nothing was run, and the running one will report itself). A run whose front was
   killed leaves its job running in the job's runner: that job counts as running too.
2. Start the dump / dumpall in a job runner like any other front does (core/runner.py) and follow
   it: the run is listed in `pgbackup-tui jobs list` and in the TUI's Jobs tab, and has its log.
3. On success: record the schedule's name in the backup's manifest (retention keeps to its own
   backups), verify and / or drill it if asked, then apply retention (retention.py).
   Anything failing: nothing is deleted.
4. Tell: the hooks and notification URLs (notify.py); record the run in `state/schedules/NAME.json`
   (what the TUI's Schedules tab shows as the last run), and add what happened after the job to
   the job's own log.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import catalog, job_store, paths
from .config import Config
from .connect_errors import for_unattended
from .errors import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, ConfigError, PgBackupError
from .formatting import human_bytes
from .job_follow import start_and_follow
from .jobs import JobEvent, JobResult, JobState
from .manifest import Verification, now_iso
from .notify import Outcome, run_hook, send
from .retention import apply_retention
from .schedule_settle import settle_interrupted, tag_backup
from .schedules import Schedule, build_plan, find_schedule, schedule_from_toml


class ScheduleBusy(PgBackupError):
    """Another run of the same schedule is going: this one did nothing."""


@dataclass
class RunReport:
    """What one run did; `pgbackup-tui run --json` prints it, state/schedules/NAME.json keeps the last one."""

    schedule: str
    status: str = "running"  # running | succeeded | failed | cancelled
    exit_code: int = EXIT_OK
    message: str = ""
    started_at: str = ""
    finished_at: str | None = None
    job_id: str | None = None
    log_path: str | None = None
    backup_id: str | None = None
    backup_path: str | None = None
    bytes: int = 0
    duration_s: float = 0.0
    checks: list[str] = field(default_factory=list)  # "verified", "drilled"
    deleted: list[str] = field(default_factory=list)  # ids retention deleted
    kept: int | None = None
    notices: list[str] = field(default_factory=list)  # retention notes, hooks, notifications
    warnings: list[str] = field(default_factory=list)  # a hook or notification that failed: to stderr

    def fail(self, message: str, exit_code: int = EXIT_FAILED, status: str = "failed") -> None:
        self.status, self.message, self.exit_code = status, for_unattended(message), exit_code

    @property
    def summary(self) -> str:
        """The one line `run` prints."""
        job = f" (job {self.job_id})" if self.job_id else ""
        if self.status != "succeeded":
            return f"{self.schedule}: {self.status}: {self.message}{job}"
        parts = [f"backup {self.backup_id} {self.backup_path} ({human_bytes(self.bytes)} in {self.duration_s:.1f}s)"]
        parts += self.checks
        if self.kept is not None:
            parts.append(f"retention kept {self.kept}, deleted {len(self.deleted)}")
        return f"{self.schedule}: succeeded: " + "; ".join(parts) + job

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# -- the schedule's state: its lock and its last run -------------------------------------------------
def schedules_state_dir() -> Path:
    return paths.ensure_private_dir(paths.state_dir() / "schedules")


def last_run_path(name: str) -> Path:
    return paths.state_dir() / "schedules" / f"{name}.json"


def read_last_run(name: str) -> dict[str, Any] | None:
    """The last (or current) run of schedule `name` as recorded, or None."""
    try:
        data = json.loads(last_run_path(name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_last_run(report: RunReport, **extra: Any) -> None:
    body = json.dumps(report.to_json() | extra, indent=2).encode("utf-8")
    paths.write_private_file(schedules_state_dir() / f"{report.schedule}.json", body)


def _busy_line(name: str, last: dict[str, Any] | None) -> str:
    job = (last or {}).get("job_id")
    since = (last or {}).get("started_at") or "?"
    if job:
        return (f"schedule '{name}' is already running: job {job}, started {since} (pgbackup-tui jobs show {job}); "
                "this run did nothing")
    return f"schedule '{name}' is already running (starting, pid {(last or {}).get('pid', '?')}); this run did nothing"


def _job_goes_on(last: dict[str, Any] | None) -> bool:
    """The recorded run is 'running' and its job's runner is alive (its front may have been killed)."""
    job = (last or {}).get("job_id")
    return bool(last and last.get("status") == "running" and job and job_store.runner_alive(job_store.job_dir(job)))


def last_run_as_it_stands(name: str) -> dict[str, Any] | None:
    """read_last_run for the lists (`schedule list`, the Schedules tab): a run recorded as running
    whose process is gone (kill -9, a reboot) and whose job does not go on is "stopped". It was
    shown running until the next run settled it: for a day, or a week of a weekly schedule.
    Read-only (no lock taken: a probe of the schedule's lock could turn away a run starting then)."""
    last = read_last_run(name)
    if last and last.get("status") == "running" and not _front_alive(last.get("pid")) and not _job_goes_on(last):
        return {**last, "status": "stopped"}
    return last


def _front_alive(pid: object) -> bool:
    """Whether the `run` process `pid` is there (a pid the system gave another program since is not)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process of that pid: alive, whoever it is
        return True
    try:
        return b"pgbackup" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # no /proc here: alive is all that can be told
        return True


def forget_last_run(name: str) -> bool:
    """Delete the record of schedule `name`'s last run (the schedule was removed: a new one of that
    name must not show it, nor settle it as its own killed run). Not while a run of it goes on (it
    holds the lock, or its job still runs after its front was killed): that run's record stays, and
    it writes its end there. True when no record is left, False when a run goes on; OSError when
    the state folder cannot be read or written. A `run` that read the config before the removal
    can still write a record after this."""
    lock, record = schedules_state_dir() / f"{name}.lock", last_run_path(name)
    if not lock.exists() and not record.exists():
        return True  # it never ran: nothing to forget, no lock file to leave behind
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if _job_goes_on(read_last_run(name)):
            return False
        record.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


def forget_last_run_or_why(name: str) -> str | None:
    """forget_last_run, said as the fronts say it: None when forgotten, else the one line why the
    record stays (a run goes on; the state folder cannot be written)."""
    try:
        if forget_last_run(name):
            return None
        return f"schedule {name} is running now: its backup goes on, and its last run stays on record"
    except OSError as exc:
        return f"schedule {name}'s last run stays on record: {exc}"


@contextlib.contextmanager
def schedule_lock(name: str) -> Iterator[None]:
    """Hold schedule `name`'s lock, or raise ScheduleBusy naming the run that holds it."""
    fd = os.open(schedules_state_dir() / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ScheduleBusy(_busy_line(name, read_last_run(name))) from None
        last = read_last_run(name)
        if _job_goes_on(last):
            raise ScheduleBusy(_busy_line(name, last))  # its front was killed; its job goes on
        yield
    finally:
        os.close(fd)


def busy_now(name: str) -> str | None:
    """The line a run of schedule `name` started now would be refused with (another run of it goes
    on), else None. For a front that starts `run` detached and cannot hear its refusal (the TUI's
    Run now said "started", and the run exited 2 unseen). Read from the record, not by taking the
    lock: a probe of it could turn away cron's run of the schedule starting at that moment."""
    last = last_run_as_it_stands(name)
    if last and (last.get("status") == "running" or (last.get("stage") == "telling" and _front_alive(last.get("pid")))):
        # The second: its job has ended and its hooks run (a slow upload hook, minutes): its record
        # says how it went, and the TUI's Run now said "started" of a run that exited 2 unseen.
        return _busy_line(name, last)
    return None


# -- the run --------------------------------------------------------------------------------------------
Listener = Callable[[JobEvent], None]


def run_schedule(config: Config, name: str, *, listener: Listener | None = None,
                 now: Callable[[], datetime] | None = None) -> RunReport:
    """Run schedule `name` once (see the module docstring); ScheduleBusy if it is running already."""
    schedule, unrunnable = _schedule_to_run(config, name)
    with contextlib.ExitStack() as held:
        report = RunReport(schedule=name, started_at=now_iso())
        lost = None
        try:
            held.enter_context(schedule_lock(name))
        except OSError as exc:  # its state folder read-only (a disk remounted so) or not ours: told, not raised
            report.fail(_could_not_write(exc))
        else:
            try:
                settled, lost = settle_interrupted(name, read_last_run(name))
                report.notices += settled
            except (PgBackupError, OSError) as exc:  # never a reason for this run not to run (nor be recorded)
                report.notices.append(f"the last run, stopped half way, could not be settled: {exc}")
            # This run on record first: from here on the last run is this one, so that a run stopped while
            # the hooks below run does not have the lost one told a second time.
            try:
                _write_last_run(report, pid=os.getpid())
            except OSError as exc:  # the state's disk full: no job could start there either; told, not raised
                report.fail(_could_not_write(exc))
        if unrunnable is not None and report.status == "running":
            report.fail(unrunnable, EXIT_BAD_INPUT)
        if lost is not None:  # no backup, and nobody told: said where cron mails it, and to the hooks
            report.warnings.append(lost[0])
            _tell_outcome(schedule, Outcome(schedule=name, status="failed", error=lost[0], job_id=lost[1],
                                            lines=[lost[0]]), report)
        try:
            if report.status == "running":
                _run(config, schedule, report, listener, now)
        except KeyboardInterrupt:
            made = (f"its backup {report.backup_id} {report.backup_path} was made; its checks and retention were "
                    "not done") if report.backup_id else "cancelled"
            report.fail(made, EXIT_CANCELLED, "cancelled")
        except PgBackupError as exc:
            # Before the job (a profile gone, no password) or after it (verify, drill): a failed run.
            report.fail(str(exc), exc.exit_code if report.job_id is None else EXIT_FAILED)
        except OSError as exc:  # a write after the job (a check's record): the disk, said as such
            report.fail(_could_not_write(exc))
        except Exception as exc:  # noqa: BLE001 - a fault of ours is still a failed run: told, recorded
            report.fail(f"internal error: {exc!r}")
        finally:
            _sigterm_as_before()
        report.finished_at = now_iso()
        with contextlib.suppress(OSError):  # a run killed in its hooks is settled as it was, not as in its retention
            _write_last_run(report, pid=os.getpid(), stage="telling")
        try:
            _tell(schedule, report)
        except KeyboardInterrupt:
            # Ctrl-C while a hook ran (a slow upload of the backup) or a notification went: the run
            # said only "cancelled", exit 130, its backup made, checked and retention done unnamed.
            # Its line says how it went; its record stays "telling", so that the next run says the
            # hooks may not have been told (and tells a failure again).
            report.exit_code = EXIT_CANCELLED
            report.warnings.append("its hooks and notifications were stopped (Ctrl-C): they may not all have been "
                                   "told; the next run says so")
        else:
            try:
                _write_last_run(report)
            except OSError as exc:  # its hooks and notifications were told: the run's line still says how it went
                report.warnings.append(f"this run could not be recorded as the last run: {_could_not_write(exc)}")
        _append_to_log(report)
    return report


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _sigterm_cancels() -> None:
    """SIGTERM is Ctrl-C's cancel for the run's checks and retention, as it is for its job. Once the
    job's follow ended, asyncio had put SIGTERM back to its default: a SIGTERM in the verify killed
    the run without a word (exit 143), its hooks and notifications untold (QA)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _sigterm_as_before() -> None:
    """The default again for the run's telling: a run stopped in its hooks is settled by the next one."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is _interrupt:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _could_not_write(exc: OSError) -> str:
    full = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
    return f"could not write {exc.filename or 'a file'}: {exc.strerror}{full}"


def _schedule_to_run(config: Config, name: str) -> tuple[Schedule, str | None]:
    """Schedule `name`, and the line why it cannot run when its table reads but its server is no
    profile (renamed or removed in config.toml by hand): a failed run (exit 2) whose hook and
    notifications are told, as for a [servers.X] that does not load; else cron's mail alone said it.
    Any other table that does not load: ConfigError, before anything (its hooks are in doubt too)."""
    body, why = config.broken_schedules.get(name, (None, ""))
    if isinstance(body, dict):
        with contextlib.suppress(ConfigError):  # the table itself is broken: as find_schedule says it
            return schedule_from_toml(name, body, why), why
    return find_schedule(config, name), None


def _run(config: Config, schedule: Schedule, report: RunReport, listener: Listener | None,
         now: Callable[[], datetime] | None) -> None:
    from .connect import target_from_profile
    from .plans import DumpPlan
    target = target_from_profile(config.server(schedule.server))
    plan = build_plan(schedule, target)
    kind = "dump" if isinstance(plan, DumpPlan) else "dumpall"
    title = f"schedule {schedule.name}: {kind} {schedule.describe} on {schedule.server}"
    def started(job_id: str) -> None:
        report.job_id = job_id
        _write_last_run(report, pid=os.getpid())  # a second run now names this job

    result = start_and_follow(kind, plan, title, listener=listener, on_start=started)
    _sigterm_cancels()
    report.log_path = str(result.log_path) if result.log_path else None
    report.duration_s = round(result.duration_s, 3)
    if result.state != JobState.SUCCEEDED or result.output_path is None:
        cancelled = result.state == JobState.CANCELLED
        report.fail(_in_schedule_terms(schedule, result.message),
                    EXIT_FAILED if result.state == JobState.SUCCEEDED else exit_code_in_a_run(result),
                    "cancelled" if cancelled else "failed")
        return
    path = result.output_path
    report.backup_path, report.bytes = str(path), result.bytes_written
    tag_backup(path, schedule.name)
    entry = catalog.entry_for(path)
    if entry is None:
        report.fail(f"{path}: the new backup is not in the catalog")
        return
    report.backup_id = entry.id
    # Where the run is, on record: a run killed from here on is settled by the next one as what it
    # was (its backup made, verified or not, its retention half done), not as stopped before its checks.
    _write_last_run(report, pid=os.getpid(), stage="checks")
    if schedule.verify:
        from .verify import verify_backup

        member_checks: dict[Path, Verification] = {}
        check = verify_backup(entry, target.bin_dir, member_checks=member_checks)
        catalog.record_check(entry, check)
        report.warnings += catalog.record_member_checks(member_checks)  # results some member's folder refused
        if not check.ok:
            report.fail(f"backup {entry.id} failed verification: {'; '.join(check.problems)}")
            return
        report.checks.append("verified")
    if schedule.drill:
        from .drill import drill_backup

        check = drill_backup(entry, target, bin_dir=target.bin_dir)
        catalog.record_check(entry, check)
        if not check.ok:
            report.fail(f"backup {entry.id} failed its drill: {'; '.join(check.problems)}")
            return
        report.checks.append("drilled")
    _write_last_run(report, pid=os.getpid(), stage="retention")
    retention = apply_retention(schedule, now() if now else None, config.servers.get(schedule.server), made=path)
    report.deleted = [e.id for e in retention.deleted]
    report.kept = len(retention.kept)
    report.notices += retention.notes + [f"deleted {e.id} {e.path}" for e in retention.deleted
                                         if e not in retention.finished]  # those have their note
    report.warnings += retention.problems  # on stderr, which cron mails: the run succeeded, its retention did not
    report.status = "succeeded"


def exit_code_in_a_run(result: JobResult) -> int:
    """The exit code of a schedule's run whose job ended as `result`, and the one its `finished`
    event says (run --progress jsonl; it said the job's 2 where the run exited 1). A job that could
    not start its backup (server down, no such database) says 2, as `dump` does; for a schedule it
    is a backup that did not happen: 1, what monitoring reacts to."""
    if result.state == JobState.SUCCEEDED:
        return result.exit_code
    return EXIT_CANCELLED if result.state == JobState.CANCELLED else EXIT_FAILED


def _in_schedule_terms(schedule: Schedule, message: str) -> str:
    """The job's error as the schedule's DBA wrote it: dump's refusal of a compression its pg_dump
    lacks names `--compress`, which no run was given; the key in config.toml is what to change
    (asked when the schedule was saved only if its server answered then, or its pg_dump changed since)."""
    flag = f"--compress {schedule.compress}:"
    if not isinstance(schedule.compress, str) or not message.startswith(flag):
        return message
    return (f'compress = "{schedule.compress}" of schedule {schedule.name}:{message.removeprefix(flag)}; change it in '
            f"config.toml, the Schedules tab, or with schedule add {schedule.name} --replace")


def _tell(schedule: Schedule, report: RunReport) -> None:
    """Hooks and notifications; what they did goes into the report's notices."""
    _tell_outcome(schedule, Outcome(schedule=schedule.name, status=report.status,
                                    error=report.message if report.status != "succeeded" else "",
                                    log_path=Path(report.log_path) if report.log_path else None,
                                    job_id=report.job_id or "", backup=report.backup_path or "",
                                    lines=[report.summary]), report)


def _tell_outcome(schedule: Schedule, outcome: Outcome, report: RunReport) -> None:
    succeeded = outcome.status == "succeeded"
    hook = schedule.on_success if succeeded else schedule.on_failure
    if hook:
        problem = run_hook(hook, outcome)
        which = "on_success" if succeeded else "on_failure"
        report.notices.append(f"{which} hook: {problem}" if problem else f"{which} hook ran")
        if problem:
            report.warnings.append(report.notices[-1])
    if not succeeded or schedule.notify_on_success:
        told = send(schedule.notify, outcome)
        report.notices += told
        report.warnings += [line for line in told if not line.endswith("' sent")]


def _append_to_log(report: RunReport) -> None:
    """What happened after the job (checks, retention, notifications) goes at the end of its log."""
    if not report.log_path:
        return
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [report.summary, *report.notices]
    with contextlib.suppress(OSError), open(report.log_path, "a", encoding="utf-8") as handle:
        handle.writelines(f"{stamp} schedule: {line}\n" for line in lines)

