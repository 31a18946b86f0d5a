"""Restoring a data-only archive (`dump --data-only`): rows into tables that already exist.

A data-only archive holds no definitions, so it cannot make a database: it loads into one whose
tables were made some other way (a schema-only restore, the application's migrations). Its rows
go in as one transaction, so the target ends either loaded or as it was:

- without --clean the archive's tables must be there and empty (rows already in them would be
  doubled, or stop the load half-way on a unique key);
- with --clean they are emptied first (one `TRUNCATE`, no CASCADE: a table outside the archive
  with a foreign key onto one of them stops the restore rather than losing its rows), in the
  same transaction as the load;
- the tables' own triggers (an `updated := now()`, an audit trigger) are off while the rows go in,
  and on again in the same transaction: the rows end as the archive holds them, not as the
  triggers would rewrite them, and an audit table loaded too is not doubled. Foreign keys (the
  server's internal triggers) are still checked.

The tables are read from the archive's TABLE DATA entries (custom, directory, tar), or from a
plain SQL file's COPY lines, and looked up in the target, whose schema names also split the
TOC's "namespace tag owner" text (a data-only archive names no schema of its own).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from .connect import connect
from .errors import SelectionError, TargetError, UsageError
from .identifiers import QualifiedName, always_quote, parse_qualified_name, quote_ident
from .server_text import session_client_encoding
from .database_props import database_entry_ids
from .plain_script import ScriptContents, scan_script
from .plans import RestorePlan
from .toc import PREAMBLE_DESCS, Toc, TocEntry, entry_name

# What a data-only archive's TOC holds beside its preamble: rows, sequence values, large objects
# (PostgreSQL 17 groups them: BLOB METADATA) with their grants and comments.
DATA_DESCS = frozenset({"TABLE DATA", "SEQUENCE SET", "BLOB", "BLOBS", "BLOB METADATA", "BLOB DATA", "LARGE OBJECTS"})

_TABLES = """
SELECT n.nspname, c.relname, c.relkind::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN unnest(%(schemas)s::text[], %(names)s::text[]) AS want(schema, name)
  ON want.schema = n.nspname AND want.name = c.relname
