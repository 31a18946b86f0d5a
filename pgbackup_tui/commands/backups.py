"""`pgbackup-tui backups list | show ID | verify ID | drill ID | delete ID | adopt PATH`: the catalog, headless.

ID is a backup's short id (`backups list` shows it) or a unique prefix of it. list and show have
--json. verify and drill record their result in the backup's manifest and exit 1 when the backup
fails them (the problems, one line each naming the file or table, on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core import catalog, catalog_servers, paths
from ..core.catalog import CatalogEntry
from ..core.catalog_entry import UNRECORDED_DATABASES, WHOLE_CLUSTER
from ..core.catalog_adopt import adopt
from ..core.catalog_ops import delete
from ..core.config import load_config
from ..core.errors import EXIT_FAILED, EXIT_OK, ArchiveError, JobFailed, ToolNotFoundError, UsageError
from ..core.formatting import host_port, human_bytes, human_duration
from ..core.identifiers import one_line, printable
from ..core.jobs import JobEvent, LogLine
from ..core.manifest import Verification
from ..core.backup_record import toc_counts
from ..core.toc import Toc, entry_name, schema_names
from ..core.toc_contents import contents_text, count_large_objects
from ..core.verify import PG_DUMP_FORMATS, read_archive_toc, tool_env, verify_backup


def entry_summary(entry: CatalogEntry, server: str | None = None) -> dict[str, Any]:
    """One backup as `backups list --json` gives it."""
    manifest = entry.manifest
    last = manifest.last_verification() if manifest else None
    return {
        "id": entry.id, "status": entry.status, "path": str(entry.path), "server": server or entry.server,
        "server_written_as": entry.server, "database": entry.database, "format": entry.format,
        "created_at": entry.created_at, "bytes": entry.size_bytes, "holds": entry.holds,
        "indexed": entry.indexed, "last_check": {"kind": last.kind, "at": last.at, "ok": last.ok} if last else None,
        "problem": entry.problem, "kind": manifest.kind if manifest else None, "databases": entry.databases,
    }


def _age(iso: str) -> str:
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return "?"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return human_duration((datetime.now(UTC) - moment).total_seconds()) + " ago"


def _listed(args: argparse.Namespace) -> tuple[list[CatalogEntry], dict[Path, str]]:
    entries = catalog.scan()
    profiles = list(load_config().servers.values())
    names = catalog_servers.server_names(entries, profiles)
    if args.server is not None:  # `--server ""` is refused by name, not taken for every server
        profile = load_config().server(args.server)
        mine = {e.path for e in catalog_servers.belongs_to(entries, profile)}
        root = paths.backups_dir()  # and the files without a manifest in its folder, as the Backups tab lists them
        entries = [e for e in entries if e.path in mine or catalog_servers.in_own_folder(e, profile, root)]
    if args.db == "":  # `--db "$DB"`, unset: no database has that name; it listed every backup
        raise UsageError("--db is empty: name the database")
    if args.db:  # a dump of it, and the cluster sets and pg_dumpall files that hold it (restore --only-db)
        entries = [e for e in entries if args.db in e.databases]
    return entries, names


SERVER_SCOPE_NAMED = 3  # a whole cluster's or a set's databases named up to this many, else counted


def _server_scope(entry: CatalogEntry) -> bool:
    """A backup of a server, not of one database: pg_dumpall's (whole cluster, roles, globals), a
    cluster set, or a pg_dumpall script without a manifest."""
    if entry.manifest is not None:
        return entry.manifest.kind in ("cluster-set", "dumpall")
    return entry.sniffed is not None and entry.sniffed.format.startswith("dumpall")


def _where(entry: CatalogEntry, server: str | None) -> str:
    """The server and database a listed backup is of: `prod/shop`; a server's whole, roles or set
    `prod (cluster)`, as the Jobs tab names a pg_dumpall's target. It read `prod/*`, every
    database, for roles alone and for a set of one database too."""
    server = server or "?"
    if entry.database:
        return f"{server}/{entry.database}"
    return f"{server} (cluster)" if _server_scope(entry) else f"{server}/?"


def _holds(entry: CatalogEntry, database: str | None) -> str:
    """What a listed backup holds; listed for one database (`--db`), a set or a pg_dumpall file that
    holds it among others says so: restored, it is not a dump of that database alone. Listed for
    all, a whole cluster or a set of every database names them ("whole cluster of postgres, shop";
    "cluster set of 12 databases"); roles alone say so, with no database."""
    kind = entry.manifest.kind if entry.manifest else None
    if database is None:
        holds, databases = entry.holds, list(dict.fromkeys(entry.databases))
        if kind in ("cluster-set", "dumpall") and databases and holds in ("whole cluster", "cluster set"):
            named = (", ".join(databases) if len(databases) <= SERVER_SCOPE_NAMED
                     else f"{len(databases)} databases")
            return f"{holds} of {named}"
        return holds
    if kind not in ("cluster-set", "dumpall"):
        return entry.holds
    what = "cluster set" if kind == "cluster-set" else "pg_dumpall file"
    others = len(entry.databases) - 1
    return f"{what} holding {database}" + (f" and {others} other database{'s' if others > 1 else ''}" if others else "")


def _list(args: argparse.Namespace) -> int:
    entries, names = _listed(args)
    if args.json:
        print(json.dumps([entry_summary(e, names.get(e.path)) for e in entries], indent=2))
        return EXIT_OK
    if not entries:
        print("no backups found", file=sys.stderr)
        return EXIT_OK
    for e in entries:
        size = human_bytes(e.size_bytes) if e.size_bytes is not None else "-"
        where = _where(e, names.get(e.path))
        holds = _holds(e, args.db)
        if e.problem and e.problem not in holds:  # why: a manifest that does not read, a size, a delete stopped
            holds = f"{holds} ({e.problem})"
        # One row per backup: a name's line break (legal SQL) is shown as \n, as the TUI shows it.
        print(one_line(f"{e.id}  {e.status:<19}  {e.created_at[:16].replace('T', ' ')}  {_age(e.created_at):>10}  "
                        f"{size:>9}  {where}  {e.format}  {holds}  {e.path}"))
    return EXIT_OK


def show_data(entry: CatalogEntry, bin_dir: str | None = None) -> dict[str, Any]:
    """The manifest, plus the archive's contents from its TOC (counts by kind, tables with rows)."""
    # Every key always there (null when it does not apply): `problem` is why the status is what it
    # is (the text's "status (problem)"), which --json lacked; `toc_error` came only with an error.
    data: dict[str, Any] = {"id": entry.id, "status": entry.status, "problem": entry.problem, "path": str(entry.path),
                            "manifest": entry.manifest.to_json() if entry.manifest else None,
                            "foreign": entry.sniffed.describe if entry.sniffed else None, "toc_error": None}
    manifest = entry.manifest
    rows = manifest.toc.table_rows() if manifest else {}
    counts = dict(manifest.toc.counts) if manifest else {}
    large_objects: int | None = None  # exact from the archive's own TOC; a manifest's counts say entries
    with_data: set[str] | None = None  # the tables the archive holds rows of (None: not read)
    tables = sorted(rows)
    fmt = entry.format
    cluster_set = manifest is not None and manifest.kind == "cluster-set"  # a folder of archives, not one
    # A selection's archive holds what pg_dump wrote around the tables too (other schemas, functions,
    # types...); its restore_list is what the backup holds and a restore restores. Counted over the
    # whole TOC, "contents" said 4 schemas and 3 functions of a backup of 2 tables.
    selected = set(manifest.restore_list) if manifest is not None and manifest.restore_list is not None else None
    beside: dict[str, int] | None = None  # the archive's entries outside the selection (None: not a selection)
    if entry.path.exists() and fmt in PG_DUMP_FORMATS and not cluster_set:
        try:
            listing = read_archive_toc(entry.path, bin_dir)
            held = [item for item in listing.toc.entries if selected is None or item.dump_id in selected]
            held_toc = Toc(held, listing.toc.header)
            counts = toc_counts(held_toc)
            if selected is not None:
                beside = toc_counts(Toc([item for item in listing.toc.entries if item.dump_id not in selected],
                                        listing.toc.header))
            large_objects = count_large_objects(held_toc, listing.tools.pg_restore, entry.path, tool_env())
            namespaces = schema_names(listing.toc)
            tables = sorted({str(name) for item in held if item.desc == "TABLE"
                             if (name := entry_name(item, namespaces)) is not None})
            with_data = {str(name) for item in held if item.desc == "TABLE DATA"
                         if (name := entry_name(item, namespaces)) is not None}
        except (ArchiveError, ToolNotFoundError, JobFailed) as exc:  # JobFailed: its pg_restore killed, try again
            data["toc_error"] = str(exc)
    data["contents"] = {"counts": counts, "large_objects": large_objects, "not_restored": beside,
                        "tables": [{"name": name, "rows": rows.get(name),
                                    "data": None if with_data is None else name in with_data} for name in tables]}
    return data


