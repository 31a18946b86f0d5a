"""`backups verify`: is this backup still what was written, readable to its end, restorable here?

Checks, each named in the result (the manifest's `verifications` keeps them):
  1. checksums (checksums.py) of the archive's file (of every file of a directory archive) against the
     manifest: a flipped byte anywhere is caught, and the changed or missing file named;
  2. client tools: a pg_restore (psql for SQL scripts) found here that can read what wrote it;
  3. read to the end: pg_restore prints the whole archive's data (`--data-only --file=-`, every
     data file of a directory archive), and each table's rows are counted on the way and compared
     with the rows counted at dump time; a SQL script must end with pg_dump's closing line (a
     gzipped one is decompressed through). A tar archive is first checked for cut members
     (pg_restore 15 spins on a truncated tar).
Cost: one read of the archive for the checksums, and one more (decompressing) by pg_restore.

No client tools here that can read it (a workstation without the newer major's pg_restore) says
nothing of the backup: a verify whose only problem is that records nothing and says so (exit 2),
as a drill that cannot run does; recorded, it marked good backups "failed verification", which
lifted delete's protection and their place in a schedule's keep_last (retention deleted them).
"""

from __future__ import annotations

import gzip
import os
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

from .archive import check_tar_complete, identify_archive, version_major
from .archive_scan import RowCounter, count_rows_in_chunks, count_rows_with_pg_restore, read_chunks
from .archive_sniff import closing_line, gzip_tail_has, sniff
from .catalog import CatalogEntry, entry_with_manifest
from .checksums import checkable, compare_checksums, describe
from .defaults import tools_that_decompress
from .errors import ArchiveError, JobFailed, ToolNotFoundError, UsageError
from .job_children import killed_from_outside, reader_cause, reader_killed
from .manifest import MANIFEST_SUFFIX, Manifest, Verification, load_manifest, now_iso
from .pgtools import ClientTools, installed_client_tools, passed_over, psql_for_plain, tools_for_archive
from .server_text import archive_encoding, decode_listing
from .set_members import member_mismatch
from .toc import Toc, parse_toc
from .toc_owners import archive_owners

PG_DUMP_FORMATS = ("custom", "directory", "tar")
PLAIN_FORMATS = ("plain", "plain.gz")  # a pg_dump script, as it is or gzipped


def tool_env() -> dict[str, str]:
    """pg_restore's environment: messages we read must not be translated."""
    return dict(os.environ, LC_MESSAGES="C", LC_ALL="C")


def tools_for(path: Path, fmt: str, bin_dir: str | None = None) -> ClientTools:
    """The client tools that can read this archive here (pg_restore, or psql for SQL scripts)."""
    label = f"archive {path}"
    if fmt in PG_DUMP_FORMATS:
        info = identify_archive(path)
        tools = tools_for_archive(info.min_reader_major, bin_dir, label=label, written_by=info.writer_text)
        return tools_that_decompress(tools, info.compression, lambda accept: tools_for_archive(
            info.min_reader_major, bin_dir, label=label, written_by=info.writer_text, accept=accept), label)[0]
    found = sniff(path)
    return psql_for_plain(version_major(found.dump_version), bin_dir, label=label, written_by=found.dump_version,
                          needs_restrict=bool(found.info and found.info.uses_restrict))


@dataclass
class ArchiveToc:
    """An archive's table of contents as pg_restore lists it, in the archive's encoding."""

    toc: Toc
    encoding: str
    tools: ClientTools


