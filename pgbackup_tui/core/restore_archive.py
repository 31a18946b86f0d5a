"""The first half of a restore: what the archive is, which tools read it, and proof it is whole.

RestoreArchiveJob is RestoreJob's base (restore.py): before anything touches the target, the
archive is identified (format, the pg_dump that wrote it), refused for an older server unless the
user says it fits, listed with a pg_restore that can read it (in the archive's own encoding), and
proven whole: by the manifest's checksum where there is one (checksums.py) (taken once the new archive had read
back to its end), else by reading it through once (`pg_restore -f /dev/null`). It also picks the
number of parallel jobs when the user did not (defaults.py).

The checksum runs in a thread from the start; `_archive_whole` waits for it. RestoreJob waits before
it touches a database it did not create, but lets a restore into a new database (--create, the
copy a whole-database --clean builds) start beside the check: a mismatch then fails the job, and
the new database is dropped, so the target is as it was either way (restore.py). Not for an
archive the catalog already doubts (its last verification failed, or its size is not the
manifest's): that one is proven whole before anything is created (`_catalog_doubt`).
"""

from __future__ import annotations

import asyncio
import shlex
from dataclasses import replace
from pathlib import Path

from typing import Any

from .archive import ArchiveInfo, check_plain_complete, check_tar_complete, identify_archive, plain_drop_section
from .catalog import entry_with_manifest, read_manifest
from .checksums import checkable, compare_checksums, describe
from .connect import connect
from .defaults import (check_jobs_fit, free_connections, parallel_jobs, serial_restore_reason, tools_that_decompress,
                       usable_cores)
from .errors import ArchiveError, JobFailed, TargetError, ToolNotFoundError, UsageError
from .job_children import killed_from_outside, reader_cause, reader_killed
from .jobs import Job
from .manifest import Manifest, manifest_path
from .client_ssl import over_ssl, prefer_ssl, tools_have_ssl
from .pgtools import ClientTools, passed_over, psql_for_plain, tools_for_archive
from .plain_script import sets_unknown_settings
from .plans import RestorePlan
from .progress.restore import RestoreProgress
from .restore_data import is_data_only
from .restore_preview import ArchiveCheck
from .server_text import archive_encoding, decode_listing
from .timescale import extension_entry
from .toc import Toc, parse_toc
from .toc_owners import archive_owners

CANCEL_CHECK_S = 0.1  # how soon a cancel is seen while the checksum check still runs


