"""Command-line front: no subcommand opens the TUI; every subcommand is headless.

Exit codes (DESIGN.md): 0 ok, 1 the job failed, 2 bad usage or input, 3 finished with errors
ignored, 130 cancelled. Every expected error is one line on stderr; --debug adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
import traceback

from .core.errors import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, PgBackupError, UsageError
from .commands.argument_checks import archive_path, not_utf8, output_path
from .commands.dump_args import COMPRESS_METAVAR, add_pg_dump_options, compress_spec


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2 like every other bad input."""

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(sys.argv[1:] if args is None else args)  # for error(): what the user typed
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and " " in self.prog:
            # A subcommand's parser ("pgbackup-tui dump"): what it did not know is no one's (the program's
            # own options come before the subcommand), so say it here, pointing to this command's --help
            # (the program's, where argparse said it, does not list dump's options).
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras

    def error(self, message: str) -> None:  # type: ignore[override]
        if message.startswith("the following arguments are required"):
            # A misspelt option is the cause to name, not the required one it may have been meant as
            # (argparse checks what is required before it looks at what it did not recognise).
            options = [arg.split("=", 1)[0] for arg in getattr(self, "_given", ()) if arg.startswith("--")]
            unknown = [option for option in options if option != "--"  # an abbreviation is known too
                       and not any(known.startswith(option) for known in self._option_string_actions)]
            if unknown:
                message = f"unrecognized arguments: {' '.join(unknown)}"
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pgbackup-tui",
                     description="Back up and restore PostgreSQL: a TUI, and headless subcommands.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    demo = sub.add_parser("demo", help="open the TUI on a throwaway sandbox cluster with sample data")
    demo.add_argument("--rows", type=int, default=300_000, help="rows in the sample's wide table (default 300000)")
    demo.add_argument("--headless", action="store_true", help="start the sandbox and print how to connect, no TUI")

    servers = sub.add_parser("servers", help="manage server profiles")
    ssub = servers.add_subparsers(dest="servers_command", required=True, metavar="COMMAND", parser_class=_Parser)
    listing = ssub.add_parser("list", help="list server profiles")
    listing.add_argument("--json", action="store_true", help="print JSON")
    add = ssub.add_parser("add", help="add a server profile (never stores a password)")
    add.add_argument("name", metavar="NAME",
                     help="the profile's name (ASCII letters, digits, _ - .), used as --server NAME")
    add.add_argument("--dsn", help="anything libpq takes: URI or key=value")
    add.add_argument("--host")
    add.add_argument("--port", type=int)
    add.add_argument("--user")
    add.add_argument("--dbname")
    add.add_argument("--sslmode")
    add.add_argument("--service")
    add.add_argument("--bin-dir", help="where this server's pg_dump/pg_restore live")
    remove = ssub.add_parser("remove", help="remove a server profile")
    remove.add_argument("name", metavar="NAME", help="a server profile (servers list)")
    test = ssub.add_parser("test", help="connect and show the version and the client tools that fit")
    test.add_argument("name", metavar="NAME", help="a server profile (servers list)")

    dump = sub.add_parser("dump", help="pg_dump one database (whole or selected tables/schemas)")
    _add_source(dump)
    dump.add_argument("--db", required=True, help="database to dump")
    add_pg_dump_options(dump, format_help=None,
                        jobs_help="parallel workers (directory format only; default: one per core, within a "
                                  "quarter of the server's free connections)",
                        compress_help="a gzip level, or gzip|lz4|zstd[:LEVEL] or none (default: the fastest "
                                      "measured method this pg_dump has: zstd:1, else gzip 1; see the README)")
    dump.add_argument("--output", metavar="PATH", type=output_path,
                      help="where to write (default: backups/<server>/<db>/<UTC time>.<ext>)")
    _add_progress(dump)

    from .commands.csv_args import add_csv_parser

    add_csv_parser(sub, _add_source, _add_progress)

    jobs = sub.add_parser("jobs", help="jobs run by any front (CLI, TUI, schedules): list, show, log, cancel")
    jsub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="COMMAND", parser_class=_Parser)
    jobs_list = jsub.add_parser("list", help="every job, newest first")
    jobs_list.add_argument("--json", action="store_true", help="print JSON")
    for name, text in (("show", "one job's state and result"), ("log", "one job's log"),
                       ("cancel", "cancel a running job and wait for it to end")):
        one = jsub.add_parser(name, help=text)
        one.add_argument("id", metavar="ID", help="a job id or unique prefix (jobs list)")
        if name == "log":
            one.add_argument("--follow", action="store_true", help="keep printing until the job ends")

    from .commands.backups_args import add_parser as add_backups_parser

    add_backups_parser(sub, _Parser)

    from .commands.schedule_args import add_parser as add_schedule_parser

    add_schedule_parser(sub, _Parser)

    restore = sub.add_parser("restore", help="restore an archive with pg_restore (or psql for plain SQL)")
    restore.add_argument("archive", metavar="ARCHIVE", type=archive_path,
                         help="the archive's path: a file or folder dump wrote, a pg_dumpall file or a cluster set "
                              "(backups list shows them)")
    _add_source(restore)
    restore.add_argument("--db", help="target database (not for a pg_dumpall file or a cluster set, which name "
                                      "their own databases)")
    restore.add_argument("--create", action="store_true", help="create the target database (it must not exist)")
    restore.add_argument("--clean", action="store_true",
                         help="replace the existing database (restored beside it, swapped in on success), or with "
                              "--table only those tables (one transaction)")
    restore.add_argument("--keep-old", action="store_true",
                         help="with --clean of a whole database: keep the replaced database under another name")
    restore.add_argument("--dry-run", action="store_true",
                         help="check the archive and the target and say what would be created or dropped; "
                              "change nothing")
    restore.add_argument("--jobs", type=int, help="parallel pg_restore jobs (default: one per core for a custom or "
                                                  "directory archive, where nothing asks for one session)")
    restore.add_argument("--single-transaction", action="store_true", help="all or nothing")
    restore.add_argument("--no-owner", action="store_true")
    restore.add_argument("--no-privileges", action="store_true", help="without the archive's grants")
    restore.add_argument("--table", action="append", default=[], metavar="QNAME",
                         help="restore only this table and what it needs (repeatable)")
    restore.add_argument("--allow-older-server", action="store_true",
                         help="restore an archive from a newer pg_dump into an older server anyway")
    restore.add_argument("--only-db", action="append", default=[], metavar="NAME",
                         help="a cluster set: restore only this member database (repeatable)")
    restore.add_argument("--exclude-db", action="append", default=[], metavar="NAME",
                         help="a cluster set: restore every member database but this one (repeatable)")
    restore.add_argument("--skip-globals", action="store_true",
                         help="a cluster set: do not run its globals.sql (the roles are there already)")
    _add_progress(restore)

    dumpall = sub.add_parser("dumpall", help="pg_dumpall: a whole server, or its roles and tablespaces, or a "
                                             "cluster set (globals + one archive per database)")
    _add_source(dumpall)
    what = dumpall.add_mutually_exclusive_group()
    what.add_argument("--globals-only", action="store_true", help="only roles and tablespaces")
    what.add_argument("--roles-only", action="store_true", help="only roles")
    what.add_argument("--set", action="store_true",
                      help="globals.sql plus one pg_dump archive per database, in one folder")
    dumpall.add_argument("--with-role-passwords", action="store_true",
                         help="keep the roles' password hashes (default: left out; restored roles need a new one)")
    dumpall.add_argument("--format", choices=("custom", "directory"), default="custom",
                         help="the set's archives (default custom)")
    dumpall.add_argument("--jobs", type=int, default=1, help="the set: databases dumped at a time")
    dumpall.add_argument("--compress", type=compress_spec, metavar=COMPRESS_METAVAR,
                         help="the set's archives, as dump --compress")
    dumpall.add_argument("--db", action="append", default=[], metavar="NAME",
                         help="the set: only this database (repeatable)")
    dumpall.add_argument("--output", metavar="PATH", type=output_path,
                         help="where to write (default: backups/<server>/_cluster or _globals/<UTC time>.sql or .set)")
    _add_progress(dumpall)
    _debug_after_the_command(parser)
    return parser


