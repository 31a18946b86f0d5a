"""Jobs that outlive the terminal, and nothing left behind on any fault: real signals, real processes.

Each test starts the real `pgbackup-tui` in a subprocess, as a shell would, and hits it (or its
runner) with a real signal while its pg_dump / pg_restore is really working: held back by a table
lock (a dump waits for its ACCESS SHARE lock), or slowed by a CHECK constraint that sleeps a
little for every row it lets in (a restore). Afterwards no child may run, no `.partial` or half
restored database may be left (or the job finished and is listed), and the job's state says what
happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from cliutil import run_cli
from small_disk import fill, small_filesystem
from pgbackup_tui.core.sandbox import Sandbox

SOURCE = "shop"
SLOW_ROWS = 400  # x 10 ms per row: a restore that takes about 4 s


@contextmanager
def table_locked(sandbox: Sandbox, table: str = "public.events") -> Iterator[None]:
    with psycopg.connect(sandbox.dsn(SOURCE)) as conn:
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
        conn.rollback()


def _as_from_a_terminal() -> None:
    # A command typed in a terminal dies of SIGHUP. Under `nohup make test` the ignored SIGHUP is
    # inherited through exec, and the CLI would then (rightly) outlive a hang-up these tests send.
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pgbackup_tui", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, env=dict(os.environ),
                            preexec_fn=_as_from_a_terminal)


def jobs_json(home: Path) -> list[dict]:
    result = run_cli("jobs", "list", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def only_job_state(home: Path) -> dict:
    states = list((home / "state" / "jobs").glob("*/state.json"))
    assert len(states) == 1, states
    return json.loads(states[0].read_text())


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


FOLLOWER = "pgbackup_tui.core.archive_follow_process"


def _pids_of(comm: str, name: str) -> list[int]:
    """Live processes called `comm` whose command line holds `name`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if stat[stat.find("(") + 1:stat.rfind(")")] == comm and name in cmdline:
                found.append(int(entry.name))
    return found


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rfind(")") + 2:].split()[1])


def children_running(name: str = "pg_") -> list[str]:
    """pg_dump / pg_restore / psql processes alive (not zombies), and the dump's archive follower
    (core/archive_follow_process.py), with their command lines."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm = stat[stat.find("(") + 1:stat.rfind(")")]
        state = stat[stat.rfind(")") + 2:].split()[0]
        ours = comm in ("pg_dump", "pg_restore", "psql") or FOLLOWER in cmdline
        if ours and state != "Z" and name in cmdline:
            found.append(cmdline)
    return found


def runner_pid(home: Path) -> int:
    wait_for(lambda: "runner_pid" in _state_or_empty(home), "the runner to start")
    return int(_state_or_empty(home)["runner_pid"])


def _state_or_empty(home: Path) -> dict:
    try:
        return only_job_state(home)
    except (AssertionError, ValueError, OSError):
        return {}


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """Where the tests' archives go: empty unless a job left something."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".partial") or ".partial" in p.name]


def backend_waiting(sandbox: Sandbox) -> bool:
    return sandbox.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND application_name LIKE 'pgbackup-tui/%'").strip() != "0"


# -- a dump and the signals a terminal sends ----------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGKILL])
def test_a_dump_goes_on_when_its_terminal_goes_away(sandbox, home, out_dir, sig):
    out = out_dir / "shop.dump"
    with table_locked(sandbox):
        cli = start_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--output", str(out))
        wait_for(lambda: backend_waiting(sandbox), "pg_dump to wait for its lock")
        cli.send_signal(sig)
        cli.wait(timeout=10)
    # The lock is gone: the runner, in its own session, finishes the dump.
    wait_for(lambda: _state_or_empty(home).get("state") == "succeeded", "the job to succeed")
    assert out.is_file() and not leftovers(out_dir)
    listed = jobs_json(home)
    assert [job["state"] for job in listed] == ["succeeded"]
    assert listed[0]["output_path"] == str(out)



def test_a_pg_dump_killed_by_a_signal_is_said_so_not_by_its_last_line(sandbox, home, out_dir):
    """pg_dump killed by SIGKILL (the OOM killer, a kill -9) while its runner goes on: the job said
    "pg_dump failed (killed by signal 9 (SIGKILL)): pg_dump: reading dependency data", its last
    progress line, as if that were the error (QA). It says how it ended; nothing is left."""
    with table_locked(sandbox):
        cli = start_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--output", str(out_dir / "x.dump"))
        wait_for(lambda: backend_waiting(sandbox), "pg_dump to wait for its lock")
        [pg_dump] = _pids_of("pg_dump", str(out_dir))
        os.kill(pg_dump, signal.SIGKILL)
        _, stderr = cli.communicate(timeout=30)
    assert cli.returncode == 1, stderr
    assert "failed: pg_dump was killed by signal 9 (SIGKILL); log: " in stderr and "pg_dump: " not in stderr, stderr
    assert only_job_state(home)["state"] == "failed"
    assert not list(out_dir.iterdir())

def test_sigterm_of_the_cli_cancels_cleanly(sandbox, home, out_dir):
    with table_locked(sandbox):
        cli = start_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--output", str(out_dir / "x.dump"))
        wait_for(lambda: backend_waiting(sandbox), "pg_dump to wait for its lock")
        cli.send_signal(signal.SIGTERM)
        _, stderr = cli.communicate(timeout=30)
    assert cli.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert only_job_state(home)["state"] == "cancelled"
    assert not list(out_dir.iterdir())
    assert not children_running(str(out_dir))


def test_jobs_cancel_of_a_stopped_runner_cancels_it(sandbox, home, out_dir):
    """A runner and its pg_dump stopped (SIGSTOP, as Ctrl-Z in the runner's terminal would) hold
    a SIGTERM until they run again: `jobs cancel` resumes them, and the job is cancelled."""
    with table_locked(sandbox):
        cli = start_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--output", str(out_dir / "x.dump"))
        wait_for(lambda: backend_waiting(sandbox), "pg_dump to wait for its lock")
        runner = runner_pid(home)
        dumps = _pids_of("pg_dump", str(out_dir))
        assert dumps
        for pid in [runner, *dumps]:
            os.kill(pid, signal.SIGSTOP)
        [job] = jobs_json(home)
        cancelled = run_cli("jobs", "cancel", job["id"], timeout=60)
        assert cancelled.returncode == 0, cancelled.stderr
        assert "cancelled" in cancelled.stderr, cancelled.stderr
        _, stderr = cli.communicate(timeout=30)
    assert cli.returncode == 130, stderr
    assert only_job_state(home)["state"] == "cancelled"
    assert not list(out_dir.iterdir())
    assert not children_running(str(out_dir))


