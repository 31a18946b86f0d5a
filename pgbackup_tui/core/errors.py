"""Errors a user can cause, each carrying the exit code the CLI returns for it.

str(error) is the one line shown to the user: it names the thing (file, server, table) and
what to do. Anything that is *not* a PgBackupError is a bug and gets a traceback with --debug.
"""

from __future__ import annotations

import sys

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_ERRORS_IGNORED = 3
EXIT_CANCELLED = 130


class PgBackupError(Exception):
    """Base for every error we expect and explain."""

    exit_code = EXIT_BAD_INPUT


class UsageError(PgBackupError):
    """Options that do not fit together, or a value out of range."""


class ConfigError(PgBackupError):
    """The config file cannot be read, or a profile is invalid."""


class ConnectError(PgBackupError):
    """A server could not be reached or refused us (network, authentication, missing database)."""

    def __init__(self, message: str, *, needs_password: bool = False) -> None:
        super().__init__(message)
        self.needs_password = needs_password


class ToolNotFoundError(PgBackupError):
    """No pg_dump / pg_restore / psql new enough for the server or archive."""


class SelectionError(PgBackupError):
    """A table or schema named on the command line does not exist."""


class ArchiveError(PgBackupError):
    """An archive that is not one, is truncated, or was written by a newer pg_dump."""


class TargetError(PgBackupError):
    """A restore target that must not be touched (non-empty without --clean, already exists...)."""


class JobFailed(PgBackupError):
    """The child process failed after it started."""

    exit_code = EXIT_FAILED


class ServerLost(JobFailed):
    """The server went away half way (it stopped, the network failed): not the archive's fault."""


# query_canceled (a statement_timeout, pg_cancel_backend) and lock_not_available (a lock_timeout):
# psycopg's OperationalErrors, said as a lost connection, which they are not.
CANCELLED_STATES = frozenset({"57014", "55P03"})


def server_error_said(exc: BaseException, server: str | None) -> str | None:
    """One line for a psycopg error the server caused (a session lost or ended, a statement it
    refused: one with an SQLSTATE), or None: not the server's, but one of our own (a closed
    connection used, a bad placeholder), a bug with its traceback. psycopg is looked up, not
    imported: an error of it exists only where the job imported it (60-90 ms)."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is None or not (isinstance(exc, psycopg.OperationalError)
                               or (isinstance(exc, psycopg.Error) and bool(exc.sqlstate))):
        return None
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    where = f"server '{server}'" if server else "the server"
    if getattr(exc, "sqlstate", None) in CANCELLED_STATES:  # operational errors too, but the session goes on
        timeout = "timeout" in first
        return (f"{where} cancelled a statement of the job ({first})"
                # The job's sessions set their own timeouts to 0 (connect.py), as pg_dump does: what is
                # left is a limit outside them, or a role's of a few ms that cancelled that very SET.
                + ("; the job's sessions run without the role's and the database's timeouts: look for a "
                   "limit between (a pooler's query timeout), or a role's or database's of a few ms (ALTER "
                   "ROLE / ALTER DATABASE … SET) that cancelled even that"
                   if timeout else ""))
    if isinstance(exc, psycopg.OperationalError):
        return f"the connection to {where} was lost or ended ({first})"
    return f"{where} refused a statement ({first})"
