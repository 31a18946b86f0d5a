"""The `backups` subcommands' arguments (cli.py builds its parser from this: kept light, no engine imports)."""

from __future__ import annotations

from typing import Any


def add_parser(sub: Any, parser_class: type) -> None:
    """`backups ...` subcommands (cli.py calls this: the parser stays beside the code it feeds)."""
    backups = sub.add_parser("backups", help="the backup catalog: list, show, verify, drill, delete, adopt")
    bsub = backups.add_subparsers(dest="backups_command", required=True, metavar="COMMAND", parser_class=parser_class)
    listing = bsub.add_parser("list", help="every backup, newest first, with its status")
    listing.add_argument("--server", metavar="NAME", help="only this server profile's backups (renames kept)")
    listing.add_argument("--db", metavar="DB", help="only backups of this database")
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = bsub.add_parser("show", help="a backup's manifest and contents (TOC: counts, tables with rows)")
    show.add_argument("id", metavar="ID", help="a backup id or unique prefix (backups list), or its path")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.add_argument("--bin-dir", metavar="DIR", help="take pg_restore from DIR when it fits")
    verify = bsub.add_parser("verify", help="checksums, read to the end, restorable with the tools here")
    verify.add_argument("id", metavar="ID", help="a backup id or unique prefix (backups list), or its path")
    verify.add_argument("--bin-dir", metavar="DIR", help="take pg_restore/psql from DIR when it fits")
    drill = bsub.add_parser("drill", help="restore into a scratch database, compare row counts, drop it")
    drill.add_argument("id", metavar="ID", help="a backup id or unique prefix (backups list), or its path")
    source = drill.add_mutually_exclusive_group(required=True)
    source.add_argument("--server", metavar="NAME", help="a saved server profile")
    source.add_argument("--dsn", metavar="DSN", help="a libpq connection string or URI")
    drill.add_argument("--bin-dir", metavar="DIR", help="take pg_restore/psql from DIR when it fits")
    drill.add_argument("--verbose", action="store_true", help="print the restore's log lines")
    remove = bsub.add_parser("delete", help="delete a backup (archive, manifest, index entry)")
    remove.add_argument("id", metavar="ID", help="a backup id or unique prefix (backups list), or its path")
    remove.add_argument("--force", action="store_true", help="even the newest verified backup of a database")
    adopt_parser = bsub.add_parser("adopt", help="write the manifest of an archive made elsewhere")
    adopt_parser.add_argument("path", metavar="PATH", help="an archive made elsewhere (pg_dump or pg_dumpall "
                              "output), or a backup moved from where it was listed")
    adopt_parser.add_argument("--bin-dir", metavar="DIR", help="take pg_restore from DIR when it fits")
