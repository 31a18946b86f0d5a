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
selected, so that is what the closure (toc_closure.py) would have done anyway. The count of patterns
follows the selection (about one per character of each kept name), not the database.

Pattern syntax (psql's, which pg_dump uses): inside double quotes every character is literal;
outside them `*` is `.*`, `[...]` a character class, upper-case letters fold to lower case, `.`
separates schema and name and `?` means any character. Only the class is written unquoted, and
only with characters that none of these rules touch (lower-case ASCII letters, digits, `_`);
where a kept name continues with another character, the relations beside it get one quoted
pattern per next character instead.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from .identifiers import QualifiedName, always_quote

_CLASS_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def exclusion_patterns(leave_out: Iterable[QualifiedName], keep: Iterable[QualifiedName]) -> list[str]:
    """Patterns matching every relation in `leave_out` and none in `keep` (every other relation
    pg_dump would match with -T: tables, views, sequences... that are to stay in the dump)."""
    kept: dict[str, set[str]] = {}
    for name in keep:
        kept.setdefault(name.schema, set()).add(name.name)
    leaving: dict[str, set[str]] = {}
    for name in leave_out:
        leaving.setdefault(name.schema, set()).add(name.name)
    patterns: list[str] = []
    for schema in sorted(leaving):
        head = always_quote(schema) + "."
        stay = kept.get(schema, set())
        if not stay:
            patterns.append(head + "*")  # nothing here stays: every relation of the schema
            continue
        _SortedNames(sorted(leaving[schema] - stay), sorted(stay), head, patterns).cover("")
    return patterns


class _SortedNames:
    """The trie of a schema's names, walked in sorted lists instead of built: the names under a
    prefix are a range of each list (bisect), so only the paths to kept names are visited and a
    range with nothing kept becomes one pattern without being looked at name by name."""

    def __init__(self, leave: list[str], keep: list[str], head: str, patterns: list[str]) -> None:
        self.leave, self.keep, self.head, self.patterns = leave, keep, head, patterns

    def _range(self, names: list[str], prefix: str) -> tuple[int, int]:
        if not prefix:
            return 0, len(names)
        return bisect_left(names, prefix), bisect_left(names, _past(prefix))

    def _next_chars(self, names: list[str], prefix: str) -> list[str]:
        """The characters that follow `prefix` in `names`, each once, in order."""
        lo, hi = self._range(names, prefix)
        depth, found = len(prefix), []
        while lo < hi:
            if len(names[lo]) == depth:  # the prefix itself
                lo += 1
                continue
            char = names[lo][depth]
            found.append(char)
            lo = bisect_left(names, _past(prefix + char), lo, hi)
        return found

    def cover(self, prefix: str) -> None:
        """Patterns for the names to leave out that start with `prefix` (some kept name does too)."""
        head, patterns = self.head, self.patterns
        lo, hi = self._range(self.leave, prefix)
        if lo < hi and self.leave[lo] == prefix:
            patterns.append(head + always_quote(prefix))  # exactly this name
        kept_next = self._next_chars(self.keep, prefix)
        kept_set = set(kept_next)
        free = [char for char in self._next_chars(self.leave, prefix) if char not in kept_set]
        if free:
            quoted = always_quote(prefix) if prefix else ""
            if not kept_next:  # `prefix` itself is kept: everything longer (`?` is one character)
                patterns.append(f"{head}{quoted}?*")
            elif all(char in _CLASS_SAFE for char in kept_next):
                # Everything longer than `prefix` whose next character leads to no kept name.
                patterns.append(f"{head}{quoted}[^{''.join(sorted(kept_next))}]*")
            else:
                patterns.extend(f"{head}{always_quote(prefix + char)}*" for char in sorted(free))
        for char in kept_next:
            self.cover(prefix + char)


def _past(prefix: str) -> str:
    """A string after every name that starts with `prefix` and before every other name after it."""
    last = ord(prefix[-1])
    if last == 0x10FFFF:  # no character after it; names have at most 63 characters (NAMEDATALEN)
        return prefix + chr(0x10FFFF) * 64
    return prefix[:-1] + chr(last + 1)
