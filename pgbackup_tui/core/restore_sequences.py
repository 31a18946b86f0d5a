"""The values of the sequences a table-level --clean's tables take from but does not recreate.

A table-level --clean (restore_clean.py) recreates the tables and what hangs off them: an owned
(serial, identity) sequence is dropped with its table and made again from the archive, with the
archive's value. A sequence the tables only take their defaults from (one sequence behind the ids
of two tables, a serial of another table) is in the target already: it is used, not recreated,
and pg_restore's SEQUENCE SET for it hangs off it, so nothing set it. It kept the target's value,
and the restored rows' ids could be handed out again.

Its value comes from the archive then, set in the restore's one transaction by `ALTER SEQUENCE …
RESTART`, which a rollback undoes (a `setval` is never undone: a restore that failed after it
would have left the sequence moved). A sequence that a table outside the restore takes from too
(or is owned by) is only moved forward: set back to the archive's value, it would hand that
table's own ids out again. The archive's values are read from pg_restore's SQL for those
SEQUENCE SET entries (a file of a few lines), kept apart from the restore's script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from .identifiers import QualifiedName
from .toc import Toc, entry_name, schema_names, write_list

# The tables (and views: a view's column may have a default) that take a value from the sequence
# `seq` by a column default, or that own it; those of `oids` (the relations the --clean drops) aside.
_OTHER_USERS = """
SELECT DISTINCT n.nspname, c.relname
FROM (SELECT ad.adrelid AS rel FROM pg_depend d JOIN pg_attrdef ad ON ad.oid = d.objid
      WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = %(seq)s
      UNION
      SELECT d.refobjid FROM pg_depend d
      WHERE d.classid = 'pg_class'::regclass AND d.objid = %(seq)s AND d.refclassid = 'pg_class'::regclass
        AND d.deptype IN ('a', 'i')) AS users
JOIN pg_class c ON c.oid = users.rel JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT c.oid = ANY(%(oids)s::oid[])
ORDER BY 1, 2
"""

# pg_restore's SQL for a SEQUENCE SET entry: the sequence's name as a literal, its value, is_called.
_SETVAL = re.compile(r"^SELECT pg_catalog\.setval\(('(?:[^']|'')*'), (-?\d+), (true|false)\);$", re.MULTILINE)

# Run in the restore's transaction for each sequence. The next value the archive gives is put in
# place by RESTART (transactional); one the target's is already past is left, for a sequence that
# tables outside the restore take from. A sequence used up in the archive (its next value past its
# bounds: no RESTART says that) gets the archive's setval as it is: it is run last, after the grants.
_SET_ONE = """DO $pgbackup_sequence$
DECLARE
    seq regclass := {literal};
    inc bigint;
    lo bigint;
    hi bigint;
    last bigint;
    now_called boolean;
    wanted numeric;
    now_next numeric;
BEGIN
    SELECT seqincrement, seqmin, seqmax INTO inc, lo, hi FROM pg_catalog.pg_sequence WHERE seqrelid = seq;
    wanted := CASE WHEN {called} THEN {value}::numeric + inc ELSE {value} END;
    IF {forward_only} THEN
        EXECUTE format('SELECT last_value, is_called FROM %s', seq) INTO last, now_called;
        now_next := CASE WHEN now_called THEN last::numeric + inc ELSE last END;
        IF (inc > 0 AND now_next >= wanted) OR (inc < 0 AND now_next <= wanted) THEN
            RETURN;
        END IF;
    END IF;
    IF wanted BETWEEN lo AND hi THEN
        EXECUTE format('ALTER SEQUENCE %s RESTART WITH %s', seq, wanted);
    ELSE
        PERFORM pg_catalog.setval(seq, {value}, {called});
    END IF;
END
$pgbackup_sequence$;
"""


@dataclass
class SequenceValues:
    """The sequences a table-level --clean sets from the archive (see the module's doc)."""

    entries: set[int] = field(default_factory=set)  # their SEQUENCE SET entries' dump ids
    names: list[QualifiedName] = field(default_factory=list)
    # For each sequence that tables outside the restore use too: those tables (moved forward only).
    shared_with: dict[QualifiedName, list[QualifiedName]] = field(default_factory=dict)

    def describe(self) -> list[str]:
        lines = []
        for name in self.names:
            others = self.shared_with.get(name)
            if others:
                lines.append(f"set sequence {name} to the archive's value, forward only: "
                             f"{', '.join(str(o) for o in others)} takes from it too and is not restored "
                             "(a sequence further on already is left as it is)")
            else:
                lines.append(f"set sequence {name} to the archive's value (a restored table takes from it)")
        return lines

    def list_apart(self, toc: Toc, workdir: Path) -> tuple[Path, Path]:
        """The (list, script) pair for pg_restore to write their SEQUENCE SET entries' SQL, apart
        from the restore's script: read back by sql(), never run as it is."""
        listed, script = workdir / "sequences.list", workdir / "sequences-archive.sql"
        write_list(toc, self.entries, listed)
        return listed, script

    def sql(self, restore_script: str) -> str:
        """The statements that set the sequences, from pg_restore's SQL of their SEQUENCE SET
        entries (`restore_script`). Which ones go forward only is asked of the server by name (the
        literal pg_restore writes quotes a name its own way)."""
        shared = ", ".join(_literal(name.sql) for name in self.shared_with)
        forward_only = f"seq = ANY(ARRAY[{shared}]::regclass[])" if shared else "false"
        return "".join(_SET_ONE.format(literal=literal, value=value, called=called, forward_only=forward_only)
                       for literal, value, called in _SETVAL.findall(restore_script))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def plan_sequence_values(conn: psycopg.Connection, toc: Toc, restored: set[int],
                         dropped_oids: list[int]) -> SequenceValues:
    """The sequences that the entries `restored` (a table-level --clean's, without what the target
    provides) take from and do not recreate, with the tables outside the restore that use them too."""
    by_id = toc.by_id()
    sequences = {e.dump_id: e for e in toc.entries if e.desc == "SEQUENCE" and e.dump_id not in restored}
    used = {dep for e in toc.entries if e.dump_id in restored for dep in e.depends_on if dep in sequences}
    values = SequenceValues()
    namespaces = schema_names(toc)
    for entry in toc.entries:  # archive order: pg_restore writes them in it too
        if entry.desc != "SEQUENCE SET":
            continue
        owner = next((d for d in entry.depends_on if d in used), None)
        if owner is None or (name := entry_name(by_id[owner], namespaces)) is None:
            continue
        values.entries.add(entry.dump_id)
        values.names.append(name)
        row = conn.execute("SELECT to_regclass(%s)::oid::int8", (name.sql,)).fetchone()
        if row is None or row[0] is None:
            continue  # not in the target: the restore fails at the table that takes from it, named
        others = [QualifiedName(schema, relname) for schema, relname in
                  conn.execute(_OTHER_USERS, {"seq": row[0], "oids": dropped_oids})]
        if others:
            values.shared_with[name] = others
    return values
