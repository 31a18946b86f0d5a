"""Qualified names as SQL writes them, and pg_dump patterns that match exactly that object.

`public.orders`, `"Sales & Ops"."Order Items"`, `public."star*name"`: unquoted parts fold to
lower case, quoted parts are exact, `""` inside quotes is a quote, no schema means `public`.

pg_dump's -t/-n/-T take psql *patterns*, where `*`, `?` and `.` are wildcards/separators and
unquoted letters fold. Inside double quotes psql escapes every regex character, so a fully
quoted `"schema"."name"` selects that one object and nothing else; that is what we emit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import UsageError

# What may stand unquoted in SQL: a letter or _, then letters, digits, _ or $ (non-ASCII letters too).
_UNQUOTED = re.compile(r"^[^\W\d][\w$]*$", re.UNICODE)
_PLAIN_LOWER = re.compile(r"^[a-z_][a-z0-9_$]*$")
# PostgreSQL keywords that are not "unreserved" (kwlist.h): an identifier spelled like one must be
# quoted, as PostgreSQL's own quote_ident() does.
_KEYWORDS_NEEDING_QUOTES = frozenset("""
all analyse analyze and any array as asc asymmetric authorization between bigint binary bit boolean both
case cast char character check coalesce collate collation column concurrently constraint create cross
current_catalog current_date current_role current_schema current_time current_timestamp current_user dec
decimal default deferrable desc distinct do else end except exists extract false fetch float for foreign
freeze from full grant greatest group grouping having ilike in initially inner inout int integer intersect
interval into is isnull join json json_array json_arrayagg json_exists json_object json_objectagg json_query
json_scalar json_serialize json_table json_value lateral leading least left like limit localtime
localtimestamp merge_action national natural nchar none normalize not notnull null nullif numeric offset on
only or order out outer overlaps overlay placing position precision primary real references returning right
row select session_user setof similar smallint some substring symmetric system_user table tablesample then
time timestamp to trailing treat trim true union unique user using values varchar variadic verbose when
where window with xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi
xmlroot xmlserialize xmltable
""".split())  # noqa: SIM905 - kwlist.h's words as text; a literal of 100+ quoted items hides them


def is_system_schema(schema: str) -> bool:
    """pg_catalog, information_schema, pg_toast, pg_temp_N...: the server's own, which pg_dump never
    dumps (it skips every pg_* schema and information_schema; a user schema cannot be named pg_*)."""
    return schema.startswith("pg_") or schema == "information_schema"


def quote_ident(name: str) -> str:
    """Quote an identifier only when SQL needs it (for display and for SQL we run)."""
    if _PLAIN_LOWER.match(name) and name not in _KEYWORDS_NEEDING_QUOTES:
        return name
    return '"' + name.replace('"', '""') + '"'


def always_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# Bytes that are not UTF-8 (a SQL_ASCII database's names and data) reach us as the lone
# surrogates U+DC80..U+DCFF (server_text.py): exact for SQL and argv, unprintable anywhere else.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def in_encoding(text: str, codec: str) -> str:
    """`text` for a child's argv that reads it in `codec` (Python's name for the child's client encoding).

    Python writes argv as UTF-8 with surrogateescape: the str returned is the one it writes as
    `text` encoded in `codec`. A SQL_ASCII name (already surrogate-escaped bytes) comes back as is.
    """
    if codec.replace("_", "-").lower() in ("utf-8", "utf8"):
        return text
    return text.encode(codec, "surrogateescape").decode("utf-8", "surrogateescape")


def printable(text: str) -> str:
    """`text` for a human, a log or a terminal: each byte that was not UTF-8 shown as \\xNN."""
    return _ESCAPED_BYTE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)


# C0, DEL and C1: U+009B is CSI, which some terminals obey as ESC [ (a name could move the cursor, recolour).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str) -> str:
    """`text` on one line of a terminal (a tree line, a table cell): printable(), and each control
    character shown as \\n, \\r, \\t or \\xNN. A table named "line<LF>break" is legal SQL; drawn
    as it is, its tree line broke in two over the next one."""
    return _CONTROL.sub(lambda m: _CONTROL_ESCAPES.get(m.group(), f"\\x{ord(m.group()):02x}"), printable(text))


@dataclass(frozen=True, order=True)
class QualifiedName:
    schema: str
    name: str

    def __str__(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    @property
    def pattern(self) -> str:
        """The pg_dump -t/-T pattern that matches this relation and no other."""
        return f"{always_quote(self.schema)}.{always_quote(self.name)}"

    @property
    def sql(self) -> str:
        """Safe to splice into SQL as a relation name."""
        return f"{always_quote(self.schema)}.{always_quote(self.name)}"


def split_name_parts(text: str) -> list[str]:
    """Split `a."b.c".D` into ['a', 'b.c', 'd'] following SQL's identifier rules."""
    parts: list[str] = []
    source = text.strip()
    text, i, n = source, 0, len(source)
    if not text:
        raise UsageError("empty name; write a table as schema.table, e.g. public.orders")
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i < n and text[i] == '"':
            i += 1
            chunk = []
            while True:
                if i >= n:
                    raise UsageError(f"unterminated quote in name {source!r}")
                if text[i] == '"':
                    if i + 1 < n and text[i + 1] == '"':
                        chunk.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                chunk.append(text[i])
                i += 1
            part = "".join(chunk)
            if not part:
                raise UsageError(f'empty quoted identifier "" in name {source!r}')
        else:
            start = i
            while i < n and text[i] != "." and not text[i].isspace() and text[i] != '"':
                i += 1
            raw = text[start:i]
            if not raw:
                raise UsageError(f"missing identifier in name {source!r}")
            if not _UNQUOTED.match(raw):
                raise UsageError(
                    f"{raw!r} in {source!r} is not a plain SQL identifier; put it in double quotes "
                    f"to name it exactly, e.g. {always_quote(raw)}"
                )
            # SQL folds unquoted identifiers; PostgreSQL folds ASCII letters only (in UTF-8).
            part = "".join(c.lower() if c.isascii() else c for c in raw)
        parts.append(part)
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return parts
        if text[i] != ".":
            raise UsageError(f"unexpected {text[i]!r} in name {source!r}; quote names with special characters")
        i += 1


def parse_qualified_name(text: str, default_schema: str = "public") -> QualifiedName:
    """`orders` -> public.orders; `"Sales & Ops"."Order Items"` -> exact parts."""
    parts = split_name_parts(text)
    if len(parts) == 1:
        return QualifiedName(default_schema, parts[0])
    if len(parts) == 2:
        return QualifiedName(parts[0], parts[1])
    raise UsageError(f"{text!r} has {len(parts)} parts; write schema.table (the database is given with --db)")


def parse_schema_name(text: str) -> str:
    if not text.strip():  # split_name_parts' own line asks for schema.table: a table's hint, not a schema's
        raise UsageError("empty schema name; write a schema as SQL does, e.g. inventory or \"Sales & Ops\"")
    parts = split_name_parts(text)
    if len(parts) != 1:
        raise UsageError(f"{text!r} is not a schema name; quote it if it contains a dot")
    return parts[0]
