"""An archive's table of contents (`pg_restore -l --verbose`): its entries, their names, a use-list.

Why: a selection's closure (toc_closure.py), a restore's --table, its data-only and --clean
steps and the catalog all work from the TOC pg_restore prints, matched to the catalog by OID where
they can be and by name otherwise; a `pg_restore --use-list` file is the TOC's lines kept.

TOC lines look like `217; 1259 16502 TABLE Sales & Ops c postgres`: dump id, catalog class
OID, object OID, description, then namespace/tag/owner separated by spaces that may also occur
inside names. We therefore match tables by OID where we can (at dump time) and by exact
"schema name " prefix otherwise; `; depends on: 7 217` lines follow each entry with --verbose.
The owner is read from the archive itself where it can be (toc_owners.py: a role "Odd Owner"
is two words), else taken to be the last word.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .identifiers import QualifiedName, quote_ident
from .paths import named_error

PG_CLASS_OID = 1259
PG_CONSTRAINT_OID = 2606

# Longest first, so that "TABLE DATA" wins over "TABLE".
KNOWN_DESCS = sorted(
    [
        "ACCESS METHOD", "ACL", "AGGREGATE", "BLOB", "BLOBS", "BLOB METADATA", "CAST",
        "CHECK CONSTRAINT", "COLLATION", "COMMENT", "CONSTRAINT", "CONVERSION", "DATABASE",
        "DATABASE PROPERTIES", "DEFAULT", "DEFAULT ACL", "DOMAIN", "ENCODING", "EVENT TRIGGER",
        "EXTENSION", "FK CONSTRAINT", "FOREIGN DATA WRAPPER", "FOREIGN SERVER", "FOREIGN TABLE",
        "FUNCTION", "INDEX", "INDEX ATTACH", "LARGE OBJECT", "MATERIALIZED VIEW",
        "MATERIALIZED VIEW DATA", "OPERATOR", "OPERATOR CLASS", "OPERATOR FAMILY", "POLICY",
        "PROCEDURAL LANGUAGE", "PROCEDURE", "PUBLICATION", "PUBLICATION TABLE",
        "PUBLICATION TABLES IN SCHEMA", "ROW SECURITY", "RULE", "SCHEMA", "SEARCHPATH",
        "SECURITY LABEL", "SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET", "SERVER", "SHELL TYPE",
        "STATISTICS", "STATISTICS DATA", "STDSTRINGS", "SUBSCRIPTION", "SUBSCRIPTION TABLE",
        "TABLE", "TABLE ATTACH", "TABLE DATA", "TEXT SEARCH CONFIGURATION",
        "TEXT SEARCH DICTIONARY", "TEXT SEARCH PARSER", "TEXT SEARCH TEMPLATE", "TRANSFORM",
        "TRIGGER", "TYPE", "USER MAPPING", "VIEW",
    ],
    key=len,
    reverse=True,
)
# Relations a selection names. A dependent that needs one of these outside the set is left out.
SELECTABLE_DESCS = frozenset({"TABLE", "VIEW", "MATERIALIZED VIEW", "FOREIGN TABLE"})
# Tags as names, for messages: a name in a schema; a name and its arguments in a schema; a name alone.
NAMED_DESCS = SELECTABLE_DESCS | {"SEQUENCE", "TYPE", "DOMAIN", "INDEX", "COLLATION"}
ROUTINE_DESCS = frozenset({"FUNCTION", "PROCEDURE", "AGGREGATE"})
UNQUALIFIED_DESCS = frozenset({"SCHEMA", "EXTENSION", "PUBLICATION", "EVENT TRIGGER"})
# Entries on a table, tagged "table name": said as `NAME on SCHEMA.TABLE`.
ON_TABLE_DESCS = frozenset({"CONSTRAINT", "CHECK CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "POLICY", "RULE"})
# Entries that belong to a relation: what hangs off them comes along with it.
ATTACHED_DESCS = frozenset({
    "TABLE DATA", "CONSTRAINT", "CHECK CONSTRAINT", "FK CONSTRAINT", "INDEX", "INDEX ATTACH",
    "DEFAULT", "TRIGGER", "SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET", "POLICY",
    "ROW SECURITY", "RULE", "TABLE ATTACH", "MATERIALIZED VIEW DATA", "STATISTICS",
    "STATISTICS DATA",
})
# Facts about an object itself: they come along with whatever they describe.
METADATA_DESCS = frozenset({"COMMENT", "ACL", "SECURITY LABEL"})
# Session settings at the top of every archive; always kept.
PREAMBLE_DESCS = frozenset({"ENCODING", "STDSTRINGS", "SEARCHPATH"})

_KNOWN_DESC_SET = frozenset(KNOWN_DESCS)
_DESC_MAX_WORDS = max(desc.count(" ") + 1 for desc in KNOWN_DESCS)
_ENTRY = re.compile(r"^(\d+); (\d+) (\d+) (.*)$")
_DEPENDS = re.compile(r"^;\s*depends on:((?:\s+\d+)*)\s*$")
_HEADER = re.compile(r"^;\s+([A-Za-z_ ]+):\s*(.*)$")


@dataclass
class TocEntry:
    dump_id: int
    class_oid: int
    object_oid: int
    desc: str
    rest: str  # "namespace tag owner" as pg_restore prints it ("-" for no namespace)
    line: str
    depends_on: list[int] = field(default_factory=list)
    owner: str | None = None  # as the archive records it; None: not known, the listing's last word

    @property
    def named(self) -> str:
        """`rest` without its owner: "namespace tag" (names may hold spaces, and so may an owner)."""
        if self.owner is not None and self.rest.endswith(" " + self.owner):
            return self.rest[:len(self.rest) - len(self.owner) - 1]
        return self.rest.rsplit(" ", 1)[0] if " " in self.rest else self.rest

    @property
    def label(self) -> str:
        """A readable name for messages: description and namespace/tag (owner dropped)."""
        text = self.named
        return f"{self.desc} {text.replace('- ', '', 1) if text.startswith('- ') else text}".strip()


@dataclass
class Toc:
    entries: list[TocEntry]
    header: dict[str, str]

    def by_id(self) -> dict[int, TocEntry]:
        return {entry.dump_id: entry for entry in self.entries}

    @functools.cached_property
    def namespaces(self) -> list[str]:
        return schema_names(self)

    @functools.cached_property
    def relation_names(self) -> dict[str, list[str]]:
        """Each schema's relation names, longest first: what an entry on a table ("table name") starts with."""
        found: dict[str, set[str]] = {}
        for entry in self.entries:
            if entry.desc in SELECTABLE_DESCS and (name := entry_name(entry, self.namespaces)) is not None:
                found.setdefault(name.schema, set()).add(name.name)
        return {schema: sorted(names, key=len, reverse=True) for schema, names in found.items()}

    def describe(self, entry: TocEntry) -> str:
        """An entry for messages, its names quoted as SQL writes them and as dump's notes quote them
        (the listing joins names with spaces: `TABLE Sales & Ops Order Items`, `SCHEMA Sales & Ops`
        said nothing clear): `SCHEMA "Sales & Ops"`, `TABLE "Sales & Ops"."Order Items"`,
        `FK CONSTRAINT "Order Items_order_id_fkey" on "Sales & Ops"."Order Items"`."""
        if entry.desc in UNQUALIFIED_DESCS and entry.rest.startswith("- "):
            return f"{entry.desc} {quote_ident(entry.named[2:])}"
        if entry.desc in ROUTINE_DESCS and (routine := entry_name(entry, self.namespaces)) is not None:
            # The tag is the routine's name and its argument types: `next id()`, `add(integer, integer)`.
            bare, parenthesis, arguments = routine.name.partition("(")
            return f"{entry.desc} {QualifiedName(routine.schema, bare)}{parenthesis}{arguments}"
        name = entry_name(entry, self.namespaces) if entry.desc in NAMED_DESCS | ON_TABLE_DESCS else None
        if name is not None and entry.desc in ON_TABLE_DESCS:
            table = next((t for t in self.relation_names.get(name.schema, []) if name.name.startswith(t + " ")), None)
            if table is not None:
                own = name.name[len(table) + 1:]
                return f"{entry.desc} {quote_ident(own)} on {QualifiedName(name.schema, table)}"
            return entry.label
        if name is not None:
            return f"{entry.desc} {name}"
        return entry.label

    @property
    def dumped_by_major(self) -> int | None:
        return _major_of(self.header.get("Dumped by pg_dump version", ""))

    @property
    def dumped_from_major(self) -> int | None:
        return _major_of(self.header.get("Dumped from database version", ""))


