"""Bad input is exit 2 and one line naming the thing, before anything runs (issue 10, point 4).

Through the real CLI against the sandbox: nothing is created (no backup folder, no log, no
config) and no database is touched; the plan checks are the ones the TUI's dialogs use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from cliutil import run_cli
from psycopg.conninfo import make_conninfo

from pgbackup_tui.core.config import load_config
from pgbackup_tui.core.server_profile import ServerProfile, validate_profile
from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.errors import ConfigError, UsageError
from pgbackup_tui.core.jobs import JobState
from pgbackup_tui.core.plans import DumpPlan, RestorePlan

SOURCE = "shop"
SECRET = "s3cret-pw"


def assert_refused(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2, one line on stderr holding every fragment, no traceback."""
    context = f"{result.args[3:]}: exit {result.returncode}, stderr {result.stderr!r}"
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, context
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, context
    for fragment in fragments:
        assert fragment in lines[0], context
    return lines[0]


def created_in(home: Path) -> list[str]:
    """What a command left in the app home: backups, logs, config (the job runner's state dir aside)."""
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.relative_to(home).parts[0] != "state")


@pytest.fixture(scope="module")
def archive(sandbox, tmp_path_factory) -> Path:
    """A real schema-only archive of `shop`, for the restore refusals."""
    path = tmp_path_factory.mktemp("archive") / "shop.dump"
    subprocess.run([str(sandbox.bin_dir / "pg_dump"), "--schema-only", "--format=c", f"--file={path}",
                    f"--dbname={sandbox.dsn(SOURCE)}"], check=True, capture_output=True)
    return path


def databases(sandbox) -> set[str]:
    return set(sandbox.psql("SELECT datname FROM pg_database").split())


# -- dump and restore ------------------------------------------------------------------------------
LONG = "d" * 300


@pytest.mark.parametrize(("args", "fragments"), [
    (["--db", ""], ["--db is empty"]),
    (["--db", LONG], ["--db", "300 bytes", "at most 63"]),
    (["--db", f"postgresql://u:{SECRET}@h/db"], ["--db", "password"]),
    (["--db", SOURCE, "--output", "/etc/hostname/x.dump"], ["/etc/hostname is a file, not a folder"]),
    (["--db", SOURCE, "--output", "OUT/" + "n" * 300 + ".dump"], ["--output", "305 bytes", "at most"]),
    (["--db", SOURCE, "--output", "OUT/" + "f" * 300 + "/x.dump"], ["--output", "folder name is longer"]),
    (["--db", SOURCE, "--output", ""], ["--output", "is empty"]),
    # A file named '-' in the current folder, and a file named OUT/new (the '/' dropped) (QA).
    (["--db", SOURCE, "--output", "-"], ["--output", "not standard output"]),
    (["--db", SOURCE, "--output", "OUT/new/"], ["--output", "ends with '/'", "--format directory"]),
])
def test_dump_refuses_before_anything_runs(sandbox, home, args, fragments):
    args = [a.replace("OUT/", f"{home}/out/") for a in args]
    result = run_cli("dump", "--dsn", sandbox.dsn(), *args)
    line = assert_refused(result, *fragments)
    assert SECRET not in line
    assert created_in(home) == []  # no backups/ folder, no log, nothing


@pytest.mark.parametrize("args", [["--globals-only"], []])
def test_dumpall_refuses_an_output_that_ends_with_a_slash(sandbox, home, args):
    """A whole-cluster or globals file to `--output DIR/` was written as a file named DIR, said good
    (second review: dump refused it, dumpall did not)."""
    result = run_cli("dumpall", "--dsn", sandbox.dsn(), *args, "--output", f"{home}/out/new/")
    assert_refused(result, "--output", "ends with '/'", "--set")
    assert created_in(home) == []
    # One already there was refused by the job, after it had connected: "failed:", a failed job on
    # record and its log (dump refused it before anything ran).
    taken = home.parent / f"taken-{'-'.join(args) or 'all'}.sql"
    taken.write_text("mine\n")
    result = run_cli("dumpall", "--dsn", sandbox.dsn(), *args, "--output", str(taken))
    assert_refused(result, f"error: {taken} already exists")
    assert created_in(home) == [] and taken.read_text() == "mine\n"


def test_a_name_the_database_lacks_is_said_once_with_progress_shown(sandbox, home):
    """Found by the job (it asks the server): with its log shown (--progress plain, a terminal's
    default), its last line is the result's message; it was printed twice."""
    result = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--table", "public.nosuch",
                     "--progress", "plain")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("--table public.nosuch: no such table") == 1, result.stderr
    quiet = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--table", "public.nosuch", "--progress", "none")
    [line] = quiet.stderr.strip().splitlines()  # no log shown: the one line says it failed, and why
    assert quiet.returncode == 2 and line.startswith("pgbackup-tui: failed: --table public.nosuch"), line
    sequence = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--exclude-table",
                       '"Sales & Ops".customers_id_seq')
    assert sequence.returncode == 2 and "is a sequence in database 'shop'" in sequence.stderr, sequence.stderr


