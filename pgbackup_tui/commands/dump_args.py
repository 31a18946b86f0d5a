"""pg_dump's options as `dump` and `schedule add` take them, written once: the two parsers had each
their own, and they had drifted (schedule add's --jobs defaulted to 1 where dump's chose from the
cores; its --table took no example of a quoted name)."""

from __future__ import annotations

import argparse

from ..core.plans import FORMATS

COMPRESS_METAVAR = "0-9|METHOD[:LEVEL]"


def compress_spec(text: str) -> int | str:
    """--compress's value, checked by argparse (exit 2 with the reason); the engine is imported only
    once the option is given."""
    from ..core.defaults import parse_compress
    from ..core.errors import UsageError

    try:
        return parse_compress(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--compress ")) from None


def add_pg_dump_options(parser: argparse.ArgumentParser, *, format_help: str | None, jobs_help: str,
                        compress_help: str) -> None:
    """--table, --schema, --exclude-table, --format, --jobs, --compress, --schema-only / --data-only,
    --no-owner and --no-privileges; the three helps that differ between the commands are given."""
    parser.add_argument("--table", action="append", default=[], metavar="QNAME",
                        help="a table as SQL writes it, e.g. public.orders or "
                             "'\"Sales & Ops\".\"Order Items\"' (repeatable)")
    parser.add_argument("--schema", action="append", default=[], metavar="NAME", help="a whole schema (repeatable)")
    parser.add_argument("--exclude-table", action="append", default=[], metavar="QNAME",
                        help="leave a table out (repeatable)")
    parser.add_argument("--format", choices=FORMATS, default="custom", help=format_help)
    parser.add_argument("--jobs", type=int, help=jobs_help)
    parser.add_argument("--compress", type=compress_spec, metavar=COMPRESS_METAVAR, help=compress_help)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--schema-only", action="store_true")
    only.add_argument("--data-only", action="store_true")
    parser.add_argument("--no-owner", action="store_true")
    parser.add_argument("--no-privileges", action="store_true")