def read_archive_toc(path: Path, bin_dir: str | None = None) -> ArchiveToc:
    """`pg_restore --list --verbose` of a custom, directory or tar archive; ArchiveError naming it."""
    info = identify_archive(path)
    tools = tools_for(path, info.format, bin_dir)
    if info.format == "tar":
        check_tar_complete(path)
    listed = subprocess.run([tools.pg_restore, "--list", "--verbose", str(path)], capture_output=True,
                            env=tool_env(), stdin=subprocess.DEVNULL, check=False)
    if killed_from_outside(listed.returncode):
        raise JobFailed(reader_killed("pg_restore", listed.returncode, path))
    if listed.returncode != 0:
        cause = reader_cause("pg_restore", listed.returncode,
                             (listed.stderr.decode("utf-8", "replace").strip().splitlines() or ["?"])[-1])
        raise ArchiveError(f"{path}: its table of contents does not read ({cause})")
    encoding = archive_encoding(tools.pg_restore, path)
    toc = parse_toc(decode_listing(listed.stdout, encoding), archive_owners(path, encoding))
    return ArchiveToc(toc, encoding, tools)


DATA_DESCS = ("TABLE DATA", "BLOBS")  # the entries pg_dump writes data for (a large object's BLOB, BLOB METADATA: none)


def count_archive_rows(path: Path, fmt: str, bin_dir: str | None = None,
                       listing: ArchiveToc | None = None) -> dict[str, int]:
    """Each table's rows as the archive holds them (reads it through once); ArchiveError if it is cut
    short. `listing`: the archive's table of contents, where the caller has read it already."""
    if fmt in PG_DUMP_FORMATS:
        listing = listing or read_archive_toc(path, bin_dir)
        data_entries = sum(1 for entry in listing.toc.entries if entry.desc in DATA_DESCS)
        return count_rows_with_pg_restore(listing.tools.pg_restore, path, tool_env(), listing.encoding,
                                          data_entries=data_entries)
    if fmt in PLAIN_FORMATS:
        return read_plain_script(path, fmt).rows
    return {}  # a cluster script: tables of many databases, not counted


def read_plain_script(path: Path, fmt: str) -> RowCounter:
    """A plain pg_dump script (`fmt` plain or plain.gz) read through: its tables' rows and its
    entries' kinds (the "-- Name: …; Type: …" comments); ArchiveError if it is cut short."""
    if fmt == "plain":
        with path.open("rb") as handle:
            counter = count_rows_in_chunks(read_chunks(handle))
    else:
        try:
            with gzip.open(path, "rb") as handle:
                counter = count_rows_in_chunks(read_chunks(handle))
        except (OSError, EOFError, zlib.error) as exc:
            raise ArchiveError(f"{path}: the gzip stream is damaged or cut short ({exc})") from None
    if not counter.complete:
        raise ArchiveError(f"{path}: cut short inside a table's data")
    return counter


def compare_rows(expected: dict[str, int], found: dict[str, int], where: str) -> list[str]:
    """One line per table whose rows differ from the manifest's (or that is not there at all)."""
    problems = []
    for name, rows in sorted(expected.items()):
        if name not in found:
            problems.append(f"table {name}: not in {where} (the manifest counted {_rows(rows)})")
        elif found[name] != rows:
            problems.append(f"table {name}: {_rows(found[name])} in {where}, {rows} in the manifest")
    return problems


def tables_text(count: int) -> str:
    """'1 table', '3 tables' (a check of a one-table backup said 'rows of 1 tables match')."""
    return f"{count} table" + ("" if count == 1 else "s")


def _rows(count: int) -> str:
    """'1 row', '3 rows' (a verify or a drill that failed said '1 rows')."""
    return f"{count} row" + ("" if count == 1 else "s")