def test_dump_does_not_write_over_a_manifest_left_alone(sandbox, home, tmp_path):
    """A backup's manifest whose archive is gone (moved, deleted by hand) is its only record:
    a dump to that name is refused, the manifest as it was."""
    out = tmp_path / "y2.dump"
    manifest = tmp_path / "y2.dump.manifest.json"
    manifest.write_text('{"id": "0badf00d", "damaged')
    result = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--output", str(out))
    assert_refused(result, str(manifest), "move it away")
    assert manifest.read_text() == '{"id": "0badf00d", "damaged' and not out.exists()


def test_dump_into_a_folder_that_takes_no_files_says_so(sandbox, home):
    """/proc lets root try and answers ENOENT: it was reported as a folder that "keeps disappearing"."""
    result = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--output", "/proc/x.dump")
    assert_refused(result, "/proc takes no new files")
    # A folder to make there (the TUI's output folder): said at once, not "keeps disappearing" seconds later.
    result = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--output", "/proc/nope/x.dump")
    assert_refused(result, "cannot create the folder /proc/nope")


def test_a_mixed_case_name_typed_without_quotes_gets_a_hint(sandbox, home, empty_db, tmp_path):
    """Names are exact: MixedCase unquoted is mixedcase. The refusal names what was meant."""
    sandbox.psql('CREATE SCHEMA "MixedCase"; CREATE TABLE "MixedCase"."Customers" (id int);', empty_db)
    schema = run_cli("dump", "--dsn", sandbox.dsn(), "--db", empty_db, "--schema", "MixedCase")
    assert_refused(schema, "--schema mixedcase: no such schema", 'there is "MixedCase"')
    archive = tmp_path / "mixed.dump"
    subprocess.run([str(sandbox.bin_dir / "pg_dump"), "--format=c", f"--file={archive}",
                    f"--dbname={sandbox.dsn(empty_db)}"], check=True, capture_output=True)
    table = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", f"{empty_db}_x", "--create",
                    "--table", "MixedCase.Customers")
    assert_refused(table, "--table mixedcase.customers: not in archive", 'it holds "MixedCase"."Customers"')


def test_dump_refuses_a_read_only_place(sandbox, home, tmp_path):
    """A folder on a read-only filesystem (a private mount namespace: root may write anywhere else)."""
    place = tmp_path / "ro"
    place.mkdir()
    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare or "unshare", "-m", "true"], capture_output=True) if unshare else None
    if probe is None or probe.returncode != 0:
        if os.geteuid() == 0:
            pytest.skip("needs unshare -m (a read-only mount) to make a place root cannot write in")
        place.chmod(0o555)
        result = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SOURCE, "--output", f"{place}/x.dump")
        assert_refused(result, f"cannot write in {place}", "permission denied")
    else:
        script = (f'mount -t tmpfs -o ro none "{place}" && exec "$@"')
        result = subprocess.run(
            [unshare, "-m", "sh", "-c", script, "sh", sys.executable, "-m", "pgbackup_tui", "dump",
             "--dsn", sandbox.dsn(), "--db", SOURCE, "--output", f"{place}/sub/x.dump"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert_refused(result, f"cannot write in {place}", "read-only filesystem")
    assert created_in(home) == []


@pytest.mark.parametrize(("args", "fragments"), [
    (["--db", "", "--create"], ["--db is empty"]),
    (["--db", "template0", "--clean"], ["template0", "template database", "another database"]),
    (["--db", "template1"], ["template1", "template database"]),
    # 32 two-byte letters: 32 characters, 64 bytes in UTF-8; the server would keep 63 of them.
    (["--db", "é" * 32, "--create"], ["64 bytes", "at most 63"]),
])
def test_restore_refuses_before_anything_runs(sandbox, home, archive, args, fragments):
    before = databases(sandbox)
    result = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), *args)
    line = assert_refused(result, *fragments)
    assert "partly restored" not in line
    assert databases(sandbox) == before
    assert created_in(home) == []


@pytest.mark.parametrize(("args", "fragments"), [
    # Path("") is the current folder: csv export said "<cwd> already exists", csv import looked for
    # a manifest there, restore read it as a directory archive (a failed job, not bad input) (QA).
    (["csv", "export", "--db", SOURCE, "--table", "public.events", "--output", ""], ["--output", "is empty"]),
    (["csv", "import", "", "--db", "x"], ["DIR", "is empty"]),
    (["restore", "", "--db", "x"], ["ARCHIVE", "is empty"]),
])
def test_an_empty_path_is_refused_not_read_as_the_current_folder(sandbox, home, args, fragments):
    result = run_cli(*args[:2], "--dsn", sandbox.dsn(), *args[2:])
    assert_refused(result, *fragments)
    assert created_in(home) == []