def _major_of(version: str) -> int | None:
    match = re.match(r"(\d+)(?:\.(\d+))?", version.strip())
    if not match:
        return None
    major = int(match.group(1))
    # 9.6 and older had two-part majors; report them as 9 (all older than anything we support).
    return major


def _desc_of(remainder: str) -> str:
    """The entry's description: the longest known one its first words spell ("TABLE DATA" before
    "TABLE"), else its first word. Looked up by words, not tried desc by desc: 60 prefix tests per
    line were most of parse_toc's time, which a restore waits for before it starts."""
    words = remainder.split(" ", _DESC_MAX_WORDS)
    for count in range(min(len(words), _DESC_MAX_WORDS), 1, -1):
        candidate = " ".join(words[:count])
        if candidate in _KNOWN_DESC_SET:
            return candidate
    return words[0]


def parse_toc(text: str, owners: Mapping[int, str] | None = None) -> Toc:
    """Parse `pg_restore -l --verbose` output; `owners` (toc_owners.archive_owners: dump id -> owner)
    tells where each line's names end, which the listing alone cannot when an owner holds a space."""
    owners = owners or {}
    entries: list[TocEntry] = []
    header: dict[str, str] = {}
    for line in text.splitlines():
        match = _ENTRY.match(line)
        if match:
            dump_id, class_oid, object_oid, remainder = match.groups()
            desc = _desc_of(remainder)
            rest = remainder[len(desc) + 1:] if len(remainder) > len(desc) else ""
            owner = owners.get(int(dump_id))
            if owner is not None and not rest.endswith(" " + owner):
                owner = None  # not this listing's entry (another archive's): the last word, as without
            entries.append(TocEntry(int(dump_id), int(class_oid), int(object_oid), desc, rest, line, owner=owner))
            continue
        depends = _DEPENDS.match(line)
        if depends and entries:
            entries[-1].depends_on.extend(int(x) for x in depends.group(1).split())
            continue
        head = _HEADER.match(line)
        if head and not entries:
            header[head.group(1).strip()] = head.group(2).strip()
    return Toc(entries, header)


