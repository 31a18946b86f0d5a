"""pg_dumpall jobs: a whole cluster or its globals into one SQL file, or a cluster set.

One file: `pg_dumpall` writes NAME.partial (reserved like a dump's), read back (its closing
line), manifest, rename. A set: a folder NAME.set.partial holding `globals.sql` and one DumpJob's
archive per database, made up to `jobs` at a time, each with its own log and manifest (marked as
a member of the set); the set's own manifest lists them; the folder is renamed when every member
succeeded. A failure or a cancel removes the whole folder.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from . import paths
from .archive import CLUSTER_TAIL, ends_with_line, path_size
from .backup_record import server_key_of
from .catalog import read_manifest, write_manifest
from .catalog_index import remember_backup
from .checksums import checksum_archive, checksum_file
from .cluster_queries import (DATA_SIZE, DATA_SIZE_FROM_CATALOG, DATABASES, INVALID, NOT_CONNECTABLE,
                              SIZE_LOCK_TIMEOUT, TIMESCALE)
from .cluster_plans import GLOBALS_FILE, SET_SUFFIX, DumpallPlan, member_names
from .connect import answering, answered_note, connect
from .dump import DumpJob
from .job_children import child_failed
from .defaults import unsupported_compress
from .errors import JobFailed, PgBackupError, UsageError
from .formatting import human_bytes
from .database_contents import user_object_counts
from .jobs import Job, JobState, Outcome
from .manifest import ServerKey, new_backup_id
from .output_names import job_claim, put_in_place, remove_empty_folders, reserve_output
from .client_ssl import over_ssl, prefer_ssl
from .pgtools import ClientTools, find_client_tools, newer_than_the_server, passed_over
from .plans import FORMAT_EXTENSION, DumpPlan, partial_path, server_folder, utc_stamp
from .progress.count import CountProgress, Step

_DUMPING = re.compile(r'^pg_dumpall: dumping database "(.*)"')


def check_cluster_file_complete(path: Path) -> None:
    """pg_dumpall's last lines say it completed; a file without them was cut short."""
    if not ends_with_line(path, CLUSTER_TAIL):
        raise JobFailed(f"{path}: pg_dumpall's output does not end with its 'cluster dump complete' line")