def verify_backup(entry: CatalogEntry, bin_dir: str | None = None, *,
                  member_checks: dict[Path, Verification] | None = None) -> Verification:
    """Run every check on one backup; the caller records the result (catalog.record_check).
    `member_checks`: for a cluster set, filled with each member archive's own result (the same
    checks as a backup of its own), so that the caller records those without reading them again."""
    manifest = entry.manifest
    if manifest is None:
        raise UsageError(entry.no_manifest_reason())
    check = Verification(kind="verify", at=now_iso(), ok=False)
    if not entry.path.exists():
        check.problems.append(f"{entry.path}: missing (moved or deleted since the backup)")
        return check
    if not (entry.path.is_file() or entry.path.is_dir()):  # a FIFO in its place: reading it waited for good
        check.problems.append(f"{entry.path}: not a regular file or a directory any more (an archive is one of those)")
        return check
    if manifest.kind == "cluster-set":  # a folder of archives, each with its own manifest: verify those
        _check_set(entry.path, manifest, check, bin_dir, {} if member_checks is None else member_checks)
    else:
        _check_archive(entry.path, manifest, check, bin_dir)
    not_here = check.details.pop(NOT_HERE, [])
    if not_here and len(not_here) == len(check.problems):
        sums = next((line for line in check.checks if "matches the manifest" in line), None)
        raise ToolNotFoundError(f"{entry.path} cannot be verified here: {not_here[0]}"
                                f"{f' ({sums})' if sums else ''}; nothing was recorded")
    check.ok = not check.problems
    return check


NOT_HERE = "not_here"  # Verification.details key, while checking: the problems that are this machine's


def _not_here(check: Verification, line: str) -> None:
    """A problem of this machine (no client tools that can read it), not of the backup."""
    check.problems.append(line)
    check.details.setdefault(NOT_HERE, []).append(line)


def _bin_dir_too_old(path: Path, fmt: str, tools: ClientTools, bin_dir: str | None) -> str | None:
    """The line that says --bin-dir was too old to read the archive and other tools did (verify
    named the version it used, not that the bin dir asked for was passed over, as restore says)."""
    if not bin_dir or tools.bin_dir == Path(bin_dir).expanduser():
        return None
    needed = (identify_archive(path).min_reader_major if fmt in PG_DUMP_FORMATS
              else version_major(sniff(path).dump_version))
    there = next((one for one in installed_client_tools(bin_dir) if one.bin_dir == Path(bin_dir).expanduser()), None)
    if needed is None or there is None or there.major >= needed:
        return None  # passed over for another reason (a compression it lacks): tools_that_decompress's
    return passed_over(tools, bin_dir, needed, f"the archive's pg_dump {needed}")


def _check_archive(path: Path, manifest: Manifest, check: Verification, bin_dir: str | None) -> None:
    """One archive against its manifest: checksums, client tools here, read to the end, rows."""
    _check_sums(path, manifest, check)
    try:
        tools = tools_for(path, manifest.format, bin_dir)
        tool = "pg_restore" if manifest.format in PG_DUMP_FORMATS else "psql"
        check.tools[tool] = f"{tools.version} ({tools.bin_dir})"
        too_old = _bin_dir_too_old(path, manifest.format, tools, bin_dir)
        check.checks.append(f"{tool} {tools.version} here can read it" + (f" ({too_old})" if too_old else ""))
    except ToolNotFoundError as exc:
        _not_here(check, str(exc))
        return  # reading it through would stop at the same thing and say it again
    except ArchiveError as exc:
        check.problems.append(str(exc))
        return
    _check_read_through(path, manifest, check, bin_dir)


