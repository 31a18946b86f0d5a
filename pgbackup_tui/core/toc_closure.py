"""The closure of a selection in an archive's table of contents (toc.py parses it).

Why: `pg_dump -t` dumps tables without the schema, types, domains, sequences, extensions and
functions they use, so the result does not restore into an empty database. We dump a selection
as "everything except the other relations" and then keep, from that archive's TOC, exactly:
  - the selected relations (seeds), with their partitions and inheritance children,
  - everything they depend on, recursively (schemas, types, domains, functions, extensions,
    sequences used by defaults) -- reported as "added",
  - what hangs off them (data, indexes, constraints, defaults, triggers, owned sequences and
    their values, comments, ACLs, policies), as long as it needs no relation outside the set.
The result is written as a `pg_restore --use-list` file (toc.write_list). Restoring selected
tables from a full archive (`restore --table`) uses the same closure.
"""

from __future__ import annotations

from dataclasses import dataclass

from .toc import ATTACHED_DESCS, METADATA_DESCS, PREAMBLE_DESCS, SELECTABLE_DESCS, Toc, TocEntry, entry_name


@dataclass
class Closure:
    included: set[int]
    added: list[tuple[TocEntry, TocEntry]]  # (dependency brought along, the selected entry that needed it)
    left_out: list[tuple[TocEntry, str]]  # (entry, why)


def came_along_line(what: str, entry: TocEntry, why: str) -> str:
    """The line a selection's log says of `entry` (`what`: its description), brought along for `why`.
    A publication comes with the selected tables of it only: said, or it reads as the whole one."""
    partly = ", with only the selected tables of it" if entry.desc == "PUBLICATION" else ""
    return f"added {what}{partly}: needed by {why}"


def with_descendants(toc: Toc, seeds: set[int]) -> tuple[set[int], list[tuple[TocEntry, TocEntry]]]:
    """`seeds` plus the partitions (and inheritance children) of every table among them, at any depth.

    A partition's TABLE entry depends on its parent's, as an inheritance child's does: restoring
    a partitioned table without them restores an empty parent. Returns the widened seeds and
    (child, the seed it came with) for each one added, to say what came along.
    """
    by_id = toc.by_id()
    children: dict[int, list[int]] = {}
    for entry in toc.entries:
        if entry.desc == "TABLE":
            for dep in entry.depends_on:
                if dep in by_id and by_id[dep].desc == "TABLE" and dep != entry.dump_id:
                    children.setdefault(dep, []).append(entry.dump_id)
    widened = set(seeds)
    came_along: list[tuple[TocEntry, TocEntry]] = []
    stack = [(seed, by_id[seed]) for seed in sorted(seeds) if seed in by_id]
    while stack:
        parent_id, origin = stack.pop()
        for child_id in children.get(parent_id, []):
            if child_id not in widened:
                widened.add(child_id)
                came_along.append((by_id[child_id], origin))
                stack.append((child_id, origin))
    return widened, came_along


def inherited_parents(toc: Toc, seeds: set[int], included: set[int]) -> dict[int, set[int]]:
    """The tables in `included` only as the parents (by INHERITS, at any depth) of tables among
    `seeds`, with the dump ids of their own rows (TABLE DATA): what a selection leaves out, as the
    dump of a selection does (selection.py): a child cannot be made without its parent's definition,
    but the parent's own rows were not asked for. A parent that something else restored needs (a
    view, another table's foreign key) keeps its rows; a partitioned parent has none."""
    by_id = toc.by_id()
    ancestors: set[int] = set()
    stack = [seed for seed in seeds if seed in by_id and by_id[seed].desc == "TABLE"]
    while stack:
        for dep in by_id[stack.pop()].depends_on:
            if dep in by_id and by_id[dep].desc == "TABLE" and dep not in seeds and dep not in ancestors:
                ancestors.add(dep)
                stack.append(dep)
    found: dict[int, set[int]] = {}
    for parent_id in ancestors:
        parent = by_id[parent_id]
        users = [e for e in toc.entries if e.dump_id in included and parent_id in e.depends_on]
        rows = {e.dump_id for e in users if e.desc == "TABLE DATA"}
        needs_rows = any(e.desc not in ATTACHED_DESCS | METADATA_DESCS | {"TABLE"}
                         or (e.desc == "FK CONSTRAINT" and not _belongs_to(e, parent, toc.namespaces))
                         for e in users)
        if rows and not needs_rows:
            found[parent_id] = rows
    return found


