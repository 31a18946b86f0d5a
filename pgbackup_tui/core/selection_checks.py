"""What a dump that leaves relations out is refused or warned about, looked up before it runs.

A whole-database dump with --exclude-table is refused when something it keeps needs a relation it
leaves out (a view reading it, a foreign key onto it, a function or a column of its row type, a
kept partition of it): pg_dump would write the dependent object anyway and the backup would not
restore. A selection of tables is warned that the large objects its rows may point at are left
out. What a selection itself means (its relations, what they need, what is left out) is
selection.py's.
"""

from __future__ import annotations

import psycopg

from .errors import SelectionError
from .identifiers import QualifiedName
from .selection import PG_CLASS, describe_objects

# What depends on the relations a whole-database dump leaves out, one step: a view's rule reading
# one, a column default, trigger, policy or constraint (a foreign key) naming one, a function or a
# column of one's row type (or its array). Each with the relation it belongs to, if any: what is
# part of a relation also left out goes with it. Extension members come with their extension.
_NEEDING_LEFT_OUT = """
WITH gone(rel) AS (SELECT unnest(%(oids)s::oid[])),
targets(classid, objid, rel) AS (
    SELECT 'pg_class'::regclass, rel, rel FROM gone
    UNION ALL SELECT 'pg_type'::regclass, t.oid, t.typrelid FROM pg_type t JOIN gone ON t.typrelid = gone.rel
    UNION ALL SELECT 'pg_type'::regclass, a.oid, t.typrelid
              FROM pg_type t JOIN gone ON t.typrelid = gone.rel JOIN pg_type a ON a.typelem = t.oid
),
needing AS (
    SELECT t.rel, d.classid, d.objid,
           CASE d.classid
               WHEN 'pg_rewrite'::regclass THEN (SELECT ev_class FROM pg_rewrite WHERE oid = d.objid)
               WHEN 'pg_attrdef'::regclass THEN (SELECT adrelid FROM pg_attrdef WHERE oid = d.objid)
               WHEN 'pg_trigger'::regclass THEN (SELECT tgrelid FROM pg_trigger WHERE oid = d.objid)
               WHEN 'pg_policy'::regclass THEN (SELECT polrelid FROM pg_policy WHERE oid = d.objid)
               WHEN 'pg_constraint'::regclass THEN (SELECT NULLIF(conrelid, 0) FROM pg_constraint WHERE oid = d.objid)
               WHEN 'pg_class'::regclass THEN d.objid
           END AS owner
    FROM targets t JOIN pg_depend d ON d.refclassid = t.classid AND d.refobjid = t.objid
    WHERE d.deptype = 'n'
      AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = d.classid AND e.objid = d.objid AND e.deptype = 'e')
)
SELECT n.rel::int8, n.classid::int8, n.objid::int8, n.owner::int8,
       (SELECT format('%%I.%%I', s.nspname, c.relname) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
        WHERE c.oid = n.owner)
FROM needing n
WHERE (n.owner IS NULL OR NOT n.owner IN (SELECT rel FROM gone))
  AND NOT EXISTS (SELECT 1 FROM pg_class oc JOIN pg_namespace os ON os.oid = oc.relnamespace
                  WHERE oc.oid = n.owner AND os.nspname LIKE 'pg\\_temp\\_%%')  -- pg_dump never writes those
ORDER BY 1, 2, 3
LIMIT 1
"""

# Partitions and inheritance children of the left-out relations that are kept: pg_dump writes
# them as children of a table the backup lacks.
_KEPT_CHILDREN = """
SELECT i.inhparent::int8, format('%%I.%%I', n.nspname, c.relname)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.inhparent = ANY(%(oids)s::oid[]) AND NOT i.inhrelid = ANY(%(oids)s::oid[])
ORDER BY 1, 2
LIMIT 1
"""

_DESCRIBED_AS_THEIR_RELATION = ("pg_rewrite", "pg_attrdef", "pg_trigger", "pg_policy")


def check_exclusions(conn: psycopg.Connection, left_out: dict[QualifiedName, tuple[int, str]],
                     *, data_only: bool) -> None:
    """Refuse a whole-database dump whose --exclude-table leaves out a relation that something it
    keeps needs (a view reading it, a foreign key onto it, a function or a column of its row type):
    pg_dump writes the dependent object anyway, and the backup would not restore. A data-only dump
    writes no definitions, so nothing in it can miss one."""
    if not left_out or data_only:
        return
    name_of = {oid: str(name) for name, (oid, _) in left_out.items()}
    child = conn.execute(_KEPT_CHILDREN, {"oids": sorted(name_of)}).fetchone()
    if child is not None:
        parent, kept = child
        raise SelectionError(
            f"--exclude-table {name_of[parent]}: its partition (or child table) {kept} is kept, and would not "
            f"restore without it; leave {kept} out too (--exclude-table {kept}) or keep {name_of[parent]}")
    row = conn.execute(_NEEDING_LEFT_OUT, {"oids": sorted(name_of)}).fetchone()
    if row is None:
        return
    rel, class_oid, obj_oid, owner, owner_name = row
    catalog = conn.execute("SELECT %s::oid::regclass::text", (class_oid,)).fetchone()
    if owner is not None and catalog is not None and catalog[0] in _DESCRIBED_AS_THEIR_RELATION:
        class_oid, obj_oid = PG_CLASS, owner
    what = describe_objects(conn, [(class_oid, obj_oid)]).get((class_oid, obj_oid), f"object {obj_oid}")
    hint = (f"leave {owner_name} out too (--exclude-table {owner_name}) or keep {name_of[rel]}" if owner_name
            else f"keep {name_of[rel]}")
    raise SelectionError(f"--exclude-table {name_of[rel]}: {what} needs it, so the backup would not restore; {hint}")


# Columns of the selected tables that hold large object OIDs (oid, or the lo extension's domain),
# in a database that has large objects.
_LARGE_OBJECT_COLUMNS = """
SELECT format('%%I.%%I.%%I', n.nspname, c.relname, a.attname)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = ANY(%(oids)s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
  AND (t.oid = 'oid'::regtype OR t.typname = 'lo')
  AND EXISTS (SELECT FROM pg_largeobject_metadata)
ORDER BY 1
"""


def large_objects_left_out(conn: psycopg.Connection, relation_oids: frozenset[int]) -> str | None:
    """A warning when the selected tables point at large objects: a selection leaves them out
    (pg_dump writes large objects for a whole database only, as with pg_dump -t), so a restore of
    the backup has rows pointing at none."""
    if not relation_oids:
        return None
    columns = [row[0] for row in conn.execute(_LARGE_OBJECT_COLUMNS, {"oids": sorted(relation_oids)})]
    if not columns:
        return None
    shown = ", ".join(columns[:3]) + (f" and {len(columns) - 3} more" if len(columns) > 3 else "")
    return (f"large objects are left out of a selection (as with pg_dump -t), and {shown} may point at them: "
            "a restore of this backup would have rows pointing at none; back up the whole database to keep them")
