"""Whether a cluster set's member archives are the ones the set was made with, and whole.

Each member of a set (`dumpall --set`) has a manifest of its own beside it, which holds its
checksums and its verifications; but a member's file put in place with its manifest (another
database's, or another day's of the same one, copied from another set) matches that manifest and
so passed `verify`, and `restore SET --only-db NAME` restored the other database's contents into
NAME, exit 0. The set's manifest records, for each member, its database and size (and, in sets
written since, its checksums): what the member's own manifest says must agree with those.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .archive import path_size
from .catalog_entry import entry_for
from .checksums import checkable, compare_checksums
from .errors import ArchiveError
from .manifest import Manifest


def member_mismatch(folder: Path, member: dict[str, Any], own: Manifest) -> str | None:
    """Why the member archive `folder/member["file"]`, whose own manifest is `own`, is not the one
    the set's manifest recorded (`member`: its entry there), in one line naming it; None if it is."""
    path = folder / str(member.get("file"))
    recorded_db = member.get("database")
    if isinstance(recorded_db, str) and recorded_db and own.database and own.database != recorded_db:
        return (f"{path}: holds database '{own.database}', but the set was made with database '{recorded_db}' "
                "there (another archive put in its place)")
    recorded_sums = member.get("checksums")
    if isinstance(recorded_sums, dict) and recorded_sums and own.checksums and own.checksums != recorded_sums:
        return (f"{path}: not the archive the set was made with (its checksums are not the ones the set's "
                "manifest recorded: another archive put in its place)")
    recorded_bytes = member.get("bytes")
    if isinstance(recorded_bytes, int) and recorded_bytes and path.exists():
        try:
            size = path_size(path)
        except OSError:
            return None  # unreadable: what reads it says why
        if size != recorded_bytes:
            return f"{path}: {size} bytes on disk, {recorded_bytes} when the set was made (changed since)"
    return None


def refuse_unnameable_members(folder: Path, members: list[dict[str, Any]]) -> None:
    """Before the roles change: a member whose database name has a line break (a set's pg_dump takes
    one), which pg_restore refuses to write as SQL for its CREATE DATABASE: said now, not by the
    member's own restore after the roles and the other members."""
    for member in members:
        name = str(member.get("database"))
        if "\n" in name or "\r" in name:
            path = folder / str(member.get("file"))
            raise ArchiveError(f"{folder}: member database {name!r} has a line break in its name, which "
                               "pg_restore refuses to write as SQL (its CREATE DATABASE and \\connect); nothing "
                               f"was restored: leave it out (--exclude-db) and restore {path} into a database of "
                               "another name, made first, without --create")


def refuse_damaged_members(folder: Path, members: list[dict[str, Any]]) -> None:
    """Before the roles change: a member without a readable manifest would restore unchecked (its
    checksum is in that manifest: a changed row went in, exit 0), and one the catalog sees changed
    (its size) or incomplete failed only once the roles and the other members were in."""
    for member in members:
        path = folder / str(member.get("file"))
        entry = entry_for(path)
        if entry is None or entry.manifest is None:
            raise ArchiveError(f"{folder}: member {member.get('database')} ({path.name}) has no readable manifest, "
                               "so its checksum cannot be checked; nothing was restored (--only-db restores the "
                               "others)")
        if entry.status in ("changed", "incomplete"):
            raise ArchiveError(f"{folder}: member {member.get('database')}: {entry.problem or entry.status}; "
                               "nothing was restored (--only-db restores the others)")
        swapped = member_mismatch(folder, member, entry.manifest)  # checked against its own manifest only above
        if swapped:
            raise ArchiveError(f"{swapped}; nothing was restored (--only-db restores the others)")
        # Its bytes too, before the globals change roles: a changed byte (the same size) was found only
        # by the member's own restore, after the roles and the members before it were in (exit 1).
        changed = compare_checksums(path, entry.manifest.checksums) if checkable(entry.manifest.checksums) else []
        if changed:
            raise ArchiveError(f"{folder}: member {member.get('database')}: {changed[0]}; nothing was restored "
                               "(--only-db restores the others)")
