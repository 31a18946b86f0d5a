"""Which server a backup belongs to, as the catalog lists it: by the profile's name, its host and
port, or the cluster (system identifier) one of those came from; so a renamed profile keeps its
backups, and several profiles of one cluster each show the backups written under them. A file
without a manifest (foreign, incomplete) is listed with the server whose folder it lies in."""

from __future__ import annotations

from pathlib import Path

from .catalog import CatalogEntry
from .plans import safe_path_part
from .server_profile import ServerProfile, libpq_host_port


def _profile_host_port(profile: ServerProfile) -> tuple[str, str] | None:
    host, port = libpq_host_port(profile.connection_params())
    return (host, port) if host else None


def belongs_to(entries: list[CatalogEntry], profile: ServerProfile) -> list[CatalogEntry]:
    """The backups of a server profile: written under its name, from its host:port, or from a
    cluster (system identifier) one of those came from."""
    where = _profile_host_port(profile)

    def direct(entry: CatalogEntry) -> bool:
        manifest = entry.manifest
        if manifest is None:
            return False
        return manifest.server == profile.name or (where is not None and manifest.server_key.host_port() == where)

    mine = [e for e in entries if direct(e)]
    clusters = {e.manifest.server_key.system_identifier for e in mine if e.manifest} - {None}
    return [e for e in entries if direct(e) or (e.manifest is not None
                                                 and e.manifest.server_key.system_identifier in clusters)]


def of_no_profile(entries: list[CatalogEntry], profiles: list[ServerProfile]) -> list[CatalogEntry]:
    """The backups with a manifest that belong to no profile: adopted from a server not in the
    config (whose manifest names none), or written under a profile removed since. `backups list`
    lists them (its server `?`, or the name they were written under); the Backups tab lists them
    with every server, marked, so that they can be restored from it like any other."""
    claimed = {e.path for profile in profiles for e in belongs_to(entries, profile)}
    return [e for e in entries if e.manifest is not None and e.path not in claimed]


def in_own_folder(entry: CatalogEntry, profile: ServerProfile, backups_root: Path, dbname: str | None = None) -> bool:
    """A file without a manifest (foreign, incomplete) in the server's own folder under the backup
    dir (its database's folder, given `dbname`): the Backups tab and `backups list --server` list
    it with that server, though no manifest says whose it is."""
    folder = backups_root.absolute() / safe_path_part(profile.name)
    if dbname is not None:
        folder = folder / safe_path_part(dbname)
    return entry.manifest is None and entry.path.is_relative_to(folder)


def server_names(entries: list[CatalogEntry], profiles: list[ServerProfile]) -> dict[Path, str]:
    """Each backup's server as shown: the profile it belongs to now, else the name it was written under."""
    names = {e.path: e.server for e in entries}
    current = {profile.name for profile in profiles}
    for profile in profiles:
        for entry in belongs_to(entries, profile):
            # Several profiles may reach one cluster: the one the backup was written under wins, if
            # it still exists (the last profile added took every backup of the cluster).
            if entry.server not in current or entry.server == profile.name:
                names[entry.path] = profile.name
    return names
