"""Restoring a pg_dumpall file or a cluster set onto a server.

A pg_dumpall file, as the guide does it: `psql -f FILE postgres` with ON_ERROR_STOP, once it is
checked whole (cluster_file.py), streamed through the filter that makes its CREATE ROLE lines
tolerant of an existing role (reported: "role x already exists: kept"; the `ALTER ROLE` that
follows then sets its attributes as dumped). A database that already exists stops the restore
there, with psql's line: a whole-cluster file is meant for an empty server, and what ran before
the stop stays (say so).

A cluster set: its globals the same way, then every member database (or those picked) with
`--create`, each as a RestoreJob of its own (own log, own result), up to `jobs` at a time.

What would stop either half way, once roles were made or changed, is refused before anything runs
(cluster_restore_checks.py).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .catalog import read_manifest
from .plain_script import first_major_setting, settings_unknown_to, without_settings
from .cluster_file import (
    KEPT_ROLE,
    OWN_ROLE_KEPT,
    check_cluster_file,
    noticed_role,
    newer_source_advice,
    is_cluster_file,
    sql_major,
    tolerant_roles,
)
from .cluster_plans import GLOBALS_FILE, ClusterRestorePlan
from .cluster_restore_checks import (
    refuse_changed,
    refuse_existing,
    refuse_filled,
    refuse_members_without_tablespace,
    refuse_occupied,
    refuse_roles_it_may_not_alter,
    refuse_strangers,
    refuse_tablespaces,
)
from .connect import Target, answered_note, connect, pinned, service_keys, several_hosts
from .errors import ArchiveError, JobFailed, ToolNotFoundError, UsageError
from .identifiers import one_line
from .set_occupied import existing_databases
from .job_store import KEPT_MEMBER
from .job_children import child_failed
from .jobs import Job, JobResult, JobState, Outcome
from .client_ssl import over_ssl, prefer_ssl, tools_have_ssl
from .pgtools import Accept, ClientTools, find_client_tools, passed_over, tools_for_archive
from .plans import RestorePlan
from .archive import identify_archive, path_size
from .defaults import tools_that_decompress
from .progress.count import CountProgress, Step
from .progress.items import TAIL_FRACTION
from .progress.priors import OUTPUT_PER_HEAP, RESTORE_HEAP_BPS
from .restore import RestoreJob
from .restore_target import require_primary
from .set_members import refuse_damaged_members, refuse_unnameable_members


def is_cluster_set(path: Path) -> bool:
    """A folder holding globals.sql and a set manifest beside it, as DumpallJob writes."""
    manifest = read_manifest(path) or {}
    return path.is_dir() and manifest.get("kind") == "cluster-set" and (path / GLOBALS_FILE).is_file()


class ClusterRestoreJob(Job):
    kind = "cluster-restore"

    def __init__(self, plan: ClusterRestorePlan) -> None:
        super().__init__(f"restore {plan.archive.name} onto {plan.target.label}", database=plan.dbname,
                         server=plan.target.label)
        self.plan = plan
        self._members: list[RestoreJob] = []
        self.kept_roles: list[str] = []
        self._own_roles: frozenset[str] = frozenset()  # the roles this restore runs as (login, current)
        self.own_roles_kept: list[str] = []  # their ALTER ROLE ... WITH left out of the file psql ran
        self._ran: str | None = None  # what psql has run: "file" or "globals" (nothing undoes it)
        self._is_set = False
        self._server_major: int | None = None  # the target's (_server)
        self._ssl_in_use = False  # whether our session to the target used SSL (_server): its tools must too
        self._superuser = True  # whether the role the restore runs as is one (_server)

    async def _execute(self) -> Outcome:
        plan = self.plan
        plan.validate()
        if several_hosts(plan.target):
            # psql (the file, a set's globals) and every member's restore on the host that answered:
            # each pinned its own, so a first host come back meanwhile got the databases, not the roles.
            asked = plan.target
            self.plan = plan = replace(plan, target=await self.in_thread(pinned, asked, plan.dbname))
            self.log(f"restoring onto server {plan.target.label}{answered_note(asked, plan.target)}")
        archive = plan.archive
        if is_cluster_set(archive):
            return await self._restore_set()
        if not archive.is_file() or not is_cluster_file(archive):
            raise ArchiveError(f"{archive}: neither a pg_dumpall file nor a cluster set")
        if plan.databases or plan.excluded_databases or plan.skip_globals:
            picked = ("--only-db" if plan.databases else "--exclude-db" if plan.excluded_databases
                      else "--skip-globals")
            raise UsageError(f"{picked} picks parts of a cluster set; a pg_dumpall file restores whole")
        if plan.no_owner or plan.no_privileges:  # psql runs the file's ALTER ... OWNER and GRANT as they are
            raise UsageError(f"{'--no-owner' if plan.no_owner else '--no-privileges'} goes with a cluster set's "
                             "members (pg_restore); a pg_dumpall file runs through psql with its owners and grants "
                             "as they are")
        server_major, tools = await self.in_thread(self._server)
        # A roles-only or globals-only file has no database's "Dumped by pg_dump" line for
        # check_cluster_file to read: its manifest says whose roles they are (18's GRANT ... WITH
        # ADMIN OPTION, INHERIT TRUE stopped psql half way on a 15, after the roles before it).
        manifest = read_manifest(archive) or {}
        needed, writer = sql_major(manifest), manifest.get("pg_dump_major")
        self._check_made_by(needed, server_major, "file", None if needed == writer else
                            f"the roles of a PostgreSQL {needed} server (pg_dumpall {writer} wrote them)",
                            source=manifest.get("server_major"))
        await self.in_thread(check_cluster_file, archive, server_major, plan.allow_older_server)
        await self.in_thread(refuse_changed, archive, (read_manifest(archive) or {}).get("checksums") or {})
        await self.in_thread(refuse_existing, self.plan.target, archive)
        await self.in_thread(refuse_filled, self.plan.target, archive)
        await self.in_thread(self._refuse_tablespaces, archive)
        await self.in_thread(self._refuse_roles_it_may_not_alter, archive)
        self.progress_tracker = progress = CountProgress(self, [Step("cluster", path_size(archive))], plan.target,
                                                         bytes_per_s=RESTORE_HEAP_BPS)
        progress.start()
        progress.step_started("cluster")
        await self._psql_file(tools, archive, "file", progress=progress)
        return Outcome(message=self._message(f"restored {archive.name} onto {plan.target.label}"),
                       details={"kept_roles": self.kept_roles, "own_roles_kept": self.own_roles_kept})

    def _server(self) -> tuple[int, ClientTools]:
        """The target's major, and the client tools for it."""
        plan = self.plan
        with connect(plan.target, plan.dbname) as conn:
            require_primary(conn, plan.target)  # a standby: refused before globals.sql, as a restore is
            major = conn.info.server_version // 10000
            self._server_major = major
            row = conn.execute("SELECT session_user, current_user, (SELECT rolsuper FROM pg_roles "
                               "WHERE rolname = current_user)").fetchone()
            self._own_roles = frozenset(str(name) for name in row[:2]) if row else frozenset()
            self._superuser = bool(row and row[2])
            ssl_in_use = self._ssl_in_use = over_ssl(conn)
        label = f"server '{plan.target.label}'"
        tools = prefer_ssl(find_client_tools(major, plan.target.bin_dir, label=label),  # before globals.sql runs
                           lambda accept: find_client_tools(major, plan.target.bin_dir, label=label, accept=accept),
                           plan.target, ssl_in_use, "psql", self.log)
        # --bin-dir (or the profile's) too old for the server: said, as a restore says it (it was silent).
        other = passed_over(tools, plan.target.bin_dir, major, f"the server's {major}")
        if other:
            self.log(other, level="warning")
        return major, tools

    def _check_set(self, manifest: dict[str, Any], server_major: int) -> None:
        """Before globals.sql runs (it changes roles, which no later failure undoes): a set written
        by a newer pg_dumpall than the server fails half way (18's GRANT ... WITH ADMIN OPTION,
        INHERIT TRUE on 15), and a globals.sql cut short or changed since the backup would run as
        it is, exit 0 (a set member's own restore checks its archive, but only after the roles)."""
        plan = self.plan
        self._check_made_by(manifest.get("pg_dump_major"), server_major, "set", source=manifest.get("server_major"))
        if plan.skip_globals:
            return
        globals_sql = plan.archive / GLOBALS_FILE
        check_cluster_file(globals_sql, server_major, plan.allow_older_server)
        recorded = (manifest.get("checksums") or {}).get(GLOBALS_FILE)
        if recorded:
            refuse_changed(globals_sql, {"": recorded})
        self._refuse_tablespaces(globals_sql)
        self._refuse_roles_it_may_not_alter(globals_sql)

    def _refuse_members_without_tools(self, members: list[dict[str, Any]], manifest: dict[str, Any]) -> None:
        """Each member is restored by a pg_restore at least as new as the set's pg_dump, built with its
        archive's compression (lz4, zstd), and with SSL where the server is reached over it: each
        member's own restore refused one it could not have (the wheel's 18, built without SSL or zstd;
        a workstation without 18's client) only after globals.sql had made and altered the roles --
        every member alike. Looked for before anything runs."""
        plan = self.plan
        needs: set[tuple[int | None, str | None]] = set()
        for member in members:
            try:
                info = identify_archive(plan.archive / str(member.get("file")))
            except (ArchiveError, OSError):
                continue  # the member's own restore says what is wrong with it
            written_by = info.dump_major or manifest.get("pg_dump_major")
            needs.add((written_by if isinstance(written_by, int) else None, info.compression))
        for written_by, compression in sorted(needs, key=str):
            label = f"a member of {plan.archive}"

            def choose(accept: Accept | None = None, major: int | None = written_by, label: str = label) -> ClientTools:
                return tools_for_archive(major, plan.target.bin_dir, label=label, accept=accept)

            try:
                tools = prefer_ssl(choose(), choose, plan.target, self._ssl_in_use, "pg_restore", lambda _said: None)
                tools_that_decompress(tools, compression, lambda accept: choose(
                    lambda other: accept(other) and (not self._ssl_in_use or tools_have_ssl(other))), label)
            except ToolNotFoundError as missing:
                raise ToolNotFoundError(f"{missing}; nothing was restored") from None

    def _check_made_by(self, made_by: object, server_major: int, what: str, holding: str | None = None, *,
                       source: object = None) -> None:
        """A file or set whose SQL is for a major newer than the server (the pg_dumpall's, in its
        manifest; `holding` says what it holds when that is another major's) is refused before
        anything runs, unless --allow-older-server. `source` is the major of the server it was
        dumped from (its manifest's), which says what can be done about it."""
        if isinstance(made_by, int) and made_by > server_major and not self.plan.allow_older_server:
            said = holding or f"written by pg_dumpall {made_by}"
            raise ArchiveError(
                f"{self.plan.archive}: {said}, newer than the server (PostgreSQL "
                f"{server_major}), whose SQL would fail half way; {newer_source_advice(source, server_major)}, or add "
                f"--allow-older-server if the {what} was made to fit; nothing was restored")

    async def _psql_file(self, tools: ClientTools, path: Path, what: str, *,
                         progress: CountProgress | None = None) -> None:
        """psql runs `path`; with `progress`, the file is its step "cluster", measured by the bytes fed to
        psql -- to at most TAIL_FRACTION: a database's indexes are built after all of its data, in a few bytes."""
        plan = self.plan
        fed, size = [0], max(1, path_size(path))

        # What pg_dump 17+ sets in each database's script, unknown to an older server (--allow-older-server).
        skipped = [0]
        unknown = settings_unknown_to(self._server_major) if self._server_major is not None else frozenset()

        def counted() -> Iterator[bytes]:
            chunks = tolerant_roles(path, self._own_roles)
            for chunk in without_settings(chunks, unknown, skipped) if unknown else chunks:
                fed[0] += len(chunk)
                yield chunk

        if progress is not None:
            progress.follow("cluster", lambda: min(TAIL_FRACTION, fed[0] / size))
        argv = [tools.psql, f"--dbname={writable_sessions(plan.target.conninfo(plan.dbname))}", "--no-psqlrc",
                "--quiet", "--set=ON_ERROR_STOP=1", "--echo-errors", "--file=-"]

        def on_line(line: str) -> None:
            match = KEPT_ROLE.search(line)
            if match:
                if noticed_role(match.group(1)) not in self._own_roles:  # said apart: not altered as the file says
                    self.kept_roles.append(noticed_role(match.group(1)))
            elif own := OWN_ROLE_KEPT.search(line):
                self.own_roles_kept.append(noticed_role(own.group(1)))

        self._ran = what
        code = await self.run_process(argv, plan.target.child_env(self.application_name), on_line=on_line,
                                      stdin_chunks=counted())
        if skipped[0]:
            said = " and ".join(f"`{line.decode()}`" for line in sorted(unknown))
            self.log(f"{said} was left out of what psql ran of {path.name} ({skipped[0]} line(s)): PostgreSQL "
                     f"{self._server_major} has no such setting (pg_dump {first_major_setting(unknown)} and newer "
                     "write it in every database's script)")
        if code < 0:
            # Killed (the OOM killer, a kill -9): its last line is a NOTICE of ours or a statement's echo,
            # not an error the file stopped at.
            raise JobFailed(f"{child_failed('psql', code, '')} running {path.name}; what ran before it "
                            f"stays on server '{plan.target.label}' (log: {self.log_path})")
        if code != 0:
            raise JobFailed(f"psql stopped at an error in {path.name}: {self.last_error()}; what ran before it "
                            f"stays on server '{plan.target.label}' (log: {self.log_path})")

    def _member_data(self, member: dict[str, Any]) -> int:
        """The table bytes a member's archive holds (its manifest's tables), else its archive's size
        as so many bytes compressed: a step's weight."""
        manifest = read_manifest(self.plan.archive / str(member["file"])) or {}
        tables = manifest.get("tables") if isinstance(manifest.get("tables"), list) else None
        try:
            if tables:
                return max(1, sum(int(table.get("bytes") or 0) for table in tables))
            return max(1, round(int(member.get("bytes") or 1) / OUTPUT_PER_HEAP[True]))
        except (TypeError, ValueError, AttributeError):  # a manifest is a file on disk: edited, damaged
            return 1

    def _message(self, lead: str) -> str:
        if self.kept_roles:
            shown = ", ".join(one_line(r) for r in self.kept_roles[:5]) + (" …" if len(self.kept_roles) > 5 else "")
            lead += (f"; {len(self.kept_roles)} role(s) already existed: kept, then altered as the file says "
                     f"(attributes, settings, a password where it has one): {shown}")
        for role in self.own_roles_kept:
            lead += (f"; role {one_line(role)} is the role this restore connects as: its attributes and password "
                     "were kept as they are, not set as the file says (ALTER ROLE it yourself if you want them)")
        return lead

    async def _restore_set(self) -> Outcome:
        plan = self.plan
        self._is_set = True
        manifest = read_manifest(plan.archive) or {}
        members: list[dict[str, Any]] = list(manifest.get("members") or [])
        if plan.databases:
            refuse_strangers(members, plan.databases, "--only-db", plan.archive)
            members = [m for m in members if m.get("database") in plan.databases]
        if plan.excluded_databases:
            refuse_strangers(members, plan.excluded_databases, "--exclude-db", plan.archive)
            members = [m for m in members if m.get("database") not in plan.excluded_databases]
        for member in members:  # before anything runs: a missing member stopped the set half way
            if not (plan.archive / str(member.get("file"))).exists():
                raise ArchiveError(f"{plan.archive}: the file of member {member.get('database')} "
                                   f"({member.get('file')}) is missing; nothing was restored (--only-db restores "
                                   "the others)")
        refuse_unnameable_members(plan.archive, members)
        await self.in_thread(refuse_damaged_members, plan.archive, members)
        server_major, tools = await self.in_thread(self._server)
        await self.in_thread(self._check_set, manifest, server_major)
        await self.in_thread(self._refuse_members_without_tools, members, manifest)
        existing = await self.in_thread(existing_databases, self.plan.target)
        await self.in_thread(refuse_occupied, self.plan.target, [str(m["database"]) for m in members], existing)
        await self.in_thread(refuse_members_without_tablespace, plan.target, plan.dbname, plan.archive, members,
                             existing, None if plan.skip_globals else plan.archive / GLOBALS_FILE)
        steps = ([] if plan.skip_globals else [Step("globals", 1 << 20)]) + [
            Step(str(m["database"]), self._member_data(m)) for m in members]
        self.progress_tracker = progress = CountProgress(self, steps, plan.target, bytes_per_s=RESTORE_HEAP_BPS,
                                                         jobs=plan.jobs)
        progress.start()
        if not plan.skip_globals:
            progress.step_started("globals")
            await self._psql_file(tools, plan.archive / GLOBALS_FILE, "globals")
            progress.step_finished("globals")
        gate = asyncio.Semaphore(plan.jobs)

        # The members' sessions (pg_restore's, the checks', the CREATE DATABASE's) writable as the
        # globals' psql is: globals.sql sets the source's roles as they were, and a source superuser's
        # `ALTER ROLE … SET default_transaction_read_only = on`, on the role this restore connects as,
        # made every member fail ("cannot execute CREATE DATABASE in a read-only transaction").
        member_target = writable_target(plan.target)

        async def one(member: dict[str, Any]) -> JobResult | None:
            async with gate:
                if self._cancel_requested:
                    return None
                name = str(member["database"])
                into_existing = name in existing
                # Into a database that exists (postgres, template1), all or nothing: a failure or a
                # cancel cannot drop it as it drops a new one, so it rolls back instead.
                job = RestoreJob(RestorePlan(archive=plan.archive / str(member["file"]), target=member_target,
                                             dbname=name, create=not into_existing, single_transaction=into_existing,
                                             allow_older_server=plan.allow_older_server, as_set_member=True,
                                             no_owner=plan.no_owner, no_privileges=plan.no_privileges))
                self._members.append(job)
                self.forward_owned(job)
                progress.step_started(name)
                progress.follow_job(name, job)
                self.log(f"restoring database {name} (job {job.id}, log in its own file)")
                result = await job.run()
                progress.step_finished(name)
                self.log(f"database {name}: {result.state.value}: {result.message}")
                return result

        # The new databases first (up to `jobs` at a time), then those that exist, one by one: the
        # postgres member brings postgres's own settings and grants (default_transaction_read_only,
        # a REVOKE CONNECT...), which would act on the other members' sessions there.
        fresh = [m for m in members if str(m["database"]) not in existing]
        by_name = dict(zip([str(m["database"]) for m in fresh], await asyncio.gather(*(one(m) for m in fresh)),
                           strict=True))
        last = plan.target.maintenance_db("")  # where every other member's sessions start: its settings last
        into = sorted((m for m in members if str(m["database"]) in existing), key=lambda m: m["database"] == last)
        for member in into:
            by_name[str(member["database"])] = await one(member)
        results = [by_name[str(m["database"])] for m in members]
        self.check_cancelled()
        lines = [{"database": m["database"], "state": r.state.value if r else "not started",
                  "message": r.message if r else ""} for m, r in zip(members, results, strict=True)]
        failed = [line for line in lines if line["state"] not in ("succeeded", "partial")]
        if failed:
            done = [str(line["database"]) for line in lines if line not in failed]
            raise JobFailed(self._message(
                f"{len(failed)} of {len(lines)} database(s) did not restore"
                + (f" (restored: {', '.join(done)})" if done else " (none was restored)") + ": "
                + "; ".join(f"{f['database']}: {f['message'] or f['state']}" for f in failed[:3])
                # The others by name at least: each one's reason is in its own log, which the set's names.
                + (f"; also not restored: {', '.join(str(f['database']) for f in failed[3:])} (why: {self.log_path})"
                   if len(failed) > 3 else "")))
        # A member whose pg_restore ignored errors is kept, as a single restore's would be: exit 3.
        partial = [line for line in lines if line["state"] == "partial"]
        lead = f"restored {len(lines)} database(s) of {plan.archive.name} onto {plan.target.label}"
        if partial:
            lead += f"; {len(partial)} with errors ignored by pg_restore: {', '.join(p['database'] for p in partial)}"
            # The first one's line, as a single restore says it: its first error and what to do (--no-owner).
            lead += f" ({partial[0]['database']}: {partial[0]['message']})"
        return Outcome(message=self._message(lead), errors_ignored=len(partial),
                       details={"members": lines, "kept_roles": self.kept_roles,
                                "own_roles_kept": self.own_roles_kept})

    def _refuse_tablespaces(self, path: Path) -> None:
        refuse_tablespaces(self.plan.target, self.plan.dbname, path, is_set=self._is_set)

    def _refuse_roles_it_may_not_alter(self, path: Path) -> None:
        refuse_roles_it_may_not_alter(path, superuser=self._superuser, own_roles=self._own_roles, is_set=self._is_set)

    def _cancel_now(self) -> None:
        super()._cancel_now()
        for member in self._members:
            member.cancel()

    def stopped_said(self) -> str:
        return (f"the job was stopped: what psql had run stays on server '{self.plan.target.label}' (roles, and "
                "the databases it had made); a set member's restore that had begun was undone as a failed one's is")

    async def _cleanup(self, state: JobState) -> None:
        """Each member restore undid its own database; globals (roles) stay: they are shared and
        may be in use. A cancel says what stays (a failure's line says it already)."""
        for job in self._members:  # said in the result from here: off the record, which recovery reads
            self.release(KEPT_MEMBER, job.plan.dbname)  # each member's own success put it there
        if state != JobState.CANCELLED:
            return
        where = f"server '{self.plan.target.label}'"
        if self._ran == "file":
            self.cleanup_note = (f"what psql had run of the file stays on {where} (roles, and the databases it had "
                                 "made, the last one maybe part-restored: a pg_dumpall file runs as one script)")
            return
        if not self._is_set:
            return
        kept = [job.plan.dbname for job in self._members if job.state in (JobState.SUCCEEDED, JobState.PARTIAL)]
        stopped = [f"{job.plan.dbname} (job {job.id}: {job.cleanup_note or 'rolled back'})" for job in self._members
                   if job.state == JobState.CANCELLED]
        said = ([f"the roles of globals.sql stay on {where}"] if self._ran == "globals" else []) + (
            [f"databases restored before the cancel are kept: {', '.join(kept)}"] if kept else []) + (
            [f"stopped half way: {', '.join(stopped)}"] if stopped else [])
        self.cleanup_note = "; ".join(said) or None



