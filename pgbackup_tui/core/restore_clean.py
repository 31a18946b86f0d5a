"""What a `--clean` restore drops and recreates, worked out before anything is touched.

Two kinds of --clean, both all-or-nothing:

- **A whole database** (a whole-database archive, no --table): the archive is restored into a new
  database beside the target, and only when that succeeded are the names swapped in one
  transaction (`ALTER DATABASE … RENAME` twice). The old database is dropped afterwards, or kept
  under its new name when asked. Until the swap the target is untouched; a failure or a cancel
  drops the new database. Nothing is ever dropped object by object, so partitions' inherited
  constraints and views that depend on tables cannot get in the way.
- **Some tables** (--table, or an archive that holds a selection): one transaction that drops
  exactly the relations the restore recreates, then recreates them. Relations in the target that
  depend on them (views, materialized views: recursively) are dropped and recreated from the
  archive too, and foreign keys of other tables that point at them are dropped and added again;
  if the archive lacks one of them, the restore is refused before it starts (it would be lost).
  Everything else the tables need (schemas, types, functions, other tables) must already be in
  the target: it is used, not recreated; a sequence among it gets the archive's value
  (restore_sequences.py).

`describe()` is what `--dry-run` and the TUI's dialog show before the user confirms.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from .errors import TargetError
from .identifiers import QualifiedName, always_quote, quote_ident
from .restore_sequences import SequenceValues
from .toc import (
    ATTACHED_DESCS,
    METADATA_DESCS,
    PREAMBLE_DESCS,
    SELECTABLE_DESCS,
    Toc,
    TocEntry,
    schema_names,
    entry_name,
    entry_is_named,
    write_list,
)

_RELATIONS = """
SELECT n.nspname, c.relname, c.oid::int8, c.relkind::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN unnest(%(schemas)s::text[], %(names)s::text[]) AS want(schema, name)
  ON want.schema = n.nspname AND want.name = c.relname
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""

# The relations of `oids`, their partitions / inheritance children, and every view or
# materialized view that reads any of them (through its rewrite rule), at any depth.
_DEPENDENTS = """
WITH RECURSIVE family(oid) AS (
    SELECT unnest(%(oids)s::oid[])
    UNION SELECT i.inhrelid FROM pg_inherits i JOIN family f ON i.inhparent = f.oid
), readers(oid, depth) AS (
    SELECT oid, 0 FROM family
    UNION
    SELECT r.ev_class, rd.depth + 1
    FROM readers rd
    JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = rd.oid
                    AND d.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite r ON r.oid = d.objid
    WHERE r.ev_class <> rd.oid AND rd.depth < 100
)
SELECT n.nspname, c.relname, c.oid::int8, c.relkind::text, max(rd.depth),
       (SELECT array_agg(i.inhparent::int8 ORDER BY i.inhseqno) FROM pg_inherits i WHERE i.inhrelid = c.oid),
       c.relispartition
FROM readers rd JOIN pg_class c ON c.oid = rd.oid JOIN pg_namespace n ON n.oid = c.relnamespace
GROUP BY n.nspname, c.relname, c.oid, c.relkind, c.relispartition
"""

# Foreign keys of other tables that point at the relations to be dropped (the top constraint
# only: a foreign key on a partitioned table has copies on each partition).
_FOREIGN_KEYS_IN = """
SELECT n.nspname, c.relname, con.conname
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE con.contype = 'f' AND con.conparentid = 0
  AND con.confrelid = ANY(%(oids)s::oid[]) AND NOT con.conrelid = ANY(%(oids)s::oid[])
"""

