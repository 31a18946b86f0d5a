"""`pgbackup-tui run NAME` and `pgbackup-tui schedule add|list|remove|install|uninstall|next|url`."""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import sys
from datetime import UTC, datetime

from ..core import crontab, systemd_units
from ..core.config import Config, editing_config, load_config
from ..core.errors import EXIT_BAD_INPUT, EXIT_OK, PgBackupError, UsageError
from ..core.identifiers import printable
from ..core.notify import unreachable
from ..core.schedules import Schedule, find_schedule, local_zone, next_runs, put_schedule
from .config_notes import written
from .dump_restore import Reporter
from .prompts import ask_hidden


def run_run(args: argparse.Namespace) -> int:
    """One run of a schedule: one summary line (stdout on success, stderr otherwise), or --json
    (and a failed run's line on stderr all the same).

    What else the run did (retention, hooks, notifications) goes where its summary went: cron drops
    stdout and mails stderr, so a run that succeeded mails nothing unless its job warned of something.
    With --progress jsonl stdout holds JSON lines only: the report is the last one (`"event": "run"`)."""
    from ..core.schedule_run import exit_code_in_a_run, run_schedule

    # A terminal hung up (an SSH drop) must not stop the run between its job and its checks,
    # retention and notifications: cron never sends it, so a run started by hand ignores it too.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    reporter = Reporter(args.progress, exit_code_of=exit_code_in_a_run)
    try:
        report = run_schedule(load_config(), args.name, listener=reporter)
    except PgBackupError as exc:  # no such schedule, a config that does not load, another run going
        _print_refused_run(args, exc)
        raise
    succeeded = report.status == "succeeded"
    # The job's warnings (a profile's bin_dir passed over): on stderr, which cron mails, even on success.
    reporter.say_warnings(report.summary, *report.notices)
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP ignored): the run is recorded
        if args.progress == "jsonl" or args.json:
            if args.progress == "jsonl":
                print(json.dumps({"event": "run", **report.to_json()}), flush=True)
            else:
                print(json.dumps(report.to_json(), indent=2), flush=True)
            # The report is for the script reading stdout; a failure, and a hook or notification that
            # failed, are for stderr too, which cron mails whatever stdout holds (as a refused run's line).
            said = ([] if succeeded else [f"pgbackup-tui: {report.summary}"]) + [
                f"pgbackup-tui: {line}" for line in report.warnings]
            if said:
                print("\n".join(printable(line) for line in said), file=sys.stderr, flush=True)
        else:
            out = sys.stdout if succeeded else sys.stderr
            lines = [report.summary if succeeded else f"pgbackup-tui: {report.summary}",
                     *(f"pgbackup-tui: {line}" for line in report.notices if line not in report.warnings)]
            print("\n".join(printable(line) for line in lines), file=out, flush=True)
            if report.warnings:  # a hook or notification that failed: where cron mails it, even on success
                print("\n".join(f"pgbackup-tui: {printable(line)}" for line in report.warnings), file=sys.stderr,
                      flush=True)
    return report.exit_code


def _print_refused_run(args: argparse.Namespace, exc: PgBackupError) -> None:
    """A run refused before it began, as a report on stdout for --json and --progress jsonl (the
    error line goes to stderr as ever): a script reading the report, or the jsonl's last line, got
    an empty stdout, where a refused `dump` ends its jsonl with `finished`."""
    from ..core.manifest import now_iso
    from ..core.schedule_run import RunReport

    if not (args.json or args.progress == "jsonl"):
        return
    report = RunReport(schedule=args.name, started_at=now_iso())
    report.fail(str(exc), exc.exit_code)
    report.finished_at = report.started_at
    with contextlib.suppress(OSError):  # the reader is gone: the line on stderr says it
        if args.progress == "jsonl":
            print(json.dumps({"event": "run", **report.to_json()}), flush=True)
        else:
            print(json.dumps(report.to_json(), indent=2), flush=True)


