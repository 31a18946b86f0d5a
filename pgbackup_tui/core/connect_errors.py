"""How a failed connection is said: one line naming the server, libpq's cause and what to do.

libpq's messages name neither the server as the DBA knows it (a profile's name) nor the file or
setting to change: connect_error() keeps libpq's most specific cause, on one line, and adds the
fix (a password's sources, a password file libpq skipped for its mode, a certificate, sslmode).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConnectError
from .formatting import host_port

if TYPE_CHECKING:
    from .connect import Target

PASSWORD_SOURCES = "~/.pgpass, PGPASSWORD or the prompt"
# What a schedule's check and run say instead: cron has no terminal to prompt on, and its lines
# never carry PGPASSWORD (crontab.py).
UNATTENDED_PASSWORD_SOURCES = "~/.pgpass; a scheduled run has no prompt, and cron passes it no PGPASSWORD"

_CAUSES: list[tuple[re.Pattern[str], str, bool]] = [
    (re.compile(r"password authentication failed"), f"check the password ({PASSWORD_SOURCES})", True),
    (re.compile(r"no password supplied|password is required"), f"give a password in {PASSWORD_SOURCES}", True),
    (re.compile(r"could not translate host name|Name or service not known|nodename nor servname"),
     "check the host name", False),
    (re.compile(r"Connection refused"), "is the server running and listening on that host and port?", False),
    (re.compile(r"database \".*\" does not exist"), "check the database name", False),
    (re.compile(r"timeout expired|timed out"), "check the host, port and any firewall in between", False),
    (re.compile(r"role \".*\" does not exist"), "check the user name", False),
    (re.compile(r"no pg_hba.conf entry"), "the server's pg_hba.conf does not let this user in from here", False),
    # The server refuses the role itself: no password helps; its DBA, or another user, does.
    (re.compile(r"pg_hba.conf rejects connection"),
     "the server's pg_hba.conf has a reject line for this user from here; connect as another user, or ask to be let in",
     False),
    (re.compile(r"is not permitted to log in"), "the role is NOLOGIN: connect as another user (ALTER ROLE … LOGIN)",
     False),
    (re.compile(r"does not have CONNECT privilege"),
     "connect as another user, or GRANT CONNECT ON DATABASE … TO this role", False),
    # TLS: what libpq says names no file nor setting to change.
    (re.compile(r"certificate verify failed"),
     "the server's certificate is not signed by the CA in sslrootcert (else ~/.postgresql/root.crt): give that CA's "
     "certificate", False),
    (re.compile(r"server certificate for .* does not match host name"),
     "connect by a name the certificate holds, or use sslmode=verify-ca (its CA only)", False),
    (re.compile(r"server does not support SSL, but SSL was required"),
     "the server has ssl = off: turn it on there, or lower sslmode", False),
    (re.compile(r"too many connections for role"),
     "the role's CONNECTION LIMIT is reached: a job needs one or more connections of its own", False),
    # libpq's own hints for these are on indented lines, which the one line leaves out.
    (re.compile(r"No such file or directory"),
     "no server socket there: is the server running on this machine, with its socket in that directory?", False),
    (re.compile(r'definition of service ".*" not found'),
     "check the service file (PGSERVICEFILE, else ~/.pg_service.conf, else pg_service.conf in PGSYSCONFDIR)",
     False),
]


def connect_error(target: Target, exc: BaseException, dbname: str | None = None) -> ConnectError:
    """Turn a libpq failure into one clear line."""
    cause = _libpq_cause(str(exc))
    hint, needs_password = "", False
    for pattern, advice, is_password in _CAUSES:
        if pattern.search(cause):
            hint, needs_password = advice, is_password
            break
    db = f", database '{dbname}'" if dbname else ""
    line = f"server '{target.label}' ({target.where()}{db}): {cause}"
    # Only where libpq would have read the file: no password given (the prompt's, PGPASSWORD's). An
    # empty one is none, and keeps PGPASSWORD out (a schedule's check connects as cron will).
    reads_passfile = needs_password and not target.password and (
        target.password == "" or not os.environ.get("PGPASSWORD"))
    ignored = _ignored_passfile(target) if reads_passfile else None
    named = target.params.get("passfile") or os.environ.get("PGPASSFILE")
    if ignored is not None:  # libpq's own warning goes to a stderr nobody reads (a runner's, cron's)
        line += f"; {ignored} is readable by group or others, so libpq ignores it: chmod 600 {ignored}"
    elif reads_passfile and named and not Path(named).expanduser().exists():
        # The profile's (or PGPASSFILE's) own file, not ~/.pgpass: where the password was meant to be.
        line += f"; the password file it names, {named}, does not exist"
    elif "rejects connection" in cause and cause.endswith("no encryption") and (
            target.params.get("sslmode") in ("disable", "allow")):
        # A `hostnossl … reject` line: the fix is the profile's sslmode, not another user.
        line += (f"; the server refuses this user unencrypted, and sslmode={target.params['sslmode']} does not ask "
                 "for SSL: use sslmode=require (or verify-full)")
    elif hint:
        line += f"; {hint}"
    return ConnectError(line, needs_password=needs_password)


def for_unattended(message: str) -> str:
    """A connection failure's line as a scheduled run should read it: no prompt to type into."""
    return message.replace(PASSWORD_SOURCES, UNATTENDED_PASSWORD_SOURCES)