def _rows_text(table: dict[str, Any]) -> str:
    """'1 row', '3 rows'; a table the archive holds no rows of (a partitioned table's are in its
    partitions; a schema-only dump) says so, where '? rows' read as rows that could not be counted."""
    rows = table["rows"]
    if rows is not None:
        return f"{rows} row" + ("" if rows == 1 else "s")
    if table.get("data") is False:
        return "no rows of its own in the archive"
    return "? rows (not counted)"


def _find_checkable(backup_id: str) -> CatalogEntry:
    """catalog.find, or a cluster set's member archive by its path: show, verify and drill take one,
    as the Backups tab's row of it does (delete does not: a set goes whole)."""
    entries = catalog.scan()
    try:
        return catalog.find(backup_id, entries)
    except UsageError:
        member = catalog.find_set_member(backup_id, entries)
        if member is None:
            raise
        return member


def _show(args: argparse.Namespace) -> int:
    entry = _find_checkable(args.id)
    data = show_data(entry, args.bin_dir)
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return EXIT_OK
    manifest = entry.manifest
    status = f"{entry.status} ({entry.problem})" if entry.problem else entry.status
    lines = [f"id          {entry.id}", f"status      {status}", f"path        {entry.path}",
             f"holds       {entry.holds}", f"format      {entry.format}", f"created     {entry.created_at}",
             f"size        {human_bytes(entry.size_bytes) if entry.size_bytes is not None else 'missing'}"]
    if manifest:
        key = manifest.server_key
        system_id = f", system id {key.system_identifier}" if key.system_identifier else ""
        where = f" ({host_port(key.host or '', key.port)}{system_id})" if key.host or key.port else ""
        # Said, not left blank: an adopted archive's server is known to no manifest, and a server's
        # roles (or tablespaces) are of no database; both lines read empty.
        server = manifest.server or "unknown (made elsewhere and adopted: nothing names its server)"
        databases = entry.databases
        database = (", ".join(databases) if databases else manifest.database if manifest.kind == "dump"
                    else UNRECORDED_DATABASES if entry.holds == WHOLE_CLUSTER else f"none ({entry.holds})")
        lines += [f"server      {server}{where}",
                  f"database    {database or '?'}",
                  f"versions    server {manifest.server_version or '?'}, "
                  f"{manifest.dump_tool} {manifest.pg_dump_version or '?'}"]
        for check in manifest.verifications:
            lines.append(f"check       {check.at}  {check.kind}  {'ok' if check.ok else 'FAILED'}  "
                         + "; ".join(check.problems or check.checks))
    if data.get("toc_error"):
        lines.append(f"contents    cannot be read: {data['toc_error']}")
    counts = data["contents"]["counts"]
    if counts:
        lines.append("contents    " + contents_text(counts, data["contents"]["large_objects"]))
    if data["contents"]["not_restored"]:
        lines.append("beside it   " + contents_text(data["contents"]["not_restored"]) + " (in the archive, around "
                     "the selection: not restored)")
    for table in data["contents"]["tables"]:
        lines.append(f"  table     {table['name']}  {_rows_text(table)}")
    for line in lines:
        print(printable(line))
    return EXIT_OK


