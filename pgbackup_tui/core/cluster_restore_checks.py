"""What a cluster restore checks before anything runs: what would stop psql, or a member, half way.

A pg_dumpall file runs as one script and a set's globals.sql before its members: a stop after the
roles were made or changed leaves the server half restored. Each check here is one such stop,
known before anything runs (cluster_restore.py calls them): a database the file creates that
exists, one it fills that has the same objects, a tablespace or its location, role attributes
only a superuser may set, a set member whose database is not empty, a file changed since its backup.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from .catalog import read_manifest
from .checksums import checkable, compare_checksums
from .cluster_file import altered_roles, created_in, created_tablespaces
from .connect import connect
from .errors import ArchiveError, PgBackupError, TargetError, UsageError
from .formatting import option_argument
from .identifiers import QualifiedName, quote_ident
from .set_occupied import FILLED_DATABASES, existing_databases, occupied_databases, taken_databases
from .server_text import python_codec
from .toc_owners import database_definition

if TYPE_CHECKING:
    from .connect import Target


def refuse_strangers(members: list[dict[str, Any]], names: tuple[str, ...], flag: str, archive: Path) -> None:
    """UsageError for the first of `names` (given with `flag`) that is no member of the set."""
    known = {m.get("database") for m in members}
    missing = [name for name in names if name not in known]
    if missing:
        raise UsageError(f"{flag} {missing[0]}: not a member of {archive.name} "
                         f"(members: {', '.join(str(m.get('database')) for m in members)})")


def refuse_existing(target: Target, archive: Path) -> None:
    """A whole-cluster file creates each of its databases (postgres and template1 it fills, as
    every server has them): one that exists stopped psql there, after the roles and the databases
    before it were in. Known by the file's manifest; a foreign file still stops at psql's error."""
    named = (read_manifest(archive) or {}).get("databases")
    if not isinstance(named, list):
        return
    existing = existing_databases(target)
    taken = taken_databases((str(name) for name in named), existing)
    if len(taken) == 1:
        raise TargetError(f"database '{taken[0]}' already exists on {target.label}, and "
                          f"{archive.name} creates it: a whole-cluster file is for a server without its "
                          "databases; drop it first, or back the cluster up as a set (dumpall --set), whose "
                          "members restore one by one; nothing was restored")
    if taken:  # every one of them: the first alone took a drop and a run per database to find the next
        listed = ", ".join(f"'{name}'" for name in taken)
        raise TargetError(f"databases {listed} already exist on "
                          f"{target.label}, and {archive.name} creates them: a whole-cluster file is "
                          "for a server without its databases; drop them first, or back the cluster up as a "
                          "set (dumpall --set), whose members restore one by one; nothing was restored")


def refuse_filled(target: Target, archive: Path) -> None:
    """The file fills the server's postgres and template1, which every server has: a schema or a
    table of theirs that it creates too (a DBA's monitoring table on both servers) stopped psql
    there, after the roles and every database before it were in. Looked for in the file only
    where the server's have any (a read of the whole file)."""
    have: dict[str, set[QualifiedName | str]] = {}
    for name in FILLED_DATABASES:
        try:
            with connect(target, name) as conn:
                rows = conn.execute(_SCHEMAS_AND_RELATIONS).fetchall()
        except (PgBackupError, psycopg.Error):  # template1 closed to connections: the file's psql says
            continue
        if rows:
            have[name] = {str(schema) if relation is None else QualifiedName(str(schema), str(relation))
                          for schema, relation in rows}
    if not have:
        return
    created = created_in(archive, set(have))
    for name, there in have.items():
        clash = sorted(created.get(name, set()) & there, key=str)
        if clash:
            shown = ", ".join(f"schema {quote_ident(c)}" if isinstance(c, str) else f"table {c}" for c in clash[:3])
            raise TargetError(f"database '{name}' on {target.label} already has {shown}"
                              f"{' …' if len(clash) > 3 else ''}, which {archive.name} creates there: psql would "
                              "stop at it half way through the cluster; drop or rename it first; nothing was "
                              "restored")


def refuse_tablespaces(target: Target, dbname: str, path: Path, *, is_set: bool) -> None:
    """A tablespace the file creates that the server has already stopped psql at its CREATE
    TABLESPACE (which no DO block can make tolerant, as a role's is: it may not run in one),
    after the roles were made and altered; refused before anything runs instead. So is one whose
    location holds this major's directory already (another cluster's tablespace on the same
    host: a second cluster restored beside the first) or does not exist, where the server can tell."""
    created = created_tablespaces(path)
    if not created:
        return
    with connect(target, dbname) as conn:
        existing = {str(row[0]) for row in conn.execute("SELECT spcname FROM pg_tablespace")}
        taken = [name for name in created if name in existing]
        if taken:
            # A set's databases alone (--skip-globals) is what a DBA wants where the globals are in
            # already: a set restored before, or a member that failed and is restored again.
            skip = (", or restore the databases alone with --skip-globals if this server has the set's roles "
                    "already" if is_set else "")
            if len(taken) == 1:
                raise TargetError(f"tablespace {quote_ident(taken[0])} already exists on {target.label}, "
                                  f"and {path.name} creates it: psql would stop there, after the roles were changed; "
                                  "drop it first (DROP TABLESPACE, once nothing is in it), or restore onto a server "
                                  f"without it{skip}; nothing was restored")
            # Every one of them, as refuse_existing names databases: the first alone took a drop and a
            # run per tablespace to find the next.
            raise TargetError(f"tablespaces {', '.join(quote_ident(name) for name in taken)} already exist on "
                              f"{target.label}, and {path.name} creates them: psql would stop at the first, after "
                              "the roles were changed; drop them first (DROP TABLESPACE, once nothing is in them), "
                              f"or restore onto a server without them{skip}; nothing was restored")
        for name, location in created.items():
            problem = _location_problem(conn, location)
            if problem:
                state, advice = problem
                raise TargetError(f"tablespace {quote_ident(name)}: its location {location} on "
                                  f"{target.label}'s host {state}, and {path.name} creates it there: "
                                  "psql would stop at its CREATE TABLESPACE, after the roles were changed; "
                                  f"{advice}; nothing was restored")


# The clause pg_dump ends a database's CREATE DATABASE with when it is not in pg_default (fmtId's name).
_IN_TABLESPACE = re.compile(rb' TABLESPACE = ("(?:[^"]|"")+"|[^\s";]+);\s*$')


def refuse_members_without_tablespace(target: Target, dbname: str, folder: Path, members: list[dict[str, Any]],
                                      existing: set[str], globals_sql: Path | None) -> None:
    """A member whose database was created in a tablespace (CREATE DATABASE ... TABLESPACE x) is
    created so again, and one the server lacks stopped that member's restore (exit 1), after the
    roles and the members before it were in: with --skip-globals, which leaves out the globals.sql
    that would create it, or a globals.sql without it. Refused before anything runs, every one named.
    A member restored into a database that exists (postgres) is not created: it needs none.

    The name is read in the member archive's encoding, as its CREATE DATABASE is run: a shared
    catalog's name is kept in the bytes it was created with (UTF-8 from a UTF8 database), which
    a LATIN1 database's pg_dump writes as they are, and which are then read as LATIN1: "Schnëll"
    is looked for as "SchnÃ«ll". Read as UTF-8, such a member passed, and its restore stopped."""
    needed: dict[str, list[str]] = {}
    as_bytes: dict[str, tuple[str, str]] = {}  # a name as read -> (its bytes read as UTF-8, the archive's encoding)
    for member in members:
        name = str(member.get("database"))
        if name in existing:
            continue
        read = database_definition(folder / str(member.get("file")))
        found = _IN_TABLESPACE.search(read[0]) if read else None
        if found and read:
            spcname = _unquoted(found.group(1).decode(python_codec(read[1]) or "utf-8", "surrogateescape"))
            needed.setdefault(spcname, []).append(name)
            as_bytes[spcname] = (_unquoted(found.group(1).decode("utf-8", "surrogateescape")), read[1])
    if not needed:
        return
    made = set(created_tablespaces(globals_sql)) if globals_sql is not None else set()
    with connect(target, dbname) as conn:
        have = {str(row[0]) for row in conn.execute("SELECT spcname FROM pg_tablespace")}
    lacking = {spcname: names for spcname, names in needed.items() if spcname not in have | made}
    if not lacking:
        return
    misread = {spcname: names for spcname, names in lacking.items() if as_bytes[spcname][0] in have | made}
    if misread:
        spcname, names = next(iter(misread.items()))
        utf8, encoding = as_bytes[spcname]
        raise TargetError(
            f"{folder.name}: member database '{names[0]}' ({encoding}) is created in tablespace "
            f"{quote_ident(utf8)}, whose name its archive holds in the UTF-8 bytes the server keeps it in, "
            f"but marked {encoding}: its CREATE DATABASE would look for tablespace {quote_ident(spcname)}, "
            f"which {target.label} does not have, and stop there, after the others; rename the tablespace to "
            f"an ASCII name before the dump, or leave the member out with "
            f"{' '.join(option_argument('--exclude-db', n) for n in names)}, create that database yourself "
            "in the tablespace and restore its archive into it (restore FILE --db NAME); nothing was restored")
    shown = "; ".join(", ".join(f"'{n}'" for n in names) + f" in tablespace {quote_ident(spcname)}"
                      for spcname, names in lacking.items())
    left_out = " ".join(option_argument("--exclude-db", n) for names in lacking.values() for n in names)
    skipped = " (--skip-globals leaves out globals.sql, which would create it)" if globals_sql is None else ""
    raise TargetError(f"{folder.name} creates member database(s) {shown}, which {target.label} does not have"
                      f"{skipped}: the member's restore would stop there, after the others; create it first "
                      f"(CREATE TABLESPACE), or leave the member out with {left_out}; nothing was restored")


def _unquoted(ident: str) -> str:
    return ident[1:-1].replace('""', '"') if ident.startswith('"') else ident


def refuse_roles_it_may_not_alter(path: Path, *, superuser: bool, own_roles: frozenset[str], is_set: bool) -> None:
    """pg_dumpall sets every role's attributes, NOSUPERUSER … NOBYPASSRLS, which only a superuser may
    (CREATEROLE, a managed server's DBA role, may not): psql stopped at the first role's ALTER ROLE,
    after its CREATE ROLE had made it. Refused before anything runs."""
    if superuser:
        return
    others = [name for name in altered_roles(path) if name not in own_roles]
    if not others:
        return
    shown = ", ".join(quote_ident(name) for name in others[:3]) + (" …" if len(others) > 3 else "")
    role = ", ".join(sorted(own_roles))
    skip = (", or restore the set's databases alone with --skip-globals once the roles are made"
            if is_set else "")
    raise TargetError(f"{path.name} sets the attributes of role(s) {shown} (ALTER ROLE … NOSUPERUSER … "
                      f"NOBYPASSRLS), which only a superuser may, and role {role} is not one: psql would stop "
                      f"at the first, after making it; restore it as a superuser{skip}; nothing was restored")


def refuse_occupied(target: Target, names: list[str], existing: set[str]) -> None:
    """Every server has a `postgres` database (and may have others of the set): a member whose
    database exists is restored into it only when it is empty. One that is not is refused
    before anything runs (it failed half way through the set, with a single restore's advice,
    --clean or --create, which a set does not take)."""
    occupied = occupied_databases(target, names, existing)
    if not occupied:
        return
    # Every one of them at once: a set half restored before (a member that failed) left several,
    # and naming the first alone took a run per database to find the others.
    flags = " ".join(option_argument("--exclude-db", name) for name in occupied)
    if len(occupied) == 1:
        [(name, held)] = occupied.items()
        raise TargetError(f"database '{name}' on {target.label} is not empty ({held}): a set "
                          "restores into new or empty databases; drop it first, or leave it out with "
                          f"{flags}; nothing was restored")
    held_by = ", ".join(f"'{name}' ({held})" for name, held in occupied.items())
    raise TargetError(f"databases {held_by} on {target.label} are not empty: a set restores into "
                      f"new or empty databases; drop them first, or leave them out with {flags}; nothing "
                      "was restored")


# A database's own schemas (name, NULL) and relations (schema, name) but TOAST, whose names a CREATE
# of the same name would collide with.
_SCHEMAS_AND_RELATIONS = r"""
SELECT nspname, NULL FROM pg_namespace
 WHERE oid >= 16384 AND nspname <> 'public' AND nspname !~ '^pg_(toast_)?temp_'
UNION ALL
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid >= 16384 AND c.relkind <> 't' AND n.nspname !~ '^pg_(toast_)?temp_'
"""


# This major's directory under a tablespace's location (TABLESPACE_VERSION_DIRECTORY), and the location itself.
_LOCATION_STATE = """
SELECT (pg_stat_file(%(location)s, true)).isdir,
       (pg_stat_file(%(location)s || '/PG_' || current_setting('server_version_num')::int / 10000 || '_'
                     || (SELECT catalog_version_no FROM pg_control_system()), true)).isdir"""


def _location_problem(conn: psycopg.Connection[Any], location: str) -> tuple[str, str] | None:
    """What stops CREATE TABLESPACE at `location`, and what to do (None: nothing seen, or the server
    would not say: pg_stat_file is a superuser's, or pg_read_server_files's)."""
    if not location:
        return None
    try:
        with conn.transaction():
            row = conn.execute(_LOCATION_STATE, {"location": location}).fetchone()
    except psycopg.Error:
        return None
    if row is None:
        return None
    is_dir, version_dir = row
    if is_dir is None:
        return "does not exist", "make that directory there first, owned by the server's OS user"
    if not is_dir:
        return "is not a directory", "make it one, owned by the server's OS user"
    if version_dir is not None:
        return ("holds this PostgreSQL major's directory already (another cluster's tablespace there)",
                "restore onto a server on another host, or move that cluster's tablespace elsewhere")
    return None


def refuse_changed(path: Path, checksums: dict[str, str]) -> None:
    """psql runs a file as it reads it: one changed since the backup is refused before, not found after."""
    if checkable(checksums):
        problems = compare_checksums(path, checksums)
        if problems:
            raise ArchiveError(f"{problems[0]}; nothing was restored")
