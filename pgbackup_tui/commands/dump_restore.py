"""`pgbackup-tui dump` and `pgbackup-tui restore`: build a plan, run its job, report.

The job runs in a runner of its own (core/runner.py), which this command starts and follows:
a closed terminal or an SSH drop (SIGHUP) ends only the view, and the job finishes (`pgbackup-tui
jobs list`). stdout carries results only (the backup's path; JSON lines with --progress jsonl),
stderr the progress and log lines, so `path=$(pgbackup-tui dump ...)` works in scripts. Ctrl-C
or SIGTERM cancels the job cleanly (no partial archive is left) and exits 130. A --dry-run
changes nothing and runs here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.config import load_config
from .argv_secret import hide_dsn_password
from ..core.connect import Target, connect, target_from_dsn, target_from_profile
from ..core.errors import ConnectError, PgBackupError, UsageError
from ..core.identifiers import parse_qualified_name, parse_schema_name, printable
from ..core.job_follow import POLL_S, start_and_follow
from ..core.job_events import warning_text
from ..core.jobs import Job, JobEvent, JobFinished, JobResult, JobState, LogLine, ProgressUpdated
from ..core.pgtools import TOOLS
from ..core.progress import ProgressSnapshot
from .prompts import ask_hidden

if TYPE_CHECKING:
    from ..core.cluster_restore import ClusterRestoreJob
    from ..core.dump import DumpJob
    from ..core.dumpall import DumpallJob
    from ..core.restore import RestoreJob

PG_RESTORE_ERRORS_IGNORED = "warning: errors ignored on restore: "
QUIET_POLL_S = 1.0  # how often a front that shows nothing reads its job's state (its end wakes it at once)

# Each command imports only its own kind of job (below, where it is built): a dump never loads the
# restore's modules nor a restore the dump's (tens of ms each, in every start of the command).


def resolve_target(args: argparse.Namespace) -> Target:
    """--server NAME or --dsn DSN -> Target (no password prompt yet); --bin-dir DIR on top."""
    if args.server is not None:  # `--server ""` (an unset variable) is a name to refuse, not "no --server"
        target = target_from_profile(load_config().server(args.server))
    else:
        if not args.dsn.strip():
            # `--dsn ""` (an unset variable) was libpq's defaults: PGHOST's server, or the local one, which a
            # restore then wrote to. Refused as `--server ""` is, and as `servers add` refuses an empty DSN.
            raise UsageError("--dsn is empty: give a libpq connection string or URI (e.g. 'host=db1 user=postgres'), "
                             "or --server NAME")
        target = target_from_dsn(args.dsn)
        if target.password is not None:
            hide_dsn_password(args.dsn, dict(target.params_items))
            print("pgbackup-tui: warning: a password in --dsn is visible to other users (ps) until the command "
                  "has read it; prefer ~/.pgpass or PGPASSWORD", file=sys.stderr)
    bin_dir = getattr(args, "bin_dir", None)
    if bin_dir is not None:  # `--bin-dir ""` (an unset $PGBIN) is refused, not passed over
        target = replace(target, bin_dir=checked_bin_dir(bin_dir))
    return target


def _refuse_a_backup_id(given: str, archive: Path) -> None:
    """`restore 7cb3d25c` (an id from `backups list`, as every `backups` command takes) said only
    "…/7cb3d25c: no such file or directory": say that restore takes the archive's path, and which."""
    if "/" in given or len(given) < 4 or any(char not in "0123456789abcdef" for char in given):
        return
    from ..core import catalog

    matches = [entry for entry in catalog.scan() if entry.id.startswith(given) and entry.status != "missing"]
    if len({entry.id for entry in matches}) == 1:
        path = shlex.quote(str(matches[0].path))
        raise UsageError(f"{archive}: no such file or directory; {given} is backup {matches[0].id}'s id, and "
                         f"restore takes the archive's path: pgbackup-tui restore {path} …")


