"""The relations a selection leaves out, as few pg_dump `--exclude-table` patterns as possible.

Why: a selection is dumped as "everything except the other relations" (selection.py), and pg_dump
looks up every `--exclude-table` pattern with a catalog query of its own: 9,950 exact names in a
10,000-table database cost 4 s, where `pg_dump -t` x50 takes 0.3 s. A regular-expression
alternation of the names (`"s"."a"|"b"|…`) is no cure: the server's regex engine is slower still
with thousands of branches.

So the names are covered the way a trie covers them: per schema, each prefix shared by relations
that must stay becomes one pattern for everything beside them, `"s"."t_00"[^13]*` (relations
starting with t_00 whose next character is neither 1 nor 3), and a schema with nothing to keep
becomes `"s".*` (every relation of that schema: --exclude-table, so its types and functions are
still dumped). The patterns are checked against the whole catalog when they are made: none
matches a relation that must stay, and together they match every relation to leave out. A
relation created between this look-up and pg_dump's start may match one and be left out: it is not
selected, so that is what the closure (toc.py) would have done anyway. The count of patterns
follows the selection (about one per character of each kept name), not the database.

Pattern syntax (psql's, which pg_dump uses): inside double quotes every character is literal;
outside them `*` is `.*`, `[...]` a character class, upper-case letters fold to lower case, `.`
separates schema and name and `?` means any character. Only the class is written unquoted, and
only with characters that none of these rules touch (lower-case ASCII letters, digits, `_`);
where a kept name continues with another character, the relations beside it get one quoted
pattern per next character instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from .identifiers import QualifiedName, always_quote

_CLASS_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


class _Node:
    __slots__ = ("children", "keep", "leave", "kept_below")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.keep = False  # a relation to keep ends here
        self.leave = False  # a relation to leave out ends here
        self.kept_below = False  # a relation to keep ends here or deeper


def _insert(root: _Node, name: str, keep: bool) -> None:
    node = root
    if keep:
        node.kept_below = True
    for char in name:
        node = node.children.setdefault(char, _Node())
        if keep:
            node.kept_below = True
    if keep:
        node.keep = True
    else:
        node.leave = True


def exclusion_patterns(leave_out: Iterable[QualifiedName], keep: Iterable[QualifiedName]) -> list[str]:
    """Patterns matching every relation in `leave_out` and none in `keep` (every other relation
    pg_dump would match with -T: tables, views, sequences... that are to stay in the dump)."""
    tries: dict[str, _Node] = {}
    for name in keep:
        _insert(tries.setdefault(name.schema, _Node()), name.name, True)
    leaving: dict[str, list[str]] = {}
    for name in leave_out:
        leaving.setdefault(name.schema, []).append(name.name)
    patterns: list[str] = []
    for schema in sorted(leaving):
        head = always_quote(schema) + "."
        root = tries.get(schema)
        if root is None or not root.kept_below:
            patterns.append(head + "*")  # nothing here stays: every relation of the schema
            continue
        for relname in leaving[schema]:
            _insert(root, relname, False)
        _cover(root, "", head, patterns)
    return patterns


def _cover(node: _Node, prefix: str, head: str, patterns: list[str]) -> None:
    """Patterns for the relations under `node` (whose names start with `prefix`) that are left out."""
    if node.leave:
        patterns.append(head + always_quote(prefix))  # exactly this name
    kept_next = [char for char, child in node.children.items() if child.kept_below]
    free = [char for char, child in node.children.items() if not child.kept_below]
    if free:
        quoted = always_quote(prefix) if prefix else ""
        if not kept_next:  # `prefix` itself is kept: everything longer (`?` is one character)
            patterns.append(f"{head}{quoted}?*")
        elif all(char in _CLASS_SAFE for char in kept_next):
            # Everything longer than `prefix` whose next character leads to no kept name.
            patterns.append(f"{head}{quoted}[^{''.join(sorted(kept_next))}]*")
        else:
            patterns.extend(f"{head}{always_quote(prefix + char)}*" for char in sorted(free))
    for char in sorted(kept_next):
        _cover(node.children[char], prefix + char, head, patterns)