# Sequences owned by the relations to be dropped (serial, identity: DROP TABLE takes them along)
# that a column default of another relation takes its values from.
_OWNED_SEQUENCES_USED_ELSEWHERE = """
SELECT sn.nspname, s.relname, on_.nspname, o.relname, un.nspname, u.relname
FROM pg_depend own JOIN pg_class s ON s.oid = own.objid AND s.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_class o ON o.oid = own.refobjid JOIN pg_namespace on_ ON on_.oid = o.relnamespace
JOIN pg_depend used ON used.classid = 'pg_attrdef'::regclass AND used.refclassid = 'pg_class'::regclass
                   AND used.refobjid = s.oid
JOIN pg_attrdef ad ON ad.oid = used.objid
JOIN pg_class u ON u.oid = ad.adrelid JOIN pg_namespace un ON un.oid = u.relnamespace
WHERE own.classid = 'pg_class'::regclass AND own.refclassid = 'pg_class'::regclass AND own.deptype IN ('a', 'i')
  AND own.refobjid = ANY(%(oids)s::oid[]) AND NOT ad.adrelid = ANY(%(oids)s::oid[])
ORDER BY 1, 2, 5, 6
"""

_KIND_WORD = {"r": "TABLE", "p": "TABLE", "f": "FOREIGN TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW"}


@dataclass(frozen=True)
class TargetRelation:
    name: QualifiedName
    oid: int
    kind: str
    depth: int = 0  # 0: restored itself; n: reads a restored relation through n views
    parent_oids: tuple[int, ...] = ()  # by INHERITS, in order (a partition has one: its partitioned table)
    is_partition: bool = False  # else a child by INHERITS, if it has a parent


@dataclass
class TableClean:
    """The drops and the extra archive entries of a table-level --clean."""

    drops: list[TargetRelation] = field(default_factory=list)
    foreign_keys: list[tuple[QualifiedName, str]] = field(default_factory=list)  # (table, constraint)
    recreate: set[int] = field(default_factory=set)  # dump ids of relations restored, views included
    extra_entries: set[int] = field(default_factory=set)  # FK CONSTRAINT entries of other tables
    # The sequences the recreated relations take from without recreating them: set from the archive.
    sequences: SequenceValues = field(default_factory=SequenceValues)
    # Names are str from a UTF8 session, or bytes as surrogates from a SQL_ASCII database: the
    # drops file says which, so psql sends them as they were read.
    client_encoding: str = "UTF8"

    def drop_sql(self) -> str:
        """The statements that run first, inside the restore's one transaction. Without CASCADE:
        anything else that depends on these relations makes the drop, and so the restore, fail."""
        lines = [f"SET client_encoding = '{self.client_encoding}';"]
        lines += [f"ALTER TABLE ONLY {table.sql} DROP CONSTRAINT {always_quote(name)};"
                 for table, name in self.foreign_keys]
        by_oid = {relation.oid: relation for relation in self.drops}

        def generation(relation: TargetRelation) -> int:  # its longest line of ancestors dropped too
            parents = [by_oid[oid] for oid in relation.parent_oids if oid in by_oid]
            return 1 + max(generation(parent) for parent in parents) if parents else 0

        # Deepest readers first; a partition goes with its parent, but a child by INHERITS does not
        # (DROP TABLE of its parent fails without CASCADE): children before their parents. Those of
        # one rank and kind go in one statement: a table whose default takes from another's owned
        # sequence (a serial behind both) could not be dropped before it, nor it before the table.
        ranks: dict[tuple[int, int, str], list[str]] = {}
        for relation in sorted(self.drops, key=lambda r: (-r.depth, -generation(r), r.name)):
            if relation.is_partition and relation.parent_oids and relation.parent_oids[0] in by_oid:
                continue
            rank = (-relation.depth, -generation(relation), _KIND_WORD[relation.kind])
            ranks.setdefault(rank, []).append(relation.name.sql)
        lines += [f"DROP {kind} {', '.join(names)};" for (_, _, kind), names in sorted(ranks.items())]
        return "\n".join(lines) + "\n"

    def grants_apart(self, toc: Toc, list_file: Path, workdir: Path) -> tuple[list[tuple[Path, Path]], list[Path]]:
        """Take the archive's grants out of `list_file` (rewritten without them): the (list, script)
        pairs for pg_restore to write them, and the files psql runs after the relations' script:
        their grants reset to the owner's (grants_reset_sql), then the archive's."""
        included = {int(line.split(";", 1)[0]) for line in
                    list_file.read_text(encoding="utf-8", errors="surrogateescape").splitlines() if line}
        chosen = [e for e in toc.entries if e.dump_id in included]
        grants = {e.dump_id for e in chosen if e.desc == "ACL"}
        namespaces = schema_names(toc)
        relations = [name for e in chosen if e.desc in SELECTABLE_DESCS or e.desc == "SEQUENCE"
                     if (name := entry_name(e, namespaces)) is not None]
        reset = workdir / "grants_reset.sql"
        reset.write_bytes(self.grants_reset_sql(relations).encode("utf-8", errors="surrogateescape"))
        write_list(toc, included - grants, list_file, attach_last=True)
        if not grants:
            return [], [reset]
        grants_list, grants_sql = workdir / "grants.list", workdir / "grants.sql"
        write_list(toc, grants, grants_list)
        return [(grants_list, grants_sql)], [reset, grants_sql]

    def grants_reset_sql(self, relations: list[QualifiedName]) -> str:
        """What runs after the recreated relations (and their sequences) are made and before the
        archive's grants: each one's grants back to the owner's alone. Made in a database that has
        them, they got its ALTER DEFAULT PRIVILEGES grants, which the archive's do not take away (it
        writes a relation's grants from the owner's alone, and none for a relation that had no other),
        so a view or a table would end readable by roles the dumped one was not."""
        if not relations:
            return ""
        names = ", ".join("'" + name.sql.replace("'", "''") + "'" for name in relations)
        return f"""SET client_encoding = '{self.client_encoding}';
DO $pgbackup_grants$
DECLARE
    rel regclass;
    kind text;
    grantee oid;
BEGIN
    FOREACH rel IN ARRAY ARRAY[{names}]::regclass[] LOOP
        kind := CASE WHEN (SELECT relkind FROM pg_class WHERE oid = rel) = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END;
        FOR grantee IN SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
                       WHERE c.oid = rel AND a.grantee <> c.relowner LOOP
            EXECUTE format('REVOKE ALL ON %s %s FROM %s CASCADE', kind, rel,
                           CASE WHEN grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(grantee)) END);
        END LOOP;
    END LOOP;
END
$pgbackup_grants$;
"""

    def describe(self) -> list[str]:
        """What will be dropped, one line each, for --dry-run and the dialog."""
        lines = []
        for relation in sorted(self.drops, key=lambda r: (r.depth, r.name)):
            why = "" if relation.depth == 0 else " (reads a restored table: recreated from the archive)"
            lines.append(f"drop {_KIND_WORD[relation.kind].lower()} {relation.name}{why}")
        for table, name in self.foreign_keys:
            lines.append(f"drop foreign key {quote_ident(name)} on {table} (added again after the restore)")
        return lines + self.sequences.describe()


