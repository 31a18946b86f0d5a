"""From a profile or a DSN to a connection target, psycopg connections and child environments.

A Target's conninfo never carries a password: the password lives only in `Target.password`
(memory), reaches psycopg as a keyword argument and child processes as PGPASSWORD in their
environment, never their argv. libpq's own sources (~/.pgpass, PGPASSWORD, pg_service.conf)
keep working as usual.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .server_profile import ServerProfile, conninfo_error, hidden_password, libpq_host_port
from .connect_errors import connect_error
from .errors import UsageError
from .formatting import host_port
from .server_text import PREFERRED_CLIENT_ENCODING, RAW_CLIENT_ENCODING, prepare_text, refuses_client_encoding

APP_NAME = "pgbackup-tui"
DEFAULT_CONNECT_TIMEOUT = 10
KEEPALIVES = {"keepalives_idle": "60", "keepalives_interval": "10", "keepalives_count": "6"}  # see conninfo


@dataclass(frozen=True)
class Target:
    """Where to connect: libpq keywords (no password), a label for messages, an optional password."""

    label: str
    params_items: tuple[tuple[str, str], ...]
    password: str | None = field(default=None, repr=False, compare=False)
    bin_dir: str | None = None

    @property
    def params(self) -> dict[str, str]:
        return dict(self.params_items)

    @property
    def default_dbname(self) -> str:
        return self.params.get("dbname") or "postgres"

    def maintenance_db(self, avoiding: str) -> str:
        """The database to connect to for work on the database `avoiding` (create, rename, drop it,
        look at its sessions): the profile's, unless that is the one; then postgres, or template1
        when the one is postgres (a --clean of postgres renames it: nobody may be connected to it)."""
        default = self.default_dbname
        if default != avoiding:
            return default
        return "postgres" if avoiding != "postgres" else "template1"

    def conninfo(self, dbname: str | None = None) -> str:
        """A libpq conninfo string for `dbname` (or the profile's), without any password."""
        params = self.params
        if dbname is not None:
            params["dbname"] = dbname
        params.setdefault("connect_timeout", str(DEFAULT_CONNECT_TIMEOUT))
        host = params.get("host") or ("" if "service" in params else os.environ.get("PGHOST", ""))
        if not host.startswith(("/", "@")) and not _service_sets_keepalives(params.get("service")):
            # A link that dies silently (a NAT or firewall dropping it, a cable): libpq's reads
            # would wait for the kernel's 2 hours of keepalive; these end them in about 2 minutes.
            # The server's kernel answers the probes: a long lock wait or a slow query is not cut.
            # Also where the host is not ours to see (a pg_service.conf entry, PGHOST, several
            # hosts): libpq ignores them on a Unix socket. A service's own keepalives stay its own.
            for option, value in KEEPALIVES.items():
                params.setdefault(option, value)
        # We choose the client encoding (server_text.py): one given here would beat PGCLIENTENCODING.
        params.pop("client_encoding", None)
        return make_conninfo(**params)

    def where(self) -> str:
        """host:port as a human reads it, for messages."""
        params = self.params
        if "service" in params and "host" not in params:
            return f"service {params['service']}"
        host, port = libpq_host_port(params)
        return host_port(host or "local socket", port)

    def with_password(self, password: str | None) -> Target:
        return replace(self, password=password)

    def child_env(self, application_name: str = APP_NAME, base: dict[str, str] | None = None,
                  client_encoding: str = PREFERRED_CLIENT_ENCODING) -> dict[str, str]:
        """The environment for pg_dump & co: the password goes here, never on the command line.

        `client_encoding` is what names in argv and in the child's messages are written in: for
        pg_dump, the one our own session used on that database (server_text.session_client_encoding).
        pg_restore and psql restore in the archive's own encoding whatever this says.
        """
        env = dict(os.environ if base is None else base)
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        env["PGAPPNAME"] = application_name
        env["PGCLIENTENCODING"] = client_encoding
        # Messages we parse must not be translated.
        env["LC_MESSAGES"] = "C"
        return env


def _service_sets_keepalives(service: str | None) -> bool:
    """Whether pg_service.conf's entry for `service` sets keepalives itself (then ours would beat
    it: a conninfo's keywords win over its service's)."""
    return any(key.startswith("keepalives") for key in service_keys(service))


def service_keys(service: str | None) -> list[str]:
    """The keywords pg_service.conf's entry for `service` sets. Looked up as libpq does:
    PGSERVICEFILE or ~/.pg_service.conf, then the system's file; an entry we cannot read sets none."""
    if not service:
        return []
    user_file = os.environ.get("PGSERVICEFILE") or str(Path("~/.pg_service.conf").expanduser())
    system_dir = os.environ.get("PGSYSCONFDIR") or "/etc/postgresql-common"
    for name in (user_file, str(Path(system_dir) / "pg_service.conf")):
        try:
            text = Path(name).read_text(errors="replace")
        except OSError:  # no such file (or unreadable): libpq goes on to the next one too
            continue
        section: str | None = None
        keys: list[str] | None = None
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith("[") and line.endswith("]"):
                if keys is not None:
                    break
                section = line[1:-1].strip()
                keys = [] if section == service else None
            elif keys is not None and "=" in line and not line.startswith("#"):
                keys.append(line.split("=", 1)[0].strip())
        if keys is not None:  # the first file that defines the service is the one libpq reads
            return keys
    return []


def target_from_profile(profile: ServerProfile, password: str | None = None) -> Target:
    params = profile.connection_params()
    params.pop("password", None)
    return Target(
        label=profile.name,
        params_items=tuple(sorted(params.items())),
        password=password,
        bin_dir=profile.bin_dir,
    )


def target_from_dsn(dsn: str, label: str | None = None) -> Target:
    """A target for `--dsn`. A password inside the DSN is moved out of the conninfo into memory."""
    try:
        params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    except psycopg.ProgrammingError as exc:
        raise UsageError(f"the DSN does not parse: {conninfo_error(exc)}") from None
    if "sslpassword" in params:
        raise UsageError(
            "the DSN contains sslpassword, which would be visible in the process list of every child; "
            "use a key without a passphrase, or a pg_service.conf entry with --dsn service=NAME"
        )
    password = params.pop("password", None)
    for key, value in params.items():  # a second conninfo inside a field would carry its password into argv
        if hidden_password(value):
            raise UsageError(f"the DSN's {key} holds a connection string with a password; give the password "
                             "once, in ~/.pgpass or PGPASSWORD")
    if label is None:
        label = _dsn_label(params)
    return Target(label=label, params_items=tuple(sorted(params.items())), password=password)


def _dsn_label(params: dict[str, str]) -> str:
    """A short name for an unnamed server: `db1:5432`, `local:5433` for a socket, or the service.
    Several hosts (`host=db1,db2`) are named each: the first alone named a host that may be down
    as the server (answering() names the one that answered, once a job has connected)."""
    if "service" in params and "host" not in params:
        return params["service"]
    host, port = libpq_host_port(params)
    hosts, ports = host.split(","), port.split(",")
    named = ["local" if not one or one.startswith("/") else one for one in hosts]
    if len(named) > 1 and len(ports) in (1, len(named)):
        return ",".join(host_port(one, ports[0] if len(ports) == 1 else ports[i]) for i, one in enumerate(named))
    return host_port(named[0], ports[0])


def several_hosts(target: Target) -> bool:
    """libpq tries `target`'s hosts in turn (`host=db1,db2`), or a service's (not looked into)."""
    return "," in libpq_host_port(target.params)[0]


def answering(target: Target, conn: psycopg.Connection) -> Target:
    """`target` pinned to the host of its list that answered `conn`: the job's children and later
    connections go where its first went (not to a first host that has come back meanwhile, nor
    through a dead one's connect_timeout again), and a label made from the DSN names that host,
    not the first of the list (a dead one: its folder, its log's "server … runs", the catalog's
    server). A profile's name stays its label. A target of one host is returned as it is."""
    if not several_hosts(target):
        return target
    params = target.params
    pinned = params | {"host": conn.info.host, "port": str(conn.info.port)}
    if params.get("hostaddr"):
        pinned["hostaddr"] = conn.info.hostaddr
    label = _dsn_label(pinned) if target.label == _dsn_label(params) else target.label
    return replace(target, label=label, params_items=tuple(sorted(pinned.items())))


# The session timeouts a role or database may set, each with the server version that has it.
# transaction_timeout first: setting it to 0 disarms the current transaction's timer at once.
_SESSION_TIMEOUTS = (("transaction_timeout", 170000), ("statement_timeout", 0), ("lock_timeout", 90300),
                     ("idle_in_transaction_session_timeout", 90600))
# Under a 1 ms statement_timeout on a busy machine about 1 lift in 100 is cancelled (measured:
# 50 of 6,000 connects), each try a round trip on the same connection.
_LIFT_ATTEMPTS = 8
# A 1 ms transaction_timeout ends the session instead, about 1 connection in 300 (measured).
_CONNECT_ATTEMPTS = 4


def _no_session_timeouts(conn: psycopg.Connection) -> None:
    """Set the session's timeouts to 0, in one message of SETs: they run under the timeouts they
    lift, and one of a few ms cancels them (QueryCanceled: tried again; the message is one implicit
    transaction, so none of them stays). SETs, not a set_config over pg_settings: a new backend's
    first look at pg_settings loads its catalog caches and outlasts a 1 ms timeout every time. The
    timer must fire inside the message: a set_config that it cancelled as the statement ended had
    the server send the cancel as the answer to the caller's next statement, on a connection psycopg
    was done with (seen in CI)."""
    version = conn.info.server_version
    # The SELECT last: from 13 a timer that fires in the first SET, after its last look at
    # interrupts, stays fired (the SETs and the commit never look), and the server would send it
    # when it next reads. The executor looks, so the message itself is cancelled (review).
    lift = "; ".join([*(f"SET {name} = 0" for name, since in _SESSION_TIMEOUTS if version >= since), "SELECT 1"])
    for attempt in range(1, _LIFT_ATTEMPTS + 1):
        try:
            conn.execute(lift)
            return
        except psycopg.errors.QueryCanceled:
            if attempt == _LIFT_ATTEMPTS:
                raise


def connect(
    target: Target,
    dbname: str | None = None,
    *,
    application_name: str = APP_NAME,
    autocommit: bool = True,
) -> psycopg.Connection:
    """Open a connection or raise ConnectError with one line naming the server and the cause.

    Text comes back as str on a database of any encoding, SQL_ASCII included (server_text.py).
    """
    # UTF8 from the start (and not PGCLIENTENCODING, which may name one the database cannot convert to).
    # libpq keywords, merged into the conninfo in memory (psycopg does the same with keyword
    # arguments); the password only when there is one, so that ~/.pgpass still serves.
    params: dict[str, str] = {"application_name": application_name, "client_encoding": PREFERRED_CLIENT_ENCODING}
    if target.password is not None:
        params["password"] = target.password
    for attempt in range(1, _CONNECT_ATTEMPTS + 1):
        try:
            try:
                conn = psycopg.connect(make_conninfo(target.conninfo(dbname), **params), autocommit=True)
            except psycopg.OperationalError as exc:
                if not refuses_client_encoding(exc):
                    raise
                raw = params | {"client_encoding": RAW_CLIENT_ENCODING}
                conn = psycopg.connect(make_conninfo(target.conninfo(dbname), **raw), autocommit=True)
        except psycopg.OperationalError as exc:
            raise connect_error(target, exc, dbname) from None
        try:
            # As pg_dump and pg_restore set their own sessions: a role's or database's statement_timeout
            # or lock_timeout (ALTER ROLE / DATABASE … SET) is for its applications, and under one of a
            # few ms our catalog look-ups failed a dump that pg_dump alone would make. First, so that
            # nothing after it runs under them; a step that wants a bound sets its own (the progress
            # polls, the size look-ups).
            _no_session_timeouts(conn)
            prepare_text(conn)  # in autocommit: its SET must not belong to a caller's transaction
            conn.autocommit = autocommit
        except psycopg.Error as exc:
            # A transaction_timeout (PostgreSQL 17) that fires during the lift ends the session: its
            # TransactionTimeout, or the connection closed before that was read. A new one, then.
            lost = conn.closed
            conn.close()
            if lost and attempt < _CONNECT_ATTEMPTS:
                continue
            raise connect_error(target, exc, dbname) from None
        except BaseException:
            conn.close()
            raise
        return conn
    raise AssertionError("unreachable: the last attempt returns or raises")


def answered_note(asked: Target, answered: Target) -> str:
    """What a job's "server … runs PostgreSQL …" line adds for a target of several hosts: the one
    that answered (where its label does not say it: a profile's name) and the list it was the
    first of to answer; "" for a target of one host."""
    if not several_hosts(asked):
        return ""
    at = "" if answered.label == answered.where() else f" at {answered.where()}"
    return f"{at} (the first of {asked.where()} to answer)"


def pinned(target: Target, dbname: str) -> Target:
    """answering() for a job that has not connected yet: one connection to `dbname` when `target`
    has several hosts, none when it has one (it is returned as it is)."""
    if not several_hosts(target):
        return target
    with connect(target, dbname) as conn:
        return answering(target, conn)
