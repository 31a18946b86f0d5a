"""Restoring a pg_dumpall file or a cluster set onto a server.

A pg_dumpall file, as the guide does it: `psql -f FILE postgres` with ON_ERROR_STOP. One change,
so that a cluster restores onto a server that already has some of its roles (every server has
its bootstrap superuser): each `CREATE ROLE x;` of its Roles section (and only there: a database's
data or a function body may hold that line as text) runs as "create it unless it exists", and an
existing role is reported ("role x already exists: kept"), not fatal; the `ALTER ROLE` that
follows then sets its attributes as dumped. The file is streamed through that filter, never
held. A database that already exists stops the restore there, with psql's line: a whole-cluster
file is meant for an empty server, and what ran before the stop stays (say so).

A cluster set: its globals the same way, then every member database (or those picked) with
`--create`, each as a RestoreJob of its own (own log, own result), up to `jobs` at a time.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .catalog import read_manifest
from .checksums import checkable, compare_checksums
from .cluster_plans import GLOBALS_FILE, ClusterRestorePlan
from .connect import connect
from .dumpall import CLUSTER_TAIL
from .errors import ArchiveError, JobFailed, TargetError, UsageError
from .inspect import user_object_counts
from .jobs import Job, JobResult, JobState, Outcome
from .pgtools import ClientTools, find_client_tools
from .plans import RestorePlan
from .archive import path_size
from .progress.count import CountProgress, Step
from .progress.items import TAIL_FRACTION
from .progress.priors import OUTPUT_PER_HEAP, RESTORE_HEAP_BPS
from .restore import RestoreJob

CLUSTER_HEAD = b"-- PostgreSQL database cluster dump"
_CREATE_ROLE = re.compile(rb'^CREATE ROLE ((?:"(?:[^"]|"")+")|[A-Za-z_][A-Za-z0-9_$]*);\s*$')
_KEPT = re.compile(r"NOTICE:\s+pgbackup-tui: role (.*) already exists: kept")
CHUNK = 1 << 16
_CLEAN_SECTION = re.compile(rb"^-- Drop (?:databases|roles|tablespaces)\b", re.MULTILINE)
_DUMPED_BY = re.compile(rb"^-- Dumped by pg_dump version (\d+)")
# A database's section begins with its `\connect` line; pg_dump writes the extension as below.
_CONNECT = b"\n\\connect "
_TIMESCALE_EXTENSION = b"\nCREATE EXTENSION IF NOT EXISTS timescaledb"


def is_cluster_file(path: Path) -> bool:
    """A pg_dumpall file (whole cluster or globals): its first lines say so."""
    try:
        with path.open("rb") as handle:
            return CLUSTER_HEAD in handle.read(1024)
    except OSError:
        return False


def is_cluster_set(path: Path) -> bool:
    """A folder holding globals.sql and a set manifest beside it, as DumpallJob writes."""
    manifest = read_manifest(path) or {}
    return path.is_dir() and manifest.get("kind") == "cluster-set" and (path / GLOBALS_FILE).is_file()


def tolerant_roles(path: Path) -> Iterator[bytes]:
    """The file's bytes with each `CREATE ROLE x;` of its Roles section made tolerant of an existing
    role, a line at a time there; the rest of the file (databases, their data and function bodies,
    where such a line may well be text) passes as it is."""
    section = _RolesSection()
    with path.open("rb") as handle:
        pending = b""
        while not section.is_over():
            block = handle.read(CHUNK)
            if not block:
                if pending:
                    yield section.line(pending)
                return
            lines = (pending + block).split(b"\n")
            pending = lines.pop()
            out = []
            for index, line in enumerate(lines):
                out.append(section.line(line + b"\n"))
                if section.is_over():  # the rest of the block as it is
                    out.extend(rest + b"\n" for rest in lines[index + 1:])
                    break
            yield b"".join(out)
        yield pending
        while block := handle.read(CHUNK):
            yield block


class _RolesSection:
    """Follows a pg_dumpall file line by line to its Roles section (`--` / `-- Roles` / `--`, one
    `CREATE ROLE x;` then its ALTER ROLE, COMMENT... per role) and to the next section's heading,
    where it is over. Quotes are followed across lines: a role's comment may hold any line,
    `CREATE ROLE x;` or `-- Tablespaces` among them, and is left alone."""

    def __init__(self) -> None:
        self.inside = False  # between `-- Roles` and the next heading
        self.over = False  # past the Roles section (or at the first \connect: there is none)
        self._quote: int | None = None  # the quote character an unfinished literal or identifier began with

    def is_over(self) -> bool:
        return self.over

    def line(self, line: bytes) -> bytes:
        if self._quote is None:
            text = line.rstrip(b"\r\n")
            if text.startswith(b"\\connect"):
                self.over = True
                return line
            if text.startswith(b"-- ") and text[3:4].isupper():
                if self.inside:
                    self.over = True
                self.inside = text == b"-- Roles"
                return line
            if self.inside and _CREATE_ROLE.match(line):
                return _tolerant_line(line)
        if self.inside:
            self._follow_quotes(line)
        return line

    def _follow_quotes(self, line: bytes) -> None:
        """pg_dumpall doubles a quote inside a literal or identifier (E'' literals double backslashes
        too), so a quote character toggles, and a doubled one toggles twice."""
        for char in line:
            if self._quote is None:
                if char in (0x27, 0x22):  # ' and "
                    self._quote = char
            elif char == self._quote:
                self._quote = None


def _tolerant_line(line: bytes) -> bytes:
    match = _CREATE_ROLE.match(line)
    assert match is not None
    ident = match.group(1)
    name = ident[1:-1].replace(b'""', b'"') if ident.startswith(b'"') else ident
    literal = b"'" + name.replace(b"'", b"''") + b"'"
    return (b"DO $pgbackup$ BEGIN CREATE ROLE " + ident + b"; EXCEPTION WHEN duplicate_object THEN "
            b"RAISE NOTICE 'pgbackup-tui: role % already exists: kept', " + literal + b"; END $pgbackup$;\n")


def check_cluster_file(path: Path, server_major: int, allow_older_server: bool) -> None:
    """Refuse, before anything runs, a pg_dumpall file that cannot restore whole: one cut short
    (it would restore part of a database and say nothing), one of pg_dumpall --clean (it begins
    by dropping every database and role it holds, which no stop can undo, and it stops at the
    first one in use: the current user's role), and one whose databases a newer pg_dump wrote
    (their SQL fails half way on an older server, as a plain dump's does: restore_archive.py)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
        handle.seek(max(0, size - 4096))
        if CLUSTER_TAIL not in handle.read():
            raise ArchiveError(f"{path}: truncated (it does not end with pg_dumpall's 'cluster dump complete' line); "
                               "nothing was restored")
    if _CLEAN_SECTION.search(head):
        raise UsageError(f"{path} was written by pg_dumpall --clean: it begins by dropping every database and role "
                         "it holds, which cannot be undone if it stops half way (and it stops at the current "
                         "user's role); make the file without --clean and restore it onto a server that lacks "
                         "its databases; nothing was restored")
    timescale = timescale_databases(path)
    if timescale:
        raise UsageError(
            f"{path}: database {timescale[0]} uses TimescaleDB, which restores only between "
            "timescaledb_pre_restore() and timescaledb_post_restore(), and a pg_dumpall file runs straight "
            "through psql; back the cluster up with `pgbackup-tui dumpall --set` (an archive per database, "
            "restored as Timescale documents); nothing was restored")
    if allow_older_server:
        return
    with path.open("rb") as handle:
        for line in handle:
            dumped_by = _DUMPED_BY.match(line)
            if dumped_by is None:
                continue
            major = int(dumped_by.group(1))
            if major > server_major:
                raise ArchiveError(
                    f"{path}: its databases were written by pg_dump {major}, newer than the server "
                    f"(PostgreSQL {server_major}), whose SQL would fail half way; dump again with pg_dumpall "
                    f"{server_major}, or add --allow-older-server if the file was made to fit; nothing was restored")
            return


def timescale_databases(path: Path) -> list[str]:
    """The databases of a pg_dumpall file that create the timescaledb extension: from its manifest
    when it has the list (pgbackup-tui's own), else found in the file (a DBA's own)."""
    recorded = (read_manifest(path) or {}).get("timescaledb")
    if isinstance(recorded, list):
        return [str(name) for name in recorded]
    found: list[str] = []
    database, tail = "?", b"\n"
    longest = max(len(_CONNECT), len(_TIMESCALE_EXTENSION))
    with path.open("rb") as handle:
        while True:
            block = handle.read(CHUNK)
            text = tail + block
            cut = len(text) if not block else text.rfind(b"\n") + 1  # whole lines (the last at the end)
            for at, is_connect in _markers(text, cut):
                if is_connect:
                    end = text.find(b"\n", at + 1)
                    database = _connected_name(text[at + len(_CONNECT):end if end >= 0 else len(text)])
                elif database not in found:
                    found.append(database)
            if not block:
                return found
            # The unfinished line, from the newline before it, is carried to the next block -- unless it
            # is long and no marker can begin it (a COPY row of a big value): then nothing of it is
            # needed, and carrying it whole would copy it again with every block.
            tail = text[cut - 1:] if cut else text
            if len(tail) > longest and not (tail.startswith(_CONNECT) or tail.startswith(_TIMESCALE_EXTENSION)):
                tail = b""


def _markers(text: bytes, cut: int) -> list[tuple[int, bool]]:
    """Where `\\connect` lines and timescaledb's CREATE EXTENSION lines begin (their newline) in
    text[:cut], in order; bytes.find, as a regular expression reads a big file ten times slower."""
    found = []
    for needle, is_connect in ((_CONNECT, True), (_TIMESCALE_EXTENSION, False)):
        at = text.find(needle, 0, cut)
        while at >= 0:
            if is_connect or text[at + len(needle):at + len(needle) + 1] in (b" ", b";"):  # not timescaledb_toolkit
                found.append((at, is_connect))
            at = text.find(needle, at + 1, cut)
    return sorted(found)


def _connected_name(argument: bytes) -> str:
    """The database of pg_dumpall's `\\connect` line: `"dbname='it\\'s'"` (newer) or a name (older)."""
    text = argument.decode("utf-8", "replace").strip().removeprefix("-reuse-previous=on ")
    quoted = re.fullmatch(r"\"dbname='(.*)'\"", text)
    if quoted:  # a connection-string value: \' and \\ escaped, and in psql's double quotes "" for "
        return re.sub(r"\\(.)", r"\1", quoted.group(1).replace('""', '"'))
    return text.strip('"')


class ClusterRestoreJob(Job):
    kind = "cluster-restore"

    def __init__(self, plan: ClusterRestorePlan) -> None:
        super().__init__(f"restore {plan.archive.name} onto {plan.target.label}", database=plan.dbname,
                         server=plan.target.label)
        self.plan = plan
        self._members: list[RestoreJob] = []
        self.kept_roles: list[str] = []

    async def _execute(self) -> Outcome:
        plan = self.plan
        plan.validate()
        archive = plan.archive
        if is_cluster_set(archive):
            return await self._restore_set()
        if not archive.is_file() or not is_cluster_file(archive):
            raise ArchiveError(f"{archive}: neither a pg_dumpall file nor a cluster set")
        if plan.databases or plan.skip_globals:
            raise UsageError(f"{'--only-db' if plan.databases else '--skip-globals'} picks parts of a cluster set; "
                             "a pg_dumpall file restores whole")
        tools = await self.in_thread(self._tools)
        await self.in_thread(check_cluster_file, archive, tools.major, plan.allow_older_server)
        checksums = (read_manifest(archive) or {}).get("checksums") or {}
        if checkable(checksums):  # psql runs it as it reads it: a changed file is refused before, not found after
            problems = await self.in_thread(compare_checksums, archive, checksums)
            if problems:
                raise ArchiveError(f"{problems[0]}; nothing was restored")
        self.progress_tracker = progress = CountProgress(self, [Step("cluster", path_size(archive))], plan.target,
                                                         bytes_per_s=RESTORE_HEAP_BPS)
        progress.start()
        progress.step_started("cluster")
        await self._psql_file(tools, archive, progress=progress)
        return Outcome(message=self._message(f"restored {archive.name} onto {plan.target.label}"),
                       details={"kept_roles": self.kept_roles})

    def _tools(self) -> ClientTools:
        plan = self.plan
        with connect(plan.target, plan.dbname) as conn:
            major = conn.info.server_version // 10000
        return find_client_tools(major, plan.target.bin_dir, label=f"server '{plan.target.label}'")

    async def _psql_file(self, tools: ClientTools, path: Path, *, progress: CountProgress | None = None) -> None:
        """psql runs `path`; with `progress`, the file is its step "cluster", measured by the bytes fed to
        psql -- to at most TAIL_FRACTION: a database's indexes are built after all of its data, in a few bytes."""
        plan = self.plan
        fed, size = [0], max(1, path_size(path))

        def counted() -> Iterator[bytes]:
            for chunk in tolerant_roles(path):
                fed[0] += len(chunk)
                yield chunk

        if progress is not None:
            progress.follow("cluster", lambda: min(TAIL_FRACTION, fed[0] / size))
        argv = [tools.psql, f"--dbname={plan.target.conninfo(plan.dbname)}", "--no-psqlrc", "--quiet",
                "--set=ON_ERROR_STOP=1", "--echo-errors", "--file=-"]

        def on_line(line: str) -> None:
            match = _KEPT.search(line)
            if match:
                self.kept_roles.append(match.group(1))

        code = await self.run_process(argv, plan.target.child_env(self.application_name), on_line=on_line,
                                      stdin_chunks=counted())
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
            shown = ", ".join(self.kept_roles[:5]) + (" …" if len(self.kept_roles) > 5 else "")
            lead += (f"; {len(self.kept_roles)} role(s) already existed: kept, then altered as the file says "
                     f"(attributes, settings, a password where it has one): {shown}")
        return lead

    async def _restore_set(self) -> Outcome:
        plan = self.plan
        manifest = read_manifest(plan.archive) or {}
        members: list[dict[str, Any]] = list(manifest.get("members") or [])
        if plan.databases:
            known = {m.get("database") for m in members}
            missing = [name for name in plan.databases if name not in known]
            if missing:
                raise UsageError(f"--only-db {missing[0]}: not a member of {plan.archive.name} "
                                 f"(members: {', '.join(str(m.get('database')) for m in members)})")
            members = [m for m in members if m.get("database") in plan.databases]
        for member in members:  # before anything runs: a missing member stopped the set half way
            if not (plan.archive / str(member.get("file"))).exists():
                raise ArchiveError(f"{plan.archive}: the file of member {member.get('database')} "
                                   f"({member.get('file')}) is missing; nothing was restored (--only-db restores "
                                   "the others)")
        existing = await self.in_thread(self._existing_databases)
        await self.in_thread(self._refuse_occupied, [str(m["database"]) for m in members], existing)
        steps = ([] if plan.skip_globals else [Step("globals", 1 << 20)]) + [
            Step(str(m["database"]), self._member_data(m)) for m in members]
        self.progress_tracker = progress = CountProgress(self, steps, plan.target, bytes_per_s=RESTORE_HEAP_BPS,
                                                         jobs=plan.jobs)
        progress.start()
        if not plan.skip_globals:
            progress.step_started("globals")
            tools = await self.in_thread(self._tools)
            await self._psql_file(tools, plan.archive / GLOBALS_FILE)
            progress.step_finished("globals")
        gate = asyncio.Semaphore(plan.jobs)

        async def one(member: dict[str, Any]) -> JobResult | None:
            async with gate:
                if self._cancel_requested:
                    return None
                name = str(member["database"])
                job = RestoreJob(RestorePlan(archive=plan.archive / str(member["file"]), target=plan.target,
                                             dbname=name, create=name not in existing))
                self._members.append(job)
                self.forward_owned(job)
                progress.step_started(name)
                progress.follow_job(name, job)
                self.log(f"restoring database {name} (job {job.id}, log in its own file)")
                result = await job.run()
                progress.step_finished(name)
                self.log(f"database {name}: {result.state.value}: {result.message}")
                return result

        results = await asyncio.gather(*(one(m) for m in members))
        self.check_cancelled()
        lines = [{"database": m["database"], "state": r.state.value if r else "not started",
                  "message": r.message if r else ""} for m, r in zip(members, results, strict=True)]
        failed = [line for line in lines if line["state"] not in ("succeeded", "partial")]
        if failed:
            done = [str(line["database"]) for line in lines if line not in failed]
            raise JobFailed(self._message(
                f"{len(failed)} of {len(lines)} database(s) did not restore"
                + (f" (restored: {', '.join(done)})" if done else " (none was restored)") + ": "
                + "; ".join(f"{f['database']}: {f['message'] or f['state']}" for f in failed[:3])))
        # A member whose pg_restore ignored errors is kept, as a single restore's would be: exit 3.
        partial = [line for line in lines if line["state"] == "partial"]
        lead = f"restored {len(lines)} database(s) of {plan.archive.name} onto {plan.target.label}"
        if partial:
            lead += f"; {len(partial)} with errors ignored by pg_restore: {', '.join(p['database'] for p in partial)}"
        return Outcome(message=self._message(lead), errors_ignored=len(partial),
                       details={"members": lines, "kept_roles": self.kept_roles})

    def _existing_databases(self) -> set[str]:
        with connect(self.plan.target, self.plan.dbname) as conn:
            return {str(row[0]) for row in conn.execute("SELECT datname FROM pg_database")}

    def _refuse_occupied(self, names: list[str], existing: set[str]) -> None:
        """Every server has a `postgres` database (and may have others of the set): a member whose
        database exists is restored into it only when it is empty. One that is not is refused
        before anything runs (it failed half way through the set, with a single restore's advice,
        --clean or --create, which a set does not take)."""
        for name in names:
            if name not in existing:
                continue
            with connect(self.plan.target, name) as conn:
                counts = user_object_counts(conn)
            if counts:
                held = ", ".join(f"{count} {kind}" for kind, count in counts.items())
                raise TargetError(f"database '{name}' on {self.plan.target.label} is not empty ({held}): a set "
                                  "restores into new or empty databases; drop it first, or leave it out with "
                                  "--only-db (the other members); nothing was restored")

    def _cancel_now(self) -> None:
        super()._cancel_now()
        for member in self._members:
            member.cancel()

    async def _cleanup(self, state: JobState) -> None:
        """Each member restore undid its own database; globals (roles) stay: they are shared and
        may be in use (said in the result)."""
