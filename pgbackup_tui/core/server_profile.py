"""A server profile (one server the user works with, as config.toml keeps it) and its rules.

What a profile may hold is checked here, for config.py's load and save and for the TUI's server
form alike: libpq's values that it would refuse only at the first connection, the types TOML gives
each key, and never a password (a conninfo hides one in many fields; passwords live in ~/.pgpass,
PGPASSWORD or the TUI's prompt).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields

import tomli_w
from psycopg.conninfo import conninfo_to_dict

from .errors import ConfigError

# Profile keys that map 1:1 onto libpq connection keywords.
CONNECTION_KEYS = ("host", "port", "user", "dbname", "sslmode", "service")
# The database a profile connects to when nothing names one. libpq's own default is the user's
# name, which rarely exists ('database "dba" does not exist'); every cluster has `postgres`.
DEFAULT_DBNAME = "postgres"
PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def libpq_host_port(params: dict[str, str]) -> tuple[str, str]:
    """The host and port libpq goes to for these connection keywords: theirs, else PGHOST and
    PGPORT, else "" (its socket folder) and 5432. One answer for a server's label, its `where`
    and the catalog's host:port match, which had each read (or not read) the environment."""
    host = params.get("host") or os.environ.get("PGHOST") or ""
    return host, params.get("port") or os.environ.get("PGPORT") or "5432"


@dataclass(frozen=True)
class ServerProfile:
    """One server the user works with. Never holds a password."""

    name: str
    dsn: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    dbname: str | None = None
    sslmode: str | None = None
    service: str | None = None
    bin_dir: str | None = None

    def connection_params(self) -> dict[str, str]:
        """libpq keywords for this profile (DSN first, explicit fields on top)."""
        params: dict[str, str] = {}
        if self.dsn:
            params.update({k: str(v) for k, v in conninfo_to_dict(self.dsn).items()})
        for key in CONNECTION_KEYS:
            value = getattr(self, key)
            if value is not None:
                params[key] = str(value)
        # A service file or PGDATABASE may name the database: libpq reads them, we do not guess.
        if "dbname" not in params and "service" not in params and not os.environ.get("PGDATABASE"):
            params["dbname"] = DEFAULT_DBNAME
        return params

    def to_toml(self) -> dict:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "name" and getattr(self, f.name) is not None
        }


# A conninfo can hide in any of these: libpq expands a dbname that is a URI or holds '=', and
# what a field holds is shown by `servers list`, the tree and the logs.
CONNINFO_FIELDS = ("host", "user", "dbname", "sslmode", "service")
TEXT_FIELDS = ("dsn", *CONNINFO_FIELDS, "bin_dir")
_URI_WITH_PASSWORD = re.compile(r"^postgres(?:ql)?://[^/?#@]*:[^/?#@]*@", re.IGNORECASE)
_PASSWORD_KEYWORD = re.compile(r"(?:^|[\s'\"])(sslpassword|password)\s*=", re.IGNORECASE)
NO_PASSWORDS = ("remove it and use ~/.pgpass, PGPASSWORD or the TUI's prompt "
                "(passwords are never stored in the config)")


def hidden_password(value: str) -> str | None:
    """'password' or 'sslpassword' if `value`, read as a libpq conninfo (URI or key=value), carries
    one; else None. A value that is no conninfo carries none."""
    if "=" not in value and "://" not in value:
        return None
    try:
        params = conninfo_to_dict(value)
    except Exception:  # psycopg.ProgrammingError: not a conninfo after all; what looks like a password still counts
        keyword = _PASSWORD_KEYWORD.search(value)
        if keyword:
            return keyword.group(1).lower()
        return "password" if _URI_WITH_PASSWORD.match(value.strip()) else None
    for key in ("sslpassword", "password"):
        if key in params:
            return key
    return None


def check_field_types(body: dict, where: str) -> None:
    """Raise ConfigError naming `where` and the key unless each value has the type its key takes
    (TOML gives `port = true` a bool, `port = 1.5` a float, `host = 5` an int)."""
    for key in TEXT_FIELDS:
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{where}: {key} = {_toml_value(value)} is not text; write it in quotes, "
                              f'e.g. {key} = "..."')
    port = body.get("port")
    if port is None:
        return
    if isinstance(port, str) and port.strip().isdigit():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int):
        raise ConfigError(f"{where}: port = {_toml_value(body['port'])} is not a port number; "
                          "write a whole number from 1 to 65535, e.g. port = 5432")


def _toml_value(value: object) -> str:
    try:
        return tomli_w.dumps({"v": value})[4:].strip()
    except Exception:  # not something TOML writes (only reached for values built in code)
        return repr(value)


SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _check_libpq_values(whose: str, params: dict[str, str]) -> None:
    """Values libpq would refuse only at the first connection (or take for another meaning), said
    when the server is added: sslmode, connect_timeout and port (one per host, comma-separated)."""
    sslmode = params.get("sslmode")
    if sslmode is not None and sslmode not in SSLMODES:
        raise ConfigError(f"{whose} sslmode {sslmode!r} is not one of {', '.join(SSLMODES)}")
    timeout = params.get("connect_timeout")
    if timeout is not None and not timeout.strip().lstrip("-").isdigit():
        raise ConfigError(f"{whose} connect_timeout {timeout!r} is not a number of seconds")
    for host in (params.get("host") or "").split(","):
        # 'db1:5432' is a host name to libpq, looked up as such ("could not translate host name"):
        # the usual way to write a server elsewhere, said here with what to write instead.
        written = re.fullmatch(r"([^:/\[\]@]+):(\d+)", host.strip())
        if written:
            name, port = written[1], written[2]
            raise ConfigError(f"{whose} host {host.strip()!r} holds a port: give the host alone and the port "
                              f"apart (--host {name} --port {port}, or host={name} port={port})")
    for port in (params.get("port") or "").split(",") if params.get("port") else ():
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ConfigError(f"{whose} port {port!r} is not between 1 and 65535")


