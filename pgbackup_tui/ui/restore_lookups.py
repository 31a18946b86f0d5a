"""What the restore dialog looks up before Start, off the UI thread: the archive (its format, manifest,
tables, and what the catalog says against it) and the target server's major version.

The dialog's thread workers (screens/restore_dialog.py) call these and post the messages below;
the lines that compare the two versions, or say the catalog's doubt, are worded here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from textual.message import Message

from ..core.archive import ArchiveInfo, identify_archive
from ..core.catalog import entry_with_manifest
from ..core.connect import Target, connect
from ..core.errors import PgBackupError
from ..core.identifiers import one_line
from ..core.manifest import Manifest, load_manifest
from .widgets.toc_tables import archive_tables


class ServerMajorRead(Message):
    """The major version of server `server` (None: it did not answer; the restore checks again)."""

    def __init__(self, server: str, major: int | None) -> None:
        super().__init__()
        self.server = server
        self.major = major


class ArchiveChecked(Message):
    """The worker looked at `path`: its ArchiveInfo and manifest, or one line of error; `doubt`:
    what the catalog says against it (restore_doubt), if anything."""

    def __init__(self, path_text: str, info: ArchiveInfo | None, manifest: dict[str, Any] | None,
                 error: str | None, tables: list[str] | None = None,
                 doubt: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.tables = tables or []  # the TOC's tables, for a restore of some of them
        self.path_text = path_text
        self.info = info
        self.manifest = manifest
        self.error = error
        self.doubt = doubt


def check_archive(path_text: str) -> ArchiveChecked:
    """Identify the archive at `path_text` (blocking: the path may be on a slow mount)."""
    if not path_text.strip():
        return ArchiveChecked(path_text, None, None, None)
    path = Path(path_text.strip()).expanduser()
    try:
        info = identify_archive(path)
    except PgBackupError as exc:
        return ArchiveChecked(path_text, None, None, str(exc))
    except OSError as exc:  # unreadable file, permission denied
        return ArchiveChecked(path_text, None, None, f"{path}: {exc.strerror or exc}")
    manifest = load_manifest(path)
    return ArchiveChecked(path_text, info, manifest.to_json() if manifest else None, None,
                          archive_tables(path, info.format),
                          restore_doubt(path, manifest) if manifest else None)


def read_server_major(server: str, target: Target) -> ServerMajorRead:
    """Ask `target` its major version (blocking: a connection)."""
    try:
        with connect(target) as conn:
            major: int | None = conn.info.server_version // 10000
    except (PgBackupError, psycopg.Error):
        major = None  # unreachable, a password needed: the restore's own check says it
    return ServerMajorRead(server, major)


def archive_status(info: ArchiveInfo | None, manifest: dict[str, Any] | None, error: str | None,
                   path_text: str, data_only: bool) -> tuple[str, bool]:
    """The dialog's line on the archive from what check_archive found: (status line, is it an error)."""
    if error:
        return error, True
    if info is None:
        return ("checking the archive…" if path_text.strip() else "type the path of a backup"), False
    status = f"{info.format} archive"
    if info.archive_version:
        status += f" (archive format {info.version_text})"
    if data_only:
        status += ", data only"
    manifest = manifest or {}
    if manifest.get("database"):
        status += f" · {one_line(str(manifest['database']))} on {one_line(str(manifest.get('server', '?')))}"
    if manifest.get("finished_at"):
        status += f", {str(manifest['finished_at'])[:19].replace('T', ' ')} UTC"
    return status, False


def newer_than_server(info: ArchiveInfo | None, major: int | None, label: str) -> str | None:
    """What the restore would refuse (restore_archive.py _check_fits_server) when the archive's
    pg_dump is newer than the target server, as a line that names the dialog's option; None when
    it is not, or either version is not known (the restore checks)."""
    if info is None or info.dump_major is None or major is None or info.dump_major <= major:
        return None
    return (f"pg_dump {info.dump_version} wrote it, for PostgreSQL {info.dump_major} or newer; "
            f"'{label}' runs {major}: tick “allow older server” if the archive was made to fit")


def restore_doubt(path: Path, manifest: Manifest) -> tuple[str, str] | None:
    """(catalog status, one line for the dialog) when the catalog doubts the archive at `path`: its
    last verification failed (a warning: the restore checks it first), or it changed on disk since
    it was made (the restore would refuse it); None when it does not. A stat and the manifest."""
    entry = entry_with_manifest(path.absolute(), manifest)
    if entry.status == "failed verification":
        last = manifest.verifications[-1]
        problem = last.problems[0].removeprefix(f"{entry.path}: ") if last.problems else "see its details"
        check = "verification" if last.kind == "verify" else last.kind
        return entry.status, (f"this backup FAILED its last {check} ({last.at[:10]}): {problem}; the restore "
                              "checks the archive again before it creates anything")
    if entry.status == "changed":
        sizes = (entry.problem or "?").split(":")[0]  # "N bytes on disk, M when it was made"
        return entry.status, (f"this backup CHANGED on disk since it was made ({sizes}): a restore would refuse "
                              "it; pick another one")
    return None
