"""What an archive holds, counted by kind of TOC entry, in the words `backups show` and the TUI's
details use.

Large objects are the odd kind: pg_dump writes them as two kinds of entry, neither of them one
per large object in every version. pg_dump before 17: a `BLOB` entry per large object (its owner,
its grants) and one `BLOBS` entry holding the data of all of them; 17 and later: a `BLOB
METADATA` entry per group of up to 1,000 large objects (of one owner and the same grants; its tag
the first OID, or `FIRST..LAST`), and a `BLOBS` data entry per group. Counted by entry kind they
read "1 blob, 1 blobs" for one large object. They are counted as large objects instead: a 17+
group's count is read from the `lo_create` lines pg_restore writes for its metadata entries (no
data is read), only when some group's tag is a range.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from .toc import Toc

PER_OBJECT = "BLOB"  # pg_dump before 17: one per large object
PER_GROUP = "BLOB METADATA"  # 17+: one per group
LARGE_OBJECT_DESCS = frozenset({PER_OBJECT, PER_GROUP, "BLOBS", "LARGE OBJECTS"})  # data: BLOBS (LARGE OBJECTS)
_LO_CREATE = re.compile(rb"lo_create\('?\d+'?\)")


def _tag(rest: str) -> str:
    # "namespace tag owner" as pg_restore lists it; a large object's namespace is "-", its tag its OID(s)
    parts = rest.split(" ")
    return parts[1] if len(parts) > 1 else ""


def count_large_objects(toc: Toc, pg_restore: str, archive: Path, env: dict[str, str]) -> int | None:
    """How many large objects the archive holds (0: none); None when pg_restore could not say."""
    per_object = sum(1 for entry in toc.entries if entry.desc == PER_OBJECT)
    groups = [entry for entry in toc.entries if entry.desc == PER_GROUP]
    if per_object or not groups:
        return per_object
    if all(".." not in _tag(entry.rest) for entry in groups):
        return len(groups)  # each group of one
    with tempfile.NamedTemporaryFile("w", suffix=".list", encoding="utf-8") as listing:
        listing.write("".join(f"{entry.line}\n" for entry in groups))
        listing.flush()
        try:
            done = subprocess.run([pg_restore, "--use-list", listing.name, "--file=-", str(archive)],
                                  capture_output=True, env=env, stdin=subprocess.DEVNULL, check=False, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return None
    if done.returncode != 0:
        return None
    return len(_LO_CREATE.findall(done.stdout))


def contents_text(counts: dict[str, int], large_objects: int | None = None) -> str:
    """'3 large objects, 2 tables, …': the counts by kind (lower case, as pg_restore names them),
    large objects as such. Without their exact number (a manifest's counts: entries only), a 17+
    archive's are said as the groups they are."""
    parts = {kind.lower(): n for kind, n in counts.items() if kind not in LARGE_OBJECT_DESCS}
    if large_objects is None:
        if counts.get(PER_OBJECT):
            large_objects = counts[PER_OBJECT]
        elif counts.get(PER_GROUP):
            n = counts[PER_GROUP]
            parts["large objects"] = n
            return _join(parts, {"large objects": f"large objects in {n} group{'s' if n != 1 else ''}"})
    if large_objects:
        parts["large object"] = large_objects
        return _join(parts, {"large object": f"{large_objects} large object{'s' if large_objects != 1 else ''}"})
    return _join(parts, {})


def _join(parts: dict[str, int], said: dict[str, str]) -> str:
    return ", ".join(said.get(kind, f"{n} {_kind_noun(kind, n)}") for kind, n in sorted(parts.items()))


# Kinds whose name does not take a plural: a mass noun ("table data", "materialized view data"), a
# phrase ("sequence owned by"), one entry an archive has at most once (its encoding, ...), a word
# already plural (pg_dump 18's "statistics data", extended "statistics").
_NO_PLURAL = ("data", "owned by", "encoding", "stdstrings", "searchpath", "statistics")


def _kind_noun(kind: str, n: int) -> str:
    """A TOC entry kind, lower case as pg_restore names it, for `n` of them: "2 tables", "9 indexes",
    "1 policy", "3 policies" (the counts read "28 table, 24 constraint" in `backups show` and the TUI)."""
    if n == 1 or kind.endswith(_NO_PLURAL):
        return kind
    if kind.endswith(("s", "x", "ch", "sh")):  # index, index attach, operator class
        return kind + "es"
    if kind.endswith("y") and kind[-2:-1] not in "aeiou":  # policy, text search dictionary
        return kind[:-1] + "ies"
    return kind + "s"
