"""What a restore would do, worked out before it does anything (restore.py's RestoreJob runs it).

- `database_script`: the database the restore makes, as the archive describes it (pg_restore
  --create's SQL for its DATABASE entries) or, for a plain SQL file under a whole-database
  --clean, as the live target is (the DATABASE entries of a pg_dump of no schema at all).
- `dry_run_outcome`: --dry-run's answer, the steps in the order the restore would take them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .archive import ArchiveInfo
from .client_ssl import over_ssl, prefer_ssl
from .connect import Target, connect
from .database_props import database_entry_ids, parse_database_script
from .errors import ArchiveError
from .jobs import Job, Outcome
from .pgtools import ClientTools, find_client_tools
from .plans import RestorePlan
from .restore_clean import TableClean
from .restore_data import DataLoad
from .toc import Toc, parse_toc


# pg_restore's words (its 2025 minors and later) for a database name it will not write as SQL, and ours.
LINE_BREAK_REFUSED = "contains a newline or carriage return"
LINE_BREAK_IN_NAME = ("the database it was dumped from has a line break in its name, which pg_restore refuses to "
                      "write as SQL")


@dataclass
class ArchiveCheck:
    """An archive identified, listed (toc: None for plain SQL) and read through, with the tools that read it."""

    info: ArchiveInfo
    tools: ClientTools
    toc: Toc | None
    plain_drops: tuple[int, int, int] | None = None  # a pg_dump --clean script's DROPs (archive.plain_drop_section)


async def database_script(job: Job, plan: RestorePlan, check: ArchiveCheck, workdir: Path,
                          maintenance_db: str) -> bytes | None:
    """The archive's own description of its database (pg_restore --create's SQL for the
    DATABASE entries), renamed for the target; for a plain SQL file, the current target's
    (a whole-database --clean keeps it as it is), or None (server defaults). `job` runs the
    tools and takes the log lines; `workdir` holds the files they write."""
    sql = workdir / "database.sql"
    env = plan.target.child_env()
    if check.toc is None:
        if not plan.clean:
            job.log("a plain SQL dump does not record the database's encoding, locale, settings or grants: "
                    "the new database gets the server's defaults", level="warning")
            return None
        # The target's description, as an archive of its own whose DATABASE entries alone are kept:
        # pg_dump of no schema still writes what lies outside schemas (publications, foreign data
        # wrappers and servers, event triggers, casts...), which are the old database's, not the dump's.
        tools = await job.in_thread(tools_for_target, plan.target, maintenance_db, job.log)
        described, listing = workdir / "database.dump", workdir / "database.listing"
        steps = [[tools.pg_dump, f"--dbname={plan.target.conninfo(plan.dbname)}", "--format=custom", "--schema-only",
                  "--exclude-schema=*", "--no-tablespaces", f"--file={described}"],
                 [tools.pg_restore, "--create", "--list", f"--file={listing}", str(described)]]
        for argv in steps:
            if await job.run_process(argv, env) != 0:
                raise ArchiveError(f"could not read the properties of database '{plan.dbname}' ({job.last_error()}); "
                                   "nothing was restored")
        ids = database_entry_ids(parse_toc(listing.read_bytes().decode("utf-8", "surrogateescape")))
        archive, restore_tools = described, tools
    else:
        # The verbose listing the archive check made names every entry, those about the database
        # too (what `pg_restore --create --list` would add): no second listing.
        ids = database_entry_ids(check.toc)
        if not ids:
            job.log("the archive does not describe its database: the new one gets the server's defaults",
                    level="warning")
            return None
        archive, restore_tools = plan.archive, check.tools
    list_file = workdir / "database.list"
    list_file.write_text("".join(f"{i};\n" for i in ids), encoding="utf-8")
    argv = [restore_tools.pg_restore, "--create", f"--use-list={list_file}", f"--file={sql}", str(archive)]
    if check.toc is not None and plan.no_owner:
        argv.append("--no-owner")
    if check.toc is not None and plan.no_privileges:
        argv.append("--no-privileges")
    if await job.run_process(argv, env) != 0:
        if job.children_said(LINE_BREAK_REFUSED):  # its line ends inside the name: said whole here
            raise ArchiveError(f"{plan.archive}: {LINE_BREAK_IN_NAME} (its CREATE DATABASE and \\connect); nothing "
                               "was restored: make a database of another name and restore into it without --create "
                               "or --clean")
        raise ArchiveError(f"could not read the database's properties ({job.last_error()}); nothing was restored")
    return sql.read_bytes()


def tools_for_target(target: Target, maintenance_db: str, log: Callable[[str], None]) -> ClientTools:
    """Client tools for the target server's own major (to pg_dump its database description), with
    SSL where our session to it has it (client_ssl.prefer_ssl)."""
    with connect(target, maintenance_db) as conn:
        major = conn.info.server_version // 10000
        ssl_in_use = over_ssl(conn)
    label = f"server '{target.label}'"
    return prefer_ssl(find_client_tools(major, target.bin_dir, label=label),
                      lambda accept: find_client_tools(major, target.bin_dir, label=label, accept=accept),
                      target, ssl_in_use, "pg_dump", log)


def dry_run_outcome(plan: RestorePlan, check: ArchiveCheck, mode: str, included: set[int] | None,
                    script: bytes | None, table_clean: TableClean | None, came_along: list[str],
                    *, data_load: DataLoad | None = None) -> Outcome:
    """Say what the restore would do, in the order it would do it; change nothing. `mode` is
    RestoreJob._mode's; `table_clean` is the drops planned for mode "tables", `data_load` the
    tables of mode "data"."""
    parsed = parse_database_script(script, plan.dbname) if script is not None else None
    props = parsed.summary() if parsed is not None and parsed.create else "the server's defaults"
    lines = [f"archive {plan.archive} ({check.info.format}) is complete and readable by {check.tools.bin_dir}"]
    if mode == "create":
        lines.append(f"create database '{plan.dbname}' ({props})")
    elif mode == "replace":
        lines.append(f"restore into a new database beside '{plan.dbname}' ({props}); '{plan.dbname}' is not "
                     "touched until that succeeded")
        lines.append(f"then swap names: the restored database becomes '{plan.dbname}'; the current one is "
                     + ("kept under another name (--keep-old)" if plan.keep_old else "dropped"))
    elif mode == "tables":
        if table_clean is None:
            raise ValueError("a table-level --clean's dry run needs its drops planned (plan_table_clean) first")
        lines.append(f"in one transaction on '{plan.dbname}':")
        lines += [f"  {line}" for line in table_clean.describe()] or ["  (nothing to drop)"]
    elif mode == "data":
        if data_load is None:
            raise ValueError("a data-only restore's dry run needs its tables checked (plan_data_load) first")
        lines.append(f"in one transaction on '{plan.dbname}':")
        lines += [f"  {line}" for line in data_load.describe()]
    count = len(included) if included is not None else (len(check.toc.entries) if check.toc else None)
    what = f"{count} archive entries" if count is not None else "the SQL file"
    same_transaction = " (same transaction)" if mode in ("tables", "data") else ""
    lines.append(f"restore {what} into '{plan.dbname}'{same_transaction}")
    lines += [f"  {line}" for line in came_along]
    return Outcome(message="dry run: nothing was changed", details={"dry_run": lines, "database": plan.dbname})