def seeds_by_object(toc: Toc, objects: set[tuple[int, int]]) -> set[int]:
    """Dump ids of the entries for these (catalog class OID, object OID) pairs."""
    return {
        e.dump_id for e in toc.entries
        if (e.class_oid, e.object_oid) in objects
        and e.desc not in METADATA_DESCS and e.desc not in ATTACHED_DESCS - {"SEQUENCE"}
    }


def schema_names(toc: Toc) -> list[str]:
    """Schema names the archive knows, longest first (SCHEMA entries' tags, plus public)."""
    names = {"public"}
    for entry in toc.entries:
        if entry.desc == "SCHEMA" and entry.rest.startswith("- "):
            names.add(entry.named[2:] if entry.owner is not None or " " in entry.rest[2:] else entry.rest[2:])
    return sorted(names, key=len, reverse=True)


def entry_name(entry: TocEntry, namespaces: list[str]) -> QualifiedName | None:
    """schema.name of a relation entry ("namespace tag owner"; names may hold spaces): the
    namespace is the longest known schema name that fits, the owner the last word."""
    namespace = next((ns for ns in namespaces if entry.rest.startswith(ns + " ")), None)
    if namespace is None:
        return None
    if entry.owner is not None:
        return QualifiedName(namespace, entry.named[len(namespace) + 1:])
    tail = entry.rest[len(namespace) + 1:]
    tag = tail.rsplit(" ", 1)[0] if " " in tail else tail
    return QualifiedName(namespace, tag)