def _schedule_from_args(args: argparse.Namespace) -> Schedule:
    what = args.what or "database"
    if what == "database" and len(args.db) != 1:
        raise UsageError("--db DB names the database to dump (once), or pick --cluster, --globals-only, "
                         "--roles-only or --set")
    dumpall = what != "database"
    if dumpall:  # a dumpall run takes none of these: saved, they were ignored at every run without a word
        given = [flag for flag, value in (("--table", args.table), ("--schema", args.schema),
                                          ("--exclude-table", args.exclude_table), ("--schema-only", args.schema_only),
                                          ("--data-only", args.data_only), ("--no-owner", args.no_owner),
                                          ("--no-privileges", args.no_privileges)) if value]
        if given:
            # pg_dumpall itself has some of them (-O, -x, -s, -a): it is our dumpall that does not pass them.
            raise UsageError(f"{given[0]} goes with a database's schedule (pg_dump); a {what} backup is made by "
                             "`pgbackup-tui dumpall` (pg_dumpall), which does not take it")
        if what != "set" and args.format != "custom":  # as `dumpall --format` without --set: it was dropped
            raise UsageError(f"--format {args.format} goes with a database's schedule or a cluster set (--set); a "
                             f"{what} backup is made by pg_dumpall, which writes one SQL file")
    elif args.with_role_passwords:  # the mirror: pg_dump writes no roles, so no role passwords either
        raise UsageError(f"--with-role-passwords goes with a schedule of pg_dumpall (--cluster, --globals-only, "
                         f"--roles-only or --set); a backup of database {args.db[0]!r} is made by pg_dump, which "
                         "writes no roles")
    return Schedule(
        name=args.name, server=args.server, cron=args.cron, what=what,
        database=None if dumpall else args.db[0], format="custom" if dumpall else args.format,
        tables=tuple(args.table), schemas=tuple(args.schema), exclude_tables=tuple(args.exclude_table),
        jobs=args.jobs, compress=args.compress, schema_only=args.schema_only, data_only=args.data_only,
        no_owner=args.no_owner, no_privileges=args.no_privileges,
        set_format=args.format if what == "set" else "custom", databases=tuple(args.db) if dumpall else (),
        with_role_passwords=args.with_role_passwords, keep_last=args.keep_last, keep_days=args.keep_days,
        keep_verified=not args.no_keep_verified, verify=args.verify, drill=args.drill,
        on_failure=args.on_failure, on_success=args.on_success, notify=tuple(args.notify),
        notify_on_success=args.notify_on_success)


def _add(args: argparse.Namespace) -> int:
    from ..core.schedule_check import compress_refusal, schedule_target_warning

    schedule = _schedule_from_args(args)
    zone = local_zone()  # a bad PGBACKUP_TUI_CRON_ZONE refused before the schedule is saved, not after
    # A method its pg_dump lacks would fail every run: refused now where that can be told (the
    # server answers); else its run says it. Asked before the config is locked (a few seconds at most).
    refused = compress_refusal(load_config(), schedule)
    if refused:
        raise UsageError(refused)
    with editing_config() as config:
        put_schedule(config, schedule, replace_existing=args.replace)
    path = written(config)
    nxt = next_runs(schedule.cron, datetime.now(UTC), zone=zone)[0]
    print(printable(f"schedule {schedule.name} saved in {path}; next run {nxt:%Y-%m-%d %H:%M %Z}"))
    print("pgbackup-tui: cron runs it once you run `pgbackup-tui schedule install`", file=sys.stderr)
    missing = unreachable(schedule.notify)
    if missing:
        print(printable(f"pgbackup-tui: warning: {missing}"), file=sys.stderr)
    problem = schedule_target_warning(config, schedule)
    if problem:
        print(printable(f"pgbackup-tui: warning: {problem}"), file=sys.stderr)
    return EXIT_OK


def _remove(args: argparse.Namespace) -> int:
    from ..core.schedule_run import forget_last_run_or_why

    with editing_config() as config:
        if config.broken_schedules.pop(args.name, None) is None:  # a broken one can be removed too
            find_schedule(config, args.name)
            del config.schedules[args.name]
    path = written(config)
    print(printable(f"schedule {args.name} removed from {path}"))
    kept = forget_last_run_or_why(args.name)
    if kept is not None:
        print(printable(f"pgbackup-tui: warning: {kept}"), file=sys.stderr)
    print("pgbackup-tui: run `pgbackup-tui schedule install` to take it out of your crontab too", file=sys.stderr)
    return EXIT_OK


LIST_NAME_WIDTH = 24  # `schedule list`'s name column at most (names go up to 63)
LIST_CRON_WIDTH = 17  # and its cron column: "15 3 * * mon-fri" was one past the 15 it had


