"""Which of an archive's entries a restore restores (RestoreJob, restore.py).

All of them; or what --table names, with its partitions and children and what they need; or the
entries a selection archive's manifest lists (the dump of some tables: its `restore_list`); or, for a
table-level --clean, those tables, the views that depend on them (recreated with them), the
drops that clear the way (restore_clean.py), and the sequences they take from, whose values come
from the archive (restore_sequences.py). A data-only archive's tables are chosen by
restore_data.py instead.

Worked out in one go, off the event loop (the table-level --clean asks the target what depends on
its tables): the caller logs the lines it returns, in order, from the job's own thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .connect import connect
from .errors import SelectionError, UsageError
from .identifiers import parse_qualified_name
from .plans import RestorePlan
from .restore_clean import TableClean, plan_table_clean, provided_entries
from .restore_sequences import plan_sequence_values
from .toc import SELECTABLE_DESCS, Toc, alike_in, seeds_by_name
from .toc_closure import came_along_line, compute_closure, inherited_parents, with_descendants

LARGE_OBJECT_DESCS = ("BLOB", "BLOBS", "BLOB METADATA")


@dataclass
class EntryChoice:
    """What a restore takes from its archive."""

    included: set[int] | None  # the archive entries to restore; None: all of them
    table_clean: TableClean | None = None  # a table-level --clean's drops and recreated relations
    came_along: list[str] = field(default_factory=list)  # what the selection brought or lost, as said
    log: list[tuple[str, str]] = field(default_factory=list)  # (line, level), for the job's log


def choose_entries(plan: RestorePlan, toc: Toc, manifest: dict[str, Any], mode: str) -> EntryChoice:
    """The entries of `toc` that a restore in `mode` (RestoreJob._mode; not "data") restores."""
    choice = EntryChoice(included=None)
    seeds: set[int] | None = None
    if plan.tables:
        named, missing = seeds_by_name(toc, list(plan.tables))
        if missing:
            raise SelectionError(f"--table {missing[0]}: not in archive {plan.archive}{alike_in(toc, missing[0])}")
        seeds, came_along = with_descendants(toc, named)
        for child, parent in came_along:
            choice.came_along.append(f"came along: {toc.describe(child)} (partition or child of "
                                     f"{toc.describe(parent)})")
        if any(e.desc in LARGE_OBJECT_DESCS for e in toc.entries):
            choice.log.append(("the archive's large objects are not restored with --table (as with pg_restore -t): "
                               "rows that hold their OIDs point at none unless the target has them", "warning"))
    elif manifest.get("restore_list"):
        listed = {int(x) for x in manifest["restore_list"]}
        choice.log.append((f"archive holds a table selection: restoring the {len(listed)} entries its manifest "
                           "lists", "info"))
        if mode != "tables":
            choice.included = listed
            return choice
        seeds = {e.dump_id for e in toc.entries if e.dump_id in listed and e.desc in SELECTABLE_DESCS}
    if seeds is None:
        return choice
    if mode == "tables":
        seeds = _without_definition_only(plan, toc, manifest, seeds, choice)
        with connect(plan.target, plan.dbname) as conn:
            clean = choice.table_clean = plan_table_clean(conn, toc, seeds, plan.dbname)
            closure = compute_closure(toc, clean.recreate, provided=provided_entries(toc, clean.recreate))
            # What the tables take from without recreating it (a sequence behind two tables' ids):
            # its value comes from the archive too (restore_sequences.py).
            clean.sequences = plan_sequence_values(conn, toc, closure.included,
                                                   [relation.oid for relation in clean.drops])
        choice.included = closure.included | clean.extra_entries
        parents: dict[int, set[int]] = {}
    else:
        closure = compute_closure(toc, seeds)
        parents = inherited_parents(toc, seeds, closure.included)
        choice.included = closure.included - {data for rows in parents.values() for data in rows}
    for entry, needed_by in closure.added:
        if entry.dump_id in parents:
            choice.came_along.append(f"added {toc.describe(entry)}: the parent of a selected table (INHERITS), "
                                     "its definition without its own rows")
            continue
        choice.came_along.append(came_along_line(toc.describe(entry), entry, toc.describe(needed_by)))
    for _entry, why in closure.left_out:  # a foreign key to a table not restored: said, as a dump says it
        choice.came_along.append(f"left out {why}")
    choice.log += [(line, "info") for line in choice.came_along]
    return choice


def _without_definition_only(plan: RestorePlan, toc: Toc, manifest: dict[str, Any], seeds: set[int],
                             choice: EntryChoice) -> set[int]:
    """A table-level --clean's seeds without the tables the archive holds the definition of only (a
    selected child's parent by INHERITS): dropped and made again from it, they would come back
    empty. Left as they are in the target; named with --table, refused."""
    listed = (manifest.get("selection") or {}).get("definition_only") or []
    names = [parse_qualified_name(str(name)) for name in listed]
    if not names:
        return seeds
    found, _missing = seeds_by_name(toc, names)
    asked = seeds_by_name(toc, list(plan.tables))[0] if plan.tables else set()
    if found & asked:
        label = toc.by_id()[min(found & asked)].label
        raise UsageError(f"{plan.archive} holds the definition of {label} only (the parent of a selected "
                         "table, without its rows): a --clean of it would empty it; restore its children alone")
    for name in names:
        choice.log.append((f"{name}: its definition only in this archive (the parent of a selected table): "
                           f"left as it is in '{plan.dbname}'", "info"))
    return seeds - found