def checked_bin_dir(bin_dir: str) -> str:
    """--bin-dir must name a PostgreSQL bin directory: a typo is refused, not silently passed over
    (a profile's stale bin_dir is passed over, so that an old profile keeps working)."""
    if not bin_dir.strip():  # Path("") is the current folder
        raise UsageError("--bin-dir is empty: give PostgreSQL's bin directory, or leave --bin-dir out")
    directory = Path(bin_dir).expanduser()
    if not directory.is_dir():
        raise UsageError(f"--bin-dir {bin_dir}: no such directory")
    if not any(os.access(directory / tool, os.X_OK) for tool in TOOLS):
        raise UsageError(f"--bin-dir {bin_dir}: no pg_dump, pg_restore or psql there (give PostgreSQL's bin directory)")
    return str(directory.absolute())


def with_prompted_password(target: Target) -> Target:
    """On a terminal, ask for the password if the server wants one and libpq found none."""
    if not sys.stdin.isatty() or target.password is not None:
        return target
    try:
        connect(target).close()
    except ConnectError as exc:
        if not exc.needs_password:
            raise
        password = ask_hidden(f"password for {target.label} ({target.where()}): ")
        if password is None:  # Ctrl-D, or a script's input ran out: no password, said as libpq said it
            raise exc from None
        target = target.with_password(password)
    return target


def build_job(args: argparse.Namespace) -> DumpJob | RestoreJob | DumpallJob | ClusterRestoreJob:
    """The plan is validated before anything connects: usage errors never wait on a server."""
    target = resolve_target(args)
    if args.command == "dumpall":
        from ..core.cluster_plans import DumpallPlan
        from ..core.dumpall import DumpallJob

        dumpall_plan = DumpallPlan(
            target=target, globals_only=args.globals_only, roles_only=args.roles_only,
            with_role_passwords=args.with_role_passwords, output=Path(args.output) if args.output else None,
            set_format=args.format if args.set else None, jobs=args.jobs, compress=args.compress,
            databases=tuple(args.db))
        if not args.set and args.format != "custom":
            raise UsageError("--format goes with --set (pg_dumpall writes one SQL file)")
        if args.output and args.output.endswith("/") and not args.set:
            # Path() drops the '/': `--output /backups/` wrote a file named /backups, as dump's did.
            raise UsageError(f"--output {args.output}: ends with '/', a folder, but pg_dumpall writes one file; "
                             f"give its name (e.g. {args.output}cluster.sql), or use --set (a folder)")
        dumpall_plan.validate()
        return DumpallJob(replace(dumpall_plan, target=with_prompted_password(target)))
    if args.command == "dump":
        from ..core.dump import DumpJob
        from ..core.plans import FORMAT_EXTENSION, DumpPlan, safe_path_part

        if args.output and args.output.endswith("/") and args.format != "directory":
            # Path() drops the '/': `--output /backups/` wrote a file named /backups, not one in it.
            example = f"{args.output}{safe_path_part(args.db)}{FORMAT_EXTENSION[args.format]}"
            raise UsageError(f"--output {args.output}: ends with '/', a folder, but a {args.format} backup is one "
                             f"file; give its name (e.g. {example}), or use --format directory")

        dump_plan = DumpPlan(
            target=target, dbname=args.db, format=args.format,
            tables=tuple(parse_qualified_name(t) for t in args.table),
            schemas=tuple(parse_schema_name(s) for s in args.schema),
            exclude_tables=tuple(parse_qualified_name(t) for t in args.exclude_table),
            jobs=args.jobs, compress=args.compress, schema_only=args.schema_only, data_only=args.data_only,
            no_owner=args.no_owner, no_privileges=args.no_privileges,
            output=Path(args.output) if args.output else None,
        )
        dump_plan.validate()
        return DumpJob(replace(dump_plan, target=with_prompted_password(target)))
    from ..core.plans import RestorePlan
    from ..core.restore import RestoreJob

    archive = Path(args.archive).expanduser().absolute()
    if not os.path.lexists(archive):
        _refuse_a_backup_id(args.archive, archive)
    if archive.exists() and not (archive.is_file() or archive.is_dir()):  # a FIFO would block whoever opens it
        raise UsageError(f"{archive}: not a regular file or a directory (an archive is one of those)")
    if not _is_custom_archive(archive):  # a custom archive is never a cluster's: its modules stay unloaded
        from ..core.cluster_file import is_cluster_file
        from ..core.cluster_restore import is_cluster_set

        if is_cluster_set(archive) or (archive.is_file() and is_cluster_file(archive)):
            return build_cluster_restore(args, archive, target)
    if args.only_db or args.exclude_db or args.skip_globals:
        if archive.is_dir():  # a set's folder that is not whole (its manifest, its globals.sql) says what it lacks
            from ..core.archive import identify_archive

            identify_archive(archive)
        raise UsageError("--only-db, --exclude-db and --skip-globals go with a cluster set "
                         "(pgbackup-tui dumpall --set)")
    if args.db is None:
        from ..core.archive import identify_archive

        identify_archive(archive)  # a missing, gzipped or foreign file: its own problem is the one to name
        raise UsageError("--db is required: the database to restore into")
    restore_plan = RestorePlan(
        archive=archive, target=target, dbname=args.db,
        create=args.create, clean=args.clean, jobs=args.jobs, single_transaction=args.single_transaction,
        no_owner=args.no_owner, no_privileges=args.no_privileges,
        tables=tuple(parse_qualified_name(t) for t in args.table),
        allow_older_server=args.allow_older_server, keep_old=args.keep_old, dry_run=args.dry_run,
    )
    restore_plan.validate()
    return RestoreJob(replace(restore_plan, target=with_prompted_password(target)))


