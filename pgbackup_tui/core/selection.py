"""What a selection of tables and schemas means on the server, looked up before anything runs.

Every name must exist (an error names the first missing one). A selected partitioned table
brings its partitions, a selected partition its ancestors (it cannot be created without them);
a selected schema means every object in it. Every other relation is left out of the dump
(`--exclude-table`), so pg_dump never reads it; the archive's TOC closure (toc_closure.py) then keeps the
selected objects and what they depend on (which `pg_dump -t` / `-n` would leave behind: an
extension in another schema, a type, a function). Foreign keys that point outside the selection
are left out too, with the reason, because they could not be created in an empty database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from .errors import SelectionError
from .exclusion import exclusion_patterns
from .identifiers import QualifiedName, is_system_schema, quote_ident

RELATION_KINDS = ("r", "p", "m", "v", "f")  # table, partitioned, matview, view, foreign table
PG_CLASS = 1259  # pg_class's own OID: the class of relation entries in pg_depend and the TOC
CAME_ALONG_NAMED = 10  # a table of 200 partitions names ten of them, and counts the rest

_LOOKUP = """
SELECT n.nspname, c.relname, c.oid::int8, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN unnest(%(schemas)s::text[], %(names)s::text[]) AS want(schema, name)
  ON want.schema = n.nspname AND want.name = c.relname
WHERE c.relkind = ANY(%(kinds)s)
"""

# The relations of `oids` with their partitions and children and their parents, at any depth; and
# which of them are ancestors by INHERITS only (not also descendants): such a parent table comes
# along for its children's sake (they cannot be created without it), its own rows do not (pg_dump
# -t of the child would not write them either; a partitioned parent has none).
_FAMILY = """
WITH RECURSIVE down(oid) AS (
    SELECT unnest(%(oids)s::oid[])
    UNION SELECT i.inhrelid FROM pg_inherits i JOIN down ON i.inhparent = down.oid
), up(oid) AS (
    SELECT unnest(%(oids)s::oid[])
    UNION SELECT i.inhparent FROM pg_inherits i JOIN up ON i.inhrelid = up.oid
)
SELECT f.oid::int8, n.nspname, c.relname,
       c.relkind IN ('r', 'f') AND f.oid NOT IN (SELECT oid FROM down) AS ancestor_only
FROM (SELECT oid FROM down UNION SELECT oid FROM up) f
JOIN pg_class c ON c.oid = f.oid JOIN pg_namespace n ON n.oid = c.relnamespace
"""

# Every relation pg_dump's --exclude-table could match (tables, sequences, views, matviews, foreign
# and partitioned tables) outside the system schemas, in one scan, with whether it is an extension's
# (its extension brings it) and, for a sequence, the table that owns it (serial, identity, OWNED BY).
_RELATIONS = """
SELECT n.nspname, c.relname, c.oid::int8, c.relkind::text,
       EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
               AND d.objid = c.oid AND d.deptype = 'e'),
       owner.refobjid::int8
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_depend owner ON c.relkind = 'S' AND owner.classid = 'pg_class'::regclass AND owner.objid = c.oid
     AND owner.objsubid = 0 AND owner.refclassid = 'pg_class'::regclass AND owner.deptype IN ('a', 'i')