def _debug_after_the_command(parser: argparse.ArgumentParser) -> None:
    """--debug after the subcommand too: a DBA adds it to the end of the line that failed
    (`pgbackup-tui dump ... --debug`), where argparse alone refused it as an unknown argument.
    Hidden from each subcommand's help (the program's help names it); SUPPRESS keeps the top-level
    value unless it is given here."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
                _debug_after_the_command(sub)


def _add_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--server", metavar="NAME", help="a saved server profile")
    source.add_argument("--dsn", metavar="DSN", help="a libpq connection string or URI")
    parser.add_argument("--bin-dir", metavar="DIR",
                        help="take pg_dump/pg_restore/psql from DIR when it fits (overrides the profile's bin_dir)")


def _add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--progress", choices=("auto", "plain", "jsonl", "none"), default="auto",
                        help="auto: plain on a terminal, none otherwise")


# Commands that leave nothing to the interpreter's teardown once they return (their job's state is
# on disk, their output written): run as the program, they end at once (tens of ms of a short dump).
PROMPT_EXIT_COMMANDS = frozenset({"dump", "restore", "dumpall", "csv"})


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default: this program's); its exit code. Run as the program
    (no argv), a job command then ends the process at once (os._exit after flushing stdio)."""
    if argv is None:  # the program itself, which has opened nothing yet: a fork may still be a job's runner
        from .core.runner_start import remember_inherited_fds

        remember_inherited_fds()
    parser = build_parser()
    args = parser.parse_args(argv)
    refused = not_utf8(args)
    if refused is not None:
        print(f"pgbackup-tui: error: {refused}", file=sys.stderr)
        return EXIT_BAD_INPUT
    code = _run(parser, args)
    if argv is None and args.command in PROMPT_EXIT_COMMANDS:
        os._exit(_flushed(code))
    return code


