"""Messages of the Backups tab's workers (listing, verify, drill, delete), named for what happened.

Workers never touch widgets: they post one of these and the app shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from ..core.manifest import Verification
from .backups_view import BackupRow


@dataclass
class BackupsListed(Message):
    """The rows of the Backups tab for one server (and database, when one is focused)."""

    server: str | None
    dbname: str | None
    rows: tuple[BackupRow, ...]


@dataclass
class BackupChecked(Message):
    """A verify or drill of the backup at `path` ended: `check` (recorded in its manifest), or `error`."""

    kind: str  # verify | drill
    path: str
    name: str
    check: Verification | None
    error: str | None = None


@dataclass
class BackupDeleted(Message):
    """A backup was deleted (`removed`: what went, one line each), or not (`error`)."""

    name: str
    removed: tuple[str, ...]
    error: str | None = None