@pytest.mark.parametrize("command", [["dump", "--db", SOURCE], ["restore", "/nonexistent.dump", "--db", "x"],
                                     ["dumpall", "--set"], ["csv", "export", "--db", SOURCE, "--table", "a",
                                                            "--output", "OUT"]])
def test_an_empty_dsn_is_refused_not_taken_as_libpq_s_defaults(sandbox, home, monkeypatch, command):
    # QA: `--dsn "$UNSET"` connected to libpq's defaults (PGHOST's server, the local one): a restore went
    # there. Refused as `--server ""` is, even where the environment names a server that would answer.
    monkeypatch.setenv("PGHOST", str(sandbox.socket_dir))
    monkeypatch.setenv("PGPORT", str(sandbox.port))
    monkeypatch.setenv("PGUSER", sandbox.superuser)
    result = run_cli(*[a.replace("OUT", str(home / "out")) for a in command], "--dsn", "")
    assert_refused(result, "--dsn is empty")
    assert created_in(home) == []


def test_restore_without_db_names_the_archive_s_own_problem_first(sandbox, home, tmp_path):
    """A missing or gzipped archive is what to fix, not the --db left out."""
    packed = tmp_path / "x.sql.gz"
    packed.write_bytes(b"\x1f\x8b\x08\x00" + bytes(60))
    for path, fragments in ((tmp_path / "nowhere.sql", ["nowhere.sql", "no such file"]),
                            (packed, ["x.sql.gz", "gzip-compressed"])):
        assert_refused(run_cli("restore", str(path), "--dsn", sandbox.dsn()), *fragments)


def test_a_63_byte_name_is_still_fine(sandbox, home, archive):
    name = "é" * 31 + "x"  # 63 bytes
    try:
        result = run_cli("restore", str(archive), "--dsn", sandbox.dsn(), "--db", name, "--create")
        assert result.returncode == 0, result.stderr
        assert name in databases(sandbox)
    finally:
        sandbox.drop_database(name)


def test_the_dialogs_refuse_the_same(sandbox, home, tmp_path):
    """The TUI's dialogs call validate(): the same lines, without a CLI."""
    target = target_from_dsn(sandbox.dsn())
    (tmp_path / "file").write_text("x")
    for plan in (DumpPlan(target=target, dbname=""), DumpPlan(target=target, dbname="x" * 64),
                 DumpPlan(target=target, dbname=SOURCE, output=tmp_path / "file" / "x.dump")):
        with pytest.raises(UsageError):
            plan.validate()
    for name in ("", "template0", "template1", "ü" * 32):
        with pytest.raises(UsageError):
            RestorePlan(archive=tmp_path / "a.dump", target=target, dbname=name, create=True).validate()
    DumpPlan(target=target, dbname="y" * 63, output=tmp_path / "new" / "x.dump").validate()
    assert not (tmp_path / "new").exists()  # validate looks, never creates


async def test_a_job_with_a_300_character_name_fails_in_one_line(sandbox, home):
    """A job started without the CLI's check (a caller's bug) still opens its log and says why."""
    job = DumpJob(DumpPlan(target=target_from_dsn(sandbox.dsn()), dbname=LONG))
    result = await job.run()
    assert result.state == JobState.FAILED and result.exit_code == 2
    assert "at most 63" in result.message and "internal error" not in result.message
    assert result.log_path is not None and len(result.log_path.name.encode()) < 255
    assert not (home / "backups").exists()


# -- config ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("line", "key"), [
    ("port = true", "port"), ("port = 1.5", "port"), ('port = "5432x"', "port"),
    ("host = 5", "host"), ("bin_dir = []", "bin_dir"), ("user = {a = 1}", "user"),
])
def test_config_values_of_the_wrong_type(home, line, key):
    config = home / "config.toml"
    body = line if key == "host" else f'host = "h2"\n{line}'
    text = f'[servers.good]\nhost = "h1"\n\n[servers.bad]\n{body}\n'
    config.write_text(text)
    first = assert_refused(run_cli("servers", "list"), str(config), "[servers.bad]", f"{key} = ")
    assert_refused(run_cli("servers", "test", "bad"), str(config), "[servers.bad]")
    # The table that does not load fails only what uses it, and is written back as it was by a
    # command that changes the file (it stopped every command, every scheduled backup with it).
    assert run_cli("servers", "add", "other", "--host", "h3").returncode == 0
    assert run_cli("servers", "remove", "good").returncode == 0
    after = tomllib.loads(config.read_text())["servers"]
    assert after["bad"] == tomllib.loads(text)["servers"]["bad"] and "other" in after and "good" not in after
    assert first.count("\n") == 0