def entry_is_named(entry: TocEntry, schema: str, name: str, namespaces: list[str]) -> bool:
    """True if `entry` is schema.name exactly. `rest` is "namespace tag owner" joined by spaces that
    names may contain too, so the namespace is the longest known schema name that fits, and only the
    owner (one word, or nothing) may follow the tag."""
    namespace = next((ns for ns in namespaces if entry.rest.startswith(ns + " ")), None)
    if namespace != schema:
        return False
    if entry.owner is not None:
        return entry.named[len(namespace) + 1:] == name
    tail = entry.rest[len(namespace) + 1:]
    if tail == name:
        return True
    return tail.startswith(name + " ") and " " not in tail[len(name) + 1:]


def seeds_by_name(toc: Toc, names: list[QualifiedName]) -> tuple[set[int], list[QualifiedName]]:
    """Dump ids of the relation entries named exactly; and the names not found."""
    namespaces = schema_names(toc)
    found: set[int] = set()
    missing: list[QualifiedName] = []
    for name in names:
        hits = [e.dump_id for e in toc.entries
                if e.desc in SELECTABLE_DESCS and entry_is_named(e, name.schema, name.name, namespaces)]
        if hits:
            found.update(hits)
        else:
            missing.append(name)
    return found, missing


def alike_in(toc: Toc, name: QualifiedName) -> str:
    """A hint for a --table the archive lacks: a relation of the same name but for case, which a
    name typed without quotes meant (names are exact: "MixedCase"."Customers")."""
    namespaces = schema_names(toc)
    wanted = (name.schema.lower(), name.name.lower())
    for entry in toc.entries:
        if entry.desc in SELECTABLE_DESCS:
            found = entry_name(entry, namespaces)
            if found is not None and (found.schema.lower(), found.name.lower()) == wanted:
                return f" (it holds {found}: names are exact, quote mixed case)"
    return ""


def write_list(toc: Toc, included: set[int], path: Path, *, attach_last: bool = False) -> None:
    """A `pg_restore --use-list` file with the included entries in archive order (pg_restore runs
    them in the file's). `attach_last`: a partition is attached to its parent (TABLE ATTACH) after
    its own indexes and constraints are made, for a parent that exists already (a table-level
    --clean of a partition): attached first, it gets the parent's indexes made for it, and the
    archive's own CREATE INDEX / ADD CONSTRAINT of the same then fail ("already exists", "multiple
    primary keys"); attached after, it takes them as its own. Its INDEX ATTACH entries, after it,
    find them attached already (a no-op)."""
    chosen = [e for e in toc.entries if e.dump_id in included]
    if attach_last:
        last = ("TABLE ATTACH", "INDEX ATTACH")
        chosen = ([e for e in chosen if e.desc not in last] + [e for e in chosen if e.desc == "TABLE ATTACH"]
                  + [e for e in chosen if e.desc == "INDEX ATTACH"])
    lines = [e.line for e in chosen]
    try:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogateescape")  # SQL_ASCII names
    except OSError as exc:
        # A full disk fails the write, not the open: its error names no file, and the job's line
        # said "the disk is full (No space left on device)" with no word of which disk.
        raise named_error(exc, path) from None
