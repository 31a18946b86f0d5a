"""Whether what a schedule backs up exists on its server now: said when the schedule is saved.

Why: a schedule saved with a typo in its database or in a table's name fails at every run, at
night, and only a failure notification (if one is set) tells anyone. The check connects as a run
will (the profile, ~/.pgpass, PGPASSWORD; never a prompt) and gives up after a few seconds. It
warns and does not refuse: a server down for maintenance, or a database the DBA is about to
create, is no reason not to save; what could not be checked is said as such.
"""

from __future__ import annotations

from dataclasses import replace

import psycopg

from .config import Config
from .connect import Target, connect, for_unattended, target_from_profile
from .errors import ConfigError, PgBackupError, SelectionError
from .identifiers import parse_qualified_name, parse_schema_name
from .schedules import Schedule
from .selection import require_relations, require_schemas

CHECK_CONNECT_TIMEOUT_S = 5  # a save waits at most this long for a server that does not answer


def schedule_target_warning(config: Config, schedule: Schedule) -> str | None:
    """One line on what the schedule names that is not on its server (its database, a table or
    schema it selects; a set's databases), or on why that could not be checked now; None if all is there."""
    try:
        target = _quick(target_from_profile(config.server(schedule.server)))
    except ConfigError as exc:
        return str(exc)
    databases = [schedule.database] if schedule.what == "database" and schedule.database else list(schedule.databases)
    if not databases:
        return None
    try:
        with connect(target, target.maintenance_db(databases[0])) as conn:
            present = {str(row[0]) for row in conn.execute(
                "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (databases,))}
            # A drill restores into a scratch database it creates: without the right, every run fails its drill.
            row = conn.execute("SELECT current_user, rolcreatedb OR rolsuper FROM pg_roles "
                               "WHERE rolname = current_user").fetchone()
            role, may_create = row if row else ("?", True)
        missing = [name for name in databases if name not in present]
        if missing:
            return (f"schedule {schedule.name}: database '{missing[0]}' does not exist on server '{target.label}' now; "
                    "every run will fail until it does (names are exact)")
        if schedule.drill and not may_create:
            return (f"schedule {schedule.name}: drill = true restores each backup into a scratch database, and role "
                    f"'{role}' may not create databases on server '{target.label}' (ALTER ROLE … CREATEDB); every run "
                    "will fail its drill until it may")
        if schedule.what == "database" and (schedule.tables or schedule.schemas or schedule.exclude_tables):
            with connect(target, databases[0]) as conn:
                require_relations(conn, [parse_qualified_name(t) for t in schedule.tables], databases[0], "--table")
                require_schemas(conn, [parse_schema_name(s) for s in schedule.schemas], databases[0])
                require_relations(conn, [parse_qualified_name(t) for t in schedule.exclude_tables], databases[0],
                                  "--exclude-table")
    except SelectionError as exc:  # a table or schema that is not there
        return f"schedule {schedule.name}: {exc}; every run will fail until it is"
    except PgBackupError as exc:  # a connection refused, a password needed
        return f"schedule {schedule.name}: not checked against server '{target.label}' now: {for_unattended(str(exc))}"
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"schedule {schedule.name}: not checked against server '{target.label}' now: {first}"
    return None


def _quick(target: Target) -> Target:
    params = dict(target.params_items) | {"connect_timeout": str(CHECK_CONNECT_TIMEOUT_S)}
    return replace(target, params_items=tuple(sorted(params.items())))