WHERE c.relkind IN ('r', 'S', 'v', 'm', 'f', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%%'
"""

_OUTSIDE_FKS = """
SELECT con.oid::int8, con.conname, con.conrelid::regclass::text, con.confrelid::regclass::text
FROM pg_constraint con
WHERE con.contype = 'f' AND con.conrelid = ANY(%(oids)s::oid[]) AND NOT con.confrelid = ANY(%(oids)s::oid[])
"""

# One step of the walk from the selected relations to everything they need, in any schema: what
# each object depends on ('n' normal, 'i' internal: a view's rule on the tables it reads, a
# function on its types, a table's row type on the table), and the parts of a relation that
# carry such dependencies (its rewrite rule, column defaults, CHECK constraints, triggers,
# policies; not foreign keys, which selection leaves out when they point outside). Built-in
# objects (OID below FirstNormalObjectId) and extension members (their extension brings them)
# end the walk.
_NEEDS_STEP = """
WITH o(classid, objid) AS (SELECT * FROM unnest(%(classes)s::oid[], %(objs)s::oid[]))
SELECT d.refclassid::int8, d.refobjid::int8, o.classid::int8, o.objid::int8
FROM o JOIN pg_depend d ON d.classid = o.classid AND d.objid = o.objid
WHERE d.deptype IN ('n', 'i') AND d.refobjid >= 16384
  AND d.refclassid <> 'pg_namespace'::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = d.refclassid AND e.objid = d.refobjid AND e.deptype = 'e')
UNION
SELECT d.classid::int8, d.objid::int8, o.classid::int8, o.objid::int8
FROM o JOIN pg_depend d ON d.refclassid = o.classid AND d.refobjid = o.objid
WHERE o.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  AND (d.classid IN ('pg_rewrite'::regclass, 'pg_attrdef'::regclass, 'pg_trigger'::regclass, 'pg_policy'::regclass)
       OR (d.classid = 'pg_constraint'::regclass
           AND (SELECT contype FROM pg_constraint WHERE oid = d.objid) IN ('c', 't', 'x')))
"""

_RELKINDS = "SELECT oid::int8, relkind::text FROM pg_class WHERE oid = ANY(%(oids)s::oid[])"

_SCHEMAS = "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%(names)s::text[])"

# Every object pg_dump writes a TOC entry for that lives in one of the schemas (not extension members).
_SCHEMA_OBJECTS = """
WITH s AS (SELECT oid FROM pg_namespace WHERE nspname = ANY(%(names)s::text[])),
objects(classid, objid) AS (
    SELECT 'pg_namespace'::regclass, oid FROM s
    UNION ALL SELECT 'pg_class'::regclass, oid FROM pg_class WHERE relnamespace IN (SELECT oid FROM s)
    UNION ALL SELECT 'pg_type'::regclass, oid FROM pg_type WHERE typnamespace IN (SELECT oid FROM s)
    UNION ALL SELECT 'pg_proc'::regclass, oid FROM pg_proc WHERE pronamespace IN (SELECT oid FROM s)
    UNION ALL SELECT 'pg_collation'::regclass, oid FROM pg_collation WHERE collnamespace IN (SELECT oid FROM s)
    UNION ALL SELECT 'pg_operator'::regclass, oid FROM pg_operator WHERE oprnamespace IN (SELECT oid FROM s)
    UNION ALL SELECT 'pg_opclass'::regclass, oid FROM pg_opclass WHERE opcnamespace IN (SELECT oid FROM s)
    UNION ALL SELECT 'pg_opfamily'::regclass, oid FROM pg_opfamily WHERE opfnamespace IN (SELECT oid FROM s)
    UNION ALL SELECT 'pg_conversion'::regclass, oid FROM pg_conversion WHERE connamespace IN (SELECT oid FROM s)
    UNION ALL SELECT 'pg_ts_config'::regclass, oid FROM pg_ts_config WHERE cfgnamespace IN (SELECT oid FROM s)
    UNION ALL SELECT 'pg_ts_dict'::regclass, oid FROM pg_ts_dict WHERE dictnamespace IN (SELECT oid FROM s)
    UNION ALL SELECT 'pg_statistic_ext'::regclass, oid FROM pg_statistic_ext WHERE stxnamespace IN (SELECT oid FROM s)
)
SELECT o.classid::oid::int8, o.objid::int8,
       CASE WHEN o.classid = 'pg_class'::regclass THEN (SELECT relkind FROM pg_class WHERE oid = o.objid) END