def _flushed(code: int) -> int:
    """Flush stdout and stderr before os._exit, as the interpreter's teardown would: output that
    cannot be written (a full disk under `> result.txt`) fails a command that had succeeded, with
    a line on fd 2; a reader that went away (`| head`, EPIPE) does not."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            continue
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.write(2, f"pgbackup-tui: could not write the command's output: {exc.strerror}\n".encode())
            if code == EXIT_OK:
                code = EXIT_FAILED
    return code


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        # Inside: Ctrl-C while it waits on a server (a dead job's database to drop) is "cancelled",
        # not a traceback; what it had not undone stays on record for the next start.
        _finish_dead_jobs(args.debug)
        if args.command is None:
            _needs_a_terminal("pgbackup-tui (the TUI)")
            from .ui.app import run_app

            return run_app()
        if args.command == "demo":
            from .commands.demo import run_demo

            if not args.headless:  # before the sandbox starts: it takes seconds
                _needs_a_terminal("pgbackup-tui demo (the TUI on a sandbox)")

            return run_demo(rows=args.rows, headless=args.headless)
        if args.command == "servers":
            from .commands.servers import run_servers

            return run_servers(args)
        if args.command in ("dump", "restore", "dumpall"):
            from .commands.dump_restore import run_job_command

            return run_job_command(args)
        if args.command == "jobs":
            from .commands.jobs import run_jobs

            return run_jobs(args)
        if args.command == "backups":
            from .commands.backups import run_backups

            return run_backups(args)
        if args.command == "run":
            from .commands.schedule import run_run

            return run_run(args)
        if args.command == "schedule":
            from .commands.schedule import run_schedule_command

            return run_schedule_command(args)
        if args.command == "csv":
            from .commands.csv import run_csv_command

            return run_csv_command(args)
    except PgBackupError as exc:
        if args.debug:
            traceback.print_exc()
        if args.command in ("dump", "restore", "dumpall", "csv"):
            from .commands.dump_restore import report_refused

            report_refused(args, exc)
        print(f"pgbackup-tui: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("pgbackup-tui: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:
        # The reader went away (`| head`): not an error of ours; keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # a file we could not read or write (permissions, a read-only place, a full disk)
        if args.debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"pgbackup-tui: error: {where}{exc.strerror or exc}", file=sys.stderr)
        # A folder of ours (config, state, logs: PGBACKUP_TUI_HOME or XDG's) that we may not write is
        # a setting to fix, bad input; anything else (a backup's files, a full disk) is a failure.
        return EXIT_BAD_INPUT if _unusable_folder_of_ours(exc) or _damaged_index(exc) else EXIT_FAILED
    parser.print_help()
    return EXIT_BAD_INPUT


def _needs_a_terminal(what: str) -> None:
    """UsageError unless stdin and stderr (where Textual draws) are a terminal. Without one the app
    drew its escape codes into a file or a pipe and waited forever for keys: a crontab line that
    forgot its subcommand left a hung process a night, mailing screens of escape codes."""
    if sys.stdin.isatty() and sys.stderr.isatty():
        return
    raise UsageError(f"{what} needs a terminal, and stdin or stderr is not one here (cron, a pipe, a redirect, "
                     "ssh without -t); headless, run a subcommand: pgbackup-tui --help")


def _damaged_index(exc: OSError) -> bool:
    """Whether `exc` is the catalog's index that does not read (adopt, delete): a file of ours to
    mend or move aside, as its line says, and nothing was done: bad input, not a failed job."""
    from .core.catalog_index import IndexDamaged

    return isinstance(exc, IndexDamaged)


def _unusable_folder_of_ours(exc: OSError) -> bool:
    """Whether `exc` says that a folder where we keep our own files may not be written (read-only,
    another's): the config's, the state's (jobs), the logs'."""
    if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM) or not exc.filename:
        return False
    from pathlib import Path

    from .core import paths

    where = Path(os.fsdecode(exc.filename)).absolute()

    def under(folder: Path) -> bool:
        return where == folder or folder in where.parents

    # Under PGBACKUP_TUI_HOME the backups are in our folder too: theirs is a backup's fault (a failure).
    return not under(paths.backups_dir()) and any(under(folder) for folder in
                                                  (paths.config_dir(), paths.state_dir(), paths.logs_dir()))


def _finish_dead_jobs(debug: bool) -> None:
    """Every start of pgbackup-tui first cleans up after jobs whose runner died (job_recovery.recover):
    their partial output, the databases they created. Never in the way of the command itself."""
    try:
        from .core.job_cleanup import recover_jobs

        for line in recover_jobs():
            print(f"pgbackup-tui: {line}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - a broken store must not stop the user's command
        if debug:
            traceback.print_exc()
        print(f"pgbackup-tui: warning: could not check for unfinished jobs: {exc}", file=sys.stderr)
