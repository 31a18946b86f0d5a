"""Plans for a whole cluster: pg_dumpall (everything, or only globals), a cluster set, and their restore.

- A **pg_dumpall file**: one plain SQL file from `pg_dumpall`: every database with the roles and
  tablespaces (the guide's "back up a whole server"), or `--globals-only` / `--roles-only`.
- A **cluster set**: a folder with `globals.sql` (roles and tablespaces, from pg_dumpall
  --globals-only) and one pg_dump archive per database (custom or directory), made up to `jobs`
  databases at a time. Each database restores on its own, in parallel, selectively; the set is
  listed as one backup with members.

Role passwords: by default not dumped (`--no-role-passwords`): a backup file then holds no
password hash, and restored roles need a new password (ALTER ROLE … PASSWORD). `with_role_passwords`
keeps them (the file is 0600 like every file we write).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .defaults import check_compress
from .errors import UsageError
from .plans import check_database_name, safe_path_part

if TYPE_CHECKING:
    from .connect import Target

SET_FORMATS = ("custom", "directory")
SET_SUFFIX = ".set"
GLOBALS_FILE = "globals.sql"


def set_what(databases: tuple[str, ...] | list[str]) -> str:
    """What a cluster set holds, in a few words (its manifest's `what`, the catalog's `holds`): some
    databases only are said, so that such a set never stands in for a whole one (delete's
    protection of the newest verified, retention)."""
    named = dict.fromkeys(databases)  # a database named twice is one member, said once
    return f"cluster set of {', '.join(named)}" if named else "cluster set"


@dataclass(frozen=True)
class DumpallPlan:
    """pg_dumpall of one server into one SQL file, or a cluster set (set_format given)."""

    target: Target
    globals_only: bool = False
    roles_only: bool = False
    with_role_passwords: bool = False
    output: Path | None = None
    set_format: str | None = None  # "custom" | "directory": a cluster set instead of one file
    jobs: int = 1  # a set: databases dumped at a time
    compress: int | str | None = None  # a set's archives: as dump's (a gzip level, METHOD[:LEVEL]); None: its default
    databases: tuple[str, ...] = ()  # a set: only these (default: every database that accepts connections)

    @property
    def dbname(self) -> str:
        """The database the job connects to (what pg_dumpall calls its maintenance database)."""
        return self.target.default_dbname

    @property
    def what(self) -> str:
        if self.set_format:
            return set_what(self.databases)
        if self.roles_only:
            return "roles"
        return "roles and tablespaces" if self.globals_only else "whole cluster"

    def validate(self) -> None:
        if self.globals_only and self.roles_only:
            raise UsageError("--globals-only and --roles-only exclude each other (roles are part of the globals)")
        if self.set_format is not None:
            if self.set_format not in SET_FORMATS:
                raise UsageError(f"--format {self.set_format}: a cluster set holds custom or directory archives")
            if self.globals_only or self.roles_only:
                raise UsageError("--set holds every database; for globals alone drop --set")
        elif self.jobs != 1 or self.databases or self.compress is not None:
            raise UsageError("--jobs, --db and --compress go with --set (pg_dumpall writes one SQL file)")
        for name in self.databases:  # names, never a conninfo with a password (it would reach the config, logs)
            check_database_name(name)
        if self.jobs < 1:
            raise UsageError("--jobs must be 1 or more")
        if self.compress is not None:
            check_compress(self.compress)
        if self.output is not None:
            # As dump's: an --output already there was refused only by the job, after it had connected
            # (a failed job on record, "failed:"), not as the bad input it is (exit 2, before anything runs).
            from .output_names import check_output_location  # here: output_names imports plans

            check_output_location(Path(self.output).expanduser().absolute())


@dataclass(frozen=True)
class ClusterRestorePlan:
    """A pg_dumpall file (psql into the maintenance database) or a cluster set onto a server."""

    archive: Path
    target: Target
    databases: tuple[str, ...] = ()  # a set: only these members
    excluded_databases: tuple[str, ...] = ()  # a set: every member but these
    jobs: int = 1  # a set: databases restored at a time
    skip_globals: bool = False  # a set: the roles are there already
    # A set: its members restored without their owners / grants (pg_restore's flags), for a server
    # without the roles (--skip-globals). A pg_dumpall file is psql's script: refused with them.
    no_owner: bool = False
    no_privileges: bool = False
    allow_older_server: bool = False  # a pg_dumpall file whose databases a newer pg_dump wrote, run anyway

    @property
    def dbname(self) -> str:
        return self.target.default_dbname

    def validate(self) -> None:
        for name in self.databases:
            check_database_name(name, "--only-db")
        for name in self.excluded_databases:
            check_database_name(name, "--exclude-db")
        if self.databases and self.excluded_databases:
            raise UsageError("--only-db and --exclude-db: give one of them (the members to restore, or those to "
                             "leave out)")
        if self.jobs < 1:
            raise UsageError("--jobs must be 1 or more")


def member_names(databases: list[str], extension: str) -> dict[str, str]:
    """A file name for each database: safe for any name, unique even when two names clean up alike."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for database in databases:
        base = safe_path_part(database)
        candidate, n = f"{base}{extension}", 2
        while candidate.lower() in taken:
            candidate = f"{base}-{n}{extension}"
            n += 1
        taken.add(candidate.lower())
        names[database] = candidate
    return names