def _is_custom_archive(path: Path) -> bool:
    """A file that starts as pg_dump's custom format does (every default dump). Only a regular
    file is opened: a FIFO or a device named as the archive would block the command here."""
    if not path.is_file():
        return False
    try:
        with path.open("rb") as handle:
            return handle.read(5) == b"PGDMP"
    except OSError:
        return False


def build_cluster_restore(args: argparse.Namespace, archive: Path, target: Target) -> ClusterRestoreJob:
    """A pg_dumpall file or a cluster set: the databases are the archive's, not one --db."""
    given = (("--db", args.db is not None), ("--create", args.create), ("--clean", args.clean),
             ("--table", args.table), ("--single-transaction", args.single_transaction),
             ("--dry-run", args.dry_run), ("--keep-old", args.keep_old))
    pointless = [flag for flag, used in given if used]
    if pointless:
        if pointless[0] == "--dry-run":  # not about which databases: there is no preview to give
            raise UsageError(f"--dry-run is not offered for {archive.name}: a pg_dumpall file (or a set's "
                             "globals.sql) runs through psql as one script, whose effect cannot be shown before it "
                             "runs; `backups show` lists what it holds")
        hint = " (a set: pick some with --only-db)" if pointless[0] == "--db" else ""
        raise UsageError(f"{pointless[0]} does not apply to {archive.name}: a pg_dumpall file or a cluster set "
                         f"restores the databases it names{hint}")
    # restore's --jobs has no default (one database picks its own); a set restores one database at a time,
    # and an explicit --jobs 0 is refused by validate(), not taken as that default.
    from ..core.cluster_plans import ClusterRestorePlan
    from ..core.cluster_restore import ClusterRestoreJob

    plan = ClusterRestorePlan(archive=archive, target=target, databases=tuple(args.only_db),
                              excluded_databases=tuple(args.exclude_db),
                              jobs=1 if args.jobs is None else args.jobs, skip_globals=args.skip_globals,
                              allow_older_server=args.allow_older_server, no_owner=args.no_owner,
                              no_privileges=args.no_privileges)
    plan.validate()
    return ClusterRestoreJob(replace(plan, target=with_prompted_password(target)))


