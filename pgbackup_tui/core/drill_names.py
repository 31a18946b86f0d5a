"""The scratch databases of `backups drill`, named so that a later drill can tell abandoned ones.

A drill runs its restore in its own process, outside the job store (whose recovery undoes what a
dead runner owned): killed with SIGKILL, or its machine gone, it cannot drop its scratch database.
So the name says who made it -- `pgbackup_drill_<host>_<pid>_<hex>`, the host as a short hash of
this machine's name -- and every drill first drops, on the server it drills on, those made on this
machine by a process that is no longer running. A drill of another machine, or one still running
here, is left alone; so is any other database.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket


from .connect import Target, connect
from .database_drops import drop_database
from .sandbox_sweep import process_alive

DRILL_PREFIX = "pgbackup_drill_"


def host_tag() -> str:
    """Eight hex digits that stand for this machine (its host name, hashed)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def drill_database_name(pid: int | None = None) -> str:
    """A new scratch database's name, made by process `pid` (this one) on this machine."""
    return f"{DRILL_PREFIX}{host_tag()}_{pid or os.getpid()}_{secrets.token_hex(4)}"


def drop_abandoned_drills(target: Target, maintenance_db: str) -> list[str]:
    """Drop the scratch databases that drills of this machine left behind when they were killed;
    their names. A database in use cannot be told from a drill's (DROP ... FORCE would end it), so
    only names made here by a process that is gone are touched."""
    own = re.compile(rf"^{re.escape(DRILL_PREFIX)}{host_tag()}_(\d+)_[0-9a-f]{{8}}$")
    with connect(target, maintenance_db) as conn:
        pattern = f"{DRILL_PREFIX}{host_tag()}_".replace("_", "\\_") + "%"
        names = [str(row[0]) for row in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                                     (pattern,))]
    dropped = []
    for name in names:
        match = own.match(name)
        if match and not process_alive(int(match.group(1))) and drop_scratch_database(target, maintenance_db, name):
            dropped.append(name)
    return dropped


def drop_scratch_database(target: Target, maintenance_db: str, name: str) -> bool:
    """Drop a drill's scratch database, the subscriptions its restore made first, without reaching
    their publisher (database_drops.let_go_of_subscriptions)."""
    return drop_database(target, maintenance_db, name)