def _report(entry: CatalogEntry, check: Verification, unrecorded: str | None = None) -> int:
    for line in check.checks:
        print(printable(f"ok: {line}"), file=sys.stderr)
    for line in check.problems:
        print(printable(f"pgbackup-tui: {check.kind} failed: {line}"), file=sys.stderr)
    if check.details.get("not_dropped"):  # a drill's scratch database left on the server: the DBA must know
        print(printable(f"pgbackup-tui: warning: {check.details['not_dropped']}"), file=sys.stderr)
    if unrecorded:  # the check ran: its result is said, only not kept (read-only storage)
        print(printable(f"pgbackup-tui: warning: {unrecorded}"), file=sys.stderr)
        print(printable(f"{entry.id} {check.kind} {'passed' if check.ok else 'failed'} (not recorded)"))
    else:
        print(printable(f"{entry.id} {entry.status}"))
    return EXIT_OK if check.ok else EXIT_FAILED


def _verify(args: argparse.Namespace) -> int:
    entry = _find_checkable(args.id)
    member_checks: dict[Path, Verification] = {}
    check = verify_backup(entry, args.bin_dir, member_checks=member_checks)
    unrecorded = catalog.record_check_said(entry, check)
    if unrecorded is None:  # the set's folder takes no changes: nor do its members'
        for member_unrecorded in catalog.record_member_checks(member_checks):  # a member's folder of its own
            print(printable(f"pgbackup-tui: warning: {member_unrecorded}"), file=sys.stderr)
    return _report(entry, check, unrecorded)