@pytest.mark.parametrize("fmt", [("custom",), ("directory", "--jobs", "2")], ids=["custom", "directory-j2"])
def test_a_killed_runner_leaves_no_child_and_no_partial(sandbox, home, out_dir, fmt):
    out = out_dir / "shop.out"
    with table_locked(sandbox):
        cli = start_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--output", str(out), "--format", *fmt)
        wait_for(lambda: backend_waiting(sandbox), "pg_dump to wait for its lock")
        running = children_running(str(out_dir))
        assert running
        if fmt == ("custom",):  # read back while written: its follower goes with the runner too
            assert any(FOLLOWER in cmdline for cmdline in running)
        # pg_dump leads its own process group in the runner's session (core/job_children.own_group:
        # where the kernel groups sessions for scheduling, the follower yields to pg_dump only then).
        runner = runner_pid(home)
        dumps = _pids_of("pg_dump", str(out_dir))
        assert dumps
        for pid in dumps:
            assert os.getsid(pid) == runner and os.getpgid(pid) in (pid, os.getpgid(_parent_of(pid)))
        os.kill(runner, signal.SIGKILL)
        _, stderr = cli.communicate(timeout=30)
    assert cli.returncode == 1
    assert "runner" in stderr and "stopped without finishing" in stderr
    wait_for(lambda: not children_running(str(out_dir)), "pg_dump and its workers to end", timeout=10)
    assert not list(out_dir.iterdir())  # no .partial
    state = only_job_state(home)
    assert state["state"] == "failed" and state["owned"] == []


def _kill_a_dump_with_its_front(sandbox, home, out_dir) -> None:
    """A CLI dump into `out_dir`, both the command and its runner killed (SIGKILL) while pg_dump waits
    on a lock; returns once pg_dump has died with them (its partial output left behind)."""
    with table_locked(sandbox):
        cli = start_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--output", str(out_dir / "shop.dump"))
        wait_for(lambda: backend_waiting(sandbox), "pg_dump to wait for its lock")
        cli.kill()
        cli.wait()
        os.kill(runner_pid(home), signal.SIGKILL)
        wait_for(lambda: not children_running(str(out_dir)), "pg_dump to die with its runner", timeout=10)


def test_the_next_command_cleans_up_after_a_runner_killed_with_its_front(sandbox, home, out_dir):
    """Both the CLI and its runner die (a machine's OOM killer, kill -9 of the group): nothing
    follows the job; the next pgbackup-tui command of any kind finds it and cleans up."""
    _kill_a_dump_with_its_front(sandbox, home, out_dir)
    assert leftovers(out_dir)  # the runner could not clean up: its partial output is still there
    assert _state_or_empty(home)["state"] == "running"
    listing = run_cli("jobs", "list")
    assert "stopped without finishing" in listing.stderr
    # Only what it undid (QA): a dump creates no database ("a database it created" was said of every
    # job), and pg_dump's process group had died with the runner ("undone: process_group N").
    assert "what it had made is undone (its partial output)" in listing.stderr, listing.stderr
    assert "database" not in listing.stderr and "process_group" not in listing.stderr, listing.stderr
    assert not list(out_dir.iterdir())
    assert [job["state"] for job in jobs_json(home)] == ["failed"]


def test_a_command_started_while_another_settles_a_dead_job_waits_for_its_end(sandbox, home, out_dir):
    """Two commands started at once after a crash: the one that found the dead job's lock taken (the
    other was settling it: dropping its database, removing its output) listed it as `running 0%`, its
    runner long dead. It waits for that end now (here the test holds the lock, as a settling command
    does, for a second), and lists the job as it ended."""
    from pgbackup_tui.core.job_store import runner_lock

    _kill_a_dump_with_its_front(sandbox, home, out_dir)
    folder = next((home / "state" / "jobs").iterdir())
    with runner_lock(folder) as got_it:
        assert got_it
        listing = start_cli("jobs", "list")
        time.sleep(1.0)
    stdout, stderr = listing.communicate(timeout=30)
    assert listing.returncode == 0, stderr
    assert "running" not in stdout and " failed " in stdout, stdout
    assert "stopped without finishing" in stderr, stderr
    assert not list(out_dir.iterdir())


# -- a restore --create --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_archive(sandbox, tmp_path_factory) -> Path:
    """An archive whose restore takes seconds: every row passes a CHECK that sleeps 10 ms."""
    name = f"slow_{uuid.uuid4().hex[:6]}"
    sandbox.create_database(name)
    sandbox.psql(f"""
        CREATE FUNCTION public.slowly(int) RETURNS boolean LANGUAGE sql AS 'SELECT pg_sleep(0.01) IS NOT NULL';
        CREATE TABLE public.slow (id int PRIMARY KEY CHECK (public.slowly(id)));
        INSERT INTO public.slow SELECT generate_series(1, {SLOW_ROWS});""", name)
    archive = tmp_path_factory.mktemp("slow") / "slow.dump"
    result = run_cli("dump", "--dsn", sandbox.dsn(), "--db", name, "--output", str(archive))
    sandbox.drop_database(name)
    assert result.returncode == 0, result.stderr
    return archive


def database_exists(sandbox: Sandbox, name: str) -> bool:
    return sandbox.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{name}'").strip() == "1"


def copying(sandbox: Sandbox, db: str) -> bool:
    return sandbox.psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' "
                        "AND query LIKE 'COPY%'").strip() != "0"