def _find_entry(toc: Toc, namespaces: list[str], name: QualifiedName,
                descs: frozenset[str] | set[str]) -> TocEntry | None:
    for entry in toc.entries:
        if entry.desc in descs and entry_is_named(entry, name.schema, name.name, namespaces):
            return entry
    return None


def plan_table_clean(conn: psycopg.Connection, toc: Toc, restored: set[int], dbname: str) -> TableClean:
    """Work out the drops for restoring the relation entries `restored` into the connected
    database, which already holds data. Raises TargetError when something the drops would take
    with them is not in the archive."""
    namespaces = schema_names(toc)
    by_id = toc.by_id()
    names: dict[QualifiedName, int] = {}
    for dump_id in restored:
        restored_entry = by_id[dump_id]
        name = entry_name(restored_entry, namespaces) if restored_entry.desc in SELECTABLE_DESCS else None
        if name is not None:
            names[name] = dump_id
    plan = TableClean(recreate=set(restored))
    if conn.info.parameter_status("server_encoding") == "SQL_ASCII":
        plan.client_encoding = "SQL_ASCII"
    if not names:
        return plan
    rows = conn.execute(_RELATIONS, {"schemas": [n.schema for n in names], "names": [n.name for n in names]}).fetchall()
    existing = [row[2] for row in rows]
    if not existing:
        return plan
    for schema, relname, oid, kind, depth, parents, is_partition in conn.execute(_DEPENDENTS, {"oids": existing}):
        relation = TargetRelation(QualifiedName(schema, relname), oid, kind, depth, tuple(parents or ()), is_partition)
        plan.drops.append(relation)
        if relation.name in names:
            continue
        entry = _find_entry(toc, namespaces, relation.name, SELECTABLE_DESCS)
        if entry is None:
            what = ("reads a restored table" if depth else "is a partition of a restored table" if is_partition
                    else "inherits from a restored table")
            raise TargetError(
                f"{_KIND_WORD[kind].lower()} {relation.name} in database '{dbname}' {what} but is not in the "
                "archive: --clean would have to drop it for good; restore into a new database with --create instead"
            )
        plan.recreate.add(entry.dump_id)
    dropped_oids = [relation.oid for relation in plan.drops]
    taken = conn.execute(_OWNED_SEQUENCES_USED_ELSEWHERE, {"oids": dropped_oids}).fetchone()
    if taken is not None:
        sequence, owner, user = (QualifiedName(taken[i], taken[i + 1]) for i in (0, 2, 4))
        raise TargetError(
            f"sequence {sequence} in database '{dbname}' belongs to {owner}, which --clean drops and restores, and the "
            f"default of {user}, which is not restored, takes its values from it: it cannot be dropped with {owner}; "
            f"restore {user} too (--table {user}), or restore into a new database with --create instead")
    for schema, relname, conname in conn.execute(_FOREIGN_KEYS_IN, {"oids": dropped_oids}):
        table = QualifiedName(schema, relname)
        entry = _find_entry(toc, namespaces, QualifiedName(schema, f"{relname} {conname}"), {"FK CONSTRAINT"})
        if entry is None:
            raise TargetError(
                f"foreign key {quote_ident(conname)} on {table} in database '{dbname}' points at a restored table "
                "but is not in the archive: --clean would have to drop it for good; "
                "restore into a new database with --create instead"
            )
        plan.foreign_keys.append((table, conname))
        plan.extra_entries.add(entry.dump_id)
    return plan


