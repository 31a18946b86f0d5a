"""The restore dialog's words: the default target database and what the restore will run."""

from __future__ import annotations

import re
import shlex
from dataclasses import replace
from typing import Any

from ..core.defaults import MAX_AUTO_JOBS, serial_restore_reason, usable_cores
from ..core.identifiers import quote_ident
from ..core.plans import RestorePlan, fed_through_a_pipe, restore_command

RESTORED_SUFFIX = "_restored"
# The database a whole-database --clean restores into, beside the target (core/restore_target.py's
# scratch_database_name("new"): its suffix is drawn when the job starts).
NEW_BESIDE = "pgbackup_new_…"
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
JOBS_TIP = "parallel pg_restore jobs; empty: chosen at the start where the archive and the target allow (see below)"


def suggested_database(manifest: dict[str, Any] | None, default_dbname: str | None) -> str:
    """`<source db>_restored`: the manifest's database if known, else the caller's default; a line
    break or another control character in it as "_" (one line in the field, a name psql and
    pg_restore take: "two<LF>lines_restored" drew its second half outside the dialog)."""
    source = (manifest or {}).get("database") or default_dbname
    return f"{CONTROL_CHARACTER.sub('_', str(source))}{RESTORED_SUFFIX}" if source else ""


def table_clean(plan: RestorePlan, selection_archive: bool) -> bool:
    """A --clean of some tables (named, or the tables of a selection's archive), not of the whole
    database: as core/restore.py decides it (RestoreJob._mode)."""
    return plan.clean and not plan.create and (bool(plan.tables) or selection_archive)


def jobs_note(plan: RestorePlan, archive_format: str, *, timescale: bool = False,
              selection_archive: bool = False) -> str:
    """What an empty jobs field will run with, as far as it is known without asking the server
    (its free connections are counted when the restore starts: core/restore_archive.py)."""
    if plan.jobs is not None:
        return ""
    if archive_format == "plain":  # "one pg_restore job: pg_restore cannot…" of a file no pg_restore reads
        return "one psql session: a plain SQL dump runs one statement at a time"
    reason = serial_restore_reason(archive_format, plan.single_transaction, timescale,
                                   table_clean(plan, selection_archive))
    if reason is not None:
        return f"one pg_restore job: {reason}"
    jobs = min(usable_cores(), MAX_AUTO_JOBS)
    if jobs == 1:
        return "one pg_restore job: one core here"
    return f"up to {jobs} parallel pg_restore jobs (one per core; fewer if the server has few free connections)"


def restore_summary(plan: RestorePlan, archive_format: str, *, timescale: bool = False,
                    selection_archive: bool = False, data_only: bool = False) -> str:
    """What the restore will do, in the words of the commands it runs (password never shown).
    `selection_archive`: the archive holds a table selection (its manifest's restore_list);
    `data_only`: it holds rows only (dump --data-only), loaded as core/restore_data.py says."""
    lines = []
    where = f"on {plan.target.label}"
    if data_only:
        tables = f"{len(plan.tables)} table(s)" if plan.tables else "the archive's tables"
        first = "emptying and reloading" if plan.clean else "loading the rows of"
        lines.append(f"{first} {tables} in the existing database {quote_ident(plan.dbname)} {where} "
                     "(data only: the tables must exist" + ("" if plan.clean else " and be empty") + "), "
                     "in one transaction:")
        if archive_format != "plain":
            lines.append(f"  pg_restore --file=SCRIPT {shlex.quote(str(plan.archive))}")
        lines.append(f"  psql --single-transaction --set=ON_ERROR_STOP=1 --dbname={shlex.quote(plan.dbname)}")
        return "\n".join(lines)
    if plan.create:
        lines.append(f"CREATE DATABASE {quote_ident(plan.dbname)} {where}, then:")
    elif table_clean(plan, selection_archive):
        tables = f"{len(plan.tables)} table(s)" if plan.tables else "the archive's tables"
        lines.append(f"dropping and recreating {tables} of {quote_ident(plan.dbname)} {where}, with what "
                     "depends on them, in one transaction:")
    elif plan.clean:
        lines.append(f"replacing the database {quote_ident(plan.dbname)} {where} "
                     "(restored beside it, then swapped in):")
    else:
        lines.append(f"into the existing, empty database {quote_ident(plan.dbname)} {where}:")
    if plan.tables:  # restore --table: pg_restore reads a list of their TOC entries (not shown in argv)
        lines.append(f"only {len(plan.tables)} table(s) of the archive: " + ", ".join(str(t) for t in plan.tables))
    if table_clean(plan, selection_archive):
        # What core/restore.py runs for it: the tables' SQL written first, then one psql transaction.
        lines.append(f"  pg_restore --file=SCRIPT {shlex.quote(str(plan.archive))}  (the tables' entries)")
        lines.append(f"  psql --single-transaction --set=ON_ERROR_STOP=1 --dbname={shlex.quote(plan.dbname)}"
                     "  (the drops, then SCRIPT)")
    else:
        # A whole-database --clean runs it on the database made beside the target, stopping at the first
        # error (core/restore.py): it said --dbname=<the target>, the very database that is not written to.
        beside = plan.clean and not plan.create
        argv = restore_command(replace(plan, dbname=NEW_BESIDE) if beside else plan, archive_format)
        if beside and archive_format != "plain":
            argv.insert(1, "--exit-on-error")
        piped = archive_format == "plain" and plan.single_transaction
        if piped:  # the job feeds psql the file through a pipe: its preview said psql read it itself (--file=PATH)
            argv = fed_through_a_pipe(argv)
        lines.append("  " + shlex.join(argv))
        if piped:  # one line at 80 columns: the jobs note after it was pushed out of the dialog's sight
            lines.append("  (the job feeds it the file, its large objects' BEGIN/COMMIT left out)")
    note = jobs_note(plan, archive_format, timescale=timescale, selection_archive=selection_archive)
    if note:
        lines.append(f"  ({note}, chosen at the start)")
    return "\n".join(lines)
