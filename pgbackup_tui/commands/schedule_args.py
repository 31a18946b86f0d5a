"""The `schedule` and `run` subcommands' arguments (cli.py builds its parser from this; pg_dump's options are
dump_args.py's, shared with `dump`)."""

from __future__ import annotations

import argparse
from typing import Any

from .dump_args import add_pg_dump_options


def add_parser(sub: Any, parser_class: type) -> None:
    """`schedule ...` and `run NAME` (cli.py calls this)."""
    run = sub.add_parser("run", help="run a schedule now, headless (what cron runs): backup, checks, retention")
    run.add_argument("name", metavar="NAME", help="a schedule (schedule list)")
    run.add_argument("--json", action="store_true", help="print the run's summary as JSON")
    run.add_argument("--progress", choices=("auto", "plain", "jsonl", "none"), default="none",
                     help="the job's log and progress on stderr (default none: one summary line)")

    schedule = sub.add_parser("schedule", help="scheduled backups: add, list, remove, install into cron, next runs")
    ssub = schedule.add_subparsers(dest="schedule_command", required=True, metavar="COMMAND", parser_class=parser_class)
    add = ssub.add_parser("add", help="add a schedule to config.toml (then: schedule install)")
    add.add_argument("name", metavar="NAME", help="the schedule's name (ASCII letters, digits, _ - .)")
    add.add_argument("--server", required=True, metavar="NAME", help="a saved server profile")
    add.add_argument("--cron", required=True, metavar="EXPR", help='when, as cron writes it, e.g. "30 2 * * *"')
    what = add.add_mutually_exclusive_group()
    what.add_argument("--cluster", dest="what", action="store_const", const="cluster",
                      help="pg_dumpall of the whole server")
    what.add_argument("--globals-only", dest="what", action="store_const", const="globals",
                      help="pg_dumpall --globals-only")
    what.add_argument("--roles-only", dest="what", action="store_const", const="roles", help="pg_dumpall --roles-only")
    what.add_argument("--set", dest="what", action="store_const", const="set",
                      help="a cluster set: globals + one archive per database")
    add.add_argument("--db", action="append", default=[], metavar="DB",
                     help="the database to dump (with --set: a member, repeatable)")
    add_pg_dump_options(add, format_help="pg_dump's format (with --set: custom or directory)",
                        jobs_help="as dump --jobs (a set: as dumpall --jobs); default: as they choose",
                        compress_help="as dump --compress: a gzip level, or gzip|lz4|zstd[:LEVEL] or none (default: "
                                      "dump's measured default); a method the server's pg_dump lacks is refused")
    add.add_argument("--with-role-passwords", action="store_true")
    add.add_argument("--keep-last", type=int, metavar="N", help="keep the N newest backups of this schedule")
    add.add_argument("--keep-days", type=int, metavar="D", help="keep the backups of the last D days")
    add.add_argument("--no-keep-verified", action="store_true",
                     help="let retention delete the newest verified backup too (default: always kept)")
    add.add_argument("--verify", action="store_true", help="verify each new backup")
    add.add_argument("--drill", action="store_true", help="drill each new backup (a restore into a scratch db)")
    add.add_argument("--on-failure", metavar="CMD", help="a shell command run when a run fails")
    add.add_argument("--on-success", metavar="CMD", help="a shell command run when a run succeeds")
    add.add_argument("--notify", action="append", default=[], metavar="URLNAME",
                     help="a notification URL's name in notify.toml (repeatable; see schedule url)")
    add.add_argument("--notify-on-success", action="store_true", help="notify on success too")
    add.add_argument("--replace", action="store_true", help="replace a schedule of that name")
    listing = ssub.add_parser("list", help="schedules with their next and last run")
    listing.add_argument("--json", action="store_true", help="print JSON")
    remove = ssub.add_parser("remove", help="remove a schedule from config.toml (then: schedule install)")
    remove.add_argument("name", metavar="NAME", help="a schedule (schedule list)")
    for name, text in (("install", "write the schedules into your crontab (a marked block; your lines are kept)"),
                       ("uninstall", "remove the block from your crontab")):
        one = ssub.add_parser(name, help=text)
        one.add_argument("--systemd", action="store_true",
                         help="systemd user timers instead (written to ~/.config/systemd/user)")
        one.add_argument("--print", action="store_true", help="only print what would be written")
    nxt = ssub.add_parser("next", help="next run times, local and in the server's time zone")
    nxt.add_argument("name", metavar="NAME", nargs="?", help="a schedule (default: every one)")
    nxt.add_argument("--count", type=int, default=3, help="how many (default 3)")
    nxt.add_argument("--json", action="store_true", help="print JSON")
    url = ssub.add_parser("url", help="store a notification URL under a name in notify.toml (read from stdin, "
                                      "never from argv)")
    url.add_argument("name", metavar="URLNAME", help="the name schedules give in --notify (the URL itself is read "
                     "from stdin)")
    # A URL given here anyway is refused by _url without a word of it: argparse's "unrecognized
    # arguments" repeated it (its token) on stderr.
    url.add_argument("given", nargs="?", help=argparse.SUPPRESS)