FROM objects o
WHERE NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = o.classid AND d.objid = o.objid AND d.deptype = 'e')
"""


@dataclass(frozen=True)
class ResolvedSelection:
    """seed_objects: (catalog class OID, object OID) of everything selected, for the TOC closure;
    relation_oids: the relations the dump must read; left_out: every other relation (with the
    sequences those own); exclude: the pg_dump --exclude-table patterns that leave exactly those
    out (exclusion.py)."""

    seed_objects: frozenset[tuple[int, int]]
    relation_oids: frozenset[int]
    left_out: tuple[QualifiedName, ...]
    drop_constraints: dict[int, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    exclude_data: tuple[QualifiedName, ...] = ()  # tables whose definition comes along, not their rows
    exclude_data_oids: frozenset[int] = frozenset()  # the same, by OID (what the dump copies no rows of)

    @property
    def copied_oids(self) -> frozenset[int]:
        """The relations whose rows the dump copies: progress counts these, and only these say large objects."""
        return self.relation_oids - self.exclude_data_oids


_KIND_OF = """
SELECT CASE c.relkind WHEN 'S' THEN 'a sequence' WHEN 'i' THEN 'an index' WHEN 'I' THEN 'a partitioned index'
                      WHEN 'c' THEN 'a composite type' WHEN 't' THEN 'a TOAST table' ELSE 'a relation' END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = %(name)s