def _drill(args: argparse.Namespace) -> int:
    from ..core.drill import drill_backup
    from .dump_restore import resolve_target, with_prompted_password

    entry = _find_checkable(args.id)
    target = with_prompted_password(resolve_target(args))

    def show(event: JobEvent) -> None:
        if isinstance(event, LogLine) and args.verbose:
            print(printable(event.text), file=sys.stderr, flush=True)

    check = drill_backup(entry, target, on_event=show, bin_dir=args.bin_dir)
    return _report(entry, check, catalog.record_check_said(entry, check))


def run_backups(args: argparse.Namespace) -> int:
    command = args.backups_command
    if getattr(args, "bin_dir", None) is not None:  # show, verify, drill, adopt: a typo (or "") is refused now
        from .dump_restore import checked_bin_dir

        args.bin_dir = checked_bin_dir(args.bin_dir)
    if command == "list":
        return _list(args)
    if command == "show":
        return _show(args)
    if command == "verify":
        return _verify(args)
    if command == "drill":
        return _drill(args)
    if command == "delete":
        entries = catalog.scan()
        try:
            entry = catalog.find(args.id, entries, live_first=False)
        except UsageError:
            member = catalog.find_set_member(args.id, entries)
            if member is None:
                raise
            # Said as what it is ("no such backup" of a file `backups show` shows): a set goes whole,
            # as its restore and its retention take it.
            raise UsageError(f"{member.path}: a member archive of cluster set {member.path.parent}, deleted with "
                             f"it: pgbackup-tui backups delete {member.path.parent}") from None
        removed = delete(entry, entries, force=args.force)
        for line in removed:
            print(printable(f"deleted {line}"))
        if not removed:  # a missing backup, or one another delete has just removed: said, not silent
            print(printable(f"forgot {entry.id} {entry.path}: its files were already gone"))
        return EXIT_OK
    if command == "adopt":
        if not args.path.strip():  # Path("") is the current folder: `adopt "$FILE"` with FILE unset adopted that
            raise UsageError("adopt: the path is empty; give the archive's path")
        entry, listed_already = adopt(Path(args.path), args.bin_dir)
        # The same words either way (a script reads the id first); adopting one again is no error.
        said = "; already in the catalog, nothing changed" if listed_already else ""
        print(printable(f"{entry.id} {entry.status} {entry.path} ({entry.holds}){said}"))
        return EXIT_OK
    raise UsageError(f"unknown backups command {command!r}")