class DumpallJob(Job):
    kind = "dumpall"

    def __init__(self, plan: DumpallPlan) -> None:
        super().__init__(f"dump the {plan.what} of {plan.target.label}", database=plan.dbname,
                         server=plan.target.label)
        self.plan = plan
        self._created_folders: list[Path] = []
        self._owned: list[Path] = []
        self._members: list[DumpJob] = []
        self.timescale_databases: list[str] = []
        self.uninspected: list[str] = []  # databases _data_size could not ask: the list above may miss them
        self.warnings: list[str] = []  # what the backup leaves out that a DBA would expect in it
        self._server_key = ServerKey()

    # -- steps -----------------------------------------------------------------------------------
    async def _execute(self) -> Outcome:
        plan = self.plan
        plan.validate()
        asked = plan.target
        server_version, tools, databases = await self.in_thread(self._preflight)
        plan = self.plan  # of several hosts, the one that answered (the preflight's answering())
        self.log(f"server {plan.target.label} runs PostgreSQL {server_version}{answered_note(asked, plan.target)}; "
                 f"using {tools.bin_dir}")
        if plan.set_format:
            return await self._dump_set(server_version, tools, databases)
        return await self._dump_file(server_version, tools, databases)

    def _preflight(self) -> tuple[str, ClientTools, list[tuple[str, int]]]:
        plan = self.plan
        with connect(plan.target, plan.dbname) as conn:
            self.plan = plan = replace(plan, target=answering(plan.target, conn))
            version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
            major = conn.info.server_version // 10000
            rows = conn.execute(DATABASES).fetchall()
            databases = [(str(name), int(size)) for name, size, _ in rows]
            barred = {str(name) for name, _, may_connect in rows if not may_connect}
            role = str(conn.execute("SELECT current_user").fetchone()[0])  # type: ignore[index]
            # The hashes are in pg_authid, which superusers alone may read (pg_roles shows them as ********).
            hashes_hidden = plan.with_role_passwords and not conn.execute(
                "SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT')").fetchone()[0]  # type: ignore[index]
            closed = [str(row[0]) for row in conn.execute(NOT_CONNECTABLE)]
            invalid = [str(row[0]) for row in conn.execute(INVALID)]
            # Which server this is (system identifier, host, port), as a dump's manifest says: the
            # catalog matches a profile's backups by it (its name alone missed a --dsn's and a twin
            # profile's cluster backups).
            self._server_key = server_key_of(conn)
            ssl_in_use = over_ssl(conn)
        if hashes_hidden:
            # pg_dumpall failed at its first query, "permission denied for table pg_authid": exit 1 as if
            # it had broken half way, and nothing said of the option that asked for it.
            raise UsageError(f"--with-role-passwords: role '{role}' may not read the password hashes (pg_authid, "
                             "superusers only; a managed server's DBA role may not); leave it out, and the roles "
                             "are dumped without their passwords; nothing was written")
        label = f"server '{plan.target.label}'"
        tools = prefer_ssl(find_client_tools(major, plan.target.bin_dir, label=label),
                           lambda accept: find_client_tools(major, plan.target.bin_dir, label=label, accept=accept),
                           plan.target, ssl_in_use, "pg_dumpall", self.log)
        # A set's members are pg_dump's, from this install: a method it lacks would fail each of
        # them after the globals were written; refused before anything is, as dump refuses it.
        lacking = unsupported_compress(tools, plan.compress) if plan.set_format else None
        # --bin-dir (or the profile's) too old for the server: said, as dump says it (it was silent).
        other = passed_over(tools, plan.target.bin_dir, major, f"the server's {major}")
        if other:
            self.log(other, level="warning")
        if lacking:
            raise UsageError(lacking)
        if closed and not plan.databases and not (plan.globals_only or plan.roles_only):
            # pg_dumpall passes over them without a word (they cannot be connected to), and so
            # would a set: said, since nothing else in the backup shows they were left out.
            self._warn(f"database(s) {', '.join(closed)} do not accept connections (ALLOW_CONNECTIONS false) and "
                       "are not in this backup; ALTER DATABASE … ALLOW_CONNECTIONS true to back them up")
        if invalid and not plan.databases and not (plan.globals_only or plan.roles_only):
            self._warn(f"database(s) {', '.join(invalid)} are invalid (a DROP DATABASE was interrupted) and are not "
                       "in this backup; DROP DATABASE them")
        if plan.set_format and not plan.databases and self._template1_holds_objects():
            # pg_dumpall's file holds template1's contents (what new databases are made from); a
            # set's members were the non-template databases only, and left them out unsaid.
            databases = sorted([*databases, ("template1", 0)])
        if plan.databases:
            known = {name for name, _ in databases}
            missing = [name for name in plan.databases if name not in known]
            if missing:
                raise PgBackupError(f"--db {missing[0]}: no such database on server '{plan.target.label}' "
                                    "(or it does not accept connections)")
            databases = [(name, size) for name, size in databases if name in plan.databases]
        if plan.globals_only or plan.roles_only:
            # Judged at the restore by its manifest's server, whose roles it holds as that server has
            # them (cluster_file.py): such a file restores onto its own server as it is. Not said.
            return version, tools, databases
        if databases or not plan.set_format:
            # Its databases' SQL (a file's, a set's members'), written by the newer pg_dump: the restore
            # onto this server refuses it without --allow-older-server, as a dump's. Said now, as dump says it.
            newer = newer_than_the_server(tools, major, "pg_dumpall")
            if newer:
                self._warn(newer)
        refused = [name for name, _ in databases if name in barred]
        if refused:
            # pg_dumpall (and a set's pg_dump) would fail when it came to them, after the others.
            some = ", ".join(refused[:3]) + (" …" if len(refused) > 3 else "")
            raise PgBackupError(f"role '{role}' may not connect to database(s) {some} (no CONNECT "
                                "privilege): a dump of them would fail there; GRANT CONNECT ON DATABASE … TO it, "
                                "or dump a set of the others (dumpall --set --db NAME ...); nothing was written")
        broken = [name for name, _ in databases if "\n" in name or "\r" in name]
        if broken and not plan.set_format:
            # pg_dumpall runs pg_dump through a shell and stops at such a name half way, its message cut
            # in two by the name's own line break. Said with repr: the line break shown, the line one.
            raise PgBackupError(f"database {broken[0]!r} has a line break in its name, which pg_dumpall cannot "
                                "dump (it runs pg_dump through a shell); rename it (ALTER DATABASE … RENAME TO) "
                                "and dump again; nothing was written")
        if broken:
            # A set's pg_dump takes such a name; pg_restore will not write it back (CREATE DATABASE,
            # \connect): the set's restore refuses that member, so the DBA hears of it now.
            self._warn(f"database {broken[0]!r} has a line break in its name: its archive is in the set, but a "
                       "restore of the set cannot make it (pg_restore refuses such a name); restore that archive "
                       "into a database of another name, made first, or rename the database (ALTER DATABASE … "
                       "RENAME TO) before the next backup")
        return version, tools, [(name, self._data_size(name, size)) for name, size in databases]

    def _warn(self, line: str) -> None:
        self.warnings.append(line)
        self.log(line, level="warning")

    def _template1_holds_objects(self) -> bool:
        try:
            with connect(self.plan.target, "template1") as conn:
                held = user_object_counts(conn)
        except (PgBackupError, psycopg.Error) as exc:
            self._warn(f"template1 could not be looked at ({exc}); the set leaves it out")
            return False
        if held:
            self.log(f"template1 holds {', '.join(f'{n} {kind}' for kind, n in held.items())}: it is a member "
                     "of the set, as its contents are in a pg_dumpall file")
        return bool(held)

    def _data_size(self, dbname: str, size: int) -> int:
        """The bytes `dbname`'s dump holds (DATA_SIZE), or `size` where the database cannot be asked.
        Notes a database that uses TimescaleDB on the way (self.timescale_databases)."""
        try:
            with connect(self.plan.target, dbname) as conn:
                if conn.execute(TIMESCALE).fetchone():
                    self.timescale_databases.append(dbname)
                conn.execute(f"SET lock_timeout = '{SIZE_LOCK_TIMEOUT}'")
                try:
                    row = conn.execute(DATA_SIZE).fetchone()
                except psycopg.errors.LockNotAvailable:
                    row = conn.execute(DATA_SIZE_FROM_CATALOG).fetchone()
        except (PgBackupError, psycopg.Error) as exc:  # it only weighs the progress: never fatal
            self.uninspected.append(dbname)
            self.log(f"progress: the size of {dbname}'s data is unknown ({exc}); its size on disk stands in")
            return size
        return int(row[0]) if row else size

    def _reserve(self, suffix: str, *, directory: bool) -> Path:
        plan = self.plan
        if plan.output is not None:
            final = Path(plan.output).expanduser().absolute()
            numbered = False
        else:
            folder = "_globals" if (plan.globals_only or plan.roles_only) else "_cluster"
            final = paths.backups_dir() / server_folder(plan.target.label) / folder / f"{utc_stamp()}{suffix}"
            numbered = True
        return reserve_output(final, directory=directory, numbered=numbered, created=self._created_folders,
                              claim=job_claim(self, self._owned))

    def _dumpall_argv(self, tools: ClientTools, output: Path, *, globals_only: bool, roles_only: bool) -> list[str]:
        plan = self.plan
        argv = [tools.pg_dumpall, f"--dbname={plan.target.conninfo(plan.dbname)}", f"--file={output}", "--verbose"]
        if globals_only:
            argv.append("--globals-only")
        if roles_only:
            argv.append("--roles-only")
        if not plan.with_role_passwords:
            argv.append("--no-role-passwords")
        return argv

    async def _dump_file(self, server_version: str, tools: ClientTools, databases: list[tuple[str, int]]) -> Outcome:
        plan = self.plan
        final = self._reserve(".sql", directory=False)
        partial = partial_path(final)
        globals_only = plan.globals_only or plan.roles_only
        if self.timescale_databases and not globals_only:
            self.log(f"{', '.join(self.timescale_databases)} use(s) TimescaleDB: a pg_dumpall file restores them "
                     "without timescaledb_pre_restore() / post_restore(), which pgbackup-tui refuses to do; "
                     "back the cluster up with --set (an archive per database) to restore them as Timescale "
                     "documents", level="warning")
        steps = [Step("globals", 1 << 20)] + ([] if globals_only else [Step(name, size) for name, size in databases])
        progress = self.progress_tracker = CountProgress(self, steps, plan.target)
        progress.follow_output(partial)
        progress.start()
        progress.step_started("globals")
        current = ["globals"]

        def on_line(line: str) -> None:
            match = _DUMPING.match(line)
            if match:
                progress.step_finished(current[0])
                current[0] = match.group(1)
                progress.step_started(current[0])

        argv = self._dumpall_argv(tools, partial, globals_only=plan.globals_only, roles_only=plan.roles_only)
        code = await self.run_process(argv, plan.target.child_env(self.application_name), on_line=on_line)
        if code != 0:
            full = self.disk_full(partial.parent)
            cause = f"the disk holding {partial.parent} is full ({full})" if full else self.last_error()
            raise JobFailed(f"{child_failed('pg_dumpall', code, cause)}; log: {self.log_path}")
        await self.in_thread(check_cluster_file_complete, partial)
        size = path_size(partial)
        # Its checksum, as a dump's manifest holds one: `backups verify` then catches any byte changed
        # since (a SQL file that still ends with its closing line would otherwise read as good).
        checksums = await self.in_thread(checksum_archive, partial)
        write_manifest(final, self._manifest(server_version, tools, size, databases if not globals_only else [])
                       | {"checksums": checksums}
                       # Complete or absent: restore trusts the list, and scans the file without it.
                       | ({"timescaledb": self.timescale_databases}
                          if not globals_only and not self.uninspected else {}))
        put_in_place(partial, final)
        self.release("path", partial)
        self._owned.remove(partial)
        self._remember(final)
        return Outcome(message=f"{final} ({human_bytes(size)} in {self.elapsed_s:.1f}s)", output_path=final,
                       bytes_written=size, details={"warnings": self.warnings})

    async def _dump_set(self, server_version: str, tools: ClientTools, databases: list[tuple[str, int]]) -> Outcome:
        plan = self.plan
        assert plan.set_format is not None
        final = self._reserve(SET_SUFFIX, directory=True)
        folder = partial_path(final)
        progress = self.progress_tracker = CountProgress(
            self, [Step("globals", 1 << 20)] + [Step(name, max(size, 1)) for name, size in databases], plan.target,
            jobs=plan.jobs)
        progress.start()
        progress.step_started("globals")
        argv = self._dumpall_argv(tools, folder / GLOBALS_FILE, globals_only=True, roles_only=False)
        if await self.run_process(argv, plan.target.child_env(self.application_name)) != 0:
            raise JobFailed(f"pg_dumpall --globals-only failed: {self.last_error()}; log: {self.log_path}")
        await self.in_thread(check_cluster_file_complete, folder / GLOBALS_FILE)
        progress.step_finished("globals")

        gate = asyncio.Semaphore(plan.jobs)
        extension = FORMAT_EXTENSION[plan.set_format]
        names = member_names([name for name, _ in databases], extension)

        async def one(database: str) -> Any:
            async with gate:
                if self._cancel_requested:
                    return None  # cancelled while waiting for a place: never started
                member = DumpJob(DumpPlan(target=plan.target, dbname=database, format=plan.set_format,  # type: ignore[arg-type]
                                          compress=plan.compress, output=folder / names[database]))
                member.index_output = False
                self._members.append(member)
                self.forward_owned(member)
                progress.step_started(database)
                progress.follow_job(database, member)
                self.log(f"dumping database {database} (job {member.id}, log in its own file)")
                result = await member.run()
                progress.step_finished(database)
                # A member's own line names its file in the folder NAME.set.partial, which is gone once
                # the set is complete: it is named by its file in the set.
                said = result.message.replace(f"{folder}{os.sep}", "") if result.state == JobState.SUCCEEDED \
                    else result.message
                self.log(f"database {database}: {result.state.value}: {said}")
                return result

        # Every member runs to its end (a cancel reaches each one), so nothing is still writing
        # into the folder when a failure or a cancel removes it.
        results = await asyncio.gather(*(one(name) for name, _ in databases))
        self.check_cancelled()
        failed = [(name, r) for (name, _), r in zip(databases, results, strict=True)
                  if r is None or r.state != JobState.SUCCEEDED]
        if failed:
            name, result = failed[0]
            why = result.message if result is not None else "not started"
            raise JobFailed(f"{len(failed)} of {len(databases)} database(s) failed, first {name}: {why}")
        members = []
        for (name, _), result in zip(databases, results, strict=True):
            member_path = folder / names[name]
            manifest = read_manifest(member_path) or {}
            manifest["member_of"] = final.name
            write_manifest(member_path, manifest)
            # Its checksums too: a member put in place with its own manifest matches that one (set_members.py).
            members.append({"database": name, "file": names[name], "bytes": result.bytes_written,
                            "manifest": member_path.name + ".manifest.json",
                            "checksums": manifest.get("checksums") or {}})
        size = path_size(folder)
        # The globals' checksum: the one file of the set without a manifest of its own (each member's
        # holds its archive's, and its verifications are recorded there, so the set cannot sum those).
        checksums = {GLOBALS_FILE: await self.in_thread(checksum_file, folder / GLOBALS_FILE)}
        set_manifest = self._manifest(server_version, tools, size, databases) | {
            "kind": "cluster-set", "format": plan.set_format, "globals": GLOBALS_FILE, "members": members,
            "checksums": checksums, "globals_bytes": path_size(folder / GLOBALS_FILE)}
        write_manifest(final, set_manifest)
        put_in_place(folder, final)
        self.release("path", folder)
        self._owned.remove(folder)
        self._remember(final)
        return Outcome(message=f"{final} ({len(members)} databases, {human_bytes(size)} in {self.elapsed_s:.1f}s)",
                       output_path=final, bytes_written=size, details={"members": members, "warnings": self.warnings})

    def _remember(self, final: Path) -> None:
        """An --output outside the backup dir goes into the catalog's index, as a dump's does."""
        try:
            remember_backup(final)
        except OSError as exc:
            self._warn(f"could not add {final} to the backup catalog's index ({exc.strerror or exc}); "
                       "`pgbackup-tui backups adopt` adds it")

    def _manifest(self, server_version: str, tools: ClientTools, size: int,
                  databases: list[tuple[str, int]]) -> dict[str, Any]:
        plan = self.plan
        return {
            # Its own id, as a dump's: one made from its path changed when it moved, and `adopt` of it
            # where it went made a new backup beside its old path, listed missing for good.
            "id": new_backup_id(),
            "kind": "dumpall", "job_id": self.id, "server": plan.target.label, "server_key": asdict(self._server_key),
            "server_version": server_version,
            "server_major": int(server_version.split(".")[0]) if server_version[:1].isdigit() else None,
            "pg_dump_version": tools.version, "pg_dump_major": tools.major, "format": "plain",
            "database": None, "what": plan.what, "globals_only": plan.globals_only, "roles_only": plan.roles_only,
            "role_passwords": plan.with_role_passwords, "databases": [name for name, _ in databases],
            "started_at": datetime.fromtimestamp(self.started_at or 0, UTC).isoformat(),
            "finished_at": datetime.now(UTC).isoformat(), "duration_s": round(self.elapsed_s, 3), "bytes": size,
        }

    # -- cancel and cleanup --------------------------------------------------------------------------
    def _cancel_now(self) -> None:
        super()._cancel_now()
        for member in self._members:
            member.cancel()

    async def _cleanup(self, state: JobState) -> None:
        if state in (JobState.SUCCEEDED, JobState.PARTIAL):
            return
        for path in self._owned:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            self.release("path", path)
        self._owned = []
        remove_empty_folders(self._created_folders)