class RestoreArchiveJob(Job):
    """What RestoreJob knows about its archive before it touches the target (see the module doc)."""

    plan: RestorePlan
    _workdir: Path | None
    _checksums: asyncio.Future[list[str]] | None = None  # the checksum check while it runs (_archive_whole)
    _manifest_read: dict[str, Any] | None = None
    _free_connections: int | None = None  # what this role has left on the server and in the target (defaults.py)
    _jobs_not_used: str | None = None  # a --jobs N that psql's one transaction does not use, said with the result
    _server_major: int | None = None  # the target's, once asked (_server_facts)

    def _manifest(self) -> dict[str, Any]:
        """The archive's manifest ({} without one), read once: it is looked at from several steps."""
        if self._manifest_read is None:
            self._manifest_read = read_manifest(self.plan.archive) or {}
        return self._manifest_read

    def _holds_a_selection(self) -> bool:
        """Whether the archive is a dump of some tables or schemas (by its manifest; an
        --exclude-table alone is still the whole database)."""
        selection = self._manifest().get("selection") or {}
        return bool(selection.get("tables") or selection.get("schemas"))

    def _catalog_doubt(self) -> str | None:
        """Why the catalog doubts the archive, as the Backups tab lists it (its last verification
        failed, or its size is not the manifest's), or None. Such an archive is proven whole before
        a restore creates a database: checked beside pg_restore, it would most likely make a
        database only to drop it again (a stat and the manifest already read: nothing to wait for)."""
        recorded = self._manifest()
        if not recorded:
            return None
        entry = entry_with_manifest(self.plan.archive.absolute(), Manifest.from_json(recorded))
        if entry.status == "failed verification":
            return "its last verification failed"
        if entry.status == "changed":
            return f"its size is not its manifest's ({entry.problem})"
        return None

    def _maintenance_db(self) -> str:
        return self.plan.target.maintenance_db(self.plan.dbname)

    # -- the archive ---------------------------------------------------------------------------
    async def _check_archive(self) -> ArchiveCheck:
        plan = self.plan
        sidecar = manifest_path(plan.archive)
        if not self._manifest() and sidecar.exists():
            # Its checksum is in there: restored as a foreign archive, a changed byte went in unseen
            # (exit 0), and the catalog itself lists it as doubtful. A set's member is refused alike.
            raise ArchiveError(f"{plan.archive}: its manifest {sidecar} cannot be read (edited or damaged), so its "
                               "checksum cannot be checked; nothing was restored (restore the manifest from a copy, "
                               "or move it aside to restore the archive unchecked)")
        recorded = self._manifest()
        listed = entry_with_manifest(plan.archive.absolute(), Manifest.from_json(recorded)) if recorded else None
        if listed is not None and listed.status == "changed" and not checkable(recorded.get("checksums") or {}):
            # No checksum to prove it whole or not: its size alone says it is not what was written
            # (pg_restore reads a custom archive with garbage appended through, as if it were whole).
            size = (listed.problem or "").removesuffix(" (pgbackup-tui backups verify)")
            raise ArchiveError(f"{plan.archive}: {size}, and its manifest has no checksum to tell what changed; "
                               "nothing was restored (move the manifest aside to restore the archive unchecked)")
        info = await self.in_thread(identify_archive, plan.archive)
        label = f"archive {plan.archive}"
        if info.format == "plain":
            if info.creates_database is not None:
                # psql would make that database and restore into it, whatever --db names, while the
                # job created (and reported) the one named.
                raise UsageError(
                    f"{plan.archive} was written by pg_dump --create: it creates database "
                    f"'{info.creates_database}' and connects to it itself, so it cannot restore into '{plan.dbname}'; "
                    f"run it as it is (psql -f {shlex.quote(str(plan.archive))} postgres), "
                    "or dump again without --create")
            await self.in_thread(check_plain_complete, plan.archive)
            if await self.in_thread(_plain_uses_timescale, plan.archive):
                # psql would run it straight through: no timescaledb_pre_restore() / post_restore(),
                # which Timescale's procedure needs (and which an archive's restore follows).
                raise UsageError(f"{plan.archive}: a plain SQL dump of a TimescaleDB database, which restores only "
                                 "between timescaledb_pre_restore() and timescaledb_post_restore(), and psql runs "
                                 "it straight through; dump it again with --format custom (restored as Timescale "
                                 "documents); nothing was restored")
            tools = await self.in_thread(lambda: psql_for_plain(
                info.dump_major, plan.target.bin_dir, label=label, written_by=info.writer_text,
                needs_restrict=info.uses_restrict))
            if plan.target.bin_dir and tools.bin_dir != Path(plan.target.bin_dir).expanduser():
                self.log(f"psql in {plan.target.bin_dir} cannot run this file (it uses \\restrict, which that "
                         f"minor does not know): using psql {tools.version} from {tools.bin_dir}")
            server_major, self._free_connections, ssl_in_use = await self.in_thread(self._server_facts)
            self._server_major = server_major
            tools = prefer_ssl(tools, lambda accept: psql_for_plain(
                info.dump_major, plan.target.bin_dir, label=label, written_by=info.writer_text,
                needs_restrict=info.uses_restrict, accept=accept), plan.target, ssl_in_use, "psql", self.log)
            self._check_fits_server(info, server_major)
            self.plan = replace(plan, jobs=plan.jobs or 1)
            self._start_progress(info, None)
            # The manifest's checksum, as for an archive (below): checked beside a restore into a
            # database this job makes, before one into a database that exists. Without it a plain
            # file changed since the backup was restored (and drilled: "drilled") as it was.
            self._check_checksums_beside()
            drops = await self.in_thread(plain_drop_section, plan.archive)
            if drops is not None:
                self.log(f"{plan.archive.name} was written by pg_dump --clean: its {drops[2]} DROP statement(s), for "
                         "the objects of the database it was dumped from, are skipped (the database it runs in is "
                         "new or empty, where each would fail)")
            return ArchiveCheck(info, tools, None, plain_drops=drops)

        # The server's major and free connections, on one connection, beside the tools' search and the listing.
        server = asyncio.ensure_future(asyncio.to_thread(self._server_facts))
        try:
            try:
                tools = await self.in_thread(lambda: tools_for_archive(
                    info.min_reader_major, plan.target.bin_dir, label=label, written_by=info.writer_text))
            except ToolNotFoundError as exc:
                # Of this machine, not of the archive: a drill does not record it as the backup's failure.
                raise ToolNotFoundError(f"{exc} (archive format {info.version_text}); nothing was restored") from None
            tools, without = await self.in_thread(self._decompressing, tools, info, info.min_reader_major, None)
            # The manifest's checksum (taken once the new archive had read back to its end) proves the
            # archive whole for the price of one plain read: in a thread, from now on (_archive_whole).
            self._check_checksums_beside()
            unreadable: ArchiveError | ToolNotFoundError | None = None
            toc: Toc | None = None
            try:
                if info.format == "tar":
                    try:
                        await self.in_thread(check_tar_complete, plan.archive)
                    except ArchiveError as cut:
                        raise ArchiveError(f"{cut}; nothing was restored") from None
                toc = await self._list(tools)
                if toc.dumped_by_major and toc.dumped_by_major > tools.major:
                    tools = tools_for_archive(toc.dumped_by_major, plan.target.bin_dir, label=label)
                    toc = await self._list(tools)
            except (ArchiveError, ToolNotFoundError) as exc:  # no pg_restore here that reads it: ToolNotFoundError
                unreadable = exc
            server_major, free, ssl_in_use = await server
            self._free_connections = free
            self._server_major = server_major
            # Another pg_restore reads what this one listed: it is as new as the archive's writer.
            needed = max(filter(None, (info.min_reader_major, toc.dumped_by_major if toc else None)), default=None)
            tools = prefer_ssl(tools, lambda accept: tools_for_archive(
                needed, plan.target.bin_dir, label=label, written_by=info.writer_text, accept=accept),
                plan.target, ssl_in_use, "pg_restore", self.log)
            self.check_cancelled()
            writer = toc.dumped_by_major if toc is not None else None
            older = self._reader_the_server_knows(tools, needed, server_major, ssl_in_use)
            other = passed_over(tools, plan.target.bin_dir, writer or info.min_reader_major,
                                f"the archive's pg_dump {writer}" if writer else "the archive")
            if older is not None:
                tools = older
            tools, again = self._decompressing(tools, info, needed, ssl_in_use)
            if not (without or again or older) and other:
                self.log(other, level="warning")
            self._check_fits_server(info, server_major)  # the clearer refusal when both apply, as before
            if unreadable is not None or toc is None:
                raise unreadable or ArchiveError(f"{plan.archive}: not listed; nothing was restored")
            one_transaction = self._one_transaction_reason(info, toc)
            given = self.plan.jobs
            if given is None:
                self.plan = replace(self.plan, jobs=1 if one_transaction else self._choose_jobs(info, toc, free))
            elif given > 1 and one_transaction:
                # psql runs it whatever --jobs says: said with the result, as TimescaleDB's one job is.
                self._jobs_not_used = f"--jobs {given} is not used: {one_transaction} (one session)"
                self.log(self._jobs_not_used, level="warning")
                self.plan = replace(self.plan, jobs=1)
            else:
                check_jobs_fit("pg_restore", given, free, plan.target.label)
            progress = self._start_progress(info, toc)
        except BaseException:
            self._drop_checksums()
            _forget(server)
            raise
        if self._checksums is None:  # Read every byte once, writing the script nowhere: a truncated archive fails here.
            self.log("verifying the archive (reading it through once)")
            code = await self.run_process([tools.pg_restore, "--file=/dev/null", str(plan.archive)],
                                          plan.target.child_env())
            if killed_from_outside(code):
                raise JobFailed(f"{reader_killed('pg_restore', code, plan.archive)}; nothing was restored")
            if code != 0:
                raise ArchiveError(f"{plan.archive}: truncated or damaged "
                                   f"({reader_cause('pg_restore', code, self.last_error())}); nothing was restored")
            progress.finish_step("verify")
        return ArchiveCheck(info, tools, toc)

    def _check_checksums_beside(self) -> None:
        """Start comparing the archive with its manifest's checksums, in a thread (_archive_whole waits)."""
        checksums = self._manifest().get("checksums") or {}
        if checkable(checksums):
            self._checksums = asyncio.ensure_future(asyncio.to_thread(compare_checksums, self.plan.archive, checksums))
            self._checksums.add_done_callback(self._on_checksums)

    async def _archive_whole(self) -> None:
        """Wait for the checksum check begun by _check_archive (if it still runs): ArchiveError if
        a file differs from the manifest. A second call returns at once."""
        future, self._checksums = self._checksums, None
        if future is None:
            return
        while not future.done():  # a cancel goes on at once (to the cleanup that drops a new database)
            await asyncio.wait([future], timeout=CANCEL_CHECK_S)
            self.check_cancelled()
        self.check_cancelled()
        error = self._checksum_error(future)
        if error is not None:
            raise error
        algorithm = describe(self._manifest().get("checksums") or {})
        self.log(f"the archive is whole: its {algorithm} matches the manifest's (the archive read back to its end "
                 "when it was made), so it is not read through again")
        if self.progress_tracker is not None:
            self._progress().finish_step("verify")

    def _checksum_error(self, future: asyncio.Future[list[str]]) -> ArchiveError | None:
        """What a finished checksum check found wrong, as the job's error (None: the archive is whole)."""
        exc = future.exception()
        if isinstance(exc, OSError):  # the archive could not be read (moved, permissions) while it was checked
            return ArchiveError(f"{self.plan.archive}: could not be read to check its checksum "
                                f"({exc.strerror or exc}); nothing was restored")
        if exc is not None:
            raise exc
        problems = future.result()
        return ArchiveError(f"{problems[0]}; nothing was restored") if problems else None

    def _on_checksums(self, future: asyncio.Future[list[str]]) -> None:
        """A changed archive stops the job as soon as the check says so, pg_restore included (the
        database it was filling is then dropped): a long restore does not run on to its end first."""
        if future.cancelled() or (future.exception() is not None and not isinstance(future.exception(), OSError)):
            return  # dropped, or a bug that _archive_whole raises
        error = self._checksum_error(future)
        if error is not None:
            self.abort(error)

    def _drop_checksums(self) -> None:
        """The job ends before the check was waited for: forget it (its thread reads to the end)."""
        future, self._checksums = self._checksums, None
        if future is not None:
            _forget(future)

    def _server_facts(self) -> tuple[int, int | None, bool]:
        """The target server's major (9 for 9.6, as pgtools counts majors), the connections this
        role has left there, in the target database too where it exists (its CONNECTION LIMIT), and
        whether our session is over SSL (client_ssl.py)."""
        with connect(self.plan.target, self._maintenance_db()) as conn:
            return conn.info.server_version // 10000, free_connections(conn, self.plan.dbname), over_ssl(conn)

    def _one_transaction_reason(self, info: ArchiveInfo, toc: Toc) -> str | None:
        """Why psql restores this in one transaction, pg_restore's --jobs aside (None: they apply)."""
        plan = self.plan
        if plan.clean and bool(plan.tables or self._manifest().get("restore_list")):
            return "a table-level --clean runs in one psql transaction"
        if is_data_only(toc, self._manifest(), info.first_entry_type):
            return "a data-only archive's rows are loaded in one psql transaction"
        return None

    def _choose_jobs(self, info: ArchiveInfo, toc: Toc, free: int | None) -> int:
        """Parallel pg_restore jobs where the archive and the target allow it (defaults.py), else 1."""
        plan = self.plan
        table_clean = plan.clean and bool(plan.tables or self._manifest().get("restore_list"))
        if serial_restore_reason(info.format, plan.single_transaction, extension_entry(toc) is not None, table_clean):
            return 1
        jobs = parallel_jobs(usable_cores(), free)
        self.log(f"restoring with {jobs} parallel job(s): {usable_cores()} core(s) here, "
                 f"{'?' if free is None else free} free connection(s) on the server (--jobs N to choose)")
        return jobs

    def _decompressing(self, tools: ClientTools, info: ArchiveInfo, needed: int | None,
                       ssl_in_use: bool | None) -> tuple[ClientTools, bool]:
        """`tools`, or another install's whose pg_restore was built with the archive's compression
        (defaults.tools_that_decompress; said in the log), before anything is created or listed: one
        built without it failed half way. (tools, whether they were passed over.)"""
        label = f"archive {self.plan.archive}"
        try:
            chosen, why = tools_that_decompress(tools, info.compression, lambda accept: tools_for_archive(
                needed, self.plan.target.bin_dir, label=label, written_by=info.writer_text,
                accept=lambda other: accept(other) and (not ssl_in_use or tools_have_ssl(other))), label)
        except ToolNotFoundError as exc:  # of this machine: a drill records nothing
            raise ToolNotFoundError(f"{exc}; nothing was restored") from None
        if why:
            self.log(why, level="warning")
        return chosen, why is not None

    def _reader_the_server_knows(self, tools: ClientTools, needed: int | None, server_major: int,
                                 ssl_in_use: bool) -> ClientTools | None:
        """Another install's pg_restore that reads the archive, for a server older than what `tools`
        set in every session (a pg_restore 17+'s SET transaction_timeout, before 17: each session's
        first statement failed, so a restore of a 15 server's own archive with the bin dir's 18, or
        the newest install's, ended partial, and one with --single-transaction or a whole-database
        --clean failed). None when `tools` are fine there, or when no other install reads the archive."""
        if not sets_unknown_settings(tools.major, server_major):
            return None

        def accept(other: ClientTools) -> bool:
            return (not sets_unknown_settings(other.major, server_major)
                    and (not ssl_in_use or tools_have_ssl(other)))
        try:
            older = tools_for_archive(needed, self.plan.target.bin_dir, accept=accept)
        except ToolNotFoundError:
            return None
        if needed is None and older.major < tools.major:
            return None  # an archive whose writer is unknown: the newest reads it, an older one may not
        self.log(f"pg_restore {tools.version} in {tools.bin_dir} sets transaction_timeout in every session, which "
                 f"PostgreSQL {server_major} does not know (each session's first statement would fail): using "
                 f"pg_restore {older.version} from {older.bin_dir} instead", level="warning")
        return older

    def _check_fits_server(self, info: ArchiveInfo, server_major: int) -> None:
        """An archive from a newer pg_dump into an older server fails half way: a plain file's SQL
        and pg_restore's own session settings (17+ send SET transaction_timeout, which 16 and older
        do not know; newer syntax likewise), after the target was created. PostgreSQL supports
        restoring into the same or a newer major: refuse before anything, unless the user says the
        archive was made to fit (--allow-older-server)."""
        plan = self.plan
        if info.dump_major is None or plan.allow_older_server:
            return
        if info.dump_major > server_major:
            # The example only where it holds: 17's pg_dump sends SET transaction_timeout, unknown before 17.
            example = " (e.g. SET transaction_timeout)" if server_major < 17 <= info.dump_major else ""
            # A drill has no --allow-older-server (it proves the backup restores as it is): a server new enough.
            advice = (f"drill it on a server of PostgreSQL {info.dump_major} or newer" if plan.drill
                      else f"dump again with pg_dump {server_major}, or add --allow-older-server if the file was made "
                           "to fit")
            # The target's age, not the archive's fault: a drill on an older server records nothing.
            raise TargetError(
                f"{plan.archive} was written by pg_dump {info.dump_version} but server '{plan.target.label}' runs "
                f"PostgreSQL {server_major}, which cannot run a newer pg_dump's SQL{example}; "
                f"{advice}; nothing was restored")

    def _progress(self) -> RestoreProgress:
        """The tracker _start_progress made (a RestoreJob's is always a RestoreProgress)."""
        assert isinstance(self.progress_tracker, RestoreProgress)
        return self.progress_tracker

    def _start_progress(self, info: ArchiveInfo, toc: Toc | None) -> RestoreProgress:
        """Track the restore from the verification pass on; the TOC and manifest give the totals."""
        progress = RestoreProgress(self, self.plan, info, toc, self._manifest() or None)
        progress.enter_phase("preparing")
        progress.start()
        self.progress_tracker = progress
        return progress

    async def _list(self, tools: ClientTools) -> Toc:
        assert self._workdir is not None
        listing = self._workdir / "toc.txt"
        # Names are written in the archive's encoding (LATIN1, EUC_JP, SQL_ASCII bytes...): read them as
        # the catalog's names read, so that --table finds them. Asked of pg_restore beside the listing.
        encoding = asyncio.ensure_future(asyncio.to_thread(archive_encoding, tools.pg_restore, self.plan.archive))

        async def read_owners() -> dict[int, str]:
            # Where each listed entry's names end (an owner may hold a space): read from the archive
            # beside the listing, as the encoding is.
            try:
                pg_encoding = await encoding
            except Exception:
                return {}  # the listing's own wait for the encoding says why
            return await asyncio.to_thread(archive_owners, self.plan.archive, pg_encoding)

        owners = asyncio.ensure_future(read_owners())
        try:
            code = await self.run_process([tools.pg_restore, "--list", "--verbose", str(self.plan.archive)],
                                          self.plan.target.child_env(), stdout_path=listing)
        except BaseException:
            _forget(owners)
            _forget(encoding)
            raise
        if code != 0:
            _forget(owners)
            _forget(encoding)
            if killed_from_outside(code):
                raise JobFailed(f"{reader_killed('pg_restore', code, self.plan.archive)}; nothing was restored")
            cause = reader_cause("pg_restore", code, self.last_error())
            if "unsupported version" in cause:
                raise ToolNotFoundError(f"{self.plan.archive}: written by a newer pg_dump than pg_restore "
                                        f"{tools.version} can read ({cause}); install postgresql-client-"
                                        f"{tools.major + 1} or newer, or point --bin-dir at one; nothing was restored")
            raise ArchiveError(f"{self.plan.archive}: not a readable pg_dump archive ({cause}); nothing was restored")
        return parse_toc(decode_listing(listing.read_bytes(), await encoding), await owners)


def _forget(future: asyncio.Future[Any]) -> None:
    """Cancel a helper that is no longer needed and take its exception, if any, so none is reported."""
    future.cancel()
    if future.done() and not future.cancelled():
        future.exception()


_PLAIN_TIMESCALE = b"\nCREATE EXTENSION IF NOT EXISTS timescaledb WITH"
_PLAIN_HEAD = 8 << 20  # pg_dump writes its extensions after the schemas, before any type or table


def _plain_uses_timescale(path: Path) -> bool:
    """Whether a plain dump creates the timescaledb extension: pg_dump's CREATE EXTENSION line in
    its head. Not the manifest's word: a dump of some tables or of the data only of such a database
    records the extension but creates none (and an adopted file's manifest does not know)."""
    with path.open("rb") as handle:
        return _PLAIN_TIMESCALE in handle.read(_PLAIN_HEAD)
