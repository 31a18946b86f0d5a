"""Whether what a schedule backs up exists on its server now: said when the schedule is saved.

Why: a schedule saved with a typo in its database or in a table's name fails at every run, at
night, and only a failure notification (if one is set) tells anyone. The check connects as a run
will (the profile, ~/.pgpass, pg_service.conf; not PGPASSWORD, never a prompt) and gives up after a few seconds. It
warns and does not refuse: a server down for maintenance, or a database the DBA is about to
create, is no reason not to save; what could not be checked is said as such.
"""

from __future__ import annotations

import os
from dataclasses import replace

import psycopg

from .config import Config
from .connect import Target, connect, service_keys, target_from_profile
from .connect_errors import for_unattended
from .defaults import NEEDS_16, needs_asking, unsupported_compress
from .errors import ConfigError, PgBackupError, SelectionError
from .identifiers import parse_qualified_name, parse_schema_name
from .pgtools import find_client_tools, installed_client_tools
from .schedules import Schedule
from .selection import require_relations, require_schemas

CHECK_CONNECT_TIMEOUT_S = 5  # a save waits at most this long for a server that does not answer


def schedule_target_warning(config: Config, schedule: Schedule) -> str | None:
    """One line on what the schedule names that is not on its server (its database, a table or
    schema it selects; a set's databases), or on why that could not be checked now; None if all is there."""
    try:
        target = _as_cron_connects(_quick(target_from_profile(config.server(schedule.server))))
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


def compress_refusal(config: Config, schedule: Schedule, given: str = "--compress") -> str | None:
    """Why the pg_dump this schedule's runs would use cannot compress as it asks (lz4, zstd: 16+,
    built with them), or None: it can, or that cannot be told now. Told when its server answers
    (its major picks the pg_dump, as a run does), or when no pg_dump here has the method at all,
    whichever server it turns out to be; otherwise the run says it (a failed run naming the key)."""
    spec = schedule.compress
    if not isinstance(spec, str) or not needs_asking(spec):
        return None
    try:
        target = _quick(target_from_profile(config.server(schedule.server)))
    except ConfigError:
        return None  # put_schedule says it
    try:
        with connect(target, target.maintenance_db(schedule.database or "")) as conn:
            major = conn.info.server_version // 10000
    except (PgBackupError, psycopg.Error):
        major = None
    try:
        if major is not None:
            tools = [find_client_tools(major, target.bin_dir, label=f"server '{target.label}'")]
        else:
            tools = installed_client_tools(target.bin_dir)
    except PgBackupError:
        return None  # no pg_dump for that server: every run says so, whatever the compression
    if not tools or any(unsupported_compress(one, spec) is None for one in tools):
        return None
    if major is not None:
        why = unsupported_compress(tools[0], spec, given)
    else:  # the server did not answer: no pg_dump it could be given has the method
        found = ", ".join(f"{one.version} in {one.bin_dir}" for one in tools)
        why = (f"{given} {spec}: no pg_dump here can compress with it ({NEEDS_16}; found {found}); pick a gzip "
               "level 0-9 or another method")
    return f"schedule {schedule.name}: {why}; nothing was saved"


def _as_cron_connects(target: Target) -> Target:
    """`target` without the PGPASSWORD of this shell: cron's lines never carry it (crontab.py), so a
    check that used it passed, said nothing, and every run cron started failed with "no password
    supplied". libpq takes an empty password as none given: it reads the password file, as a run does.
    But a password keyword, even an empty one, also beats the service file's (pg_service.conf's
    `password=`, which cron's run reads: its lines carry PGSERVICEFILE), and the check warned of no
    password where the run had one: where the target's service gives a password, libpq takes that
    one before PGPASSWORD anyway, and the target is left as it is."""
    service = target.params.get("service") or os.environ.get("PGSERVICE")
    if "password" in service_keys(service):
        return target.with_password(None)
    return target.with_password("")


def _quick(target: Target) -> Target:
    params = dict(target.params_items) | {"connect_timeout": str(CHECK_CONNECT_TIMEOUT_S)}
    return replace(target, params_items=tuple(sorted(params.items())))
