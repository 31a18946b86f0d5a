"""Which databases of a cluster set or a whole-cluster file a target server holds already.

A set restores each member into a new database, or into one that exists only when it is empty
(postgres, which every server has): one that holds objects is refused before anything runs. A
whole-cluster file creates each of its databases but the two every server has, which it fills: one
that exists is refused. The restore (cluster_restore.py) and the TUI's dialog, before Start, ask the
server the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

from .connect import Target, connect
from .database_contents import restore_collisions

# The databases a whole-cluster file fills rather than creates (every server has them).
FILLED_DATABASES = ("postgres", "template1")


def existing_databases(target: Target) -> set[str]:
    """The names of the target's databases (templates too)."""
    with connect(target, target.default_dbname) as conn:
        return {str(row[0]) for row in conn.execute("SELECT datname FROM pg_database")}


def occupied_databases(target: Target, names: Iterable[str], existing: set[str]) -> dict[str, str]:
    """Of `names`, those among `existing` that hold something a restore would collide with, each
    with what it holds ("4 schemas, 116 relations, 1 large object"), in the order of `names`."""
    occupied: dict[str, str] = {}
    for name in names:
        if name not in existing:
            continue
        with connect(target, name) as conn:
            counts = restore_collisions(conn)
        if counts:
            occupied[name] = ", ".join(f"{count} {kind.removesuffix('s') if count == 1 else kind}"
                                       for kind, count in counts.items())
    return occupied


def taken_databases(created: Iterable[str], existing: set[str]) -> list[str]:
    """Of the databases a whole-cluster file creates (its manifest's list), those among `existing`."""
    return [name for name in created if name in existing and name not in FILLED_DATABASES]