def test_a_killed_runner_s_half_restored_database_is_dropped(sandbox, home, slow_archive, fresh_db_name):
    cli = start_cli("restore", str(slow_archive), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    wait_for(lambda: copying(sandbox, fresh_db_name), "pg_restore to load rows")
    os.kill(runner_pid(home), signal.SIGKILL)
    _, stderr = cli.communicate(timeout=30)
    assert cli.returncode == 1, stderr
    assert not database_exists(sandbox, fresh_db_name)
    state = only_job_state(home)
    assert state["state"] == "failed" and state["owned"] == []
    assert not children_running(str(slow_archive))


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGKILL])
def test_a_restore_goes_on_when_its_terminal_goes_away(sandbox, home, slow_archive, fresh_db_name, sig):
    cli = start_cli("restore", str(slow_archive), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    wait_for(lambda: copying(sandbox, fresh_db_name), "pg_restore to load rows")
    cli.send_signal(sig)
    cli.wait(timeout=10)
    wait_for(lambda: _state_or_empty(home).get("state") == "succeeded", "the restore to finish", timeout=60)
    assert sandbox.psql("SELECT count(*) FROM public.slow", fresh_db_name).strip() == str(SLOW_ROWS)


def test_sigterm_of_the_cli_cancels_a_restore_and_drops_its_database(sandbox, home, slow_archive, fresh_db_name):
    cli = start_cli("restore", str(slow_archive), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    wait_for(lambda: copying(sandbox, fresh_db_name), "pg_restore to load rows")
    cli.send_signal(signal.SIGTERM)
    _, stderr = cli.communicate(timeout=60)
    assert cli.returncode == 130, stderr
    assert "new database" in stderr and "was dropped" in stderr, stderr
    assert not database_exists(sandbox, fresh_db_name)
    assert only_job_state(home)["state"] == "cancelled"
    assert not children_running(str(slow_archive))


def _creating_database(sandbox: Sandbox, name: str) -> list[str]:
    """The pids of the backends whose CREATE DATABASE of `name` waits for a lock."""
    return sandbox.psql(f"SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        f"AND query LIKE 'CREATE DATABASE %{name}%'").split()


@pytest.mark.parametrize("made_by", ["dba", "dba_loading", "job"])
def test_a_runner_killed_at_its_create_database_drops_only_a_database_it_made(
        sandbox, home, slow_archive, fresh_db_name, made_by):
    """A restore --create puts the database's name on record before its CREATE, and its OID right after.
    Killed in between (here its CREATE waits for a lock on template0), and the name taken since by a
    DBA who loaded tables into it: the next command's recovery dropped the DBA's database (QA). A
    database on record without its OID is dropped only while it is empty, as the job's still was."""
    with psycopg.connect(sandbox.dsn()) as holder:
        holder.execute("COMMENT ON DATABASE template0 IS 'held'")  # CREATE ... TEMPLATE template0 waits
        cli = start_cli("restore", str(slow_archive), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
        wait_for(lambda: _creating_database(sandbox, fresh_db_name), "the restore's CREATE DATABASE to wait")
        cli.kill()
        cli.wait()
        os.kill(runner_pid(home), signal.SIGKILL)
        if made_by != "job":  # the job's CREATE never happens: its session ends with its client
            [backend] = _creating_database(sandbox, fresh_db_name)
            sandbox.psql(f"SELECT pg_terminate_backend({backend})")
            wait_for(lambda: not _creating_database(sandbox, fresh_db_name), "its session to end")
        holder.rollback()
    loading = None
    if made_by == "dba":
        sandbox.create_database(fresh_db_name)
        sandbox.psql("CREATE TABLE public.precious (id int); INSERT INTO public.precious VALUES (1)", fresh_db_name)
    elif made_by == "dba_loading":  # as `psql -1` or `pg_restore -1` load it: empty to every other session
        sandbox.create_database(fresh_db_name)
        loading = psycopg.connect(sandbox.dsn(fresh_db_name))
        loading.execute("CREATE TABLE public.precious (id int); INSERT INTO public.precious VALUES (1)")
    else:  # its session, waiting on the lock, did the CREATE then
        wait_for(lambda: database_exists(sandbox, fresh_db_name), "the job's CREATE to be done")
    listed = run_cli("jobs", "list")
    assert "stopped without finishing" in listed.stderr, listed.stderr
    if loading is not None:
        loading.commit()
        loading.close()
    if made_by != "job":
        assert sandbox.psql("SELECT count(*) FROM public.precious", fresh_db_name).strip() == "1"
        assert f"left alone: database '{fresh_db_name}'" in listed.stderr, listed.stderr
    else:
        assert not database_exists(sandbox, fresh_db_name)
        assert f"database {fresh_db_name}" in listed.stderr, listed.stderr
    assert only_job_state(home)["owned"] == []


@pytest.mark.parametrize("refusal", ["a session on it", "its owner changed"])
def test_a_swap_the_server_refuses_fails_the_clean_restore_and_leaves_nothing_on_record(
        sandbox, home, slow_archive, fresh_db_name, refusal):
    """A whole-database --clean restored beside the target, then found a session a DBA had opened on
    the target meanwhile: the rename was refused, and the job said so as bad input (exit 2), its record
    still holding the replaced database's new name to drop, which never was (a later start with the
    server away said it would drop it) (QA). The job failed (exit 1); nothing stays on record.
    So for any other refusal of the rename (here the role restoring no longer owns the target:
    "must be owner"), which kept those records as before (review)."""
    role = f"owner_{uuid.uuid4().hex[:8]}"
    sandbox.psql(f"CREATE ROLE {role} LOGIN CREATEDB")
    sandbox.create_database(fresh_db_name, owner=role)
    try:
        sandbox.psql("CREATE TABLE kept (a int); INSERT INTO kept VALUES (1);", fresh_db_name)
        dsn = sandbox.dsn() if refusal == "a session on it" else sandbox.dsn().replace(
            f"user={sandbox.superuser}", f"user={role}")
        cli = start_cli("restore", str(slow_archive), "--dsn", dsn, "--db", fresh_db_name, "--clean", "--no-owner")
        loading = ("SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'pgbackup_new_%' "
                   "AND query LIKE 'COPY%'")
        wait_for(lambda: sandbox.psql(loading).strip() != "0", "pg_restore to load rows beside the target")
        if refusal == "its owner changed":
            sandbox.psql(f"ALTER DATABASE {fresh_db_name} OWNER TO {sandbox.superuser}")
            _, stderr = cli.communicate(timeout=60)
            assert "must be owner of database" in stderr, stderr
        else:
            with psycopg.connect(sandbox.dsn(fresh_db_name)):  # the DBA's session, open at the swap
                _, stderr = cli.communicate(timeout=60)
            assert "; close its other sessions and start again" in stderr, stderr
        assert cli.returncode == 1, stderr
        assert f"'{fresh_db_name}' is unchanged" in stderr, stderr
        assert sandbox.psql("SELECT count(*) FROM kept", fresh_db_name).strip() == "1"
        assert only_job_state(home)["owned"] == []
        assert sandbox.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'pgbackup_%'").strip() == "0"
    finally:
        sandbox.drop_database(fresh_db_name)
        sandbox.psql(f"DROP ROLE {role}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_restore_into_an_existing_database_says_it_may_be_partly_restored(
        sandbox, home, slow_archive, fresh_db_name, sig):
    """Into an existing empty database, outside one transaction, nothing can put the target back:
    a cancel said only 'cancelled', and a killed runner's recovery 'what it had made is undone',
    over a database left with the archive's tables (QA)."""
    sandbox.create_database(fresh_db_name)
    cli = start_cli("restore", str(slow_archive), "--dsn", sandbox.dsn(), "--db", fresh_db_name)
    wait_for(lambda: copying(sandbox, fresh_db_name), "pg_restore to load rows")
    if sig == signal.SIGTERM:
        cli.send_signal(sig)  # the command's cancel
    else:
        os.kill(runner_pid(home), sig)
    _, stderr = cli.communicate(timeout=60)
    assert cli.returncode == (130 if sig == signal.SIGTERM else 1), stderr
    assert f"'{fresh_db_name}' may be partly restored" in stderr and "--single-transaction" in stderr, stderr
    assert database_exists(sandbox, fresh_db_name)  # the DBA's: never dropped
    state = only_job_state(home)
    assert state["owned"] == [] and f"'{fresh_db_name}' may be partly restored" in state["message"]


def test_a_restore_cancelled_while_its_database_settings_wait_for_a_lock_stops_at_once(
        sandbox, home, fresh_db_name, tmp_path):
    """A restore's last step (the database's comment, settings and grants) waited without end on a
    lock another session held, and a cancel waited with it (QA, a set restore): the cancel stops
    it, the new database goes (at once, or once the lock is gone, at a later start)."""
    source = f"{fresh_db_name}_src"
    sandbox.create_database(source)
    try:
        sandbox.psql(f"CREATE TABLE t (i int); COMMENT ON DATABASE {source} IS 'the books';", source)
        archive = tmp_path / "books.dump"
        assert run_cli("dump", "--dsn", sandbox.dsn(), "--db", source, "--output", str(archive)).returncode == 0
    finally:
        sandbox.drop_database(source)
    holder = psycopg.connect(sandbox.dsn())
    holder.execute("LOCK TABLE pg_catalog.pg_shdescription IN ACCESS EXCLUSIVE MODE")  # a DBA's open transaction
    try:
        cli = start_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
        commenting = ("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                      "AND query LIKE 'COMMENT ON DATABASE%'")
        wait_for(lambda: sandbox.psql(commenting).strip() != "0", "the restore's COMMENT ON DATABASE to wait")
        # Its progress said "98% finishing ETA 0s" meanwhile: its statements ran under another name than the job's.
        said = f"waiting for a lock held by pid {holder.info.backend_pid}"
        wait_for(lambda: any(said in (job["progress"] or "") for job in jobs_json(home)), "the wait in jobs list")
        asked = time.monotonic()
        cli.send_signal(signal.SIGTERM)
        _, stderr = cli.communicate(timeout=60)
        assert time.monotonic() - asked < 20, stderr
        assert cli.returncode == 130, stderr
        # Its drop waits on the same lock, for DROP_LOCK_TIMEOUT_S only: left on record for later.
        assert f"the new database '{fresh_db_name}' could NOT be dropped" in stderr, stderr
        assert "lock timeout" in stderr and "later start" in stderr, stderr
    finally:
        holder.rollback()
        holder.close()
    assert run_cli("jobs", "list").returncode == 0  # a drop left for later is done here
    assert not database_exists(sandbox, fresh_db_name), stderr


def test_a_backup_a_running_restore_reads_is_not_deleted(sandbox, home, slow_archive, fresh_db_name, tmp_path):
    """`backups delete` removed an archive under a running restore, which then failed half way
    into its target ('a worker process died unexpectedly'): refused while the job runs, --force
    or not, and deleted once it has ended (QA)."""
    copy = tmp_path / "copy.dump"
    shutil.copy(slow_archive, copy)
    shutil.copy(f"{slow_archive}.manifest.json", f"{copy}.manifest.json")
    assert run_cli("backups", "adopt", str(copy)).returncode == 0
    cli = start_cli("restore", str(copy), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    wait_for(lambda: copying(sandbox, fresh_db_name), "pg_restore to load rows")
    refused = run_cli("backups", "delete", str(copy), "--force")
    assert refused.returncode == 2 and "is being read by job" in refused.stderr, refused.stderr
    assert copy.exists()
    _, stderr = cli.communicate(timeout=120)
    assert cli.returncode == 0, stderr
    deleted = run_cli("backups", "delete", str(copy), "--force")
    assert deleted.returncode == 0, deleted.stderr
    assert not copy.exists()


@pytest.mark.parametrize("remade", [False, True])
def test_a_server_that_stops_mid_restore_gets_its_database_dropped_later(home, slow_archive, remade):
    """The job cannot drop the database it created while the server is down: it says so, keeps
    it on record (with its OID), and a later start, with the server back, drops it -- but only that
    one: a database of the same name that a DBA made meanwhile is left alone (it was dropped too)."""
    with Sandbox() as own:
        name = "half_" + uuid.uuid4().hex[:6]
        cli = start_cli("restore", str(slow_archive), "--dsn", own.dsn(), "--bin-dir", str(own.bin_dir),
                        "--db", name, "--create")
        wait_for(lambda: copying(own, name), "pg_restore to load rows")
        own._run_server_tool(["pg_ctl", "-D", str(own.data_dir), "-m", "immediate", "-w", "stop"], timeout=60)
        _, stderr = cli.communicate(timeout=60)
        assert cli.returncode == 1, stderr
        assert f"'{name}' could NOT be dropped" in stderr, stderr
        [record] = only_job_state(home)["owned"]
        assert record["kind"] == "database" and record["value"] == name and record["identity"].isdigit()
        own._running = False
        own.start()
        assert database_exists(own, name)
        if remade:
            own.drop_database(name)
            own.create_database(name)
            own.psql("CREATE TABLE important (x text); INSERT INTO important VALUES ('precious')", name)
        later = run_cli("jobs", "list")
        assert f"database {name}" in later.stderr or f"database '{name}'" in later.stderr, later.stderr
        if remade:
            assert "left alone" in later.stderr, later.stderr
            assert own.psql("SELECT x FROM important", name).strip() == "precious"
        else:
            assert not database_exists(own, name)
        assert only_job_state(home)["owned"] == []


def test_a_drill_whose_server_stops_says_only_what_drops_its_scratch_database(home, slow_archive, tmp_path):
    """A drill whose server stopped half way said its scratch database "is dropped on a later start
    of pgbackup-tui" (the restore job's words, for a job with a record, which a drill has not: no
    later command dropped it) and, in the same line, that the next drill drops it. It says the
    latter only."""
    copy = tmp_path / "copy.dump"
    shutil.copy(slow_archive, copy)
    shutil.copy(f"{slow_archive}.manifest.json", f"{copy}.manifest.json")
    assert run_cli("backups", "adopt", str(copy)).returncode == 0
    scratch = "SELECT datname FROM pg_database WHERE datname LIKE 'pgbackup_drill_%'"
    with Sandbox() as own:
        drill = start_cli("backups", "drill", str(copy), "--dsn", own.dsn(), "--bin-dir", str(own.bin_dir))
        wait_for(lambda: own.psql(scratch).strip() != "" and copying(own, own.psql(scratch).strip()),
                 "the drill to load rows")
        name = own.psql(scratch).strip()
        own._run_server_tool(["pg_ctl", "-D", str(own.data_dir), "-m", "immediate", "-w", "stop"], timeout=60)
        _, stderr = drill.communicate(timeout=60)
        assert drill.returncode == 1, stderr
        assert "later start of pgbackup-tui" not in stderr, stderr
        assert f"could not drop the scratch database {name}" in stderr, stderr
        assert "the next drill from this machine drops it" in stderr, stderr  # (test_catalog: it does)
        own._running = False


# -- a restore --clean of a whole database, killed at its swap ----------------------------------


def _database_oid(sandbox: Sandbox, name: str) -> str:
    return sandbox.psql(f"SELECT oid FROM pg_database WHERE datname = '{name}'").strip()


def _stopped_at_its_mark(home: Path, kind: str) -> tuple[int, dict, list[dict]]:
    """Stop the runner (SIGSTOP) as soon as its record (owned.json, synced before the step) has an
    item of `kind`: its pid, that item, and all it owns."""
    runner = runner_pid(home)
    [folder] = (home / "state" / "jobs").iterdir()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            items = json.loads((folder / "owned.json").read_text())["items"]
        except (OSError, ValueError):
            items = []
        marked = [item for item in items if item["kind"] == kind]
        if marked:
            os.kill(runner, signal.SIGSTOP)
            return runner, marked[0], items
        time.sleep(0.002)
    raise AssertionError(f"the runner never put {kind} on its record")


def _end_stopped(home: Path, cli: subprocess.Popen[str]) -> None:
    """After a test that stops a runner, failed or not: no stopped runner nor its front left behind."""
    pid = _state_or_empty(home).get("runner_pid")
    try:
        ours = bool(pid) and b"pgbackup_tui" in Path(f"/proc/{pid}/cmdline").read_bytes()  # not a pid reused
    except OSError:
        ours = False
    if ours and pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    if cli.poll() is None:
        cli.kill()
        cli.wait()


@pytest.mark.parametrize("keep_old", [False, True])
@pytest.mark.parametrize("swap_done", [True, False])
def test_a_runner_killed_at_its_swap_is_said_to_have_finished_only_if_the_swap_was_done(
        sandbox, home, slow_archive, fresh_db_name, keep_old, swap_done):
    """Killed after the swap committed, a runner's recovery said "failed; what it had made is undone"
    and dropped the database it had replaced, the restored one in its place (QA). Done or not, the
    server says: the target's OID. The runner is stopped as its record names the swap, the swap is
    made (by the same call, if the runner had not come to it) or not, and the runner killed."""
    from pgbackup_tui.core.connect import target_from_dsn
    from pgbackup_tui.core.restore_target import swap_databases

    sandbox.create_database(fresh_db_name)
    sandbox.psql("CREATE TABLE public.mine (x int); INSERT INTO public.mine VALUES (7)", fresh_db_name)
    original = _database_oid(sandbox, fresh_db_name)
    cli = start_cli("restore", str(slow_archive), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--clean",
                    *(["--keep-old"] if keep_old else []))
    try:
        runner, swap, owned = _stopped_at_its_mark(home, "swapped_in")
        [restored] = [i["value"] for i in owned if i["kind"] == "database" and i.get("identity") == swap["identity"]]
        swapped = _database_oid(sandbox, fresh_db_name) == swap["identity"]
        if swap_done and not swapped:
            swap_databases(target_from_dsn(sandbox.dsn()), "postgres", restored, fresh_db_name, swap["previous"])
        if not swap_done:
            assert not swapped, "the runner swapped before it was stopped"
        os.kill(runner, signal.SIGKILL)
        _, stderr = cli.communicate(timeout=60)
    finally:
        _end_stopped(home, cli)
    state = only_job_state(home)
    assert state["owned"] == [] and not database_exists(sandbox, restored)
    if not swap_done:
        assert cli.returncode == 1 and "stopped without finishing" in stderr, stderr
        assert _database_oid(sandbox, fresh_db_name) == original and not database_exists(sandbox, swap["previous"])
        return
    assert cli.returncode == 0, stderr
    assert state["state"] == "succeeded" and f"'{fresh_db_name}' is the restored database" in state["message"]
    assert _database_oid(sandbox, fresh_db_name) == swap["identity"]
    assert sandbox.psql("SELECT count(*) FROM public.slow", fresh_db_name).strip() == str(SLOW_ROWS)
    if keep_old:
        assert f"kept as '{swap['previous']}'" in stderr, stderr
        assert sandbox.psql("SELECT x FROM public.mine", swap["previous"]).strip() == "7"
        sandbox.drop_database(swap["previous"])
    else:
        assert "is dropped" in stderr and not database_exists(sandbox, swap["previous"]), stderr


@pytest.mark.parametrize("committed", [True, False])
def test_a_runner_killed_around_its_table_clean_s_commit_is_said_as_the_server_has_it(
        sandbox, home, fresh_db_name, tmp_path, committed):
    """Killed after psql's COMMIT, a `restore --clean --table`'s recovery said "failed; what it had
    made is undone" over a table that was replaced (QA). The runner is stopped once its record
    names its transaction; psql goes on to its COMMIT, or is held before it by a lock, and the
    runner is killed (psql with it)."""
    sandbox.psql(f"CREATE DATABASE {fresh_db_name} TEMPLATE shop")
    archive = tmp_path / "invoices.dump"
    subprocess.run([str(sandbox.bin_dir / "pg_dump"), "-Fc", "-t", "public.invoices", "-f", str(archive),
                    "-d", sandbox.dsn(fresh_db_name)], check=True)
    sandbox.psql("DELETE FROM public.invoices WHERE invoice_no % 2 = 0", fresh_db_name)
    count = "SELECT count(*) FROM public.invoices"
    blocker = None
    if not committed:  # a reader's lock holds the restore's DROP TABLE, after its transaction said its id
        blocker = subprocess.Popen([str(sandbox.bin_dir / "psql"), "-X", "-q", "-d", sandbox.dsn(fresh_db_name)],
                                   stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   text=True)
        assert blocker.stdin is not None
        blocker.stdin.write("BEGIN; LOCK TABLE public.invoices IN ACCESS SHARE MODE; SELECT pg_sleep(60);\n")
        blocker.stdin.flush()
        wait_for(lambda: sandbox.psql("SELECT count(*) FROM pg_locks WHERE relation = 'public.invoices'::regclass "
                                      "AND granted", fresh_db_name).strip() != "0", "the reader's lock")
    try:
        # An application_name of the DSN's own names psql's session too: the orphan is found by its pid.
        cli = start_cli("restore", str(archive), "--dsn", f"{sandbox.dsn()} application_name=their_app",
                        "--db", fresh_db_name, "--clean", "--table", "public.invoices")
        runner, mark, _ = _stopped_at_its_mark(home, "commits")
        status = f"SELECT txid_status({mark['value']})"
        if committed:
            wait_for(lambda: sandbox.psql(status).strip() == "committed", "psql to commit")
        else:
            wait_for(lambda: sandbox.psql(f"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                          f"AND pid = {mark['identity']}").strip() == "1",
                     "the restore's DROP TABLE to wait for the lock")
        os.kill(runner, signal.SIGKILL)
        _, stderr = cli.communicate(timeout=60)
    finally:
        _end_stopped(home, cli)
        if blocker is not None:
            blocker.kill()
            blocker.wait()
    state = only_job_state(home)
    assert state["owned"] == [], stderr
    if committed:
        assert cli.returncode == 0, stderr
        assert state["state"] == "succeeded" and "the restore's transaction committed" in state["message"], stderr
        assert sandbox.psql(count, fresh_db_name).strip() == "40"
    else:
        assert cli.returncode == 1 and "stopped without finishing" in stderr, stderr
        wait_for(lambda: sandbox.psql(status).strip() == "aborted", "psql's transaction to be rolled back")
        assert sandbox.psql(count, fresh_db_name).strip() == "20"


GATE_KEY = 4242  # the advisory lock gated_archive's rows wait for, in the database they go into


@pytest.fixture(scope="module")
def gated_archive(sandbox, tmp_path_factory) -> Path:
    """An archive whose rows, as they are restored, wait for advisory lock GATE_KEY (shared; a test
    holds it to stop the restore there, in its transaction, with its tables made)."""
    name = f"gated_{uuid.uuid4().hex[:6]}"
    sandbox.create_database(name)
    sandbox.psql(f"""
        CREATE FUNCTION public.gate(int) RETURNS boolean LANGUAGE sql
            AS 'SELECT true FROM pg_advisory_xact_lock_shared({GATE_KEY})';
        CREATE TABLE public.gated (id int PRIMARY KEY CHECK (public.gate(id)));
        INSERT INTO public.gated SELECT generate_series(1, 10);""", name)
    archive = tmp_path_factory.mktemp("gated") / "gated.dump"
    result = run_cli("dump", "--dsn", sandbox.dsn(), "--db", name, "--output", str(archive))
    sandbox.drop_database(name)
    assert result.returncode == 0, result.stderr
    return archive


def _final_state(home: Path) -> dict:
    """The job's state once a recovery has settled it (a later command's, if its front's could not tell yet)."""
    wait_for(lambda: run_cli("jobs", "list").returncode == 0 and _state_or_empty(home).get("state") in (
        "succeeded", "failed"), "the job's end on record")
    return only_job_state(home)


@pytest.mark.parametrize(("fmt", "committed"), [("plain", True), ("custom", True), ("custom", False)])
def test_a_runner_killed_around_a_single_transaction_restore_s_commit_is_said_as_the_target_has_it(
        sandbox, home, gated_archive, empty_db, tmp_path, fmt, committed):
    """Killed after the COMMIT of a `restore --single-transaction` into an empty database, a runner's
    recovery said "failed; what it had made is undone" over a database restored and committed (QA).
    psql's transaction says its id (commits); pg_restore's cannot, but the database it fills was
    empty, and what it holds now says (fills). The restore is held in its rows by the test's lock;
    the runner is stopped and the lock let go (the child commits), or the runner killed first."""
    archive = gated_archive
    if fmt == "plain":
        archive = tmp_path / "gated.sql"
        subprocess.run([str(sandbox.bin_dir / "pg_restore"), "-f", str(archive), str(gated_archive)], check=True)
    restored = "SELECT to_regclass('public.gated') IS NOT NULL"  # seen by another session once committed
    with psycopg.connect(sandbox.dsn(empty_db), autocommit=True) as gate:
        gate.execute("SELECT pg_advisory_lock(%s)", (GATE_KEY,))
        cli = start_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", empty_db, "--single-transaction")
        try:
            wait_for(lambda: sandbox.psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{empty_db}' "
                                          "AND wait_event_type = 'Lock' AND application_name LIKE 'pgbackup-tui/%'"
                                          ).strip() == "1", "the restore's rows to wait for the test's lock")
            runner = runner_pid(home)
            [folder] = (home / "state" / "jobs").iterdir()
            mark = "commits" if fmt == "plain" else "fills"  # psql's NOTICE is read by the runner as it goes on
            wait_for(lambda: mark in (folder / "owned.json").read_text(), "the restore's transaction on record")
            os.kill(runner, signal.SIGSTOP if committed else signal.SIGKILL)
            if not committed:  # its child dies with it, but not at once: let go before, it could still commit
                wait_for(lambda: not children_running(str(archive)), "the restore's child to die with its runner")
            gate.execute("SELECT pg_advisory_unlock(%s)", (GATE_KEY,))
            if committed:
                wait_for(lambda: sandbox.psql(restored, empty_db).strip() == "t", "the restore to commit")
                os.kill(runner, signal.SIGKILL)
            _, stderr = cli.communicate(timeout=60)
        finally:
            _end_stopped(home, cli)
    state = _final_state(home)
    assert state["owned"] == [], stderr
    if committed:
        assert cli.returncode == 0, stderr
        assert state["state"] == "succeeded" and "the restore's transaction committed" in state["message"], stderr
        assert sandbox.psql("SELECT count(*) FROM public.gated", empty_db).strip() == "10"
    else:
        assert state["state"] == "failed" and "stopped without finishing" in state["message"], state
        assert f"'{empty_db}' is as it was (the restore's one transaction was rolled back)" in state["message"], state
        assert sandbox.psql(restored, empty_db).strip() == "f"


# -- full disks ---------------------------------------------------------------------------------


def test_a_full_log_and_state_disk_stops_the_job_with_one_line(sandbox, tmp_path, monkeypatch):
    with small_filesystem(tmp_path / "home", 512) as app_home:
        monkeypatch.setenv("PGBACKUP_TUI_HOME", str(app_home))
        fill(app_home, 12 * 1024)  # room for the job's folder and a few log lines, not for pg_dump's
        out = tmp_path / "out"
        out.mkdir()
        result = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--output", str(out / "shop.dump"),
                         "--progress", "none")
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
        assert "full" in lines[0]
        assert not list(out.iterdir())  # no archive, no .partial
        assert not children_running(str(out))
        # The disk still full: listed as failed, not as running (its runner is gone), whether or not
        # the front's recovery found room for its end (test_job_records_offline: when it did not).
        listed = run_cli("jobs", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        [job] = json.loads(listed.stdout)
        assert job["state"] == "failed", job
        # With room again, the next command finishes the job's record: why it stopped, as it was (QA:
        # "killed, or out of memory").
        (app_home / "filler").unlink()
        later = run_cli("jobs", "list", "--json")
        assert later.returncode == 0, later.stderr
        states = [json.loads(path.read_text()) for path in (app_home / "state" / "jobs").glob("*/state.json")]
        assert [state["state"] for state in states] == ["failed"], states
        # Recorded by the front's recovery (the runner's mark was there already) or by this one's.
        assert "could not write the job's state" in states[0]["message"], states[0]
        assert "the disk was full" in states[0]["message"], states[0]


def test_a_full_state_disk_under_a_restore_says_what_became_of_its_database(sandbox, tmp_path, monkeypatch, empty_db):
    """A restore stopped by a full disk under its state was said to have had "its partial output
    removed" (a dump's words: a restore has none); it says what became of its target (QA)."""
    sandbox.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g", empty_db)
    monkeypatch.setenv("PGBACKUP_TUI_HOME", str(tmp_path / "made"))
    archive = tmp_path / "small.dump"
    made = run_cli("dump", "--dsn", sandbox.dsn(), "--db", empty_db, "--output", str(archive), "--progress", "none")
    assert made.returncode == 0, made.stderr
    target = f"{empty_db}_r"
    try:
        with small_filesystem(tmp_path / "home", 512) as app_home:
            monkeypatch.setenv("PGBACKUP_TUI_HOME", str(app_home))
            fill(app_home, 12 * 1024)
            result = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", target, "--create",
                             "--progress", "none")
            assert result.returncode == 1, result.stderr
            assert "full" in result.stderr and "partial output" not in result.stderr, result.stderr
            assert f"the database '{target}' it was creating is dropped" in result.stderr, result.stderr
            assert not database_exists(sandbox, target)
    finally:
        sandbox.drop_database(target)


def test_a_state_folder_remounted_read_only_mid_restore_is_said_and_listed(sandbox, home, slow_archive,
                                                                           fresh_db_name):
    """The state folder's disk remounted read-only (ext4's errors=remount-ro) under a restore --create:
    the runner stopped and dropped its database, but its front ended with `error: …/runner.lock:
    Read-only file system`, exit 2 (bad input), and so did every `jobs list` until the remount, which
    listed nothing. The lock is read through a read-only descriptor now: the front says the job
    failed (exit 1), `jobs list` lists it as failed, and a later command records its end."""
    from small_disk import read_only

    cli = start_cli("restore", str(slow_archive), "--dsn", sandbox.dsn(), "--db", fresh_db_name, "--create")
    wait_for(lambda: copying(sandbox, fresh_db_name), "pg_restore to load rows")
    with read_only(home / "state"):
        _, stderr = cli.communicate(timeout=60)
        assert cli.returncode == 1, stderr
        assert "could not write its state" in stderr and "runner.lock" not in stderr, stderr
        assert not database_exists(sandbox, fresh_db_name)
        listed = run_cli("jobs", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        [job] = json.loads(listed.stdout)
        assert job["state"] == "failed", job
    later = run_cli("jobs", "list", "--json")
    assert later.returncode == 0 and "stopped without finishing" in later.stderr, later.stderr
    # Why, as its log has it (the read-only folder took no mark): not "killed, or out of memory".
    assert "could not write the job's state" in later.stderr and "Read-only file system" in later.stderr, later.stderr
    assert "out of memory" not in later.stderr, later.stderr
    # Its runner had dropped the database before it stopped: nothing was left to undo, and it was said
    # "undone: database …" (and "its partial output", which a restore has none of) (QA).
    assert "it had left nothing to undo" in later.stderr and "undone:" not in later.stderr, later.stderr
    assert [job["state"] for job in json.loads(later.stdout)] == ["failed"]
    assert only_job_state(home)["state"] == "failed"


def test_a_full_output_disk_with_parallel_jobs_says_so(sandbox, home, tmp_path):
    with small_filesystem(tmp_path / "out", 256) as out:
        result = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--format", "directory", "--jobs", "2",
                         "--compress", "0", "--output", str(out / "shop.dir"), "--progress", "none")
        assert result.returncode == 1, result.stderr
        assert "No space left on device" in result.stderr or "full" in result.stderr, result.stderr
        assert "disk" in result.stderr and str(out) in result.stderr, result.stderr
        assert not [p for p in out.iterdir()]


def test_a_full_temp_disk_under_a_table_level_clean_names_it(sandbox, home, tmp_path, empty_db):
    """A table-level --clean writes the tables' rows as SQL into a temporary folder first (as big as
    the tables): a full disk there said only "pg_restore could not write the tables' SQL: could not
    write to output file: No space left on device", not which disk nor what to do (QA)."""
    archive = tmp_path / "shop.dump"
    subprocess.run([str(sandbox.bin_dir / "pg_dump"), "--format=custom", f"--file={archive}",
                    f"--dbname={sandbox.dsn(SOURCE)}"], check=True, capture_output=True)
    with small_filesystem(tmp_path / "tmp", 64) as small_tmp:
        result = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", empty_db, "--clean",
                         "--table", "public.events", "--progress", "none", env={**os.environ, "TMPDIR": str(small_tmp)})
        assert result.returncode == 1, result.stderr
        assert f"the disk holding {small_tmp} is full" in result.stderr and "TMPDIR" in result.stderr, result.stderr
        assert not list(small_tmp.iterdir())
    assert sandbox.psql("SELECT count(*) FROM pg_class WHERE relname = 'events'", empty_db).strip() == "0"


@pytest.mark.parametrize("fmt", ["custom", "plain"])
def test_a_disk_that_fills_after_pg_dump_says_so(sandbox, home, tmp_path, fmt):
    """pg_dump's archive fits, and what the job writes beside it after (the TOC listing it reads
    back, the manifest) does not: that is a full disk (exit 1, said so), not "the archive does not
    read back" (exit 2, for bad input) nor an internal error; nothing is left."""
    probe = tmp_path / f"probe.{fmt}"
    compress = ("--compress", "9") if fmt == "custom" else ()
    done = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--format", fmt, *compress,
                   "--output", str(probe), "--progress", "none")
    assert done.returncode == 0, done.stderr
    size = probe.stat().st_size
    pages = -(-size // 4096)  # the archive's own pages, and not one more
    with small_filesystem(tmp_path / "out", pages * 4) as out:
        result = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--format", fmt, *compress,
                         "--output", str(out / f"shop.{fmt}"), "--progress", "none")
        assert result.returncode == 1, result.stderr
        assert "full" in result.stderr and "internal error" not in result.stderr, result.stderr
        assert not [p for p in out.iterdir()]


def test_a_state_or_manifest_write_that_finds_the_disk_full_names_the_file(tmp_path):
    """A write or fsync through an open file says no file name when the disk is full: the job's line
    said "the disk is full (No space left on device)" and not which disk (QA)."""
    from pgbackup_tui.core.job_store import write_json
    from pgbackup_tui.core.paths import write_private_file

    with small_filesystem(tmp_path / "full", 256) as folder:
        fill(folder, 0)
        for write, path in ((lambda p: write_json(p, {"x": "y" * 8192}, durable=True), folder / "state.json"),
                            (lambda p: write_private_file(p, b"z" * 8192), folder / "a.dump.manifest.json")):
            with pytest.raises(OSError) as raised:
                write(path)
            assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(path), raised.value
            assert not list(folder.glob(".*.tmp"))  # its temporary file is gone


def _tools_whose_pg_restore_is_killed(sandbox: Sandbox, folder: Path, args: str, sig: str = "KILL") -> Path:
    """A bin dir of the sandbox's client tools whose pg_restore is killed by SIGKILL (or `sig`) when its
    arguments hold `args` (a shell pattern), as the OOM killer would kill it: a real signal, at that step only."""
    folder.mkdir()
    for tool in ("pg_dump", "pg_dumpall", "psql"):
        (folder / tool).symlink_to(sandbox.bin_dir / tool)
    script = folder / "pg_restore"
    script.write_text(f'#!/bin/sh\ncase "$*" in {args}) kill -{sig} $$;; esac\n'
                      f'exec "{sandbox.bin_dir}/pg_restore" "$@"\n')
    script.chmod(0o755)
    return folder


@pytest.mark.parametrize(("fmt", "step"), [("custom", '*"--list --verbose"*.partial'),
                                           ("directory", '*"--data-only --file"*'),
                                           ("plain", '*--use-list=*')], ids=["list", "rows", "script"])
def test_a_read_back_killed_by_a_signal_fails_the_dump_and_says_so(sandbox, home, tmp_path, fmt, step):
    """The new archive's read back (pg_restore --list, or the rows counted with --data-only) killed by
    SIGKILL: the dump ended with exit 2 (bad input of the user's), saying the line pg_dump printed
    last ("the new archive does not read back (pg_dump: dumping contents of table …)") (QA). It is
    the job's failure (exit 1), said as it was, and nothing is left. So is the pg_restore that writes
    a plain selection's script from its archive (it said "writing the SQL script failed: pg_dump: …")."""
    tools = _tools_whose_pg_restore_is_killed(sandbox, tmp_path / "bin", step)
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli("dump", "--dsn", sandbox.dsn(), "--bin-dir", str(tools), "--db", SOURCE, "--table",
                     "public.starname", "--format", fmt, "--output", str(out / "starname"), "--progress", "none")
    assert result.returncode == 1, result.stderr
    assert "killed by signal 9 (SIGKILL)" in result.stderr and "pg_dump:" not in result.stderr, result.stderr
    assert not list(out.iterdir())
    assert only_job_state(home)["state"] == "failed"



def test_a_runner_stopped_by_a_full_disk_is_said_so_though_the_disk_has_room_again(sandbox, tmp_path, monkeypatch):
    """The backups, the state and the logs on one small disk (PGBACKUP_TUI_HOME's): the runner cannot
    write the job's state and stops. By the time its front looks, the disk has room again (the partial
    archive it removed is freed once its last reader closes it), and the front said only "the job could
    not write its state or log under …; nothing was kept", not why (QA). The runner's mark says it."""
    from pgbackup_tui.core import job_store
    from pgbackup_tui.core.connect import target_from_dsn
    from pgbackup_tui.core.job_follow import JobFollower
    from pgbackup_tui.core.jobs import JobState
    from pgbackup_tui.core.plans import DumpPlan
    from pgbackup_tui.core.runner_start import start_job

    with small_filesystem(tmp_path / "home", 4096) as app_home:  # room again is more than "nearly full"'s 1 MiB
        monkeypatch.setenv("PGBACKUP_TUI_HOME", str(app_home))
        with table_locked(sandbox):
            job_id, _folder, runner = start_job("dump", DumpPlan(target=target_from_dsn(sandbox.dsn()), dbname=SOURCE),
                                                "dump shop")
            wait_for(lambda: backend_waiting(sandbox), "pg_dump to wait for its lock")
            fill(app_home, 0)  # its next write of the job's state (progress, 4 a second) finds no room
            runner.wait(timeout=30)
        (app_home / "filler").unlink()  # room again, before the front looks
        record = job_store.load(job_id)
        assert record is not None
        result = asyncio.run(JobFollower(record, runner=runner).follow())
        assert result.state == JobState.FAILED and "full" in result.message, result.message
        assert not list((app_home / "backups").rglob("*.partial"))


@pytest.mark.parametrize(("command", "step"), [
    ("verify", '*"--list --verbose"*'), ("verify", '*"--data-only"*'),
    ("restore", '*"--list --verbose"*'), ("restore", '*"--file=/dev/null"*')],
                         ids=["verify-list", "verify-rows", "restore-list", "restore-read-through"])
def test_a_reader_killed_by_a_signal_says_nothing_of_a_sound_archive(sandbox, home, tmp_path, fresh_db_name,
                                                                     command, step):
    """pg_restore reading a sound archive through, killed by SIGKILL (the OOM killer on a big archive):
    `backups verify` recorded the backup as failed verification ("its table of contents does not read
    (?)"), and a restore refused it as "truncated or damaged (no output)", exit 2 (QA). Said as what it
    was (exit 1), nothing recorded, nothing restored."""
    tools = _tools_whose_pg_restore_is_killed(sandbox, tmp_path / "bin", step)
    archive = tmp_path / "starname.dump"
    if command == "verify":
        made = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--table", "public.starname",
                       "--output", str(archive), "--progress", "none")
        assert made.returncode == 0, made.stderr
        result = run_cli("backups", "verify", str(archive), "--bin-dir", str(tools))
        listed = run_cli("backups", "list", "--json")
        assert [row["status"] for row in json.loads(listed.stdout)] == ["complete"], listed.stdout
    else:  # a foreign archive (no manifest, no checksums): read through before anything is made
        subprocess.run([str(sandbox.bin_dir / "pg_dump"), "--format=custom", f"--file={archive}",
                        "--table=public.starname", f"--dbname={sandbox.dsn(SOURCE)}"], check=True, capture_output=True)
        result = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--bin-dir", str(tools),
                         "--db", fresh_db_name, "--create", "--progress", "none")
        assert sandbox.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{fresh_db_name}'").strip() == "0"
    assert result.returncode == 1, result.stderr
    assert "pg_restore was killed by signal 9 (SIGKILL) while reading" in result.stderr, result.stderr
    assert "damaged" not in result.stderr and "does not read" not in result.stderr, result.stderr
    if command == "verify" and "list" in step:
        # `backups show` reads the same TOC: it ended exit 1 without the manifest it knows (review).
        shown = run_cli("backups", "show", str(archive), "--json", "--bin-dir", str(tools))
        assert shown.returncode == 0, shown.stderr
        data = json.loads(shown.stdout)
        assert data["manifest"] is not None and "killed by signal 9" in data["toc_error"], data


@pytest.mark.parametrize("command", ["verify", "restore"])
def test_a_reader_that_crashes_is_the_archive_s_problem(sandbox, home, tmp_path, fresh_db_name, command):
    """A crash (SIGSEGV: damaged data a reader trips on) was said as a kill from outside, "says nothing of
    the archive: try again", so a backup pg_restore crashed on stayed complete for ever (review): it
    fails verification, and a restore refuses the archive, naming the crash."""
    tools = _tools_whose_pg_restore_is_killed(sandbox, tmp_path / "bin", '*"--list --verbose"*', "SEGV")
    archive = tmp_path / "starname.dump"
    made = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--table", "public.starname",
                   "--output", str(archive), "--progress", "none")
    assert made.returncode == 0, made.stderr
    if command == "verify":
        result = run_cli("backups", "verify", str(archive), "--bin-dir", str(tools))
        assert result.returncode == 1, result.stderr
        listed = run_cli("backups", "list", "--json")
        assert [row["status"] for row in json.loads(listed.stdout)] == ["failed verification"], listed.stdout
    else:
        result = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--bin-dir", str(tools),
                         "--db", fresh_db_name, "--create", "--progress", "none")
        assert result.returncode == 2, result.stderr
    assert "pg_restore was killed by signal 11 (SIGSEGV)" in result.stderr, result.stderr
    assert "try again" not in result.stderr, result.stderr