def _list_columns() -> int | None:
    """The width `schedule list` fits its lines to: the terminal's (COLUMNS's, where set); None (one
    line per schedule, for grep and scripts) when stdout is no terminal, whatever COLUMNS says (an
    exported COLUMNS, as pytest-xdist's workers have, would cut a script's lines)."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def _list_lines(name: str, width: int, fields: list[str], columns: int | None) -> list[str]:
    """One schedule of `schedule list`: its name in a column of `width` (longer: on a line of its
    own), then its fields two spaces apart; with `columns`, a field that would pass them goes on the
    next line, under the first (the terminal cut "next 12-07 03:15" from its "UTC (in 41h30m)")."""
    indent = " " * (width + 2)
    lines = [] if len(name) <= width else [name]
    line = f"{name:<{width}}  {fields[0]}" if len(name) <= width else f"{indent}{fields[0]}"
    for field in fields[1:]:
        if columns is not None and len(line) + 2 + len(field) > columns:
            lines.append(line.rstrip())
            line = f"{indent}{field}"
        else:
            line = f"{line}  {field}"
    return [*lines, line.rstrip()]


def _list(args: argparse.Namespace) -> int:
    from ..core.schedule_run import last_run_as_it_stands
    from ..core.schedule_view import schedule_row

    config = load_config()
    now = datetime.now(UTC)
    rows = [schedule_row(s, last_run_as_it_stands(s.name), now) for s in config.schedules.values()]
    if args.json:
        print(json.dumps([{"name": r.name, "cron": r.cron, "what": r.what, "server": r.server,
                           "compress": config.schedules[r.name].compress,
                           "next_run": r.next_at.isoformat() if r.next_at else None, "retention": r.retention,
                           "last_run": r.last} for r in rows], indent=2))
        return _say_broken(config)
    if not rows and not config.broken_schedules:
        print("no schedules yet (pgbackup-tui schedule add)", file=sys.stderr)
    # The cron column lines up whatever the names' lengths, at most LIST_NAME_WIDTH in on a terminal:
    # a longer name (up to 63) padded every line to it, and at 80 columns the rest of each line
    # wrapped mid-word. Such a name has a line of its own, whole (it is what `run` and `remove` take).
    # Piped, each schedule stays one line, whatever its name (`| grep NAME` showed the name alone).
    columns = _list_columns()
    width = max((len(r.name) for r in rows if columns is None or len(r.name) <= LIST_NAME_WIDTH), default=0)
    cron_width = max((len(r.cron) for r in rows if len(r.cron) <= LIST_CRON_WIDTH), default=0)
    for r in rows:
        last = f"{r.badge} {r.last_text}" if r.last else "never run"
        fields = [f"{r.cron:<{cron_width}}", f"{r.server}: {r.what}", f"next {r.next_text}", f"last {last}",
                  r.retention]
        for line in _list_lines(r.name, width, fields, columns):
            print(printable(line))
    return _say_broken(config)


def _say_broken(config: Config) -> int:
    """One line per schedule of config.toml that does not load (it never runs): exit 2 if any."""
    for _body, why in config.broken_schedules.values():
        print(printable(f"pgbackup-tui: {why}"), file=sys.stderr)
    return EXIT_BAD_INPUT if config.broken_schedules else EXIT_OK


def _next(args: argparse.Namespace) -> int:
    from ..core.schedule_view import clock_text, relative, server_zone

    config = load_config()
    chosen = [find_schedule(config, args.name)] if args.name else list(config.schedules.values())
    if args.count < 1:
        raise UsageError("--count must be 1 or more")
    now = datetime.now(UTC)
    zone = local_zone()
    zones = {s.server: server_zone(config, s.server) for s in chosen}
    data = []
    for schedule in chosen:
        server_tz, server_tz_name = zones[schedule.server]
        runs = next_runs(schedule.cron, now, args.count, zone)
        data.append({"name": schedule.name, "cron": schedule.cron, "local_zone": str(zone),
                     "server_zone": server_tz_name, "runs": [
                         {"at": r.isoformat(), "server_time": r.astimezone(server_tz).isoformat() if server_tz
                          else None} for r in runs]})
        if args.json:
            continue
        print(printable(f"{schedule.name} ({schedule.cron}, local zone {zone}; server {schedule.server}: "
                        f"{server_tz_name})"))
        for r in runs:
            there = f" = {clock_text(r, server_tz)} on the server" if server_tz else ""
            print(printable(f"  {clock_text(r, zone)} ({relative(r, now)}){there}"))
    if args.json:
        print(json.dumps(data, indent=2))
    # All of them asked for: one that does not load never runs, which is said as `list` says it.
    return EXIT_OK if args.name else _say_broken(config)


def _install(args: argparse.Namespace, remove: bool) -> int:
    config = load_config()
    if config.broken_schedules and not remove:  # crontab_block refuses them too (every front): named here
        _say_broken(config)
    if args.systemd or not crontab.crontab_available():
        return _systemd(config, args, remove)
    if args.print:
        for line in ([] if remove else crontab.crontab_block(config)):
            print(line)
        return EXIT_OK
    before, after = crontab.uninstall() if remove else crontab.install(config)
    if before == after:
        print("the crontab already says this: nothing changed", file=sys.stderr)
    elif remove or not config.schedules:  # the last one removed: "0 schedule(s) written" hid that the block went
        none_left = "" if remove else "no schedules left: "
        print(f"{none_left}the pgbackup-tui block was removed from {crontab.whose_crontab()}", file=sys.stderr)
    else:
        print(f"{len(config.schedules)} schedule(s) written into {crontab.whose_crontab()}:", file=sys.stderr)
        for line in crontab.crontab_block(config):
            print(line)
    warning = None if remove else crontab.run_as_warning(config)
    if warning:  # written (the DBA may be about to fix it), but every run would fail until then
        print(f"pgbackup-tui: warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _systemd(config: Config, args: argparse.Namespace, remove: bool) -> int:
    folder = systemd_units.systemd_user_dir()
    if not args.systemd:
        print(f"pgbackup-tui: no `{' '.join(crontab.crontab_argv())}` here: these are the crontab lines, and the "
              f"same as systemd user units (`schedule install --systemd` writes them to {folder})", file=sys.stderr)
        for line in crontab.crontab_block(config):
            print(line)
    if remove:
        config.schedules = {}
    units = systemd_units.systemd_units(config)
    if not args.systemd or args.print:
        for name, text in units.items():
            print(f"# {folder / name}\n{text}")
        return EXIT_OK
    written = systemd_units.write_systemd_units(config, folder)
    for path in written:
        print(path)
    timers = " ".join(p.name for p in written if p.suffix == ".timer")
    if timers:
        print(f"pgbackup-tui: now run: systemctl --user daemon-reload && systemctl --user enable --now {timers}",
              file=sys.stderr)
    else:
        print("pgbackup-tui: our units were removed; run: systemctl --user daemon-reload", file=sys.stderr)
    return EXIT_OK


def _url(args: argparse.Namespace) -> int:
    from ..core.notify import save_url
    from ..core.schedules import SCHEDULE_NAME

    if not SCHEDULE_NAME.match(args.name):
        if "://" in args.name or "@" in args.name:  # the URL itself where its name goes: its token is not repeated
            raise UsageError("a URL was given where its name goes: schedule url NAME reads the URL from stdin, never "
                             "from the command line (where ps and your shell's history keep it): echo 'URL' | "
                             "pgbackup-tui schedule url NAME, or paste it at the prompt; nothing was saved")
        raise UsageError(f"{args.name!r}: a URL's name is ASCII letters, digits, '_', '-', '.'")
    if args.given is not None:
        raise UsageError(f"schedule url {args.name} reads the URL from stdin, never from the command line (where ps "
                         f"and your shell's history keep it): echo 'URL' | pgbackup-tui schedule url {args.name}, "
                         "or paste it at the prompt; nothing was saved")
    if sys.stdin.isatty():
        typed = ask_hidden(f"apprise URL for {args.name}: ")
        if typed is None:  # Ctrl-D at the prompt
            raise UsageError(f"no URL given for {args.name}: the input ended at the prompt; nothing was saved")
        url = typed.strip()
    else:
        url = sys.stdin.readline().strip()
    if not url:
        raise UsageError(f"no URL given for {args.name}: stdin was empty (echo 'URL' | pgbackup-tui schedule url "
                         f"{args.name}); nothing was saved")
    path, kept = save_url(args.name, url)
    if kept is not None:
        print(printable(f"pgbackup-tui: {path} is written from its settings, without comments; the file as it was, "
                        f"comments and all, is kept in {kept} (0600: it holds the URLs too)"), file=sys.stderr)
    print(printable(f"URL {args.name} saved in {path} (0600); name it in a schedule: notify = [\"{args.name}\"]"))
    return EXIT_OK


def run_schedule_command(args: argparse.Namespace) -> int:
    command = args.schedule_command
    if command == "add":
        return _add(args)
    if command == "list":
        return _list(args)
    if command == "remove":
        return _remove(args)
    if command in ("install", "uninstall"):
        return _install(args, remove=command == "uninstall")
    if command == "next":
        return _next(args)
    if command == "url":
        return _url(args)
    raise UsageError(f"unknown schedule command {command!r}")
