"""The `csv export` / `csv import` arguments (argparse only: the CLI's start stays light)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

AddOptions = Callable[[argparse.ArgumentParser], None]


def _folder(text: str) -> str:
    """A folder's path: empty is an error (Path("") is the current folder: `--output ""` was read as
    it, "already exists", and `csv import ""` looked for a manifest there)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a folder's path")
    return text


def add_csv_parser(sub: Any, source: AddOptions, progress: AddOptions) -> None:
    """The `csv` subcommands; `source` and `progress` add cli.py's shared options to a parser."""
    csv_parser = sub.add_parser("csv", help="per-table copies: schema.sql + one CSV per table (export, import)")
    csub = csv_parser.add_subparsers(dest="csv_command", required=True, metavar="COMMAND",
                                     parser_class=type(csv_parser))
    export = csub.add_parser("export", help="the selected tables' data as CSV, with the schema they need")
    source(export)
    export.add_argument("--db", required=True, help="database to export from")
    export.add_argument("--table", action="append", default=[], metavar="QNAME",
                        help="a table as SQL writes it, e.g. public.orders (repeatable)")
    export.add_argument("--schema", action="append", default=[], metavar="NAME",
                        help="every table of a schema (repeatable)")
    export.add_argument("--output", required=True, metavar="DIR", type=_folder,
                        help="the folder to create (must not exist)")
    progress(export)
    load = csub.add_parser("import", help="a folder csv export wrote: its schema, then each table in a transaction")
    load.add_argument("folder", metavar="DIR", type=_folder, help="the folder csv export wrote")
    source(load)
    load.add_argument("--db", required=True, help="target database")
    load.add_argument("--create", action="store_true", help="create the target database (it must not exist)")
    load.add_argument("--table", action="append", default=[], metavar="QNAME",
                      help="import only this table's data (repeatable; default: every table in the folder)")
    load.add_argument("--time-column", action="append", default=[], metavar="QNAME=COL",
                      help="make this table a TimescaleDB hypertable on COL before its data (repeatable)")
    progress(load)