def _ignored_passfile(target: Target) -> str | None:
    """The password file libpq would read for `target` when it skips it for its permissions
    (group or world access), else None."""
    try:
        name = target.params.get("passfile") or os.environ.get("PGPASSFILE") or str(Path.home() / ".pgpass")
        path = Path(name).expanduser()
        mode = path.stat().st_mode
    except (OSError, RuntimeError):  # no home to look in (no HOME, no passwd entry): nothing to name
        return None
    return str(path) if stat.S_ISREG(mode) and mode & 0o077 else None


def _libpq_cause(message: str) -> str:
    """The most specific part of a libpq error message, on one line.

    libpq writes 'connection to server at "h", port 5432 failed: <cause>' and may follow it with
    indented hint lines ('\tIs the server running...'): keep the cause, drop the prefixes.
    """
    lines = [ln for ln in message.strip().splitlines() if ln.strip()]
    if not lines:
        return message.strip()
    # Several hosts, all tried (psycopg: "Multiple connection attempts failed. All failures were:"
    # then "- host: 'h', port: 'p', hostaddr: 'a': <libpq's message>" each): each host's own cause.
    # The last one alone was said, as if the other hosts had not been tried or had failed alike.
    attempts = [re.match(r"^- host: '(.*?)', port: '(.*?)'(?:, hostaddr: (?:'.*?'|None))?: (.*)$", ln) for ln in lines]
    tried = [found for found in attempts if found]
    if len(tried) > 1:
        return "; ".join(f"{host_port(found.group(1) or 'local socket', found.group(2))}: "
                         f"{_libpq_cause(found.group(3))}" for found in tried)
    main = [ln for ln in lines if not ln[:1].isspace()]
    # The cause is on the last line that says what failed; libpq may follow it with lines of its
    # own: where a wrong password came from, or what to do about a missing root certificate
    # ('Either provide the file, …'). Those are kept as a note to the cause: the last line alone
    # was all the message said, without the file it spoke of.
    failed = [i for i, ln in enumerate(main) if " failed: " in ln]
    at = failed[-1] if failed else len(main) - 1
    notes = " ".join(ln.strip() for ln in main[at + 1:])
    text = (main[at] if main else lines[-1]).strip()
    if " failed: " in text:
        text = text.rsplit(" failed: ", 1)[1]
    text = re.sub(r"^(connection failed|connection is bad):\s*", "", text)
    text = re.sub(r"^(FATAL|ERROR):\s+", "", text)
    if notes:
        text = f"{text.strip()} ({notes[:1].lower() + notes[1:] if notes[1:2].islower() else notes})"
    return text.strip() or message.strip()