def test_a_port_given_as_digits_in_quotes_still_loads(home):
    (home / "config.toml").write_text('[servers.a]\nhost = "h"\nport = "5433"\n')
    assert load_config().servers["a"].port == 5433


def test_a_config_that_is_a_fifo_is_refused_without_hanging(home):
    fifo = home / "config.toml"
    os.mkfifo(fifo)
    result = run_cli("servers", "list", timeout=20)
    assert_refused(result, str(fifo), "FIFO", "not a regular file")
    folder_config = home / "cfg-dir"
    folder_config.mkdir()
    with pytest.raises(ConfigError, match="a folder"):
        load_config(folder_config)
    # A file whose read fails (an I/O error: /proc/self/mem reads as one) was said with Python's
    # "[Errno 5] Input/output error" (QA).
    unreadable = home / "unreadable.toml"
    unreadable.symlink_to("/proc/self/mem")
    with pytest.raises(ConfigError) as refused:
        load_config(unreadable)
    assert str(refused.value) == f"{unreadable}: cannot read it: Input/output error"
    from pgbackup_tui.core.notify import read_urls

    with pytest.raises(ConfigError) as refused:
        read_urls(unreadable)  # notify.toml the same
    assert str(refused.value) == f"{unreadable}: cannot read it: Input/output error"


@pytest.mark.parametrize("args", [
    ["--dbname", f"postgresql://u:{SECRET}@h/db"],
    ["--dbname", f"host=h password={SECRET} dbname=db"],
    ["--service", f"postgresql://u:{SECRET}@h"],
    ["--host", f"h sslpassword={SECRET}"],
    ["--host", "h", "--user", f"postgres://u:{SECRET}@h2"],
    ["--dsn", f"host=h dbname='postgresql://u:{SECRET}@h/db'"],
])
def test_a_password_hidden_in_a_field_is_refused(home, args):
    result = run_cli("servers", "add", "p", *args)
    line = assert_refused(result, "server 'p'", "password")
    assert SECRET not in result.stderr + result.stdout
    assert "never stored" in line
    assert not (home / "config.toml").exists()


def test_a_stored_password_in_a_field_is_refused_on_load(home):
    """An entry written by hand (or by an older version) is not shown: load refuses it."""
    config = home / "config.toml"
    text = f'[servers.p]\ndbname = "postgresql://u:{SECRET}@h/db"\n'
    config.write_text(text)
    for args in (["servers", "list"], ["servers", "list", "--json"], ["servers", "test", "p"]):
        result = run_cli(*args)
        assert_refused(result, str(config), "dbname contains a password")
        assert SECRET not in result.stdout + result.stderr
    assert config.read_text() == text
    # Plain names with '=' or '://' but no password are fine.
    validate_profile(ServerProfile(name="q", host="h", dbname="postgresql://u@h/db", service="a=b"))


def test_a_password_hidden_in_the_dsn_of_a_job(sandbox, home):
    dsn = make_conninfo(sandbox.dsn(), dbname=f"host=x password={SECRET}")
    result = run_cli("dump", "--dsn", dsn, "--db", SOURCE)
    assert_refused(result, "dbname", "password")
    assert SECRET not in result.stderr
    assert created_in(home) == []


def test_a_password_in_a_set_s_db_is_refused_before_any_job_or_config(sandbox, home):
    # QA: dump, restore and csv refused a --db holding a conninfo with a password; `dumpall --set
    # --db` ran a job with it (its spec, state, title and log kept it) and `schedule add --set --db`
    # saved it in config.toml.
    conninfo = f"dbname={SOURCE} password={SECRET}"
    dumped = run_cli("dumpall", "--dsn", sandbox.dsn(), "--set", "--db", conninfo)
    assert_refused(dumped, "--db", "password")
    assert run_cli("servers", "add", "sb", "--dsn", sandbox.dsn()).returncode == 0
    saved = run_cli("schedule", "add", "nightly", "--server", "sb", "--set", "--db", conninfo, "--cron", "0 1 * * *")
    assert_refused(saved, "--db", "password")
    restored = run_cli("restore", "/nonexistent", "--dsn", sandbox.dsn(), "--only-db", conninfo)
    assert restored.returncode == 2 and "Traceback" not in restored.stderr
    leaked = [str(path) for path in home.rglob("*") if path.is_file() and SECRET in path.read_text(errors="replace")]
    assert leaked == []
    jobs = home / "state" / "jobs"
    assert not jobs.exists() or not any(jobs.iterdir())  # refused before any job began
    assert SECRET not in dumped.stderr + saved.stderr