class Reporter:
    """Prints job events the way --progress asks.

    plain: the job's log lines and, about once a second, a progress line, all on stderr.
    jsonl: one JSON object per progress update (about 4 a second) on stdout, then `finished`.
    none and jsonl: the job's warnings are kept, for the command to say on stderr once the job has
    ended (say_warnings), beside its result: cron mails stderr, and a warning only in the log
    (a profile's bin_dir passed over) was read by nobody.
    """

    PLAIN_INTERVAL_S = 1.0
    MAX_WARNINGS = 20  # a plain script's psql can warn a line a statement: the rest are in the log

    def __init__(self, mode: str, exit_code_of: Callable[[JobResult], int] | None = None) -> None:
        """`exit_code_of`: the exit code the command gives a job's result, where it is not the job's
        own (a schedule's run: schedule_run.exit_code_in_a_run), for `finished` to say the same."""
        self._exit_code_of = exit_code_of
        if mode == "auto":
            mode = "plain" if sys.stderr.isatty() else "none"
        self.mode = mode
        self._last_plain: float | None = None
        # A failed job's last log line is its result's message: shown here, the command does not
        # print it again as "pgbackup-tui: failed: ..." (run_job_command).
        self.last_line: str | None = None
        self.warnings: list[str] = []  # the job's warning lines, as its log has them (none, jsonl)
        self._more_warnings = 0  # beyond MAX_WARNINGS
        self._log_path: Path | None = None

    def started(self, job_id: str) -> None:
        """Where to find the job once this view is gone (a person at a terminal only)."""
        if self.mode == "plain":
            print(f"job {job_id} started; it goes on if this terminal closes (pgbackup-tui jobs show {job_id})",
                  file=sys.stderr, flush=True)

    def __call__(self, event: JobEvent) -> None:
        try:
            self._show(event)
        except OSError:  # the terminal is gone (EIO after a hang-up, EPIPE): the job goes on, unshown
            self.mode = "none"

    def _show(self, event: JobEvent) -> None:
        if isinstance(event, LogLine) and self.mode == "plain":
            print(event.text, file=sys.stderr, flush=True)
            self.last_line = event.text
        elif isinstance(event, LogLine):
            # pg_restore's count of the errors it went past is the result itself (partial, exit 3), said as such.
            if event.level == "warning" and PG_RESTORE_ERRORS_IGNORED not in event.text:
                self._keep_warning(event.text)
        elif isinstance(event, ProgressUpdated):
            self._progress(event.progress)
        elif isinstance(event, JobFinished):
            result = event.result
            self._log_path = result.log_path
            if self.mode == "jsonl":
                warnings = list(result.details.get("warnings") or [])
                warnings += [text for text in map(warning_text, self.warnings) if text not in warnings]
                exit_code = self._exit_code_of(result) if self._exit_code_of else result.exit_code
                _print_finished(result.state.value, exit_code, result.output_path, result.duration_s,
                                result.bytes_written, warnings, result.details.get("dry_run"))

    def _keep_warning(self, text: str) -> None:
        if text in self.warnings:
            return
        if len(self.warnings) < self.MAX_WARNINGS:
            self.warnings.append(text)
        else:
            self._more_warnings += 1

    def say_warnings(self, *said: str) -> None:
        """On stderr (none and jsonl; plain showed the log), one line each, the job's warnings that
        none of `said` holds: what the command printed of its result (its message, its details'
        lines), which may be a warning the job logged too."""
        if self.mode == "plain":
            return
        told = [text for text in self.warnings
                if not any(line and (line in text or warning_text(text) in line) for line in said)]
        lines = [f"pgbackup-tui: {printable(text)}" for text in told]
        if self._more_warnings:
            where = f" ({self._log_path})" if self._log_path else ""
            lines.append(f"pgbackup-tui: {self._more_warnings} more warning(s) in the job's log{where}")
        with contextlib.suppress(OSError):  # the terminal is gone: the log has them
            if lines:
                print("\n".join(lines), file=sys.stderr, flush=True)

    def _progress(self, snapshot: ProgressSnapshot) -> None:
        if self.mode == "jsonl":
            print(json.dumps(snapshot.as_json()), flush=True)
        elif self.mode == "plain":
            now = time.monotonic()
            # Interleaved with pg_dump's own lines: one a second is readable, four is a flood.
            if snapshot.phase == "done" or self._last_plain is None or now - self._last_plain >= self.PLAIN_INTERVAL_S:
                self._last_plain = now
                print(f"progress: {snapshot.summary()}", file=sys.stderr, flush=True)


