"""`pgbackup-tui servers ...` and the CLI's error contract, through the real console script.

Every error a user can cause is exit 2 and one line on stderr, no traceback unless --debug; bad
option combinations are refused before anything connects.
"""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import cliutil
from pgbackup_tui.core.formatting import host_port
from pgbackup_tui.core.sandbox import Sandbox, free_port
from throttle_proxy import ThrottleProxy

CONSOLE_SCRIPT = Path(sys.executable).parent / "pgbackup-tui"


def _command_and_env() -> tuple[list[str], dict[str, str]]:
    command = [str(CONSOLE_SCRIPT)] if CONSOLE_SCRIPT.exists() else [sys.executable, "-m", "pgbackup_tui"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") or k == "PGBACKUP_TUI_HOME"}
    return command, env


def run_cli(*args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    """The real console script with this process's PGBACKUP_TUI_HOME and no libpq variables."""
    command, env = _command_and_env()
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=60, stdin=stdin)


def run_cli_many(arg_lists: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Like run_cli for each argument list, all at once (each start costs ~0.3 s of imports)."""
    command, env = _command_and_env()
    children = [subprocess.Popen([*command, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=env, stdin=subprocess.DEVNULL) for args in arg_lists]
    results = []
    for args, child in zip(arg_lists, children, strict=True):
        stdout, stderr = child.communicate(timeout=60)
        results.append(subprocess.CompletedProcess([*command, *args], child.returncode, stdout, stderr))
    return results


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 2, exactly one line on stderr containing every fragment, no traceback."""
    context = f"{result.args[1:]}: exit {result.returncode}, stderr {result.stderr!r}"
    assert result.returncode == 2, context
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, context
    assert "Traceback" not in result.stderr, context
    for fragment in fragments:
        assert fragment in lines[0], context
    return lines[0]


def add_sandbox_server(sandbox: Sandbox, name: str = "sb") -> None:
    result = run_cli("servers", "add", name, "--host", str(sandbox.socket_dir), "--port", str(sandbox.port),
                     "--user", sandbox.superuser)
    assert result.returncode == 0, result.stderr


# -- servers add / list / test / remove ---------------------------------------------------------------

def test_servers_lifecycle_against_the_sandbox(sandbox: Sandbox, home: Path) -> None:
    empty = run_cli("servers", "list")
    assert empty.returncode == 0 and "no servers yet" in empty.stdout
    assert json.loads(run_cli("servers", "list", "--json").stdout) == []

    added = run_cli("servers", "add", "sb", "--host", str(sandbox.socket_dir), "--port", str(sandbox.port),
                    "--user", sandbox.superuser)
    assert added.returncode == 0, added.stderr
    assert "added server 'sb'" in added.stdout and str(home / "config.toml") in added.stdout

    listing = run_cli("servers", "list")
    assert listing.returncode == 0
    assert listing.stdout.split() == ["sb", f"host={sandbox.socket_dir}", f"port={sandbox.port}",
                                      f"user={sandbox.superuser}"]
    as_json = json.loads(run_cli("servers", "list", "--json").stdout)
    # Every key, null where unset: it had only the profile's own keys, so `["dsn"]` was a KeyError here.
    assert as_json == [{"name": "sb", "dsn": None, "host": str(sandbox.socket_dir), "port": sandbox.port,
                        "user": sandbox.superuser, "dbname": None, "sslmode": None, "service": None, "bin_dir": None}]

    tested = run_cli("servers", "test", "sb")
    assert tested.returncode == 0, tested.stderr
    assert tested.stdout.startswith(f"sb: PostgreSQL {sandbox.major}.")
    assert f"as {sandbox.superuser}" in tested.stdout
    assert f"pg_dump {sandbox.major}." in tested.stdout

    removed = run_cli("servers", "remove", "sb")
    assert removed.returncode == 0 and "removed server 'sb'" in removed.stdout
    assert json.loads(run_cli("servers", "list", "--json").stdout) == []


def test_server_from_a_dsn_is_tested_and_listed(sandbox: Sandbox, home: Path) -> None:
    dsn = sandbox.dsn("shop")
    assert run_cli("servers", "add", "shopdsn", "--dsn", dsn, "--bin-dir", str(sandbox.bin_dir)).returncode == 0
    assert json.loads(run_cli("servers", "list", "--json").stdout) == [
        {"name": "shopdsn", "dsn": dsn, "host": None, "port": None, "user": None, "dbname": None, "sslmode": None,
         "service": None, "bin_dir": str(sandbox.bin_dir)}
    ]
    assert run_cli("servers", "list").stdout.split() == ["shopdsn", *dsn.split()]
    tested = run_cli("servers", "test", "shopdsn")
    assert tested.returncode == 0, tested.stderr
    assert f"from {sandbox.bin_dir}" in tested.stdout


def test_adding_a_name_twice_is_refused(sandbox: Sandbox, home: Path) -> None:
    add_sandbox_server(sandbox)
    before = (home / "config.toml").read_bytes()
    again = run_cli("servers", "add", "sb", "--host", "elsewhere")
    assert_one_line_error(again, "'sb'", "already exists")
    assert (home / "config.toml").read_bytes() == before


def test_a_uri_dsn_that_does_not_parse_is_refused_without_its_password(home: Path) -> None:
    """libpq quotes the whole URI when it stops in its host part, password and all (QA)."""
    dsn = "postgresql://alice:s3cretpw@[db1/app"
    for result in run_cli_many([["servers", "add", "broken", "--dsn", dsn], ["dump", "--dsn", dsn, "--db", "app"],
                                ["servers", "add", "q", "--dsn", "postgresql://a:s3cretpw@h/db?s3cretpw"]]):
        assert_one_line_error(result, "the DSN does not parse")
        assert "s3cretpw" not in result.stderr + result.stdout
    assert not (home / "config.toml").exists()


def test_servers_add_refuses_what_libpq_would_refuse_only_at_the_first_connection(home: Path) -> None:
    """A bad sslmode or connect_timeout, a port given twice and a --bin-dir that does not exist were
    stored (exit 0), to fail, or be passed over, at the first use of the server (QA)."""
    cases = [(["--host", "h", "--sslmode", "requir"], "sslmode 'requir' is not one of"),
             (["--dsn", "host=h sslmode=nope"], "the DSN's sslmode 'nope'"),
             (["--dsn", "host=h connect_timeout=abc"], "connect_timeout 'abc' is not a number"),
             (["--dsn", "postgresql://h:99999/db"], "port '99999' is not between 1 and 65535"),
             (["--dsn", "host=h port=5432", "--port", "5433"], "the port is given twice"),
             # The field won, while `servers list` showed the DSN's: it connected to db2, listed as db1 (QA).
             (["--dsn", "host=db1", "--host", "db2"], "host is given twice (db2, and host=db1 in the DSN)"),
             (["--dsn", "postgresql://app@h/shop", "--user", "dba"], "user is given twice (dba, and user=app"),
             (["--host", "h", "--bin-dir", "/nonexistent/bin"], "--bin-dir /nonexistent/bin: no such directory"),
             # libpq looks 'db1:5432' up as a host name: "could not translate host name", at the first use.
             (["--host", "db1.example:5433"], "--host db1.example --port 5433"),
             (["--dsn", "host=10.0.0.5:5432 user=app"], "host=10.0.0.5 port=5432"),
             # Read from the folder each command starts in: found by `servers test`, not by cron's runs.
             (["--dsn", "host=h sslmode=verify-full sslrootcert=certs/ca.crt"],
              f"sslrootcert 'certs/ca.crt' is a relative path, which libpq reads from the folder each command "
              f"starts in (cron starts a schedule's runs in your home folder): give it whole, "
              f"sslrootcert={Path.cwd() / 'certs/ca.crt'}"),
             (["--dsn", "postgresql://h/db?sslcert=~/client.crt"], f"sslcert={Path.home() / 'client.crt'}")]
    results = run_cli_many([["servers", "add", "x", *args] for args, _ in cases])
    for (_args, words), result in zip(cases, results, strict=True):
        assert_one_line_error(result, words)
    assert not (home / "config.toml").exists()
    assert run_cli("servers", "add", "ok", "--dsn", "host=h port=5433 sslmode=verify-full connect_timeout=5 "
                   "sslrootcert=system sslkey=/k/client.key").returncode == 0
    # One saved so before, which worked (the field wins), still loads: only a new one is refused.
    with (home / "config.toml").open("a") as config:
        config.write('\n[servers.old]\ndsn = "host=h port=5432"\nport = 5433\n')
    listed = run_cli("servers", "list")
    assert listed.returncode == 0 and "old" in listed.stdout, listed.stderr
    # Listed with the port beside its DSN, which wins as libpq reads a conninfo (the DSN alone hid it).
    assert "old  host=h port=5432 port=5433" in listed.stdout.splitlines(), listed.stdout


def test_a_home_we_may_not_write_is_bad_input(home: Path) -> None:
    """A read-only PGBACKUP_TUI_HOME was said in one line but exit 1, as if a job had failed (QA)."""
    from small_disk import read_only

    with read_only(home):
        added, dumped = run_cli_many([["servers", "add", "x", "--host", "h"],
                                      ["dump", "--dsn", "host=/nonexistent", "--db", "x"]])
    assert_one_line_error(added, "config.toml", "Read-only file system")
    assert_one_line_error(dumped, "cannot write the job's state", "Read-only file system", "PGBACKUP_TUI_HOME")


def test_a_home_that_is_a_file_is_bad_input(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PGBACKUP_TUI_HOME naming a file (a typo for its folder): `servers list` said so, exit 2, but a
    dump said `cannot write the job's state under …: Not a directory; nothing was started`, exit 1,
    the code of a backup that failed (QA)."""
    a_file = home / "not-a-folder"
    a_file.write_text("")
    monkeypatch.setenv("PGBACKUP_TUI_HOME", str(a_file))
    listed, dumped = run_cli_many([["servers", "list"], ["dump", "--dsn", "host=/nonexistent", "--db", "x"]])
    assert_one_line_error(listed, str(a_file), "Not a directory")
    assert_one_line_error(dumped, "cannot write the job's state", "Not a directory", "PGBACKUP_TUI_HOME")


def test_server_that_is_down_is_one_line_exit_2(home: Path) -> None:
    port = free_port()
    assert run_cli("servers", "add", "down", "--host", "127.0.0.1", "--port", str(port), "--user", "x").returncode == 0
    result = run_cli("servers", "test", "down")
    assert_one_line_error(result, "server 'down'", f"127.0.0.1:{port}", "Connection refused")
    assert result.stdout == ""


def test_an_ipv6_host_is_shown_in_brackets_with_its_port(sandbox: Sandbox, home: Path) -> None:
    """'::1:39497' read as a host of that name, or as port 1:39497: `servers test`, errors, the job's
    title and `backups show` now say [::1]:39497, as a URI writes it."""
    with ThrottleProxy(sandbox.port, rate_bps=1e9, listen_host="::1", lifetime_s=120) as proxy:
        where = f"[::1]:{proxy.port}"
        env = {**os.environ, "PGPASSWORD": sandbox.password}  # scram over TCP: from libpq's own place
        assert cliutil.run_cli("servers", "add", "six", "--host", "::1", "--port", str(proxy.port),
                               "--user", sandbox.superuser, "--dbname", "postgres", env=env).returncode == 0
        tested = cliutil.run_cli("servers", "test", "six", env=env)
        assert tested.returncode == 0 and f" at {where} as " in tested.stdout, tested.stdout + tested.stderr
        dsn = f"host=::1 port={proxy.port} user={sandbox.superuser}"
        dumped = cliutil.run_cli("dump", "--dsn", dsn, "--db", "shop", "--schema-only", "--progress", "none", env=env)
        assert dumped.returncode == 0, dumped.stderr
        assert Path(dumped.stdout.strip()).parent.parent.name == f"__1_{proxy.port}"  # the folder it always had
        missing = cliutil.run_cli("dump", "--dsn", dsn, "--db", "nosuch", "--progress", "none", env=env)
        assert f"server '{where}' ({where}, database 'nosuch')" in missing.stderr, missing.stderr
    jobs = json.loads(run_cli("jobs", "list", "--json").stdout)
    assert {job["title"] for job in jobs} == {f"dump shop on {where}", f"dump nosuch on {where}"}, jobs
    backup = json.loads(run_cli("backups", "list", "--json").stdout)[0]
    shown = run_cli("backups", "show", backup["id"]).stdout
    assert f"server      {where} ({where}, system id " in shown, shown
    assert [host_port(*args) for args in (("db1", 5432), ("/run/postgresql", "5432"), ("fe80::1%eth0", "5433"),
                                          ("db1,::1", "5432"), ("db1,db2", "5432,5433"), ("::1", None))] == [
        "db1:5432", "/run/postgresql:5432", "[fe80::1%eth0]:5433", "db1:5432,[::1]:5432", "db1:5432,db2:5433", "[::1]"]


def test_a_dsn_of_several_hosts_names_the_one_that_answered(sandbox: Sandbox, home: Path, fresh_db_name: str,
                                                           tmp_path: Path) -> None:
    """`host=a,b`, a down: the job was said to be on a ("server 127.0.0.1:DEAD runs PostgreSQL"),
    its backup filed and listed under a, and pg_dump given the list again (a's connect_timeout
    again; another server if a came back). All down: only the last host's cause was said (QA)."""
    dead, other_dead = free_port(), free_port()
    env = {**os.environ, "PGPASSWORD": sandbox.password}  # scram over TCP: from libpq's own place
    answered = f"127.0.0.1:{sandbox.port}"
    dsn = f"host=127.0.0.1,127.0.0.1 port={dead},{sandbox.port} user={sandbox.superuser}"
    dumped = cliutil.run_cli("dump", "--dsn", dsn, "--db", "shop", "--schema-only", "--progress", "none", env=env)
    assert dumped.returncode == 0, dumped.stderr
    assert Path(dumped.stdout.strip()).parent.parent.name == f"127.0.0.1_{sandbox.port}"
    [backup] = json.loads(run_cli("backups", "list", "--json").stdout)
    assert backup["server"] == answered, backup
    [job] = json.loads(run_cli("jobs", "list", "--json").stdout)
    log = Path(job["log_path"]).read_text()
    assert (f"server {answered} runs PostgreSQL" in log
            and f"(the first of 127.0.0.1:{dead},{answered} to answer)" in log), log
    assert f"port={sandbox.port} " in log and f"port={dead}" not in log.split("$ ", 1)[1], log  # pg_dump's argv
    # A restore and a csv export: every step, and pg_restore's workers, on the host that answered.
    with ThreadPoolExecutor(2) as pool:  # side by side: seconds apiece
        restoring = pool.submit(cliutil.run_cli, "restore", dumped.stdout.strip(), "--dsn", dsn, "--db", fresh_db_name,
                                "--create", "--jobs", "2", "--progress", "none", env=env)
        exporting = pool.submit(cliutil.run_cli, "csv", "export", "--dsn", dsn, "--db", "shop", "--output",
                                str(tmp_path / "csv"), "--table", "inventory.warehouses", "--progress", "none",
                                env=env)
        restored, exported = restoring.result(), exporting.result()
    assert restored.returncode == 0 and exported.returncode == 0, (restored.stderr, exported.stderr)
    assert f"'{fresh_db_name}' on {answered}" in restored.stderr, restored.stderr
    assert json.loads((tmp_path / "csv" / "manifest.json").read_text())["server"] == answered
    for job in json.loads(run_cli("jobs", "list", "--json").stdout):
        log = Path(job["log_path"]).read_text()
        assert f"(the first of 127.0.0.1:{dead},{answered} to answer)" in log, log
        assert all(f"port={dead}" not in line for line in log.splitlines() if " --dbname=" in line), log
    down = f"host=127.0.0.1,127.0.0.1 port={dead},{other_dead} user=x"
    failed = run_cli("dump", "--dsn", down, "--db", "shop", "--progress", "none")
    assert_one_line_error(failed, f"127.0.0.1:{dead}: Connection refused; 127.0.0.1:{other_dead}: Connection refused")


@pytest.mark.parametrize("argv", [["--debug", "servers", "test", "down"],
                                  # at the end of the line that failed, where a DBA adds it: was refused as
                                  # "unrecognized arguments: --debug" (README audit)
                                  ["servers", "test", "down", "--debug"]])
def test_debug_adds_the_traceback(home: Path, argv: list[str]) -> None:
    port = free_port()
    run_cli("servers", "add", "down", "--host", "127.0.0.1", "--port", str(port))
    result = run_cli(*argv)
    assert result.returncode == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "ConnectError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("pgbackup-tui: error: server 'down'")


@pytest.mark.parametrize("command", [["test", "nope"], ["remove", "nope"]])
def test_unknown_server_name_is_exit_2(home: Path, command: list[str]) -> None:
    assert_one_line_error(run_cli("servers", *command), "no server named 'nope'")


def test_unknown_server_in_dump_is_exit_2(home: Path) -> None:
    assert_one_line_error(run_cli("dump", "--server", "nope", "--db", "shop"), "no server named 'nope'")
    # An empty name (`--server "$SERVER"`, unset) was taken for no --server: a traceback in dump,
    # restore, dumpall, csv and drill, and every server's backups in `backups list` (QA).
    for args in (["dump", "--server", "", "--db", "shop"], ["backups", "list", "--server", ""]):
        assert_one_line_error(run_cli(*args), "no server named ''")
    # So were `--bin-dir ""` (the search then ran without a word) and `backups list --db ""` (every backup).
    for args, said in ((["dump", "--dsn", "host=/nonexistent", "--db", "x", "--bin-dir", ""], "--bin-dir is empty"),
                       (["backups", "verify", "x", "--bin-dir", ""], "--bin-dir is empty"),
                       (["backups", "list", "--db", ""], "--db is empty")):
        assert_one_line_error(run_cli(*args), said)


# -- usage errors ---------------------------------------------------------------------------------

USAGE_ERRORS = [
    (["bogus"], "invalid choice"),
    (["servers"], "required: COMMAND"),  # not argparse's name for it (servers_command)
    (["jobs"], "required: COMMAND"),
    (["backups"], "required: COMMAND"),
    (["servers", "add"], "required: NAME"),
    (["servers", "add", "x", "--port", "abc"], "invalid int value"),
    (["servers", "frobnicate"], "invalid choice"),
    (["dump", "--db", "shop"], "--server"),
    (["dump", "--server", "a", "--dsn", "b", "--db", "shop"], "not allowed with"),
    (["dump", "--server", "a"], "--db"),
    (["dump", "--server", "a", "--bogus-flag"], "unrecognized arguments: --bogus-flag"),  # not "required: --db"
    # Named by the subcommand, pointing to its --help (it said `pgbackup-tui: error: …
    # (see pgbackup-tui --help)`, whose page lists none of the subcommand's options).
    (["dump", "--server", "a", "--db", "shop", "--bogus-flag"],
     "pgbackup-tui dump: error: unrecognized arguments: --bogus-flag (see pgbackup-tui dump --help)"),
    (["backups", "list", "--bogus"],
     "pgbackup-tui backups list: error: unrecognized arguments: --bogus (see pgbackup-tui backups list --help)"),
    (["dump", "--server", "a", "--db", "shop", "--format", "zip"], "invalid choice"),
    (["dump", "--server", "a", "--db", "shop", "--compress", "12"], "--compress"),
    (["dump", "--server", "a", "--db", "shop", "--schema-only", "--data-only"], "not allowed with"),
    (["restore", "--server", "a", "--db", "x"], "ARCHIVE"),
]


def test_every_positional_argument_says_what_it_takes() -> None:
    """`--help` listed `name`, `PATH`, `ARCHIVE`, `DIR`, `URLNAME` bare: an id or a path? of what? (QA)"""
    import argparse

    from pgbackup_tui.cli import build_parser

    def bare(parser: argparse.ArgumentParser) -> list[str]:
        found = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    found += bare(sub)
            elif not action.option_strings and action.help != argparse.SUPPRESS and not action.help:
                found.append(f"{parser.prog} {action.metavar or action.dest}")
        return found

    assert bare(build_parser()) == []


def test_argparse_usage_errors_are_one_line_exit_2(home: Path) -> None:
    results = run_cli_many([args for args, _ in USAGE_ERRORS])
    for (args, fragment), result in zip(USAGE_ERRORS, results, strict=True):
        line = assert_one_line_error(result, fragment)
        assert "--help" in line, args


def test_the_tui_without_a_terminal_is_one_line_exit_2(home: Path) -> None:
    """`pgbackup-tui` with no subcommand (a crontab line that forgot `run NAME`, ssh without -t)
    drew the app's escape codes into the pipe and waited for keys forever; `demo` started its
    sandbox first, then did the same (QA)."""
    tui, demo = run_cli_many([[], ["demo"]])  # stdin /dev/null, stderr a pipe
    assert "needs a terminal" in assert_one_line_error(tui, "pgbackup-tui --help")
    assert_one_line_error(demo, "demo", "needs a terminal")
    assert "sandbox running" not in demo.stderr and not list(home.iterdir())  # nothing started, nothing written


def test_an_argument_that_is_not_utf8_is_one_line_exit_2(home: Path) -> None:
    """Typed on a LATIN1 terminal: `--dsn`, `schedule add --db` were tracebacks, `dump --db` and
    `csv export --db` an "internal error" exit 1 (QA). A file's name may be any bytes: taken."""
    latin1 = os.fsdecode(b"caf\xe9")  # what Python makes of the byte 0xe9 in argv
    refused = run_cli_many([["dump", "--server", "s", "--db", latin1],
                            ["dump", "--dsn", f"host=/tmp password=pw{latin1}", "--db", "x"],
                            ["schedule", "add", "n", "--server", "s", "--db", latin1, "--cron", "0 3 * * *"],
                            ["restore", f"/nonexistent/{latin1}.dump", "--server", "s", "--db", "x"],
                            # A SQL_ASCII database's table may be named with any bytes: it goes to the server.
                            ["dump", "--server", "s", "--db", "x", "--table", f"public.{latin1}"],
                            ["schedule", "add", "n", "--server", "s", "--db", "x", "--table", f"public.{latin1}",
                             "--cron", "0 3 * * *"],
                            # A bin dir is a file name, but a server's is kept in config.toml: a traceback there.
                            ["servers", "add", "latin", "--dsn", "host=h", "--bin-dir", f"/tmp/{latin1}bin"]])
    assert_one_line_error(refused[0], "--db 'caf\\xe9' is not UTF-8")
    assert "pwcaf" not in assert_one_line_error(refused[1], "--dsn is not UTF-8")  # a DSN is never shown
    assert_one_line_error(refused[2], "--db 'caf\\xe9' is not UTF-8")
    assert "UTF-8" not in assert_one_line_error(refused[3], "no server named 's'")
    assert "UTF-8" not in assert_one_line_error(refused[4], "no server named 's'")
    assert_one_line_error(refused[5], "--table 'public.caf\\xe9' is not UTF-8")  # config.toml takes UTF-8 only
    assert_one_line_error(refused[6], "--bin-dir '/tmp/caf\\xe9bin' is not UTF-8")


# -- refused before anything connects -------------------------------------------------------------

@pytest.fixture
def silent_listener() -> Iterator[socket.socket]:
    """A TCP port that accepts connections but never answers: any connect attempt shows up here."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    try:
        yield listener
    finally:
        listener.close()


def assert_nobody_connected(listener: socket.socket) -> None:
    try:
        connection, _ = listener.accept()
    except BlockingIOError:
        return
    connection.close()
    pytest.fail("the CLI connected to the server before refusing the options")


BAD_COMBINATIONS = [
    (["dump", "--db", "shop", "--jobs", "2", "--format", "custom"], "--format directory"),
    (["dump", "--db", "shop", "--compress", "5", "--format", "tar"], "tar"),
    (["dump", "--db", "shop", "--table", "public.star*name"], '"star*name"'),
    (["dump", "--db", "shop", "--table", "a.b.c"], "3 parts"),
    (["restore", "/nonexistent.dump", "--db", "x", "--jobs", "2", "--single-transaction"], "--single-transaction"),
    (["restore", "/nonexistent.dump", "--db", "x", "--create", "--clean"], "--clean"),
]


def test_bad_combinations_are_refused_before_connecting(home: Path, silent_listener: socket.socket) -> None:
    port = silent_listener.getsockname()[1]
    dsn = ["--dsn", f"host=127.0.0.1 port={port} user=u"]
    results = run_cli_many([[*args, *dsn] for args, _ in BAD_COMBINATIONS])
    for (_, fragment), result in zip(BAD_COMBINATIONS, results, strict=True):
        assert_one_line_error(result, fragment)
    assert_nobody_connected(silent_listener)


def test_bad_combination_with_a_saved_server_is_refused_before_connecting(
    home: Path, silent_listener: socket.socket
) -> None:
    port = silent_listener.getsockname()[1]
    assert run_cli("servers", "add", "quiet", "--host", "127.0.0.1", "--port", str(port)).returncode == 0
    result = run_cli("dump", "--server", "quiet", "--db", "shop", "--jobs", "2", "--format", "custom")
    assert_one_line_error(result, "--jobs 2", "--format directory")
    assert_nobody_connected(silent_listener)


def test_bad_combination_on_a_terminal_is_refused_before_connecting(home: Path) -> None:
    controller, terminal = pty.openpty()
    try:
        result = run_cli("dump", "--dsn", f"host=127.0.0.1 port={free_port()} user=u", "--db", "shop",
                         "--jobs", "2", "--format", "custom", stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)
    assert_one_line_error(result, "--format directory")


def _answer_the_prompt(args: list[str], answer: bytes, passfile: Path,
                       prompt: bytes = b"password for") -> tuple[int, str]:
    """The CLI on a terminal of its own (a pty, its controlling terminal, where getpass asks):
    `answer` is typed at the prompt (the password's unless told). Its exit code and everything the
    terminal showed."""
    command, env = _command_and_env()
    env["PGPASSFILE"] = str(passfile)  # nowhere: the server asks, libpq has no password
    pid, controller = pty.fork()
    if pid == 0:  # the child: exec at once
        os.execvpe(command[0], [*command, *args], env)
    shown, answered = b"", False
    try:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if not answered and prompt in shown:
                os.write(controller, answer)
                answered = True
    finally:
        os.close(controller)
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_end_of_input_at_the_password_prompt_is_one_line_not_a_traceback(sandbox: Sandbox, home: Path,
                                                                          tmp_path: Path) -> None:
    """Ctrl-D at the prompt (or a script whose input ran out) ended in getpass's EOFError traceback."""
    code, shown = _answer_the_prompt(["dump", "--dsn", sandbox.dsn(tcp=True), "--db", "shop", "--progress", "none",
                                      "--output", str(tmp_path / "never.dump")], b"\x04", tmp_path / "no-pgpass")
    assert code == 2, shown
    assert "Traceback" not in shown and "EOFError" not in shown, shown
    last = shown.strip().splitlines()[-1]
    assert last.startswith("pgbackup-tui: error: server '127.0.0.1:") and "no password" in last, shown
    assert not list(tmp_path.glob("never.dump*"))


def test_ctrl_c_at_the_password_prompt_says_cancelled_on_a_line_of_its_own(sandbox: Sandbox, home: Path,
                                                                          tmp_path: Path) -> None:
    """"cancelled" was printed after the prompt, on its line: `password for …: pgbackup-tui: cancelled`."""
    code, shown = _answer_the_prompt(["dump", "--dsn", sandbox.dsn(tcp=True), "--db", "shop", "--progress", "none",
                                      "--output", str(tmp_path / "never.dump")], b"\x03", tmp_path / "no-pgpass")
    assert code == 130, shown
    assert shown.strip().splitlines()[-1] == "pgbackup-tui: cancelled", shown
    assert not list(tmp_path.glob("never.dump*"))


def test_end_of_input_or_ctrl_c_at_the_url_prompt_is_one_line_and_saves_nothing(home: Path, tmp_path: Path) -> None:
    """`schedule url NAME` on a terminal: Ctrl-D at its prompt was getpass's EOFError traceback (exit 1),
    Ctrl-C printed "cancelled" on the prompt's line."""
    code, shown = _answer_the_prompt(["schedule", "url", "ops"], b"\x04", tmp_path / "no-pgpass", prompt=b"apprise URL")
    assert code == 2, shown
    assert "Traceback" not in shown and "EOFError" not in shown, shown
    assert shown.strip().splitlines()[-1] == ("pgbackup-tui: error: no URL given for ops: the input ended at the "
                                              "prompt; nothing was saved"), shown
    code, shown = _answer_the_prompt(["schedule", "url", "ops"], b"\x03", tmp_path / "no-pgpass", prompt=b"apprise URL")
    assert code == 130, shown
    assert shown.strip().splitlines()[-1] == "pgbackup-tui: cancelled", shown
    assert not list(home.glob("**/notify.toml"))


def test_servers_test_on_a_terminal_asks_for_the_password(sandbox: Sandbox, home: Path, tmp_path: Path) -> None:
    """It said "give a password in ~/.pgpass, PGPASSWORD or the prompt" and offered no prompt."""
    added = run_cli("servers", "add", "remote", "--host", "127.0.0.1", "--port", str(sandbox.port),
                    "--user", sandbox.superuser)
    assert added.returncode == 0, added.stderr
    code, shown = _answer_the_prompt(["servers", "test", "remote"], sandbox.password.encode() + b"\n",
                                     tmp_path / "no-pgpass")
    assert code == 0, shown
    assert "password for remote (127.0.0.1:" in shown and f"remote: PostgreSQL {sandbox.major}" in shown, shown
    assert sandbox.password not in shown  # not echoed