def writable_target(target: Target) -> Target:
    """`target` whose sessions are writable whatever a role's or a database's settings say (the
    startup option of writable_sessions), for the jobs and tools a set's members run there."""
    options = _writable_options(target.params)
    if options is None:
        return target
    return replace(target, params_items=tuple(sorted({**target.params, "options": options}.items())))


def _writable_options(params: dict[str, str]) -> str | None:
    """The `options` that make a session writable, beside those `params` (or PGOPTIONS) give; None
    where a service's own options stand (a conninfo's would replace them, not add to them, and the
    session would connect as another role or not at all)."""
    service = params.get("service") or os.environ.get("PGSERVICE")
    if "options" not in params and "options" in service_keys(service):
        return None
    given = params.get("options") or os.environ.get("PGOPTIONS")  # the conninfo's would hide PGOPTIONS
    return " ".join(filter(None, [given, "-c default_transaction_read_only=off"]))


def writable_sessions(conninfo: str) -> str:
    """`conninfo` for the psql that runs a pg_dumpall file, whose sessions are writable whatever the
    file sets: pg_dump writes a database's `ALTER DATABASE … SET default_transaction_read_only = on`
    (or the role's, in the globals) before the `\\connect` that fills it, and that session took it
    (psql stopped at its first CREATE). A startup option beats a database's and a role's setting, and
    psql's \\connect keeps it (the file's own `SET` statements go on as written)."""
    params = {key: str(value) for key, value in conninfo_to_dict(conninfo).items() if value is not None}
    options = _writable_options(params)
    if options is None:  # the service's own options (a role, an endpoint) stand (review): the file's
        return conninfo  # sessions take the databases' settings as they come
    params["options"] = options
    return make_conninfo(**params)