# Entries on a table tagged with their own name only ("schema index owner"), not "table name": they
# depend on the table they are on (an INDEX ATTACH on its partition and the parent, which is restored).
_OWN_TAG_DESCS = frozenset({"INDEX", "INDEX ATTACH", "STATISTICS", "STATISTICS DATA"})


def _belongs_to(entry: TocEntry, table: TocEntry, namespaces: list[str]) -> bool:
    """Whether `entry` (a constraint, an index...) hangs off `table`: its listing reads
    "schema table name owner", the table's own "schema table owner"; an index's reads its own name,
    and it depends on its table."""
    if entry.desc in _OWN_TAG_DESCS:
        return table.dump_id in entry.depends_on
    name = entry_name(table, namespaces)
    return name is not None and entry.rest.startswith(f"{name.schema} {name.name} ")


def compute_closure(toc: Toc, seeds: set[int], drop: dict[int, str] | None = None,
                    provided: set[int] | frozenset[int] = frozenset()) -> Closure:
    """The entries to restore for `seeds`; `drop` maps dump ids to leave out to the reason.

    `provided`: entries whose objects the target already has (a table-level --clean into an
    existing database): they are neither restored nor walked, but count as present, so a
    foreign key or view that needs them still comes along.
    """
    drop = dict(drop or {})
    by_id = toc.by_id()
    dependents: dict[int, list[int]] = {}
    for entry in toc.entries:
        for dep in entry.depends_on:
            dependents.setdefault(dep, []).append(entry.dump_id)

    included: set[int] = {e.dump_id for e in toc.entries if e.desc in PREAMBLE_DESCS}
    added: list[tuple[TocEntry, TocEntry]] = []
    left_out: list[tuple[TocEntry, str]] = []

    def pull_up(entry_id: int, needed_by: TocEntry) -> None:
        """Include `entry_id` and everything it depends on, crediting the nearest selected entry."""
        stack = [(entry_id, needed_by)]
        while stack:
            current, reason = stack.pop()
            if current in included or current not in by_id or current in drop or current in provided:
                continue
            included.add(current)
            entry = by_id[current]
            if current in seeds:
                reason = entry
            elif entry.desc not in ATTACHED_DESCS or (entry.desc == "SEQUENCE" and not _owned_by_relation(entry)):
                added.append((entry, reason))
            stack.extend((dep, reason) for dep in entry.depends_on)

    def _owned_by_relation(sequence: TocEntry) -> bool:
        """An owned (serial/identity) sequence depends on its table; a standalone one does not."""
        return any(d in by_id and by_id[d].desc in SELECTABLE_DESCS for d in sequence.depends_on)

    for seed in sorted(seeds):
        pull_up(seed, by_id[seed])

    # Walk down from what is included to what hangs off it, until nothing changes.
    blocked: dict[int, tuple[TocEntry, str]] = {}
    changed = True
    while changed:
        changed = False
        for parent_id in sorted(included):
            parent = by_id.get(parent_id)
            if parent is None:
                continue
            for child_id in dependents.get(parent_id, []):
                if child_id in included or child_id in drop:
                    continue
                child = by_id[child_id]
                if child.desc in METADATA_DESCS:
                    if all(d in included for d in child.depends_on):
                        included.add(child_id)
                        changed = True
                    continue
                if not (parent.desc in SELECTABLE_DESCS or parent.desc in ATTACHED_DESCS):
                    continue  # do not drag in everything that lives in a schema or uses a type
                if child.desc in SELECTABLE_DESCS:
                    continue  # a view over a selected table is not part of the selection
                blockers = [by_id[d] for d in child.depends_on
                            if d in by_id and d not in included and d not in provided
                            and by_id[d].desc in SELECTABLE_DESCS]
                if blockers:
                    if not any(_belongs_to(child, blocker, toc.namespaces) for blocker in blockers):
                        # Not said for another table's own constraint (its table is not restored
                        # either): only what a restored table loses is news.
                        blocked.setdefault(child_id, (child, f"{toc.describe(child)}: it needs "
                                                             f"{toc.describe(blockers[0])}, which is not restored"))
                    continue
                for dep in child.depends_on:
                    pull_up(dep, parent)
                included.add(child_id)
                changed = True

    for dump_id, why in drop.items():
        if dump_id in by_id:
            left_out.append((by_id[dump_id], why))
    # What hangs off the selection but needs a relation that is not in it (a foreign key to another
    # table): left out by the walk above, and said.
    left_out += [pair for child_id, pair in sorted(blocked.items()) if child_id not in included]
    return Closure(included, added, left_out)