def provided_entries(toc: Toc, recreate: set[int]) -> set[int]:
    """Entries a table-level --clean takes as already in the target: everything but the recreated
    relations and what hangs off them (their data, indexes, constraints, defaults, triggers, owned
    sequences...), found by following dependencies down from the recreated relations."""
    attached = [e for e in toc.entries if e.desc in ATTACHED_DESCS]
    goes_with_them = set(recreate)
    changed = True
    while changed:
        changed = False
        for entry in attached:
            if entry.dump_id not in goes_with_them and any(dep in goes_with_them for dep in entry.depends_on):
                goes_with_them.add(entry.dump_id)
                changed = True
    return {e.dump_id for e in toc.entries
            if e.dump_id not in goes_with_them and e.desc not in PREAMBLE_DESCS and e.desc not in METADATA_DESCS}


SESSIONS_ENDING_S = 2.0  # how long a whole-database --clean waits for other sessions that are ending


def require_no_sessions(conn: psycopg.Connection, dbname: str, *, wait_s: float = SESSIONS_ENDING_S) -> None:
    """A whole-database --clean swaps databases by name: nobody else may be connected to the target.

    Sessions that are ending are waited for a moment (`wait_s`): a client's goodbye reaches the
    server at the link's pace, so a restore or a script that has just closed its connections may
    still show one (with no user yet or any longer: "?"), and `restore` then `restore --clean`
    back to back must not be refused for it. A session still there after that is refused. `conn`
    is in autocommit (connect's default): each look is a new snapshot of pg_stat_activity. The
    server's own workers there (autovacuum) are not sessions: PostgreSQL ends those for the rename."""
    deadline = time.monotonic() + wait_s
    while True:
        rows = conn.execute(
            """SELECT count(*),
                      string_agg(DISTINCT coalesce(nullif(usename, ''), '?')
                                 || coalesce(' (' || nullif(application_name, '') || ')', ''), ', ')
               FROM pg_stat_activity
              WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'""",
            (dbname,)).fetchone()
        count, who = rows if rows else (0, None)
        if not count:
            return
        if time.monotonic() >= deadline:
            raise TargetError(
                f"database '{dbname}' has {count} other session(s) ({who}); a --clean of the whole database replaces "
                "it by name once the restore succeeded and needs them closed: close them and start again"
            )
        time.sleep(0.1)
