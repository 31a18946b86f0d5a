"""Install the TimescaleDB stand-in (timescaledb.sql beside this file) into a server's extension dir.

TimescaleDB is not packaged for these machines. The stand-in is an SQL-only extension named
`timescaledb` with the real function and view names (see the script's header), so that a dump
and a restore take the code path of a real TimescaleDB database. It goes into the `extension`
folder of the share dir each running sandbox server reports (Debian's /usr/share/postgresql/N; a
wheel's inside site-packages, or inside the world-readable copy the server runs from when the
venv is private, which `pg_config --sharedir` of the venv's bin dir would miss: writable as root)
and is removed again afterwards. Only files it wrote are removed; a real TimescaleDB found there is never touched.

The extension dir is the installed server's, shared by every sandbox of those binaries: the test
processes pytest-xdist runs side by side take turns with it (`held`), or one's removal pulled the
files from under another's CREATE EXTENSION.
"""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pgbackup_tui.core.sandbox import Sandbox

SCRIPT = Path(__file__).with_name("timescaledb.sql")
MARKER = "pgbackup-tui test stand-in"
DUMPED_VERSION = "2.19.3"  # what the source databases are created with
OTHER_VERSION = "2.20.0"  # a version the source was not dumped with


def extension_dir(cluster: Sandbox) -> Path:
    """The extension folder the running server reads (its own pg_config view)."""
    sharedir = cluster.psql("SELECT setting FROM pg_config WHERE name = 'SHAREDIR';").strip()
    return Path(sharedir) / "extension"


class StandIn:
    """The stand-in in the extension dirs of some running servers."""

    def __init__(self, clusters: Iterable[Sandbox]) -> None:
        self.folders = sorted({extension_dir(c) for c in clusters})
        for folder in self.folders:
            control = folder / "timescaledb.control"
            if control.exists() and MARKER not in control.read_text():
                raise RuntimeError(f"{control} is a real TimescaleDB: the stand-in is not installed over it")

    def install(self, versions: Iterable[str] = (DUMPED_VERSION, OTHER_VERSION),
                default: str = DUMPED_VERSION) -> None:
        """Offer exactly `versions` (default_version `default`); what was there before goes."""
        self.remove()
        body = SCRIPT.read_text()
        for folder in self.folders:
            self._write(folder / "timescaledb.control",
                        f"# {MARKER}\ncomment = 'TimescaleDB stand-in ({MARKER})'\ndefault_version = '{default}'\n"
                        "relocatable = false\nsuperuser = true\ntrusted = false\n")
            for version in versions:
                self._write(folder / f"timescaledb--{version}.sql", body)

    def remove(self) -> None:
        for folder in self.folders:
            control = folder / "timescaledb.control"
            if control.exists() and MARKER not in control.read_text():
                continue
            control.unlink(missing_ok=True)
            for script in folder.glob("timescaledb--*.sql"):
                if script.read_text().startswith("-- A stand-in for TimescaleDB"):
                    script.unlink()

    @staticmethod
    def _write(path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o644)  # the server runs as another user


@contextmanager
def held(clusters: Iterable[Sandbox]) -> Iterator[StandIn]:
    """The stand-in installed for the block, by one test process at a time (a file lock)."""
    with open(Path(tempfile.gettempdir()) / "pgbackup-tui-timescale-standin.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        standin = StandIn(clusters)
        standin.install()
        try:
            yield standin
        finally:
            standin.remove()
