"""`pgbackup-tui csv export` and `pgbackup-tui csv import`: per-table CSV copies, run as jobs.

Like dump and restore, each runs in a detached runner (core/runner.py) that this command starts
and follows, with the same progress output (--progress) and exit codes; Ctrl-C cancels it.
`csv export` prints the folder's path on success.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from ..core.csv_plans import EXPORT_KIND, IMPORT_KIND, CsvExportPlan, CsvImportPlan, parse_time_column
from ..core.identifiers import parse_qualified_name, parse_schema_name, printable
from ..core.job_follow import start_and_follow
from ..core.jobs import JobState
from .dump_restore import Reporter, resolve_target, with_prompted_password


def build_plan(args: argparse.Namespace) -> CsvExportPlan | CsvImportPlan:
    """The plan, validated before anything connects (usage errors never wait on a server)."""
    target = resolve_target(args)
    tables = tuple(parse_qualified_name(t) for t in args.table)
    plan: CsvExportPlan | CsvImportPlan
    if args.csv_command == "export":
        plan = CsvExportPlan(target=target, dbname=args.db, output=Path(args.output).expanduser().absolute(),
                             tables=tables, schemas=tuple(parse_schema_name(s) for s in args.schema))
    else:
        plan = CsvImportPlan(source=Path(args.folder).expanduser().absolute(), target=target, dbname=args.db,
                             create=args.create, tables=tables,
                             time_columns=tuple(parse_time_column(t) for t in args.time_column))
    plan.validate()
    return replace(plan, target=with_prompted_password(target))


def run_csv_command(args: argparse.Namespace) -> int:
    plan = build_plan(args)
    kind = EXPORT_KIND if isinstance(plan, CsvExportPlan) else IMPORT_KIND
    title = (f"csv export {plan.dbname} on {plan.target.label}" if kind == EXPORT_KIND
             else f"csv import into {plan.dbname} on {plan.target.label}")
    reporter = Reporter(args.progress)
    result = start_and_follow(kind, plan, title, listener=reporter, on_start=reporter.started)
    reporter.say_warnings(result.message)  # an import's own are in its message (said below)
    if result.state == JobState.SUCCEEDED:
        if result.output_path is not None and reporter.mode != "jsonl":
            print(result.output_path)
        elif reporter.mode != "plain":
            print(printable(result.message), file=sys.stderr)
    elif not (reporter.mode == "plain" and reporter.last_line == result.message):  # plain: the log said it
        print(f"pgbackup-tui: {result.state.value}: {printable(result.message)}", file=sys.stderr)
    return result.exit_code
