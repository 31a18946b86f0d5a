"""Finishing what dead runners left: job_recovery.recover with the means to drop a database.

Called at the start of every command (cli.main) and by a front whose runner died under it. The
store knows files; dropping a database needs the job's server, which its spec names (never with
a password: libpq's own sources must supply one, as for cron).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import job_store
from .job_recovery import recover

# connect and database_drops (psycopg, 60-90 ms to import) only when a dead job left a database to
# drop: every command starts with recover_jobs, and most find nothing to do.
if TYPE_CHECKING:
    from .connect import Target

CLEANUP_CONNECT_TIMEOUT_S = 3  # a server that is down must not hold up every command for long
CLEANUP_LOCK_TIMEOUT_S = 2  # nor a lock another session holds on what the drop updates


def _job_target(spec: dict[str, Any]) -> Target:
    """The server the job described by `spec` worked on, with a short connect timeout."""
    plan = job_store.plan_from_json(spec["kind"], spec["plan"])
    target: Target = plan.target
    params = dict(target.params_items)
    params["connect_timeout"] = str(CLEANUP_CONNECT_TIMEOUT_S)
    return replace(target, params_items=tuple(sorted(params.items())))


def drop_job_database(spec: dict[str, Any], name: str, identity: str | None) -> str:
    """Drop database `name` that the job described by `spec` created (raises if it cannot):
    database_drops' DROPPED, ABSENT, or ANOTHER (the one of that name is not the job's `identity`;
    without one, a runner killed around its CREATE: one that holds anything, which the job's did not yet)."""
    from .database_drops import drop_database_of  # psycopg: only now, with a database to drop

    target = _job_target(spec)
    return drop_database_of(target, target.maintenance_db(name), name, oid=identity,
                            lock_timeout_s=CLEANUP_LOCK_TIMEOUT_S, only_if_empty=True)


class JobServerLook:
    """job_recovery.ServerLook on the job's server: was a dead restore's last step done?"""

    def database_oid(self, spec: dict[str, Any], name: str) -> str | None:
        """A restore's swap was done if this is the OID of the database it restored."""
        from .database_drops import database_oid

        target = _job_target(spec)
        return database_oid(target, target.maintenance_db(name), name)

    def transaction_status(self, spec: dict[str, Any], xid: str, session: str | None) -> str:
        from .restore_transaction import transaction_status

        target = _job_target(spec)
        return transaction_status(target, target.default_dbname, xid, session)

    def fill_status(self, spec: dict[str, Any], name: str, oid: str | None) -> str:
        from .restore_transaction import fill_status

        target = _job_target(spec)
        return fill_status(target, target.maintenance_db(name), name, oid)

    def end_timescale_restore(self, spec: dict[str, Any], dbname: str) -> None:
        from .timescale import end_restoring

        target = _job_target(spec)
        end_restoring(target, target.maintenance_db(dbname), dbname)


def recover_jobs(only: str | None = None) -> list[str]:
    """Clean up after jobs whose runner died; one line for each job handled."""
    return recover(drop_job_database, only=only, look=JobServerLook())