_finished_printed = False  # this process printed its `finished` event (jsonl): one per command


def _print_finished(status: str, exit_code: int, path: Path | None, duration_s: float, written: int,
                    warnings: list[str] | None = None, dry_run: list[str] | None = None) -> None:
    global _finished_printed
    event: dict[str, Any] = {"event": "finished", "status": status, "exit_code": exit_code,
                             "path": str(path) if path else None, "duration_s": round(duration_s, 3), "bytes": written}
    if warnings:  # what the job said beside its result (a file changed since a csv export, a --jobs not used)
        event["warnings"] = warnings
    if dry_run is not None:  # what a restore --dry-run would do: its result, which other modes print as lines
        event["dry_run"] = dry_run
    print(json.dumps(event), flush=True)
    _finished_printed = True


def report_refused(args: argparse.Namespace, exc: PgBackupError) -> None:
    """A job command refused before its job began (its plan's checks: an --output that exists, a folder
    that is not one): with --progress jsonl its stdout still ends with `finished`, as a job's refusal does."""
    if getattr(args, "progress", None) == "jsonl" and not _finished_printed:
        with contextlib.suppress(OSError):  # the reader is gone: the error line on stderr says it
            _print_finished("failed", exc.exit_code, None, 0.0, 0)


async def _run_here(job: Job) -> None:
    """A dry run, in this process: it changes nothing, so nothing must outlive the terminal."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, job.cancel)
    await job.run()


def run_job_command(args: argparse.Namespace) -> int:
    job = build_job(args)
    reporter = Reporter(args.progress)
    if args.command == "restore" and getattr(job.plan, "dry_run", False):
        job.subscribe(reporter)
        asyncio.run(_run_here(job))
        result = job.result
    else:
        # Shown nothing while it runs (--progress none, or auto off a terminal): the runner's end
        # wakes us (a pidfd), and its state and log are read once a second instead of ten times.
        poll_s = QUIET_POLL_S if reporter.mode == "none" else POLL_S
        result = start_and_follow(job.kind, job.plan, job.title, listener=reporter, on_start=reporter.started,
                                  poll_s=poll_s)
    assert result is not None
    not_kept = result.details.get("not_kept", [])
    warnings = result.details.get("warnings", [])  # e.g. TimescaleDB: a selection, --jobs not used
    extra = result.details.get("added", []) + result.details.get("left_out", []) + not_kept + warnings
    # What else the job warned of (a bin dir passed over), before the result: the last line says how it ended.
    reporter.say_warnings(result.message, *extra, *result.details.get("dry_run", []))
    if result.state == JobState.SUCCEEDED and "dry_run" in result.details:
        if reporter.mode != "jsonl":  # with jsonl, stdout is JSON lines only: the lines are in `finished`
            for line in result.details["dry_run"]:
                print(printable(line))  # what would be done, on stdout: it is the command's result
        return result.exit_code
    if result.state == JobState.SUCCEEDED and result.output_path is not None and reporter.mode != "jsonl":
        print(result.output_path)  # with jsonl, stdout is JSON lines only: the path is in `finished`
    elif result.state != JobState.SUCCEEDED and not (reporter.mode == "plain" and reporter.last_line == result.message):
        print(f"pgbackup-tui: {result.state.value}: {printable(result.message)}", file=sys.stderr)
    if result.state == JobState.SUCCEEDED and args.command == "restore" and reporter.mode != "plain":
        print(printable(result.message), file=sys.stderr)
    for line in extra:
        if reporter.mode != "plain":  # in plain mode the log already said it
            # A warning is `pgbackup-tui: warning: …` however the job ended (say_warnings leaves the
            # result's own to this line): it lost the word when the job succeeded.
            shown = f"not kept: {line}" if line in not_kept else f"warning: {line}" if line in warnings else line
            print(f"pgbackup-tui: {printable(shown)}", file=sys.stderr)
    return result.exit_code