# libpq's keywords that name a file (or a folder), read when a connection opens.
FILE_KEYWORDS = ("sslrootcert", "sslcert", "sslkey", "sslcrl", "sslcrldir", "passfile")


def _refuse_relative_files(where: str, params: dict[str, str]) -> None:
    """A file keyword whose path is relative (or starts with ~, which libpq does not expand): libpq
    reads it from the folder each command starts in. `servers add` and `servers test` found it from
    the DBA's folder, and every run cron started (in the home folder) failed: "root certificate file
    does not exist". Refused when the server is added, with the whole path to give instead."""
    for key in FILE_KEYWORDS:
        value = params.get(key) or ""
        if (not value or os.path.isabs(value) or (key == "sslrootcert" and value == "system")
                or (key == "sslkey" and ":" in value)):  # sslkey=ENGINE:KEY is OpenSSL's, no path
            continue
        whole = os.path.abspath(os.path.expanduser(value))
        raise ConfigError(f"{where}: the DSN's {key} {value!r} is a relative path, which libpq reads from the folder "
                          f"each command starts in (cron starts a schedule's runs in your home folder): give it whole, "
                          f"{key}={whole}")


def conninfo_error(exc: Exception) -> str:
    """libpq's first line on a conninfo that does not parse, without the text it quotes: the piece
    around the fault, up to the whole URI, may hold a password (the line reaches the terminal, logs,
    hooks and notifications). A quoted single character ("]", "=") is syntax, and stays; so does the
    name of an option libpq does not know (a keyword, what the user must fix: QA saw it blanked)."""
    line = first_line(exc)
    unknown = re.match(r'invalid (?:connection option|URI query parameter:) "([a-z_][a-z0-9_]{0,39})"', line)
    if unknown:
        return line[:unknown.end()] + re.sub(r'"([^"]*)"', lambda q: q[0] if len(q[1]) <= 1 else '"…"',
                                             line[unknown.end():])
    return re.sub(r'"([^"]*)"', lambda quoted: quoted[0] if len(quoted[1]) <= 1 else '"…"', line)


def validate_profile(profile: ServerProfile, *, new: bool = False) -> ServerProfile:
    """Raise ConfigError unless `profile` is usable and password-free. `new` (being added): a port,
    or a host, user, dbname, sslmode or service of another value, given both in the DSN and apart is
    refused too (the field wins, while `servers list` shows the DSN); one saved so before, which
    worked, still loads."""
    where = f"server '{profile.name}'"
    if not PROFILE_NAME.match(profile.name):
        raise ConfigError(
            f"{where}: a server name is ASCII letters, digits, '_', '-', '.' (up to 63), "
            "starting with a letter or digit"
        )
    check_field_types({f.name: getattr(profile, f.name) for f in fields(profile) if f.name != "name"}, where)
    for key in CONNINFO_FIELDS:
        hidden = hidden_password(getattr(profile, key) or "")
        if hidden:
            raise ConfigError(f"{where}: {key} contains a {hidden}; {NO_PASSWORDS}")
    if profile.dsn:
        try:
            params = conninfo_to_dict(profile.dsn)
        except Exception as exc:  # psycopg.ProgrammingError: the DSN does not parse
            raise ConfigError(f"{where}: the DSN does not parse: {conninfo_error(exc)}") from None
        if "sslpassword" in params:
            raise ConfigError(
                f"{where}: the DSN contains sslpassword (the client key's passphrase); passwords are never stored "
                "in the config: use a key without a passphrase or a pg_service.conf entry"
            )
        if "password" in params:
            raise ConfigError(f"{where}: the DSN contains a password; {NO_PASSWORDS}")
        for key, value in params.items():  # a conninfo inside a field (dbname='postgresql://u:pw@h/db')
            if hidden_password(str(value)):
                raise ConfigError(f"{where}: the DSN's {key} contains a password; {NO_PASSWORDS}")
        _check_libpq_values(where + ": the DSN's", {k: str(v) for k, v in params.items()})
        if new:
            _refuse_relative_files(where, {k: str(v) for k, v in params.items()})
        if new and profile.port is not None and "port" in params:
            raise ConfigError(f"{where}: the port is given twice (port {profile.port}, and port={params['port']} in "
                              "the DSN); give it once")
        for key in ("host", "user", "dbname", "sslmode", "service"):
            field_value = getattr(profile, key)
            if new and field_value is not None and key in params and str(params[key]) != str(field_value):
                # `--dsn "host=db1" --host db2` connected to db2 while `servers list` said host=db1.
                raise ConfigError(f"{where}: {key} is given twice ({field_value}, and {key}={params[key]} in the "
                                  "DSN); give it once")
    if profile.sslmode is not None or profile.host is not None:
        _check_libpq_values(where + ":", {k: v for k, v in (("sslmode", profile.sslmode), ("host", profile.host))
                                          if v is not None})
    if profile.port is not None and not (0 < int(profile.port) < 65536):
        raise ConfigError(f"{where}: port {profile.port} is not between 1 and 65535")
    if not profile.dsn and not any(getattr(profile, k) for k in ("host", "service", "port", "user")):
        raise ConfigError(f"{where}: give a DSN, or at least a host, port, user or service")
    return profile


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