def _check_set(folder: Path, manifest: Manifest, check: Verification, bin_dir: str | None,
               member_checks: dict[Path, Verification]) -> None:
    """A cluster set: its globals file (its checksum where the set's manifest has one, and its
    closing line), then every member as its own backup is checked (_check_archive, against the
    member's manifest; each result kept in `member_checks`), each line naming the member."""
    globals_file = folder / str(manifest.extra.get("globals") or "globals.sql")
    for name, recorded in sorted(manifest.checksums.items()):
        problems = compare_checksums(folder / name, {"": recorded})
        check.problems.extend(problems)
        if not problems:
            check.checks.append(f"{name}: its {describe({name: recorded})} matches the manifest")
    if not manifest.checksums:
        check.checks.append("globals: no checksum recorded (a set from before they were): its closing line is checked")
    try:
        found = sniff(globals_file) if globals_file.is_file() else None
    except ArchiveError:  # not SQL any more
        found = None
    if found is None or not found.complete:
        check.problems.append(f"{globals_file}: missing or truncated (it does not end with pg_dumpall's closing line)")
    members = [m for m in manifest.extra.get("members") or [] if isinstance(m, dict) and m.get("file")]
    if not members:
        check.problems.append(f"{folder}: the set's manifest lists no member archives")
    # A member archive in the folder that the manifest does not list (the manifest edited): a restore
    # of the set would pass over it without a word.
    listed = {str(m["file"]) for m in members}
    for sidecar in sorted(folder.glob(f"*{MANIFEST_SUFFIX}")):
        archive = sidecar.name[:-len(MANIFEST_SUFFIX)]
        if archive not in listed and (folder / archive).exists():
            check.problems.append(f"{folder / archive}: a member archive the set's manifest does not list "
                                  "(its manifest was edited?); a restore of the set would leave it out")
    for member in members:
        path = folder / str(member["file"])
        label = str(member.get("database") or member["file"])
        own = load_manifest(path)
        if own is None:
            check.problems.append(f"member {label}: {path} has no readable manifest")
            continue
        one = Verification(kind="verify", at=check.at, ok=False)
        if not path.exists():
            one.problems.append(f"{path}: missing (moved or deleted since the backup)")
        else:
            swapped = member_mismatch(folder, member, own)  # its own manifest came with it: not enough
            if swapped:
                one.problems.append(swapped)
            _check_archive(path, own, one, bin_dir)
        one.ok = not one.problems
        not_here = one.details.pop(NOT_HERE, [])
        if not not_here or len(not_here) != len(one.problems):  # a member not checkable here: nothing recorded
            member_checks[path] = one
        check.details.setdefault(NOT_HERE, []).extend(f"member {label}: {line}" for line in not_here)
        check.checks.extend(f"member {label}: {line}" for line in one.checks)
        check.problems.extend(f"member {label}: {line}" for line in one.problems)
        check.tools.update(one.tools)


def _check_sums(path: Path, manifest: Manifest, check: Verification) -> None:
    if not checkable(manifest.checksums):
        # Its size is then all there is to tell an archive grown or cut since (a manifest from before
        # checksums, or garbage appended to a custom archive, which pg_restore reads through): listed
        # "changed", it verified and drilled as sound.
        listed = entry_with_manifest(path.absolute(), manifest)
        if listed.status == "changed":
            check.problems.append(f"{path}: {(listed.problem or '').removesuffix(' (pgbackup-tui backups verify)')}")
    if not manifest.checksums:
        check.checks.append("no checksums recorded (a manifest from before checksums): not compared")
        return
    problems = compare_checksums(path, manifest.checksums)
    check.problems.extend(problems)
    if not problems:
        check.checks.append(f"{describe(manifest.checksums)} of {len(manifest.checksums)} file(s) matches the manifest")


def _check_read_through(path: Path, manifest: Manifest, check: Verification, bin_dir: str | None) -> None:
    fmt = manifest.format
    tail = closing_line(fmt)
    try:
        if fmt == "plain" or fmt == "dumpall":
            found = sniff(path)
            if not found.complete:
                raise ArchiveError(f"{path}: truncated (it does not end with the closing line '{tail}')")
        elif fmt.endswith(".gz") and tail is not None and not gzip_tail_has(path, tail):
            raise ArchiveError(f"{path}: truncated or damaged gzip (it does not decompress to the closing line)")
        rows = count_archive_rows(path, fmt, bin_dir)
    except (ArchiveError, ToolNotFoundError, OSError) as exc:
        check.problems.append(str(exc))
        return
    # A pg_dumpall file's tables are counted by name across its databases (two databases' public.t are
    # one name): no number of them is said that would be wrong.
    counted = rows and manifest.kind != "dumpall"
    whose = "1 table's" if len(rows) == 1 else f"{len(rows)} tables'"
    check.checks.append("reads to the end" + (f" ({whose} data)" if counted else ""))
    expected = manifest.toc.table_rows()
    differ = compare_rows(expected, rows, "the archive")
    check.problems.extend(differ)
    if expected and not differ:
        check.checks.append(f"rows of {tables_text(len(expected))} match the manifest")