"""

# Foreign keys onto the archive's tables from tables outside it: TRUNCATE refuses to empty those.
_KEYS_FROM_OUTSIDE = """
WITH loaded AS (
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN unnest(%(schemas)s::text[], %(names)s::text[]) AS want(schema, name)
      ON want.schema = n.nspname AND want.name = c.relname
)
SELECT con.conname, format('%%I.%%I', sn.nspname, s.relname), format('%%I.%%I', tn.nspname, t.relname)
FROM pg_constraint con
JOIN pg_class s ON s.oid = con.conrelid JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_class t ON t.oid = con.confrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE con.contype = 'f' AND con.confrelid IN (SELECT oid FROM loaded) AND con.conrelid NOT IN (SELECT oid FROM loaded)
ORDER BY 2, 1
LIMIT 1
"""

# The user triggers that would fire on the load's rows: the tables', and their partitions' (the rows
# of a partitioned table go into its partitions), with who may switch them off (the owner's members).
_TRIGGERS = """
WITH RECURSIVE loaded(oid, relkind) AS (
    SELECT c.oid, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN unnest(%(schemas)s::text[], %(names)s::text[]) AS want(schema, name)
      ON want.schema = n.nspname AND want.name = c.relname
    UNION
    SELECT i.inhrelid, c.relkind FROM loaded l JOIN pg_inherits i ON i.inhparent = l.oid
    JOIN pg_class c ON c.oid = i.inhrelid WHERE l.relkind = 'p'
)
SELECT format('%%I.%%I', n.nspname, c.relname), t.tgname, t.tgenabled::text,
       pg_has_role(c.relowner, 'USAGE')
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE t.tgrelid IN (SELECT oid FROM loaded) AND NOT t.tgisinternal AND t.tgenabled IN ('O', 'A')
ORDER BY 1, 2
"""



def is_data_only(toc: Toc | None, manifest: dict[str, Any], first_entry_type: str | None = None) -> bool:
    """The archive was made with --data-only: its manifest says so, or its TOC holds rows and no
    definition at all, or (a plain file) its first entry is rows, where any other dump begins with
    the definitions they go into."""
    options = manifest.get("options") or {}
    if "data_only" in options:  # our own dump's word (an adopted archive's manifest has no options)
        return bool(options["data_only"])
    if toc is None:
        return first_entry_type in ("TABLE DATA", "SEQUENCE SET")
    about_database = set(database_entry_ids(toc))
    rest = [e for e in toc.entries if e.desc not in PREAMBLE_DESCS and e.dump_id not in about_database]
    return bool(rest) and all(_is_data(entry) for entry in rest)


def _is_data(entry: TocEntry) -> bool:
    return entry.desc in DATA_DESCS or (entry.desc in ("ACL", "COMMENT") and entry.rest.startswith("- LARGE OBJECT "))


@dataclass
class DataLoad:
    """The tables a data-only restore loads, as the target names them, and whether --clean empties them."""

    tables: list[QualifiedName] = field(default_factory=list)
    clean: bool = False
    client_encoding: str = "UTF8"
    large_objects: list[int] = field(default_factory=list)  # the target's, replaced by the archive's
    # Partitioned tables among them (a plain file of --load-via-partition-root loads through its root):
    # ONLY would leave their partitions' rows out, of the check and of the TRUNCATE.
    partitioned: set[QualifiedName] = field(default_factory=set)
    # The user triggers switched off for the load: (table as SQL, trigger name, pg_trigger.tgenabled).
    triggers: list[tuple[str, str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # said in the log and the result (unloaded_members)

    def relation_sql(self, table: QualifiedName) -> str:
        """`table` for FROM and TRUNCATE: with ONLY (its children are entries of their own, or not
        the archive's), but for a partitioned table, which is its partitions."""
        return table.sql if table in self.partitioned else f"ONLY {table.sql}"

    def before_sql(self) -> str:
        """Runs first, in the load's transaction."""
        lines = [f"SET client_encoding = '{self.client_encoding}';"]
        lines += [f"ALTER TABLE {table} DISABLE TRIGGER {always_quote(name)};" for table, name, _ in self.triggers]
        if self.clean and self.tables:
            lines.append("TRUNCATE TABLE " + ", ".join(self.relation_sql(t) for t in self.tables) + ";")
        if self.large_objects:
            oids = ",".join(str(oid) for oid in self.large_objects)
            lines.append(f"SELECT count(pg_catalog.lo_unlink(oid)) FROM unnest('{{{oids}}}'::oid[]) AS oid;")
        return "\n".join(lines) + "\n"

    def after_sql(self) -> str:
        """Runs last, in the load's transaction: the triggers on again, as they were. A deferred
        foreign key's checks of the rows loaded are run first: still pending, they make ALTER TABLE
        of their table fail ("pending trigger events")."""
        enable = {"O": "ENABLE", "A": "ENABLE ALWAYS"}
        lines = [f"ALTER TABLE {table} {enable[mode]} TRIGGER {always_quote(name)};\n"
                 for table, name, mode in self.triggers]
        return ("SET CONSTRAINTS ALL IMMEDIATE;\n" if lines else "") + "".join(lines)

    def describe(self) -> list[str]:
        count = len(self.tables)
        first = "empty" if self.clean else "load rows into"
        lines = [f"{first} {count} table(s) of the archive" + (", then load their rows" if self.clean else "")
                 + " (data only: the tables must exist)"]
        lines += [f"  {t}" for t in self.tables[:20]]
        if count > 20:
            lines.append(f"  … and {count - 20} more")
        if self.triggers:
            named = ", ".join(f"{name} on {table}" for table, name, _ in self.triggers[:5])
            more = f" and {len(self.triggers) - 5} more" if len(self.triggers) > 5 else ""
            lines.append(f"their triggers off while the rows go in (on again in the same transaction): {named}{more}")
        return lines


def data_entries(toc: Toc, target_schemas: list[str], *, only: Iterable[QualifiedName] = ()
                 ) -> list[tuple[TocEntry, QualifiedName]]:
    """The archive's TABLE DATA entries with their table names, split by the target's schema names;
    `only`: those tables' entries (--table), whose schemas split the names too: the others' schemas
    need not be in the target."""
    wanted = set(only)
    namespaces = sorted({*target_schemas, *(name.schema for name in wanted)}, key=len, reverse=True)
    found = []
    for entry in toc.entries:
        if entry.desc == "TABLE DATA":
            name = entry_name(entry, namespaces)
            if wanted and name not in wanted:
                continue
            if name is None:
                raise TargetError(f"the archive holds rows for {entry.label.removeprefix('TABLE DATA ')}, "
                                  "whose schema is not in the target database; create its tables first")
            found.append((entry, name))
    return found


def select_tables(entries: list[tuple[TocEntry, QualifiedName]], wanted: Iterable[QualifiedName],
                  archive: Path, descendants: Mapping[QualifiedName, list[QualifiedName]] | None = None
                  ) -> list[tuple[TocEntry, QualifiedName]]:
    """--table on a data-only archive: those tables' rows, each named exactly, and the rows of their
    partitions and children (`descendants`, as the target has them), as a restore --table of a whole
    archive brings them: a partitioned table has no rows of its own, the archive holds its partitions'."""
    by_name = {name: (entry, name) for entry, name in entries}
    chosen: dict[QualifiedName, tuple[TocEntry, QualifiedName]] = {}
    for name in wanted:
        family = [child for child in (descendants or {}).get(name, []) if child in by_name]
        if name not in by_name and not family:
            raise SelectionError(f"--table {name}: no rows for it in data-only archive {archive}")
        for member in ([name] if name in by_name else []) + family:
            chosen.setdefault(member, by_name[member])
    return list(chosen.values())


# The partitions and inheritance children of tables, at any depth, as the target has them.
_DESCENDANTS = """
WITH RECURSIVE want(schema, name) AS (SELECT * FROM unnest(%(schemas)s::text[], %(names)s::text[])),
down(root_schema, root_name, oid) AS (
    SELECT want.schema, want.name, c.oid FROM want
    JOIN pg_namespace n ON n.nspname = want.schema JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = want.name
    UNION SELECT down.root_schema, down.root_name, i.inhrelid FROM pg_inherits i JOIN down ON i.inhparent = down.oid
)
SELECT down.root_schema, down.root_name, n.nspname, c.relname
FROM down JOIN pg_class c ON c.oid = down.oid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT (n.nspname = down.root_schema AND c.relname = down.root_name)
ORDER BY 1, 2, 3, 4
"""


# Every table's parent (a partition's, an INHERITS child's first), as SQL names: recorded by a
# data-only dump, whose archive holds rows and no definitions (see unloaded_members).
_PARENTS = """
SELECT format('%I.%I', cn.nspname, c.relname), format('%I.%I', pn.nspname, p.relname)
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE i.inhseqno = 1 AND c.relkind IN ('r', 'p')
ORDER BY 1
"""


def table_parents(conn: psycopg.Connection) -> dict[str, str]:
    """child -> parent of the database's partitions and inheritance children (SQL names)."""
    return {child: parent for child, parent in conn.execute(_PARENTS).fetchall()}


def unloaded_members(held: set[QualifiedName], present: set[QualifiedName], manifest: dict[str, Any],
                     wanted: list[QualifiedName], family: Mapping[QualifiedName, list[QualifiedName]],
                     dbname: str) -> str | None:
    """--table of a data-only archive: its rows of the named tables' partitions and children that the
    target lacks (a partition made in the source after the target was), which the load cannot load.
    `held`: the tables the archive holds rows of; `present`: those of them the target has.

    Refused before anything runs, naming them, when the archive's manifest says which they are (a
    data-only dump records its tables' parents: the archive itself holds no definitions); a DBA who
    wants the others' rows without them names those with --table. An archive without that record
    (adopted, or made before it) cannot tell a partition from any other table: when a named table
    has partitions or children in the target, the archive's rows of tables the target lacks are
    named in the returned warning instead, as those that may be its."""
    parents = manifest.get("parents")
    if not isinstance(parents, dict):
        lacking = sorted(str(name) for name in held - present)
        parted = [str(table) for table in wanted if family.get(table)]
        if not lacking or not parted:
            return None
        return (f"the archive's manifest does not say which of its tables are partitions or children of "
                f"{', '.join(parted)}: it holds rows of {len(lacking)} table(s) that database '{dbname}' lacks, "
                f"not loaded: {_listed(lacking)}; if one is, create it and load its rows with --table")
    children: dict[QualifiedName, list[QualifiedName]] = {}
    for child, parent in parents.items():
        children.setdefault(parse_qualified_name(str(parent)), []).append(parse_qualified_name(str(child)))
    for table in wanted:
        below, members = list(children.get(table, [])), []
        while below:
            member = below.pop()
            members.append(member)
            below += children.get(member, [])
        left = sorted(str(member) for member in members if member in held and member not in present)
        if left:
            raise TargetError(
                f"--table {table}: the archive holds rows of its partition(s) or child table(s) {_listed(left)}, "
                f"which database '{dbname}' lacks, so their rows would not be loaded: create them first, or "
                "name the tables to load with --table")
    return None


def _listed(names: list[str]) -> str:
    return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def _descendants(conn: psycopg.Connection, tables: Iterable[QualifiedName]) -> dict[QualifiedName, list[QualifiedName]]:
    wanted = list(tables)
    found: dict[QualifiedName, list[QualifiedName]] = {}
    rows = conn.execute(_DESCENDANTS, {"schemas": [t.schema for t in wanted], "names": [t.name for t in wanted]})
    for root_schema, root_name, schema, name in rows.fetchall():
        found.setdefault(QualifiedName(root_schema, root_name), []).append(QualifiedName(schema, name))
    return found


def plan_large_objects(conn: psycopg.Connection, load: DataLoad, oids: list[int], dbname: str) -> None:
    """The archive's large objects that the target has already: replaced with --clean (unlinked in
    the load's transaction). Without it only empty ones are (what a schema-only restore leaves:
    it creates each large object, without its data); one that holds data is refused."""
    if not oids:
        return
    existing = [row[0] for row in conn.execute(
        "SELECT oid::int8 FROM pg_catalog.pg_largeobject_metadata WHERE oid = ANY(%s::oid[]) ORDER BY 1", (oids,))]
    if not load.clean:
        for oid in existing:
            try:
                row = conn.execute("SELECT octet_length(pg_catalog.lo_get(%s::oid))", (oid,)).fetchone()
            except psycopg.Error:  # not ours to read: it may hold data
                conn.rollback()
                row = None
            if row != (0,):
                raise TargetError(f"large object {oid} in database '{dbname}' already holds data: add --clean to "
                                  "replace the archive's large objects (and empty its tables) in the same transaction")
    load.large_objects = existing


def plan_data_load(conn: psycopg.Connection, tables: list[QualifiedName], dbname: str, *, clean: bool) -> DataLoad:
    """Check the target has every table, empty unless --clean empties them; refuse naming the first
    that is missing, not a table, or (without --clean) holds rows."""
    plan = DataLoad(tables=list(dict.fromkeys(tables)), clean=clean)
    plan.client_encoding = session_client_encoding(conn) or "UTF8"  # as the names were read (server_text.py)
    if not plan.tables:
        return plan
    rows = conn.execute(_TABLES, {"schemas": [t.schema for t in plan.tables],
                                  "names": [t.name for t in plan.tables]}).fetchall()
    kinds = {QualifiedName(schema, name): kind for schema, name, kind in rows}
    for table in plan.tables:
        kind = kinds.get(table)
        if kind is None:
            raise TargetError(f"table {table} is not in database '{dbname}': a data-only archive loads rows into "
                              "tables that exist; create them first (e.g. restore a --schema-only dump)")
        if kind not in ("r", "p"):
            raise TargetError(f"{table} in database '{dbname}' is not a table; its rows cannot be loaded")
        if kind == "p":
            plan.partitioned.add(table)
    names = {"schemas": [t.schema for t in plan.tables], "names": [t.name for t in plan.tables]}
    for table, name, mode, may_alter in conn.execute(_TRIGGERS, names).fetchall():
        if not may_alter:
            raise TargetError(f"trigger {quote_ident(name)} on {table} in database '{dbname}' would fire on every row "
                              "loaded and change what the archive holds, and only the table's owner can switch it off "
                              "for the load: restore as its owner (or a superuser)")
        plan.triggers.append((table, name, mode))
    if clean:
        key = conn.execute(_KEYS_FROM_OUTSIDE, {"schemas": [t.schema for t in plan.tables],
                                               "names": [t.name for t in plan.tables]}).fetchone()
        if key is not None:
            conname, outside, table = key
            raise TargetError(
                f"foreign key {quote_ident(conname)} on {outside} in database '{dbname}' references {table}, and "
                f"{outside} is not in the archive: --clean cannot empty {table} without losing the rows that point "
                "at it; empty them yourself, or restore without --clean into empty tables")
    else:
        for table in plan.tables:
            if conn.execute(f"SELECT EXISTS (SELECT 1 FROM {plan.relation_sql(table)})").fetchone() == (True,):
                raise TargetError(
                    f"table {table} in database '{dbname}' already has rows: add --clean to empty the archive's "
                    "tables first (in the same transaction as the load)")
    return plan


def plan_rows_load(plan: RestorePlan, toc: Toc | None, manifest: dict[str, Any]
                   ) -> tuple[DataLoad, ScriptContents | None, set[int] | None]:
    """A data-only archive: its tables (all, or --table's, refused when the archive holds rows of
    their partitions that the target lacks) checked in the target. Returns the load, the plain
    file's contents (read once, here) and the archive entries to load (None: all)."""
    script: ScriptContents | None = None
    warning: str | None = None
    with connect(plan.target, plan.dbname) as conn:
        if toc is None:
            script = scan_script(plan.archive)
            tables, included = script.tables, None
        else:
            schemas = [row[0] for row in conn.execute("SELECT nspname FROM pg_namespace")]
            family = _descendants(conn, plan.tables) if plan.tables else {}
            entries = data_entries(toc, schemas, only=[*plan.tables, *(c for cs in family.values() for c in cs)])
            if plan.tables:
                entries = select_tables(entries, plan.tables, plan.archive, family)
                warning = _check_members(conn, toc, manifest, schemas, plan, family, [name for _, name in entries])
                # Their rows, and the values of the sequences they own (serial, identity: their ids
                # go on from the rows loaded). Another sequence's value (one tables share) goes with a
                # whole load only: set here it could go back under what the other tables have taken.
                owned = _owned_sequences(conn, [name for _, name in entries])
                namespaces = sorted({*schemas, *(name.schema for name in owned)}, key=len, reverse=True)
                included = {entry.dump_id for entry, _ in entries} | {
                    entry.dump_id for entry in toc.entries
                    if entry.desc == "SEQUENCE SET" and entry_name(entry, namespaces) in owned}
            else:
                included = None
            tables = [name for _, name in entries]
        load = plan_data_load(conn, tables, plan.dbname, clean=plan.clean)
        load.warnings += [warning] if warning else []
        return load, script, included


def _check_members(conn: psycopg.Connection, toc: Toc, manifest: dict[str, Any], schemas: list[str],
                   plan: RestorePlan, family: Mapping[QualifiedName, list[QualifiedName]],
                   loading: list[QualifiedName]) -> str | None:
    """unloaded_members, with the archive's tables read from its TOC and looked up in the target."""
    parents = manifest.get("parents")
    named = [name for pair in parents.items() for name in pair] if isinstance(parents, dict) else []
    namespaces = sorted({*schemas, *(parse_qualified_name(str(name)).schema for name in named)}, key=len, reverse=True)
    held = {name for name in (entry_name(entry, namespaces) for entry in toc.entries if entry.desc == "TABLE DATA")
            if name is not None}
    others = sorted(held - set(loading), key=str)
    rows = conn.execute(_TABLES, {"schemas": [t.schema for t in others], "names": [t.name for t in others]}).fetchall()
    present = set(loading) | {QualifiedName(schema, name) for schema, name, _ in rows}
    return unloaded_members(held, present, manifest, list(plan.tables), family, plan.dbname)


_OWNED_SEQUENCES = """
SELECT sn.nspname, s.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN unnest(%(schemas)s::text[], %(names)s::text[]) AS want(schema, name)
  ON want.schema = n.nspname AND want.name = c.relname
JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid
  AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' JOIN pg_namespace sn ON sn.oid = s.relnamespace
"""


def _owned_sequences(conn: psycopg.Connection, tables: list[QualifiedName]) -> set[QualifiedName]:
    """The sequences `tables` own in the target (serial and identity columns)."""
    rows = conn.execute(_OWNED_SEQUENCES, {"schemas": [t.schema for t in tables], "names": [t.name for t in tables]})
    return {QualifiedName(schema, name) for schema, name in rows.fetchall()}


def check_large_objects(plan: RestorePlan, load: DataLoad, found: ScriptContents) -> None:
    """The large objects the rows' script creates, checked against the target's (plan_large_objects)."""
    with connect(plan.target, plan.dbname) as conn:
        plan_large_objects(conn, load, found.large_objects, plan.dbname)


def materialized_views_note(conn: psycopg.Connection, dbname: str) -> str | None:
    """What the load left out of the target's materialized views, said (not done: a REFRESH can take
    long, and is the DBA's to run). A data-only archive holds none of their rows (pg_dump writes
    them as post-data REFRESHes): after a schema-only restore and this load they are still empty,
    and views filled before hold what they held before."""
    views = conn.execute("SELECT format('%I.%I', schemaname, matviewname), ispopulated FROM pg_matviews "
                         "ORDER BY 1").fetchall()
    if not views:
        return None
    named = [f"{name}{'' if populated else ' (not populated)'}" for name, populated in views[:5]]
    more = f" and {len(views) - 5} more" if len(views) > 5 else ""
    # Which of them read the tables loaded is not worked out: said as a list to look at, not as a to-do
    # (one made WITH NO DATA in the source, refreshed, would differ from it).
    return (f"a data-only archive holds no rows of materialized views: the {len(views)} in '{dbname}' hold what "
            f"they held before the load ({', '.join(named)}{more}); REFRESH MATERIALIZED VIEW those that read "
            "the tables loaded")


def refuse_create(archive: Path) -> None:
    raise UsageError(f"{archive} is a data-only archive (no table definitions): it cannot create a database; "
                     "restore it into one that has its tables, without --create")
