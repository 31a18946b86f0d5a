"""The dump job: pg_dump one database, whole or a selection, into a verified archive.

Steps: check everything before starting (server reachable, names exist, a pg_dump new enough,
the output free); run pg_dump into `NAME.partial`; read the result back (`pg_restore -l`, or the
closing line of a SQL dump); for a table selection, keep only what the tables need (toc_closure.py) and
say what was added; write the manifest; rename to NAME. Failed or cancelled: the partial output
is removed and only the log remains.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from .archive import check_plain_complete, path_size
from .backup_record import complete_manifest, server_key_of
from .catalog import write_manifest
from .catalog_index import remember_backup
from .connect import answered_note, answering, connect
from .defaults import (
    check_jobs_fit,
    fast_compression,
    free_connections,
    parallel_jobs,
    supports,
    unsupported_compress,
    usable_cores,
)
from .dump_output import DumpOutputs, make_private
from .dump_verify import DumpReadBack, can_follow
from .job_children import child_failed
from .errors import JobFailed, UsageError
from .formatting import human_bytes
from .jobs import JobState, Outcome
from .manifest import ServerKey
from .output_names import dump_run_target, put_in_place, remove_empty_folders
from .client_ssl import over_ssl, prefer_ssl
from .pgtools import ClientTools, find_client_tools, newer_than_the_server, passed_over
from .plans import DumpPlan, dump_argv, partial_path
from .restore_data import table_parents
from .progress.dump import DumpInventory, DumpProgress, take_inventory
from .selection import ResolvedSelection, describe_objects, require_relations, resolve_selection
from .selection_checks import check_exclusions, large_objects_left_out
from .server_text import PREFERRED_CLIENT_ENCODING, decode_listing, dump_encoding, python_codec
from .timescale import read_timescale, selection_warning
from .toc import PG_CONSTRAINT_OID, Toc, parse_toc, seeds_by_object, write_list
from .toc_closure import came_along_line, compute_closure
from .toc_owners import archive_owners


@dataclass
class DumpPreflight:
    """What the job learned before it started pg_dump."""

    server_version: str
    server_major: int
    tools: ClientTools
    output: Path
    selection: ResolvedSelection | None = None
    extensions: list[dict[str, str]] = field(default_factory=list)
    inventory: DumpInventory | None = None  # tables to copy, with sizes: for progress (#4)
    inventory_error: str | None = None
    # pg_dump's client encoding (the database's own) and Python's codec for names in it (server_text.py)
    client_encoding: str = PREFERRED_CLIENT_ENCODING
    name_codec: str = "utf-8"
    timescaledb: dict | None = None  # the extension's version and hypertables, for the manifest (timescale.py)
    warnings: tuple[str, ...] = ()  # a selection of a database with hypertables, or with large objects
    jobs: int = 1  # the plan's, or chosen from the cores and the server's free connections (defaults.py)
    compress: int | str | None = None  # the plan's, or the measured default for this pg_dump
    server_key: ServerKey | None = None  # for the manifest, read on the preflight's connection
    # Connections this role has left on the server and in the database once the preflight's own has
    # closed (defaults.free_connections; None: unknown): whether the monitor fits beside pg_dump's.
    free_connections: int | None = None
    # A data-only dump's tables' parents (partitions and INHERITS children: child -> parent, as SQL
    # names), for the manifest: the archive holds no definitions to say it (restore_data.py).
    parents: dict[str, str] = field(default_factory=dict)


class DumpJob(DumpOutputs):
    kind = "dump"

    def __init__(self, plan: DumpPlan, *, backups_root: Path | None = None) -> None:
        super().__init__(f"dump {plan.dbname} on {plan.target.label}", database=plan.dbname, server=plan.target.label)
        self.plan = plan
        self.backups_root = backups_root
        self._owned_paths: list[Path] = []  # removed unless the job succeeds
        self._created_folders: list[Path] = []  # folders made for the output: removed if left empty by a failure
        self.preflight: DumpPreflight | None = None
        self.index_output = True  # False for a member of a cluster set, which the set's entry lists
        # A selection of a TimescaleDB database warns that it restores hypertables as plain tables and
        # points to csv export: not when csv export's own schema dump is the selection (csv_export.py).
        self.warn_of_hypertables = True
        # A newer pg_dump than the server: its restore there needs --allow-older-server, which csv
        # import (the schema dump's reader) does not have; a backup's own restore does.
        self.warn_of_newer_pg_dump = True
        self._read_back: DumpReadBack | None = None

    # -- steps -------------------------------------------------------------------------------
    async def _execute(self) -> Outcome:
        plan = self.plan
        plan.validate()
        started_at = datetime.now(UTC)
        asked = plan.target
        pre = self.preflight = await self.in_thread(self._preflight)
        # What was left to choose is chosen now: the rest of the job (argv, progress, manifest) sees it,
        # and the host of the target's list that answered (the preflight's answering()).
        self.plan = plan = replace(self.plan, jobs=pre.jobs, compress=pre.compress)
        self.log(f"server {plan.target.label} runs PostgreSQL {pre.server_version}{answered_note(asked, plan.target)}; "
                 f"using pg_dump {pre.tools.version} from {pre.tools.bin_dir}")
        other = passed_over(pre.tools, plan.target.bin_dir, pre.server_major, f"the server's {pre.server_major}")
        if other:
            self.log(other, level="warning")
        if pre.selection is not None:
            for note in pre.selection.notes:
                self.log(note)
        for warning in pre.warnings:
            self.log(warning, level="warning")

        final = pre.output
        partial = partial_path(final)
        run_format, dump_target = dump_run_target(plan.format, final, selection=pre.selection is not None)
        if dump_target != partial:  # the partial itself was reserved with the name
            self._claim(dump_target, directory=(run_format == "directory"))

        argv = dump_argv(plan, pre.tools, dump_target, fmt=run_format,
                         exclude_relations=pre.selection.exclude if pre.selection else (),
                         exclude_data=pre.selection.exclude_data if pre.selection else (),
                         name_codec=pre.name_codec)
        progress = self._start_progress(pre, run_format, dump_target)
        env = plan.target.child_env(self.application_name, client_encoding=pre.client_encoding)
        self.child_text_codec = python_codec(pre.client_encoding) or "utf-8"  # what the server says to pg_dump
        # The archive is read back while pg_dump writes it, where it can be (dump_verify.py).
        read_back = self._read_back = DumpReadBack(self, dump_target,
                                                   follow=can_follow(plan.format, run_format, plan.compress))
        read_back.start()
        code = 1
        try:
            code = await self.run_process(argv, env, on_line=progress.on_line)
        finally:
            read_back.ended(code == 0)
        progress.enter_phase("finishing")
        if code != 0:
            full = self.disk_full(dump_target.parent)
            cause = f"the disk holding {dump_target.parent} is full ({full})" if full else self.last_error()
            raise JobFailed(f"{child_failed('pg_dump', code, cause)}; log: {self.log_path}")

        # What the selection brought in from the catalog (a view's table, a partition, an INHERITS
        # parent) heads what the TOC closure adds: the CLI prints details' lines when it does not
        # show the log (--progress none/jsonl), and the manifest keeps them.
        details: dict = {"added": list(pre.selection.notes) if pre.selection else [], "left_out": [],
                         "tables": progress.table_totals(), "warnings": list(pre.warnings)}
        restore_list: list[int] | None = None
        toc: Toc | None = None
        if run_format == "plain":
            check_plain_complete(dump_target)
        else:
            toc = await self._read_toc(pre.tools, dump_target, pre.client_encoding)
            if pre.selection is not None:
                restore_list = await self._apply_selection(toc, pre, dump_target, partial, run_format != plan.format,
                                                           details)

        size = path_size(partial)
        finished_at = datetime.now(UTC)
        manifest = {
            "kind": "dump",
            "job_id": self.id,  # a runner that dies after the rename: its job still reads as done (job_finish.py)
            "server": plan.target.label,
            "server_version": pre.server_version,
            "server_major": pre.server_major,
            "pg_dump_version": pre.tools.version,
            "pg_dump_major": pre.tools.major,
            "database": plan.dbname,
            "format": plan.format,
            "started_at": started_at.isoformat(),
            "finished_at": finished_at.isoformat(),
            "duration_s": round(self.elapsed_s, 3),
            "bytes": size,
            "options": {
                "compress": plan.compress, "jobs": plan.jobs, "schema_only": plan.schema_only,
                "data_only": plan.data_only, "no_owner": plan.no_owner, "no_privileges": plan.no_privileges,
            },
            "selection": {
                "tables": [str(t) for t in plan.tables],
                "schemas": list(plan.schemas),
                "exclude_tables": [str(t) for t in plan.exclude_tables],
                # parents by INHERITS of selected tables: their definition is in the archive, not their rows
                "definition_only": [str(t) for t in pre.selection.exclude_data] if pre.selection else [],
            },
            "restore_list": restore_list,
            "added": details["added"],
            "left_out": details["left_out"],
            "extensions": pre.extensions,
            "timescaledb": pre.timescaledb,
            "tables": details["tables"],
        }
        if plan.data_only:
            manifest["parents"] = pre.parents
        # the checksum, rows counted in the archive, the TOC in brief, id, server key (backup_record.py)
        known = await read_back.result(restore_list, pre.client_encoding)
        manifest = await complete_manifest(self, manifest, archive=partial, tools=pre.tools, toc=toc,
                                           plain=plan.format == "plain", encoding=pre.client_encoding,
                                           target=plan.target, dbname=plan.dbname, read_back=known,
                                           server_key=pre.server_key)
        if partial.is_dir():
            make_private(partial)
        write_manifest(final, manifest)
        put_in_place(partial, final)
        try:  # an --output outside the backup dir goes into the catalog's index (a set's member: the set does)
            if self.index_output:
                remember_backup(final, self.backups_root)
        except OSError as exc:
            # Said with the result too (the CLI prints it, cron mails it): unlisted, the backup is
            # out of `backups list`, retention and delete's protection.
            unlisted = (f"could not add {final} to the backup catalog's index ({exc.strerror or exc}); "
                        "`pgbackup-tui backups adopt` adds it")
            self.log(unlisted, level="warning")
            details = details | {"warnings": [*details.get("warnings", []), unlisted]}
        self._owned_paths = [p for p in self._owned_paths if p not in (partial,)]
        self.release("path", partial)
        self._remove_owned()  # temp archives of a plain selection
        return Outcome(
            message=f"{final} ({human_bytes(size)} in {self.elapsed_s:.1f}s)",
            output_path=final,
            bytes_written=size,
            details=details | {"manifest": manifest},
        )

    def _preflight(self) -> DumpPreflight:
        plan = self.plan
        with connect(plan.target, plan.dbname) as conn:
            # Several hosts: the one that answered is the one pg_dump goes to, and the one named.
            self.plan = plan = replace(plan, target=answering(plan.target, conn))
            version_num = conn.info.server_version
            row = conn.execute("SHOW server_version").fetchone()
            assert row is not None  # SHOW always returns one row
            server_version = row[0]
            major = version_num // 10000
            # Finding pg_dump and asking it what it can compress with runs a few processes: beside
            # the catalog look-ups, its problems first (as when it ran before them).
            with ThreadPoolExecutor(1) as pool:
                found_tools = pool.submit(self._client_tools, major)
                selection = None
                excluded: set[int] = set()
                try:
                    if plan.is_selection:
                        selection = resolve_selection(conn, list(plan.tables), plan.dbname,
                                                      list(plan.schemas), list(plan.exclude_tables))
                    else:
                        found = require_relations(conn, list(plan.exclude_tables), plan.dbname, "--exclude-table")
                        check_exclusions(conn, found, data_only=plan.data_only)
                        excluded = {oid for oid, _ in found.values()}
                finally:
                    tools = found_tools.result()
            tools = prefer_ssl(tools, lambda accept: find_client_tools(
                major, plan.target.bin_dir, label=f"server '{plan.target.label}'", accept=accept),
                plan.target, over_ssl(conn), "pg_dump", self.log)
            extensions = [
                {"name": name, "version": version}
                for name, version in conn.execute("SELECT extname, extversion FROM pg_extension ORDER BY 1")
            ]
            try:
                inventory = take_inventory(conn, plan, selection.copied_oids if selection else None, excluded)
                inventory_error = None
            except psycopg.Error as exc:  # progress is a display: the dump goes on without sizes
                inventory, inventory_error = None, (str(exc).strip().splitlines() or ["?"])[0]
            client_encoding, name_codec = dump_encoding(conn)
            free = free_connections(conn)
            jobs, compress = self._choose_options(tools, free)
            timescaledb, hypertable_oids = read_timescale(conn)
            server_key = server_key_of(conn)
            parents = table_parents(conn) if plan.data_only else {}
            large_objects = (large_objects_left_out(conn, selection.copied_oids)
                             if selection and not plan.schema_only else None)  # no rows, nothing to point at
        warnings = tuple(w for w in (
            selection_warning(timescaledb, hypertable_oids, selection.relation_oids)
            if selection and self.warn_of_hypertables else None,
            large_objects, newer_than_the_server(tools, major) if self.warn_of_newer_pg_dump else None) if w)
        return DumpPreflight(server_version, major, tools, self._choose_output(), selection, extensions,
                             inventory, inventory_error, client_encoding, name_codec, timescaledb, warnings,
                             jobs, compress, server_key, None if free is None else free + 1, parents)

    def _client_tools(self, major: int) -> ClientTools:
        """The pg_dump for this server, its compression methods asked now (defaults.supports caches)."""
        plan = self.plan
        tools = find_client_tools(major, plan.target.bin_dir, label=f"server '{plan.target.label}'")
        if isinstance(plan.compress, str):
            supports(tools, plan.compress)
        elif plan.compress is None and plan.format in ("custom", "directory"):
            fast_compression(tools)
        return tools

    def _choose_options(self, tools: ClientTools, free: int | None) -> tuple[int, int | str | None]:
        """Jobs and compression: the plan's where given, else the measured defaults (defaults.py);
        `free`: the connections this role has left, the preflight's own counted."""
        plan = self.plan
        refused = unsupported_compress(tools, plan.compress)
        if refused:
            raise UsageError(refused)
        compress = plan.compress
        if compress is None and plan.format in ("custom", "directory"):
            compress = fast_compression(tools)
        jobs = plan.jobs
        if jobs is None:
            jobs = parallel_jobs(usable_cores(), free) if plan.format == "directory" else 1
        elif jobs > 1:
            check_jobs_fit("pg_dump", jobs, free, plan.target.label)
        return jobs, compress

    def _start_progress(self, pre: DumpPreflight, run_format: str, output: Path) -> DumpProgress:
        """Track pg_dump from its start: catalog reading, then each table's COPY."""
        if pre.inventory_error:
            self.log(f"progress: could not read table sizes ({pre.inventory_error}); the percentage follows the clock",
                     level="warning")
        progress = DumpProgress(self, pre.inventory or DumpInventory((), 0), self.plan, run_format, output,
                                name_codec=pre.name_codec)
        if pre.inventory is not None and pre.inventory.tables:
            progress.watch_server_beside("pg_dump", pre.jobs, pre.free_connections, self.plan.target,
                                         self.plan.dbname)
        progress.enter_phase("schema")
        progress.start()
        self.progress_tracker = progress
        return progress

    async def _read_toc(self, tools: ClientTools, archive: Path, encoding: str) -> Toc:
        """Read the archive back: proves it is complete enough to list, and gives the TOC (names in `encoding`)."""
        listing = archive.with_name(f".{archive.name}.toc")
        self._own_path(listing)
        code = await self.run_process([tools.pg_restore, "--list", "--verbose", str(archive)],
                                      self.plan.target.child_env(), stdout_path=listing)
        if code != 0:
            full = self.disk_full(listing.parent)  # the listing is written beside the archive
            if full:
                raise JobFailed(f"the disk holding {listing.parent} is full ({full}): the new archive could not be "
                                "read back; it was removed")
            # The job failed (exit 1), as when pg_dump does: not bad input of the user's (exit 2).
            raise JobFailed(f"the new archive does not read back (pg_restore --list: {self.child_failure(code)}); "
                            "it was removed")
        owners = await self.in_thread(archive_owners, archive, encoding)
        toc = parse_toc(decode_listing(listing.read_bytes(), encoding), owners)
        listing.unlink(missing_ok=True)
        return toc

    async def _apply_selection(self, toc: Toc, pre: DumpPreflight, dumped: Path, partial: Path,
                               to_plain: bool, details: dict) -> list[int]:
        selection = pre.selection
        assert selection is not None
        seeds = seeds_by_object(toc, set(selection.seed_objects))
        drop = {e.dump_id: selection.drop_constraints[e.object_oid] for e in toc.entries
                if e.class_oid == PG_CONSTRAINT_OID and e.object_oid in selection.drop_constraints}
        closure = compute_closure(toc, seeds, drop)
        objects = {(e.class_oid, e.object_oid) for pair in closure.added for e in pair}
        names = await self.in_thread(self._describe, sorted(objects))
        for entry, needed_by in closure.added:
            what = names.get((entry.class_oid, entry.object_oid), entry.label)
            why = names.get((needed_by.class_oid, needed_by.object_oid), needed_by.label)
            line = came_along_line(what, entry, why)
            details["added"].append(line)
            self.log(line)
        for _entry, why in closure.left_out:
            line = f"left out {why}"
            details["left_out"].append(line)
            self.log(line, level="warning")
        if not to_plain:
            return sorted(closure.included)
        list_file = dumped.with_name(f".{dumped.name}.list")
        self._own_path(list_file)
        write_list(toc, closure.included, list_file)
        code = await self.run_process(
            [pre.tools.pg_restore, f"--use-list={list_file}", f"--file={partial}", "--verbose", str(dumped)],
            self.plan.target.child_env())
        if code != 0:
            # Said as the archive's own pg_dump is: a full disk names its folder, a signal is said as
            # such (the job's last line would be pg_dump's, read as the error), and the log is named.
            full = self.disk_full(partial.parent)
            cause = f"the disk holding {partial.parent} is full ({full})" if full else self.child_failure(code)
            raise JobFailed(f"writing the SQL script: {child_failed('pg_restore', code, cause)}; log: {self.log_path}")
        check_plain_complete(partial)
        return sorted(closure.included)

    def _describe(self, objects: list[tuple[int, int]]) -> dict[tuple[int, int], str]:
        with connect(self.plan.target, self.plan.dbname) as conn:
            return describe_objects(conn, [o for o in objects if o[0] and o[1]])

    async def _cleanup(self, state: JobState) -> None:
        if self._read_back is not None:
            self._read_back.abandon()
        if state not in (JobState.SUCCEEDED, JobState.PARTIAL):
            self._remove_owned()
            remove_empty_folders(self._created_folders)