"""


# What a --table names: a dump's takes these; csv export's, tables only (it refuses a view, by its kind).
SELECTION_TAKES = "tables, views and materialized views"
TABLES_ONLY = "tables (partitioned ones too)"
_SINGULAR = {SELECTION_TAKES: "table, view or materialized view", TABLES_ONLY: "table"}


def lookup_relations(conn: psycopg.Connection, names: list[QualifiedName]) -> dict[QualifiedName, tuple[int, str]]:
    """Exact lookup: name -> (oid, relkind) for the names that exist."""
    if not names:
        return {}
    rows = conn.execute(_LOOKUP, {
        "schemas": [n.schema for n in names], "names": [n.name for n in names], "kinds": list(RELATION_KINDS),
    }).fetchall()
    return {QualifiedName(schema, name): (oid, kind) for schema, name, oid, kind in rows}


def require_relations(conn: psycopg.Connection, names: list[QualifiedName], dbname: str,
                      option: str, takes: str = SELECTION_TAKES) -> dict[QualifiedName, tuple[int, str]]:
    for name in names:
        # It exists, but the dump would hold none of it: a backup listed as holding pg_catalog.pg_class
        # that restores nothing of it (and warned of the catalog's oid columns as large objects).
        if is_system_schema(name.schema):
            raise SelectionError(f"{option} {name}: {quote_ident(name.schema)} is a system schema, which pg_dump "
                                 "never dumps (the server makes it); name tables of your own")
    found = lookup_relations(conn, names)
    for name in names:
        if name not in found:
            kind = conn.execute(_KIND_OF, {"schema": name.schema, "name": name.name}).fetchone()
            if kind is not None:  # there, but not something a selection takes (a sequence, an index...)
                raise SelectionError(f"{option} {name}: is {kind[0]} in database '{dbname}'; {option} takes {takes}")
            raise SelectionError(
                f"{option} {name}: no such {_SINGULAR.get(takes, 'relation')} in database '{dbname}' "
                "(names are exact: quote mixed case or special characters, e.g. public.\"Mixed Case\")"
            )
    return found


def require_schemas(conn: psycopg.Connection, schemas: list[str], dbname: str) -> None:
    if not schemas:
        return
    for schema in schemas:
        if is_system_schema(schema):
            raise SelectionError(f"--schema {quote_ident(schema)}: a system schema, which pg_dump never dumps "
                                 "(the server makes it); name a schema of your own")
    present = {row[0] for row in conn.execute(_SCHEMAS, {"names": schemas})}
    for schema in schemas:
        if schema not in present:
            alike = conn.execute("SELECT nspname FROM pg_namespace WHERE lower(nspname) = lower(%s) LIMIT 1",
                                 (schema,)).fetchone()
            hint = f" (there is {quote_ident(alike[0])}: names are exact, quote mixed case)" if alike else ""
            raise SelectionError(f"--schema {schema}: no such schema in database '{dbname}'{hint}")


def resolve_selection(
    conn: psycopg.Connection,
    tables: list[QualifiedName],
    dbname: str,
    schemas: list[str] | None = None,
    exclude_tables: list[QualifiedName] | None = None,
    takes: str = SELECTION_TAKES,
) -> ResolvedSelection:
    """Check the selection exists and work out what to dump and what to leave out. `takes`: what
    --table names, as a refusal says it."""
    schemas = schemas or []
    found = require_relations(conn, tables, dbname, "--table", takes)
    require_schemas(conn, schemas, dbname)
    excluded = {oid for oid, _ in require_relations(conn, exclude_tables or [], dbname, "--exclude-table").values()}

    selected = {oid for oid, _ in found.values()}
    seeds: set[tuple[int, int]] = set()
    if schemas:
        for class_oid, obj_oid, relkind in conn.execute(_SCHEMA_OBJECTS, {"names": schemas}):
            if class_oid == PG_CLASS and obj_oid in excluded:
                continue
            seeds.add((class_oid, obj_oid))
            if class_oid == PG_CLASS and relkind in RELATION_KINDS:
                selected.add(obj_oid)
    rows = conn.execute(_FAMILY, {"oids": sorted(selected)}).fetchall() if selected else []
    family = {row[0] for row in rows} - excluded
    ancestors = {oid: QualifiedName(schema, name) for oid, schema, name, ancestor_only in rows if ancestor_only}
    notes = []
    extra = family - selected - set(ancestors)
    if extra:
        # Named (as restore --table names them), not counted: a selected partition brings its
        # partitioned parent, and "1 partition(s) ... come along" did not say it was public.meas.
        named = sorted(str(QualifiedName(schema, name)) for oid, schema, name, _ in rows if oid in extra)
        shown = ", ".join(named[:CAME_ALONG_NAMED]) + (
            f" and {len(named) - CAME_ALONG_NAMED} more" if len(named) > CAME_ALONG_NAMED else "")
        notes.append(f"came along: {shown} (partitions, child tables or partitioned parents of the selected tables)")
    needed, needed_sequences = needed_relations(conn, family) if family else ({}, set())
    data_less = {oid: name for oid, name in ancestors.items() if oid in family and oid not in needed}
    for name in data_less.values():
        notes.append(f"added {name}: the parent of a selected table (INHERITS), its definition without its own rows")
    if needed:
        names = describe_objects(conn, [(PG_CLASS, oid) for oid in {*needed, *needed.values()}])
        for oid, needed_by in sorted(needed.items()):
            notes.append(f"added {names.get((PG_CLASS, oid), oid)}: "
                         f"needed by {names.get((PG_CLASS, needed_by), needed_by)}")
        blocked = set(needed) & excluded
        if blocked:
            oid = min(blocked)
            raise SelectionError(
                f"--exclude-table {names.get((PG_CLASS, oid), oid)}: "
                f"needed by {names.get((PG_CLASS, needed[oid]), needed[oid])}, "
                "so the selection would not restore without it; "
                "drop that --exclude-table or the selection that needs it")
        more = {row[0] for row in conn.execute(_FAMILY, {"oids": sorted(needed)})}
        unwalked = more - family - set(needed)  # partitions and parents of what was added
        family |= more
        if unwalked:
            needed_sequences |= needed_relations(conn, unwalked)[1]
    seeds.update((PG_CLASS, oid) for oid in family)
    # A sequence of a selected schema is a seed of its own: kept, as the ones the tables take from.
    others, kept = left_out_and_kept(conn, family, needed_sequences | {oid for c, oid in seeds if c == PG_CLASS})
    drops: dict[int, str] = {}
    for oid, conname, table, referenced in conn.execute(_OUTSIDE_FKS, {"oids": sorted(family)}):
        drops[oid] = f"foreign key {quote_ident(conname)} on {table} references {referenced}, which is not selected"
    patterns = tuple(exclusion_patterns(others, kept))
    return ResolvedSelection(frozenset(seeds), frozenset(family), others, drops, tuple(notes), patterns,
                             tuple(data_less.values()), frozenset(data_less))


def left_out_and_kept(conn: psycopg.Connection, family: set[int],
                      needed_sequences: set[int]) -> tuple[tuple[QualifiedName, ...], list[QualifiedName]]:
    """The relations the selection leaves out (sorted), and those in their schemas that pg_dump -T
    could match and that must stay (the selected ones, sequences, extension members...).

    A sequence owned by a table left out is left out with it (pg_dump dumps an owned sequence
    whenever it dumps its table, -T or not), unless something kept needs it (a default's nextval):
    otherwise every serial or identity column of the database would be one more name to keep out
    of the patterns, and their count would follow the database again, not the selection. So is a
    sequence of no table's that nothing kept takes from: the archive's closure would leave it out
    anyway, and pg_dump reads every sequence it keeps (`SELECT last_value`), which failed the dump
    of a role that owns the selected tables but may not read another schema's sequence."""
    leaving: list[tuple[str, str]] = []
    staying: list[tuple[str, str]] = []
    for schema, name, oid, kind, extension_member, owner in conn.execute(_RELATIONS):
        if extension_member:
            staying.append((schema, name))
        elif kind in RELATION_KINDS:
            (staying if oid in family else leaving).append((schema, name))
        elif (owner is None or owner not in family) and oid not in needed_sequences:
            leaving.append((schema, name))
        else:
            staying.append((schema, name))
    schemas = {schema for schema, _ in leaving}
    leaving.sort()  # as tuples: 10,000 QualifiedName dataclasses compare ten times slower
    return (tuple(QualifiedName(schema, name) for schema, name in leaving),
            [QualifiedName(schema, name) for schema, name in staying if schema in schemas])


def needed_relations(conn: psycopg.Connection, relations: set[int]) -> tuple[dict[int, int], set[int]]:
    """Relations outside `relations` that they need, in any schema, through views, functions,
    types, defaults…: ({needed relation OID: the selected relation OID that needs it}, the OIDs of
    the sequences they need, e.g. through a default's nextval)."""
    origin: dict[tuple[int, int], int] = {(PG_CLASS, oid): oid for oid in relations}
    frontier = list(origin)
    for _ in range(100):  # dependency chains are short; the bound only guards against a cycle we missed
        if not frontier:
            break
        rows = conn.execute(_NEEDS_STEP, {"classes": [c for c, _ in frontier], "objs": [o for _, o in frontier]})
        frontier = []
        for class_oid, obj_oid, from_class, from_obj in rows:
            key = (class_oid, obj_oid)
            if key not in origin:
                origin[key] = origin[(from_class, from_obj)]
                frontier.append(key)
    candidates = [obj for (class_oid, obj), _ in origin.items() if class_oid == PG_CLASS and obj not in relations]
    if not candidates:
        return {}, set()
    kinds: dict[int, str] = dict(conn.execute(_RELKINDS, {"oids": candidates}).fetchall())
    needed = {oid: origin[(PG_CLASS, oid)] for oid in candidates if kinds.get(oid) in RELATION_KINDS}
    return needed, {oid for oid in candidates if kinds.get(oid) == "S"}


def describe_objects(conn: psycopg.Connection, objects: list[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """(class OID, object OID) -> "type \"Sales & Ops\".order_status" using the server's own names."""
    if not objects:
        return {}
    rows = conn.execute(
        """SELECT o.classid::int8, o.objid::int8, i.type || ' ' || i.identity
           FROM unnest(%(classes)s::oid[], %(objs)s::oid[]) AS o(classid, objid),
                LATERAL pg_identify_object(o.classid, o.objid, 0) AS i""",
        {"classes": [c for c, _ in objects], "objs": [o for _, o in objects]},
    ).fetchall()
    return {(c, o): text for c, o, text in rows if text}
