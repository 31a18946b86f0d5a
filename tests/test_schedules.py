"""Scheduled backups on a real cluster, through the real CLI (as cron runs it): retention over five
runs, the newest verified backup kept, a failed run that deletes nothing and tells (hook + an
apprise json:// notification to a receiver on 127.0.0.1), overlapping runs, crontab install /
uninstall in a throwaway user's crontab (root's own is compared before and after), systemd units
where there is no crontab, next runs in two time zones, and a bad cron expression."""

from __future__ import annotations

import json
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import psycopg
import pytest

from cliutil import run_cli
from pgbackup_tui.core import paths
from pgbackup_tui.core.config import load_config, save_config
from pgbackup_tui.core.server_profile import ServerProfile
from pgbackup_tui.core.schedules import Schedule

SERVER = "sand"


def configure(sandbox, *schedules: Schedule, dsn: str | None = None) -> None:
    config = load_config()
    config.servers[SERVER] = ServerProfile(name=SERVER, dsn=dsn or sandbox.dsn())
    config.schedules = {s.name: s for s in schedules}
    save_config(config)


@pytest.fixture
def small_db(sandbox, empty_db: str) -> str:
    """A small database of our own: five runs of a schedule take seconds."""
    sandbox.psql("CREATE TABLE public.items (id int PRIMARY KEY, name text);"
                 "INSERT INTO public.items SELECT g, 'item ' || g FROM generate_series(1, 500) g;", empty_db)
    return empty_db


def run(name: str, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    done = run_cli("run", name, "--json", *args)
    return done, json.loads(done.stdout)


def backups() -> list[dict]:
    done = run_cli("backups", "list", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_five_runs_with_keep_last_3_leave_the_3_newest_all_verified(sandbox, home, small_db):
    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="30 2 * * *", database=small_db,
                                keep_last=3, verify=True))
    made = []
    for _ in range(5):
        done, report = run("nightly")
        assert done.returncode == 0, done.stderr
        assert report["status"] == "succeeded" and report["checks"] == ["verified"]
        made.append(report["backup_id"])
    assert len(set(made)) == 5
    left = [b for b in backups() if b["database"] == small_db]
    assert [b["id"] for b in left] == made[:1:-1]  # newest first: runs 5, 4, 3
    assert {b["status"] for b in left} == {"verified"}
    assert report["deleted"] == [made[1]] and report["kept"] == 3
    # Every run was a job like any other: in `jobs list`, with the schedule in its title and a log.
    jobs = json.loads(run_cli("jobs", "list", "--json").stdout)
    scheduled = [j for j in jobs if "schedule nightly" in j["title"]]
    assert len(scheduled) == 5 and report["job_id"] in {j["id"] for j in scheduled}
    log = Path(report["log_path"]).read_text()
    assert "schedule: nightly: succeeded" in log and f"deleted {made[1]}" in log
    listed = json.loads(run_cli("schedule", "list", "--json").stdout)
    assert listed[0]["last_run"]["status"] == "succeeded" and listed[0]["last_run"]["backup_id"] == made[4]
    # As cron runs it (stdout dropped, stderr mailed): a run that succeeded, deletions and all, mails nothing.
    done = run_cli("run", "nightly")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.startswith("nightly: succeeded: ") and "pgbackup-tui: deleted " in done.stdout
    jsonl = run_cli("run", "nightly", "--progress", "jsonl")
    assert jsonl.returncode == 0 and jsonl.stderr == "", jsonl.stderr
    events = [json.loads(line) for line in jsonl.stdout.splitlines()]  # stdout: JSON lines only
    assert events[-1]["event"] == "run" and events[-1]["status"] == "succeeded" and events[-1]["deleted"]


def test_retention_never_deletes_the_newest_verified_backup(sandbox, home, small_db):
    configure(sandbox, Schedule(name="hourly", server=SERVER, cron="0 * * * *", database=small_db, keep_last=3))
    done, first = run("hourly")
    assert done.returncode == 0, done.stderr
    verified = run_cli("backups", "verify", first["backup_id"])
    assert verified.returncode == 0, verified.stderr
    made = [first["backup_id"]]
    for _ in range(4):
        done, report = run("hourly")
        assert done.returncode == 0, done.stderr
        made.append(report["backup_id"])
    left = {b["id"] for b in backups() if b["database"] == small_db}
    assert left == {made[0], made[2], made[3], made[4]}  # the 3 newest + the only verified one
    assert report["deleted"] == [made[1]]
    assert f"kept {made[0]}: the newest verified backup of this schedule" in report["notices"]


class Receiver(BaseHTTPRequestHandler):
    """Records what apprise's json:// posts."""

    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Receiver.received.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                  "json": json.loads(body or b"{}")})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[dict]]]:
    Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], Receiver.received
    finally:
        server.shutdown()
        server.server_close()


def test_a_failed_run_deletes_nothing_and_fires_the_hook_and_the_notification(sandbox, home, small_db, receiver,
                                                                              tmp_path):
    port, received = receiver
    secret = "s3cret-" + uuid.uuid4().hex[:6]
    notify = home / "notify.toml"
    notify.write_text(f'[urls]\nops = "json://bot:{secret}@127.0.0.1:{port}/hook"\n')
    notify.chmod(0o600)
    hook_out = tmp_path / "hook.txt"
    hook = f'printf "%s|%s|%s" "$PGBACKUP_TUI_SCHEDULE" "$PGBACKUP_TUI_ERROR" "$PGBACKUP_TUI_LOG" > {hook_out}'
    # Named twice (by hand in config.toml): the failure was sent twice (QA).
    good = Schedule(name="daily", server=SERVER, cron="0 3 * * *", database=small_db, on_failure=hook,
                    notify=("ops", "ops"))
    configure(sandbox, good)
    for _ in range(2):
        done, _report = run("daily")
        assert done.returncode == 0, done.stderr
    assert not received and not hook_out.exists()  # success: notify_on_success is off
    before = {b["id"] for b in backups()}
    assert len(before) == 2

    # The same schedule, now with keep_last 1, on a database that has gone: the run fails.
    gone = Schedule(**{**good.__dict__, "database": small_db + "_gone", "keep_last": 1})
    configure(sandbox, gone)
    done, report = run("daily")
    # 1, not the 2 of `dump` (no backup could start): for monitoring, a scheduled backup that failed
    assert done.returncode == 1 and report["status"] == "failed"
    # The report is on stdout; the failure is on stderr too, which cron mails (it said nothing there).
    said = f"pgbackup-tui: daily: failed: {report['message']} (job {report['job_id']})"
    assert done.stderr.strip().splitlines() == [said], done.stderr
    assert {b["id"] for b in backups()} == before  # nothing deleted
    name, error, log = hook_out.read_text().split("|")
    assert name == "daily" and small_db + "_gone" in error and Path(log).is_file()
    assert len(received) == 1
    message = received[0]["json"]
    assert "daily failed" in message["title"] and small_db + "_gone" in message["message"]
    assert message["type"] == "failure"  # a receiver that routes by type sees a failure (it was "info")
    assert report["message"] and message["message"].count(report["message"]) == 1  # the error once
    assert received[0]["auth"] and received[0]["path"] == "/hook"
    assert "on_failure hook ran" in report["notices"] and "notification 'ops' sent" in report["notices"]
    # The URL's secret is in notify.toml only: not in config, stdout/stderr, the job's log or its state.
    state_files = [p.read_text() for p in (home / "state").rglob("*.json")]
    for text in [done.stdout, done.stderr, (home / "config.toml").read_text(), Path(log).read_text(), *state_files]:
        assert secret not in text
    # A notify.toml others can read is refused, by name, and the run still reports its own failure.
    notify.chmod(0o644)
    done, report = run("daily")
    assert report["status"] == "failed"
    assert any("chmod 600" in line for line in report["notices"]) and len(received) == 1


def test_a_run_s_jsonl_finished_event_says_the_run_s_exit_code(sandbox, home):
    """A schedule whose backup could not start (its database gone): the run exits 1, as its `run`
    event says, and its job's `finished` event said 2 (dump's code for it) on the same stdout (QA)."""
    configure(sandbox, Schedule(name="gone", server=SERVER, cron="0 3 * * *", database="t_no_such_database"))
    done = run_cli("run", "gone", "--progress", "jsonl")
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [event["event"] for event in events] == ["finished", "run"], done.stdout
    assert done.returncode == 1 == events[0]["exit_code"] == events[1]["exit_code"], done.stdout
    assert events[0]["status"] == "failed"


def _locked(sandbox, dbname: str):
    conn = psycopg.connect(sandbox.dsn(dbname))
    conn.execute("LOCK TABLE public.items IN ACCESS EXCLUSIVE MODE")
    return conn


def test_overlapping_runs_the_second_names_the_first_and_does_nothing(sandbox, home, small_db):
    configure(sandbox, Schedule(name="often", server=SERVER, cron="*/5 * * * *", database=small_db, keep_last=1))
    holder = _locked(sandbox, small_db)  # the first run's pg_dump waits on this lock
    try:
        first = subprocess.Popen([sys.executable, "-m", "pgbackup_tui", "run", "often"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        state = home / "state" / "schedules" / "often.json"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (state.exists() and json.loads(state.read_text()).get("job_id")):
            time.sleep(0.1)
        job_id = json.loads(state.read_text())["job_id"]
        second = run_cli("run", "often")
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"job {job_id}" in lines[0] and "already running" in lines[0], second.stderr
        # A script reading jsonl's last line (or --json's report) got an empty stdout: now the report,
        # exit 2 as the process says, and stderr's line unchanged.
        for how in (("--progress", "jsonl"), ("--json",)):
            scripted = run_cli("run", "often", *how)
            [report] = [json.loads(scripted.stdout)]
            assert scripted.returncode == 2 == report["exit_code"] and f"job {job_id}" in report["message"]
            assert report["schedule"] == "often" and report.get("event") == ("run" if "jsonl" in how else None)
            assert scripted.stderr.strip().splitlines() == lines
    finally:
        holder.rollback()
        holder.close()
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert out.startswith("often: succeeded: backup ")
    assert len([b for b in backups() if b["database"] == small_db]) == 1


def test_a_removed_schedule_s_last_run_is_not_a_new_one_s_of_the_same_name(sandbox, home, small_db):
    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="0 1 * * *", database=small_db))
    done, report = run("nightly")
    assert done.returncode == 0 and report["status"] == "succeeded", done.stderr
    listed = json.loads(run_cli("schedule", "list", "--json").stdout)
    assert listed[0]["last_run"] is not None
    assert run_cli("schedule", "remove", "nightly").returncode == 0
    assert not (home / "state" / "schedules" / "nightly.json").exists()
    added = run_cli("schedule", "add", "nightly", "--server", SERVER, "--db", small_db, "--cron", "0 2 * * *")
    assert added.returncode == 0, added.stderr
    listed = json.loads(run_cli("schedule", "list", "--json").stdout)
    assert [(row["name"], row["last_run"]) for row in listed] == [("nightly", None)]
    assert len(backups()) == 1  # the removed schedule's backup stays


def test_a_bad_cron_expression_is_one_clear_line(sandbox, home):
    configure(sandbox)
    done = run_cli("schedule", "add", "bad", "--server", SERVER, "--db", "shop", "--cron", "61 * * * *")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "minute" in done.stderr and "61 * * * *" in done.stderr
    assert "Traceback" not in done.stderr
    # A URL given where a notification's name goes is refused without being repeated (it holds a secret).
    done = run_cli("schedule", "add", "leak", "--server", SERVER, "--db", "shop", "--cron", "0 1 * * *",
                   "--notify", "json://bot:TOPSECRET@127.0.0.1/hook")
    assert done.returncode == 2 and "never the URL itself" in done.stderr and "TOPSECRET" not in done.stderr
    # A keep_days further back than dates go was accepted, then failed every run after its backup.
    done = run_cli("schedule", "add", "far", "--server", SERVER, "--db", "shop", "--cron", "0 1 * * *",
                   "--keep-days", "1000000")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "keep_days" in done.stderr
    # cronsim reads @DAILY; cron does not, and refused the whole crontab: the line says @daily.
    assert run_cli("schedule", "add", "loud", "--server", SERVER, "--db", "shop", "--cron", "@DAILY").returncode == 0
    printed = run_cli("schedule", "install", "--print")
    assert any(line.startswith("@daily ") for line in printed.stdout.splitlines()), printed.stdout
    assert "@DAILY" not in printed.stdout.replace("(@DAILY)", "")
    run_cli("schedule", "remove", "loud")
    # In config.toml: the file, the table and the key are named, and the file is left as it was.
    config_file = home / "config.toml"
    text = config_file.read_text() + '\n[schedules.typo]\nserver = "sand"\ndatabase = "shop"\ncron = "0 3 * *"\n'
    config_file.write_text(text)
    done = run_cli("schedule", "list")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert str(config_file) in done.stderr and "[schedules.typo]" in done.stderr and "cron" in done.stderr
    assert config_file.read_text() == text

    # One bad table no longer stops the others: every schedule's `run` failed with exit 2, no hook,
    # no notification. It fails what uses it (its run, install), and is written back as it was.
    added = run_cli("schedule", "add", "good", "--server", SERVER, "--db", "postgres", "--cron", "0 4 * * *")
    assert added.returncode == 0, added.stderr
    assert '[schedules.typo]\nserver = "sand"\ndatabase = "shop"\ncron = "0 3 * *"' in config_file.read_text()
    ran = run_cli("run", "good")
    assert ran.returncode == 0, ran.stderr
    broken = run_cli("run", "typo")
    assert broken.returncode == 2 and "[schedules.typo]" in broken.stderr
    install = run_cli("schedule", "install", "--print")
    assert install.returncode == 2 and "[schedules.typo]" in install.stderr and "nothing was changed" in install.stderr
    # `schedule next` listed the good one's runs and said nothing of the broken one, exit 0: a DBA
    # checking when everything runs did not learn that one never will (README audit). As `list`.
    upcoming = run_cli("schedule", "next")
    assert upcoming.returncode == 2 and "good (0 4 * * *" in upcoming.stdout, upcoming.stdout
    assert "[schedules.typo]" in upcoming.stderr and upcoming.stderr.strip().count("\n") == 0, upcoming.stderr
    assert run_cli("schedule", "remove", "typo").returncode == 0
    assert "typo" not in config_file.read_text() and run_cli("schedule", "list").returncode == 0
    assert run_cli("schedule", "next").returncode == 0


def test_a_schedule_of_what_is_not_on_its_server_is_saved_with_a_warning(sandbox, home):
    """A typo in a database's or a table's name failed every night's run, the first said at night:
    now at once, when it is saved (saved all the same: the database may be about to be made)."""
    configure(sandbox)
    done = run_cli("schedule", "add", "typo", "--server", SERVER, "--db", "shpo", "--cron", "0 3 * * *")
    assert done.returncode == 0 and "typo" in load_config().schedules
    assert "warning: schedule typo: database 'shpo' does not exist on server 'sand' now" in done.stderr
    done = run_cli("schedule", "add", "picky", "--server", SERVER, "--db", "shop", "--cron", "0 3 * * *",
                   "--table", "inventory.warehouses", "--table", "inventory.nope")
    assert done.returncode == 0
    assert "schedule picky: --table inventory.nope: no such table" in done.stderr
    assert "every run will fail" in done.stderr
    done = run_cli("schedule", "add", "fine", "--server", SERVER, "--db", "shop", "--cron", "0 3 * * *",
                   "--table", "inventory.warehouses", "--schema", "\"Sales & Ops\"")
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr
    # pg_dump's options on a pg_dumpall schedule were saved, and ignored at every run (QA).
    done = run_cli("schedule", "add", "combo", "--server", SERVER, "--cron", "0 1 * * *", "--globals-only",
                   "--table", "public.x", "--schema-only")
    assert done.returncode == 2 and "--table goes with a database's schedule" in done.stderr, done.stderr
    assert "combo" not in load_config().schedules
    # pg_dumpall has -O and -x (and -s, -a): "pg_dumpall, which has no such option" sent a DBA who knows
    # it to check. It is pgbackup-tui's dumpall that does not take them.
    done = run_cli("schedule", "add", "combo", "--server", SERVER, "--cron", "0 1 * * *", "--cluster", "--no-owner")
    said = _one_line(done)
    assert done.returncode == 2 and said.startswith("pgbackup-tui: error: --no-owner goes with a database's"), said
    assert "no such option" not in said and "`pgbackup-tui dumpall` (pg_dumpall), which does not take it" in said, said
    # --format on a pg_dumpall schedule (not a set) was saved as custom without a word, the format dropped,
    # where `dumpall --format directory` is refused (README audit).
    done = run_cli("schedule", "add", "flat", "--server", SERVER, "--cron", "0 1 * * *", "--cluster",
                   "--format", "directory")
    assert done.returncode == 2 and "--format directory goes with a database's schedule" in done.stderr, done.stderr
    assert "flat" not in load_config().schedules
    listed = run_cli("schedule", "list")
    assert "shop (custom, 1 table, 1 schema)" in listed.stdout, listed.stdout  # fine's: both said
    # The cron column lines up: "typo  0 3" beside "picky  0 3" was one column off (QA).
    assert len({line.index("0 3 * * *") for line in listed.stdout.splitlines()}) == 1, listed.stdout
    # A server that does not answer now: saved, and said as not checked (not as a missing database).
    configure(sandbox, dsn="host=127.0.0.1 port=1 user=postgres dbname=postgres")
    done = run_cli("schedule", "add", "later", "--server", SERVER, "--db", "shop", "--cron", "0 3 * * *")
    assert done.returncode == 0 and "schedule later: not checked against server 'sand' now" in done.stderr


def test_a_schedule_on_a_server_that_needs_a_password_says_where_cron_finds_one(sandbox, home, small_db,
                                                                                monkeypatch, tmp_path):
    """Saved, and run, without a password on file, a schedule was told to "give a password in
    ~/.pgpass, PGPASSWORD or the prompt": cron has no prompt and its lines carry no PGPASSWORD."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    empty = tmp_path / "pgpass"
    empty.touch(mode=0o600)
    monkeypatch.setenv("PGPASSFILE", str(empty))
    configure(sandbox, dsn=sandbox.dsn(tcp=True))
    done = run_cli("schedule", "add", "locked", "--server", SERVER, "--db", small_db, "--cron", "0 3 * * *")
    assert done.returncode == 0, done.stderr
    assert "a scheduled run has no prompt" in done.stderr and "or the prompt" not in done.stderr, done.stderr
    ran, report = run("locked")
    assert ran.returncode != 0
    assert "a scheduled run has no prompt" in report["message"] and "or the prompt" not in report["message"], report
    # PGPASSWORD in the DBA's shell: the check passed with it, said nothing, and every run cron
    # started (its lines never carry it) failed. The check connects as cron will.
    monkeypatch.setenv("PGPASSWORD", sandbox.password)
    done = run_cli("schedule", "add", "shell", "--server", SERVER, "--db", small_db, "--cron", "0 3 * * *")
    assert done.returncode == 0 and "a scheduled run has no prompt" in done.stderr, done.stderr
    assert sandbox.password not in done.stderr
    # The password in the service file (PGSERVICEFILE, which cron's lines carry): the check's empty
    # password hid it, and warned of none where every run had one (QA). PGPASSWORD stays unused.
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[sandsvc]\nhost=127.0.0.1\nport={sandbox.port}\nuser={sandbox.superuser}\n"
                        f"password={sandbox.password}\n")
    services.chmod(0o600)
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    monkeypatch.setenv("PGPASSWORD", "not-the-password")
    configure(sandbox, dsn="service=sandsvc")
    done = run_cli("schedule", "add", "served", "--server", SERVER, "--db", small_db, "--cron", "0 3 * * *")
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr


def test_a_profile_or_keymap_that_does_not_load_stops_only_what_uses_it(sandbox, home, small_db):
    """A [servers.X] edited by hand (an unknown key, a password in its DSN) or a [keymap] that does
    not load stopped every schedule's run (exit 2, no hook, no notification) and every command (QA)."""
    hook_said = home / "hook.txt"
    configure(sandbox, Schedule(name="good", server=SERVER, cron="0 1 * * *", database=small_db))
    config_file = home / "config.toml"
    text = config_file.read_text() + '\n[servers.handmade]\ndns = "host=x"\n\n[keymap]\n"app.backup" = 5\n'
    text += f'\n[schedules.other2]\nserver = "handmade"\ndatabase = "x"\ncron = "0 3 * * *"\n' \
            f"on_failure = \"echo \\\"$PGBACKUP_TUI_ERROR\\\" > '{hook_said}'\"\n"
    config_file.write_text(text)
    done = run_cli("run", "good")
    assert done.returncode == 0, done.stderr
    assert run_cli("schedule", "list").returncode == 0
    listed = run_cli("servers", "list")
    assert listed.returncode == 2 and "[servers.handmade] has unknown key(s) dns" in listed.stderr, listed.stderr
    failed = run_cli("run", "other2")
    assert failed.returncode == 2 and "[servers.handmade] has unknown key(s) dns" in failed.stderr, failed.stderr
    assert "[servers.handmade] has unknown key(s) dns" in hook_said.read_text()  # told, as a failed run is
    assert run_cli("schedule", "add", "later", "--server", SERVER, "--db", small_db, "--cron", "0 4 * * *"
                   ).returncode == 0
    after = config_file.read_text()
    assert '[servers.handmade]\ndns = "host=x"' in after and '"app.backup" = 5' in after  # written back as they were


def test_a_drill_of_a_data_only_schedule_is_refused_when_it_is_added(sandbox, home):
    """A data-only backup has no tables to drill into; every night's run would fail on it."""
    configure(sandbox)
    done = run_cli("schedule", "add", "rows", "--server", SERVER, "--db", "shop", "--cron", "0 3 * * *",
                   "--data-only", "--drill")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "data-only" in done.stderr and "verify = true" in done.stderr
    assert "rows" not in run_cli("schedule", "list").stdout


def test_next_runs_in_the_local_and_the_server_time_zone(sandbox, home):
    configure(sandbox, Schedule(name="night", server=SERVER, cron="30 2 * * *", database="shop"),
              dsn=sandbox.dsn() + " options='-c timezone=Asia/Kolkata'")
    env = dict(os.environ, PGBACKUP_TUI_CRON_ZONE="America/New_York", TZ="Asia/Tokyo")  # not the shell's TZ
    done = run_cli("schedule", "next", "night", "--count", "2", "--json", env=env)
    assert done.returncode == 0, done.stderr
    (data,) = json.loads(done.stdout)
    assert data["local_zone"] == "America/New_York" and data["server_zone"] == "Asia/Kolkata"
    first = data["runs"][0]
    assert "T02:30:00-0" in first["at"] and first["server_time"].endswith("+05:30")
    text = run_cli("schedule", "next", "night", env=env).stdout
    assert "02:30 E" in text and "IST on the server" in text


# -- crontab and systemd --------------------------------------------------------------------------------
@pytest.fixture
def cron_user() -> Iterator[str]:
    """A throwaway user whose crontab the tests edit (`crontab -u USER`): root's own is never touched."""
    name = "pgbt" + uuid.uuid4().hex[:8]
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    try:
        pwd.getpwnam(name)
        yield name
    finally:
        subprocess.run(["crontab", "-u", name, "-r"], capture_output=True, check=False)
        subprocess.run(["userdel", name], capture_output=True, check=False)


def _crontab(user: str) -> str:
    done = subprocess.run(["crontab", "-u", user, "-l"], capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else ""


def test_crontab_install_and_uninstall_keep_foreign_lines(sandbox, home, cron_user, monkeypatch):
    root_before = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    monkeypatch.setenv("PGBACKUP_TUI_CRONTAB", f"crontab -u {cron_user}")
    foreign_top = "MAILTO=dba@example.com\n# my own jobs\n0 1 * * * /usr/local/bin/rotate --keep '7%'\n"
    subprocess.run(["crontab", "-u", cron_user, "-"], input=foreign_top, text=True, check=True)
    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="30 2 * * *", database="shop"),
              Schedule(name="weekly", server=SERVER, cron="0 4 * * sun", what="cluster"))
    done = run_cli("schedule", "install")
    assert done.returncode == 0, done.stderr
    installed = _crontab(cron_user)
    assert installed.startswith(foreign_top)
    block = installed[len(foreign_top):].splitlines()
    assert block[0] == "# >>> pgbackup-tui schedules >>>" and block[-1] == "# <<< pgbackup-tui schedules <<<"
    nightly = next(line for line in block if " run nightly " in line)
    assert nightly.startswith("30 2 * * * PGBACKUP_TUI_HOME=") and str(home) in nightly
    assert f"{Path(sys.executable).absolute()} -m pgbackup_tui run nightly >/dev/null" in nightly
    assert "PATH=" in nightly and "/usr/bin" in nightly
    assert any(line.startswith("0 4 * * sun ") and " run weekly " in line for line in block)
    # Idempotent: a second install changes nothing.
    again = run_cli("schedule", "install")
    assert again.returncode == 0 and "nothing changed" in again.stderr and _crontab(cron_user) == installed
    # A line the user adds after the block stays where it is when the block changes.
    subprocess.run(["crontab", "-u", cron_user, "-"], input=installed + "15 5 * * * /bin/true # mine\n", text=True,
                   check=True)
    run_cli("schedule", "remove", "weekly")
    assert run_cli("schedule", "install").returncode == 0
    changed = _crontab(cron_user)
    assert changed.startswith(foreign_top) and changed.endswith("15 5 * * * /bin/true # mine\n")
    assert " run weekly " not in changed and " run nightly " in changed
    # Uninstall: exactly the user's own lines are left, and said whose (it said "your crontab", root's).
    removed = run_cli("schedule", "uninstall")
    assert removed.returncode == 0 and f"removed from {cron_user}'s crontab" in removed.stderr, removed.stderr
    assert _crontab(cron_user) == foreign_top + "15 5 * * * /bin/true # mine\n"
    # A line crontab refuses now (the spool file edited by hand): the refusal says why, not only its last
    # line ("errors in crontab file, can't install."), and nothing is changed.
    spool = Path("/var/spool/cron/crontabs") / cron_user
    hand_edited = foreign_top + "61 5 * * * /bin/true # mine\n"
    spool.write_text(hand_edited)
    refused = run_cli("schedule", "install")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "bad minute; errors in crontab file" in refused.stderr and "nothing was changed" in refused.stderr
    assert _crontab(cron_user) == hand_edited
    root_after = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    assert (root_after.returncode, root_after.stdout) == (root_before.returncode, root_before.stdout)


def test_install_for_a_user_who_cannot_run_the_lines_says_so(sandbox, home, cron_user, monkeypatch):
    """`crontab -u USER` took lines USER could not run (the config in root's 0700 folder, the
    interpreter maybe under /root): installed without a word, every night failed."""
    monkeypatch.setenv("PGBACKUP_TUI_CRONTAB", f"crontab -u {cron_user}")
    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="30 2 * * *", database="shop"))
    done = run_cli("schedule", "install")
    assert done.returncode == 0, done.stderr
    assert f"warning: user {cron_user} cannot run these lines" in done.stderr, done.stderr
    assert "cannot read" in done.stderr and str(home / "config.toml") in done.stderr, done.stderr
    assert " run nightly " in _crontab(cron_user)  # written all the same: the DBA may be about to fix it


def test_two_homes_install_into_one_crontab_each_its_own_block(sandbox, home, cron_user, tmp_path, monkeypatch):
    """A second PGBACKUP_TUI_HOME's install replaced the first one's block: its schedules stopped
    running, and nothing said so."""
    monkeypatch.setenv("PGBACKUP_TUI_CRONTAB", f"crontab -u {cron_user}")
    configure(sandbox, Schedule(name="first", server=SERVER, cron="30 2 * * *", database="shop"))
    assert run_cli("schedule", "install").returncode == 0
    other = tmp_path / "other home%d"  # a space and cron's % in its path too
    other.mkdir(mode=0o700)
    monkeypatch.setenv("PGBACKUP_TUI_HOME", str(other))
    configure(sandbox, Schedule(name="second", server=SERVER, cron="0 4 * * *", database="shop"))
    assert run_cli("schedule", "install").returncode == 0
    both = _crontab(cron_user)
    assert " run first " in both and " run second " in both and both.count("# >>> pgbackup-tui schedules >>>") == 2
    again = run_cli("schedule", "install")
    assert again.returncode == 0 and _crontab(cron_user) == both
    # The same home by a symlink's path is the same block, replaced: a second one ran every schedule twice.
    alias = tmp_path / "alias"
    alias.symlink_to(other)
    monkeypatch.setenv("PGBACKUP_TUI_HOME", str(alias))
    assert run_cli("schedule", "install").returncode == 0
    aliased = _crontab(cron_user)
    assert aliased.count("# >>> pgbackup-tui schedules >>>") == 2 and aliased.count(" run second ") == 1
    assert run_cli("schedule", "uninstall").returncode == 0
    assert " run second " not in _crontab(cron_user)
    monkeypatch.setenv("PGBACKUP_TUI_HOME", str(other))
    assert run_cli("schedule", "install").returncode == 0 and _crontab(cron_user) == both
    assert run_cli("schedule", "uninstall").returncode == 0
    left = _crontab(cron_user)
    assert " run first " in left and " run second " not in left
    monkeypatch.setenv("PGBACKUP_TUI_HOME", str(home))
    # Its last schedule removed, install takes the block out: it said "0 schedule(s) written into …".
    assert run_cli("schedule", "remove", "first").returncode == 0
    emptied = run_cli("schedule", "install")
    assert emptied.returncode == 0 and "no schedules left: the pgbackup-tui block was removed" in emptied.stderr
    assert "0 schedule(s)" not in emptied.stderr and emptied.stdout == "", emptied.stderr
    assert _crontab(cron_user) == ""


def test_without_crontab_the_lines_and_systemd_units_are_printed_or_written(sandbox, home, tmp_path, monkeypatch):
    no_cron = tmp_path / "no-cron-bin"  # a PATH without `crontab`: no cron installed here
    no_cron.mkdir()
    monkeypatch.delenv("PGBACKUP_TUI_CRONTAB", raising=False)
    monkeypatch.setenv("PATH", str(no_cron))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="0 3 1 * mon", database="shop"))
    done = run_cli("schedule", "install")
    assert done.returncode == 0, done.stderr
    assert "no `" in done.stderr and "run nightly" in done.stdout
    assert "OnCalendar=*-*-01 03:00:00\nOnCalendar=Mon *-*-* 03:00:00" in done.stdout  # cron ORs the two days
    assert not (tmp_path / "xdg").exists()  # printed only
    done = run_cli("schedule", "install", "--systemd")
    assert done.returncode == 0, done.stderr
    units = tmp_path / "xdg" / "systemd" / "user"
    service = (units / "pgbackup-tui-nightly.service").read_text()
    assert f'ExecStart="{Path(sys.executable).absolute()}" "-m" "pgbackup_tui" "run" "nightly"' in service
    assert f'"PGBACKUP_TUI_HOME={home}"' in service
    assert "Persistent=true" in (units / "pgbackup-tui-nightly.timer").read_text()
    # Another config home's units: its install removed these as stale (QA); its schedule of the same
    # name would have been written over this one's. Each home's are its own, as crontab blocks are.
    other = tmp_path / "other home%d"
    other.mkdir(mode=0o700)
    monkeypatch.setenv("PGBACKUP_TUI_HOME", str(other))
    configure(sandbox, Schedule(name="weekly", server=SERVER, cron="0 4 * * 0", database="shop"))
    assert run_cli("schedule", "install", "--systemd").returncode == 0
    assert {p.name for p in units.glob("pgbackup-tui-*")} == {f"pgbackup-tui-{n}.{kind}" for n in ("nightly", "weekly")
                                                              for kind in ("service", "timer")}
    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="0 5 * * *", database="shop"))
    clash = run_cli("schedule", "install", "--systemd")
    assert clash.returncode == 2 and f"runs a schedule of another config ({home})" in clash.stderr, clash.stderr
    assert f'"PGBACKUP_TUI_HOME={home}"' in (units / "pgbackup-tui-nightly.service").read_text()
    assert (units / "pgbackup-tui-weekly.timer").exists()  # nothing written, nothing removed
    assert run_cli("schedule", "uninstall", "--systemd").returncode == 0
    assert {p.stem for p in units.glob("pgbackup-tui-*")} == {"pgbackup-tui-nightly"}
    monkeypatch.setenv("PGBACKUP_TUI_HOME", str(home))
    assert run_cli("schedule", "uninstall", "--systemd").returncode == 0
    assert not list(units.glob("pgbackup-tui-*"))


def test_systemd_units_keep_percent_and_dollar_signs_literal(tmp_path, monkeypatch):
    """systemd expands `%` specifiers in Environment= and ExecStart=, and `$NAME` in ExecStart=: a
    home with a `%` was dropped ("Failed to resolve specifiers"), so the run read another config;
    `%h` became the home folder; a `$` in the interpreter's path was read as a variable (QA)."""
    from pgbackup_tui.core import systemd_units
    from pgbackup_tui.core.config import Config

    monkeypatch.setenv("PGBACKUP_TUI_HOME", str(tmp_path / "backups 100%h"))
    monkeypatch.setattr(sys, "executable", "/opt/$app/venv/bin/python")
    config = Config(schedules={"nightly": Schedule(name="nightly", server="s", cron="30 2 * * *", database="shop")})
    service = systemd_units.systemd_units(config)["pgbackup-tui-nightly.service"]
    assert f'"PGBACKUP_TUI_HOME={tmp_path}/backups 100%%h"' in service, service
    assert 'ExecStart="/opt/$$app/venv/bin/python" "-m" "pgbackup_tui" "run" "nightly"' in service, service


def _one_line(done: subprocess.CompletedProcess) -> str:
    """The one stderr line of a refused command (exit 2), no traceback."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr, done.stderr
    return done.stderr


@pytest.mark.parametrize("command", ["{missing}", "true", "echo", "crontab -u 'unclosed", "crontab -u {nobody}"])
def test_a_crontab_variable_that_names_no_crontab_installs_nothing_and_says_so(sandbox, home, tmp_path, monkeypatch,
                                                                             command):
    """PGBACKUP_TUI_CRONTAB naming no program was taken for "no cron here": install printed systemd
    units and exited 0; one that is a program but no crontab (`true`) took the lines and kept
    nothing, and install said they were written (QA). Exit 2 (bad input, as for any crontab
    command that refuses: nothing was changed, and 1 means a backup failed), one line naming the
    variable; nothing written anywhere."""
    command = command.format(missing=tmp_path / "no-such-crontab", nobody="pgbt-nobody-" + uuid.uuid4().hex[:6])
    monkeypatch.setenv("PGBACKUP_TUI_CRONTAB", command)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="30 2 * * *", database="shop"))
    root_before = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    names_no_program = command.startswith(str(tmp_path)) or "'" in command
    for args in (("install",), ("install", "--print"), ("uninstall",)):
        if args != ("install",) and not names_no_program and (args == ("install", "--print") or "-u" not in command):
            continue  # --print runs no crontab; `true -l` reads as a crontab without our block: nothing to remove
        done = run_cli("schedule", *args)
        said = _one_line(done)
        assert f"PGBACKUP_TUI_CRONTAB={command!r}" in said, said
        assert done.stdout == "", done.stdout  # no lines said to be written, no units printed
    assert not (tmp_path / "xdg").exists()
    root_after = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    assert (root_after.returncode, root_after.stdout) == (root_before.returncode, root_before.stdout)


def test_a_cron_zone_that_is_no_time_zone_is_refused_before_anything(sandbox, home):
    """PGBACKUP_TUI_CRON_ZONE that is no IANA zone was passed over for this machine's: every time
    shown was off by the difference, without a word (QA)."""
    configure(sandbox, Schedule(name="night", server=SERVER, cron="30 2 * * *", database="shop"))
    env = dict(os.environ, PGBACKUP_TUI_CRON_ZONE="Mars/Olympus_Mons")
    for args in (("next",), ("list",), ("add", "other", "--server", SERVER, "--db", "shop", "--cron", "0 3 * * *")):
        said = _one_line(run_cli("schedule", *args, env=env))
        assert "PGBACKUP_TUI_CRON_ZONE='Mars/Olympus_Mons' is not a time zone" in said, said
    assert set(load_config().schedules) == {"night"}  # add refused it before saving anything


def test_role_passwords_for_a_database_and_a_notification_url_that_is_none_are_refused(sandbox, home):
    """`schedule add --db X --with-role-passwords` was saved (pg_dump writes no roles); `schedule
    url` saved any text, a notification that would never go (QA). Both refused, one line, nothing
    saved; the value given as a URL is never repeated (it may hold a token)."""
    configure(sandbox)
    said = _one_line(run_cli("schedule", "add", "n", "--server", SERVER, "--db", "shop", "--cron", "0 3 * * *",
                             "--with-role-passwords"))
    assert "--with-role-passwords goes with a schedule of pg_dumpall" in said and "'shop'" in said, said
    assert load_config().schedules == {}
    added = run_cli("schedule", "add", "r", "--server", SERVER, "--roles-only", "--cron", "0 3 * * *",
                    "--with-role-passwords")
    assert added.returncode == 0, added.stderr

    def url(value: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pgbackup_tui", "schedule", "url", "ops"], input=value + "\n",
                              capture_output=True, text=True, timeout=60)

    for value in ("not a url s3cr3t", "nosuchscheme://tok3n@example.com", "slack://"):
        said = _one_line(url(value))
        assert "URL ops:" in said and "nothing was saved" in said, said
        assert "s3cr3t" not in said and "tok3n" not in said
        assert not (home / "notify.toml").exists()
    # An empty stdin said "no URL given on stdin": not which name, nor that nothing was saved.
    assert "no URL given for ops" in _one_line(url("")) and "nothing was saved" in _one_line(url(""))
    done = url("json://127.0.0.1:9/hook")
    assert done.returncode == 0, done.stderr
    assert (home / "notify.toml").exists()


def test_retention_gives_no_place_to_a_damaged_backup_and_keeps_to_the_schedules_database(
        sandbox, home, small_db, fresh_db_name):
    """keep_last N counts the backups that have not failed verification (a damaged one used to
    push out a good one), and a schedule changed to another database leaves the backups it made
    of the first one alone (retention matched the schedule's name only)."""
    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="30 2 * * *", database=small_db,
                                keep_last=2, verify=True))
    made = []
    for _ in range(2):
        done, report = run("nightly")
        assert done.returncode == 0, done.stderr
        made.append(report["backup_id"])
    damaged = next(Path(b["path"]) for b in backups() if b["id"] == made[1])
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    assert run_cli("backups", "verify", made[1]).returncode == 1
    done, report = run("nightly")
    assert done.returncode == 0, done.stderr
    made.append(report["backup_id"])
    assert report["deleted"] == [made[1]]  # the damaged one, not the good made[0]
    assert {b["id"] for b in backups() if b["database"] == small_db} == {made[0], made[2]}

    sandbox.create_database(fresh_db_name + "_2")
    try:
        configure(sandbox, Schedule(name="nightly", server=SERVER, cron="30 2 * * *",
                                    database=fresh_db_name + "_2", keep_last=1))
        for _ in range(2):
            done, report = run("nightly")
            assert done.returncode == 0, done.stderr
        left = backups()
        assert {b["id"] for b in left if b["database"] == small_db} == {made[0], made[2]}
        assert [b["id"] for b in left if b["database"] == fresh_db_name + "_2"] == [report["backup_id"]]
    finally:
        sandbox.drop_database(fresh_db_name + "_2")


def test_retention_leaves_copies_kept_elsewhere_and_backups_of_another_selection(sandbox, home, small_db, tmp_path,
                                                                                 monkeypatch):
    """Retention deleted a copy of a scheduled backup the DBA kept elsewhere (copied with its
    manifest, adopted or not), and, once the schedule was narrowed to some tables or to the schema,
    its whole-database backups: each carries the schedule's name (QA)."""
    sandbox.psql("CREATE TABLE public.other (id int)", small_db)
    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="30 2 * * *", database=small_db, keep_last=1,
                                keep_verified=False))
    done, first = run("nightly")
    assert done.returncode == 0, done.stderr
    original = Path(next(b["path"] for b in backups() if b["id"] == first["backup_id"]))
    offsite, kept = tmp_path / "offsite", home / "backups" / "keep-forever"
    for folder in (offsite, kept):
        folder.mkdir(parents=True)
        shutil.copy(original, folder / original.name)
        shutil.copy(f"{original}.manifest.json", folder / f"{original.name}.manifest.json")
    assert run_cli("backups", "adopt", str(offsite / original.name)).returncode == 0
    done, second = run("nightly")
    assert done.returncode == 0, done.stderr
    assert second["deleted"] == [first["backup_id"]] and not original.exists()
    assert (offsite / original.name).exists() and (kept / original.name).exists()

    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="30 2 * * *", database=small_db, keep_last=1,
                                keep_verified=False, tables=("public.items",)))
    for _ in range(2):
        done, narrowed = run("nightly")
        assert done.returncode == 0, done.stderr
    whole = Path(next(b["path"] for b in backups() if b["id"] == second["backup_id"]))
    assert whole.exists(), narrowed  # the whole-database backup: not the narrowed schedule's
    assert len(narrowed["deleted"]) == 1 and narrowed["deleted"] != [second["backup_id"]], (narrowed, backups())
    assert any("other backup(s) carry this schedule's name" in line for line in narrowed["notices"]), narrowed

    # The whole home moved to a bigger disk: the schedule's backups are still where its runs wrote
    # them (recorded relative to the backup dir), and retention still bounds them.
    moved = tmp_path / "bigger disk" / "home"
    shutil.copytree(home, moved, symlinks=True)
    monkeypatch.setenv("PGBACKUP_TUI_HOME", str(moved))
    done, after_move = run("nightly")
    assert done.returncode == 0, done.stderr
    assert after_move["deleted"] == [narrowed["backup_id"]], after_move


def test_a_run_outlives_a_hang_up_and_the_next_run_settles_one_killed(sandbox, home, small_db):
    """SIGHUP (an SSH drop) no longer stops a run between its job and its checks, retention and
    notifications. A front killed outright leaves its backup untagged (retention would never
    count it) and its last run 'running': the next run tags that backup and says so."""
    configure(sandbox, Schedule(name="held", server=SERVER, cron="0 1 * * *", database=small_db, keep_last=1,
                                verify=True))
    state = home / "state" / "schedules" / "held.json"

    def job_now() -> str | None:
        return json.loads(state.read_text()).get("job_id") if state.exists() else None

    def start_held_run() -> tuple[subprocess.Popen, str]:
        before = job_now()
        front = subprocess.Popen([sys.executable, "-m", "pgbackup_tui", "run", "held", "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and job_now() in (None, before):
            time.sleep(0.1)
        job = job_now()
        assert job is not None and job != before
        return front, job

    holder = _locked(sandbox, small_db)
    front, _job = start_held_run()
    front.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    holder.rollback()
    holder.close()
    out, err = front.communicate(timeout=60)
    assert front.returncode == 0, err
    assert json.loads(out)["checks"] == ["verified"]
    first = json.loads(out)["backup_id"]

    holder = _locked(sandbox, small_db)
    front, job = start_held_run()
    front.kill()
    front.wait()
    assert _listed_status("held") == "running"  # its front is gone, its job goes on
    holder.rollback()
    holder.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and next(
            j for j in json.loads(run_cli("jobs", "list", "--json").stdout) if j["id"] == job)["state"] != "succeeded":
        time.sleep(0.2)
    listed = backups()
    orphan = next((b for b in listed if b["database"] == small_db and b["id"] != first), None)
    assert orphan is not None, listed
    done, report = run("held")
    assert done.returncode == 0, done.stderr
    assert any(f"(job {job}) was stopped before its checks" in line for line in report["notices"]), report
    # keep_last 1: the orphan now counts, and goes with the first; the newest verified one stays.
    assert {b["id"] for b in backups() if b["database"] == small_db} == {report["backup_id"]}
    assert set(report["deleted"]) == {first, orphan["id"]}

    # Front and runner killed (a reboot, the OOM killer): no backup, and its failure was told to
    # nobody -- the next run said so on stdout only, which the crontab line throws away (QA).
    hook_said = home / "hook.txt"
    configure(sandbox, Schedule(name="held", server=SERVER, cron="0 1 * * *", database=small_db, keep_last=1,
                                on_failure=f"echo \"$PGBACKUP_TUI_ERROR\" >> '{hook_said}'"))
    holder = _locked(sandbox, small_db)
    front, job = start_held_run()
    front.kill()
    front.wait()
    job_state = home / "state" / "jobs" / job / "state.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "runner_pid" not in json.loads(job_state.read_text()):
        time.sleep(0.1)
    os.kill(int(json.loads(job_state.read_text())["runner_pid"]), signal.SIGKILL)
    holder.rollback()
    holder.close()
    # Listed as running until the next run settled it (a day, a week for a weekly schedule) (QA).
    assert _listed_status("held") == "stopped"
    assert "✘ stopped" in run_cli("schedule", "list").stdout
    done = run_cli("run", "held")
    assert done.returncode == 0, done.stderr
    assert f"(job {job}) was stopped (killed, or the machine restarted) and made no backup" in done.stderr
    assert f"(job {job}) was stopped" in hook_said.read_text()


def _listed_status(name: str) -> str:
    listed = json.loads(run_cli("schedule", "list", "--json").stdout)
    return next(row for row in listed if row["name"] == name)["last_run"]["status"]


def _run_held_at_unlink(path: Path, trace: Path) -> subprocess.Popen:
    """`run trim` whose front is held as it enters unlink() of `path`, before the file goes: strace
    delays that one system call (`-P path`, `delay_enter`), a real process at a real moment no poll
    could catch (it lasts microseconds). Returned once strace says the front is there."""
    front = subprocess.Popen(["strace", "-qq", "-e", "signal=none", "-o", str(trace), "-P", str(path),
                              "-e", "trace=unlink,unlinkat", "-e", "inject=unlink,unlinkat:delay_enter=600s",
                              sys.executable, "-m", "pgbackup_tui", "run", "trim", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and f'"{path}"' not in (trace.read_text() if trace.exists() else ""):
        assert front.poll() is None, front.communicate()
        time.sleep(0.05)
    assert f'"{path}"' in trace.read_text(), "the run never came to delete it"
    return front


@pytest.mark.parametrize("held_at", ["manifest", "archive"])
def test_a_run_killed_in_its_retention_leaves_no_missing_backup_and_is_said_as_it_was(
        sandbox, home, small_db, tmp_path, held_at):
    """A run killed (SIGKILL) while retention deleted an old backup, between its archive and its
    manifest, left the manifest (and its lock file): listed as *missing* for good; and the next run
    said the killed run's backup was not verified, when it was (QA). Now the catalog finishes a
    delete stopped half way (the manifest says so before anything goes), the next run's retention
    finishes one whose archive is still there, and the killed run is said as it was."""
    configure(sandbox, Schedule(name="trim", server=SERVER, cron="0 1 * * *", database=small_db, keep_last=1,
                                verify=True))
    done, first = run("trim")
    assert done.returncode == 0, done.stderr
    old = Path(first["backup_path"])
    sidecar = old.with_name(old.name + ".manifest.json")
    front = _run_held_at_unlink(sidecar if held_at == "manifest" else old, tmp_path / "strace.out")
    assert old.exists() == (held_at == "archive") and sidecar.exists()
    killed = json.loads((home / "state" / "schedules" / "trim.json").read_text())
    os.kill(killed["pid"], signal.SIGKILL)  # the front itself (strace's child), held in its unlink
    # A task killed while held at a system call's entry never makes that call. strace may not see
    # it die ("delayed wait data set already") and hold it at its exit: strace is ended too.
    front.kill()
    front.communicate(timeout=60)
    stat = Path(f"/proc/{killed['pid']}/stat")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.05)
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z", "the front outlived SIGKILL"
    assert old.exists() == (held_at == "archive") and sidecar.exists()  # killed where it was held
    second = next(b for b in backups() if b["database"] == small_db and b["id"] != first["backup_id"])

    listed = {b["id"]: b for b in backups()}
    assert "missing" not in {b["status"] for b in listed.values()}, listed
    if held_at == "manifest":  # the archive gone: the rest of it goes at the first look, nothing listed
        assert first["backup_id"] not in listed and not sidecar.exists()
        assert not list(old.parent.glob(f".{old.name}*"))  # its manifest's lock file too
    else:  # the archive still there: said to be half deleted, for the delete to be finished
        assert listed[first["backup_id"]]["status"] == "incomplete", listed

    done, third = run("trim")
    assert done.returncode == 0, done.stderr
    said = [line for line in third["notices"] if f"(job {killed['job_id']})" in line]
    assert said and "stopped during its retention" in said[0] and f"{second['path']} was made, verified" in said[0], \
        third["notices"]
    assert not any("not verified" in line for line in third["notices"]), third["notices"]
    assert {b["id"] for b in backups()} == {third["backup_id"]}  # keep_last 1: the killed run's half-done delete too
    assert not old.exists() and not sidecar.exists()
    if held_at == "archive":
        assert f"finished deleting {first['backup_id']}: a run was stopped while it deleted it" in third["notices"]
        # Said once: not again as "deleted ID PATH" beside it.
        assert not any(line.startswith(f"deleted {first['backup_id']}") for line in third["notices"]), third


def test_sigterm_in_a_run_s_checks_cancels_it_and_tells_its_hook(sandbox, home, small_db, tmp_path):
    """SIGTERM cancels a run's job (exit 130, its hook told). Once the job had ended, asyncio had put
    SIGTERM back to its default: one in the run's verify killed it without a word, exit 143, its
    on_failure hook untold (QA). It is a cancelled run, said with the backup it made."""
    tools, counting, told = tmp_path / "bin", tmp_path / "counting", tmp_path / "told"
    tools.mkdir()
    for tool in ("pg_dump", "pg_dumpall", "psql"):
        (tools / tool).symlink_to(sandbox.bin_dir / tool)
    # The verify's count of rows (pg_restore --data-only) held until the run is signalled.
    (tools / "pg_restore").write_text(f'#!/bin/sh\ncase "$*" in *--data-only*) echo $$ > "{counting}"; '
                                      f'exec sleep 30;; esac\nexec "{sandbox.bin_dir}/pg_restore" "$@"\n')
    (tools / "pg_restore").chmod(0o755)
    configure(sandbox, Schedule(name="checked", server=SERVER, cron="0 1 * * *", database=small_db, verify=True,
                                on_failure=f"echo \"$PGBACKUP_TUI_STATUS\" > '{told}'"))
    config = load_config()
    config.servers[SERVER] = ServerProfile(name=SERVER, dsn=sandbox.dsn(), bin_dir=str(tools))
    save_config(config)
    front = subprocess.Popen([sys.executable, "-m", "pgbackup_tui", "run", "checked", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not counting.exists():
        assert time.monotonic() < deadline and front.poll() is None, front.communicate()
        time.sleep(0.05)
    front.send_signal(signal.SIGTERM)
    out, err = front.communicate(timeout=30)
    with contextlib.suppress(ProcessLookupError, ValueError):  # the held pg_restore: ours to end
        os.kill(int(counting.read_text()), signal.SIGKILL)
    assert front.returncode == 130, err
    report = json.loads(out)
    assert report["status"] == "cancelled" and f"its backup {report['backup_id']}" in report["message"], report
    assert told.read_text().strip() == "cancelled"


@pytest.mark.parametrize("ended", ["succeeded", "failed"])
def test_a_run_killed_in_its_hooks_is_said_as_it_was(sandbox, home, small_db, tmp_path, ended):
    """A run killed while its hook ran was said by the next run to have been "stopped during its
    retention" (its record's last stage), a failed one too. Now it is said as ended, then stopped
    in its hooks; a failure is told to the hooks again (they may never have heard of it)."""
    started, told = tmp_path / "hook-started", tmp_path / "told"
    hook = f"echo \"$PGBACKUP_TUI_STATUS\" >> '{told}'; echo $$ > '{started}'; sleep 60"
    database = small_db if ended == "succeeded" else "no_such_database"
    configure(sandbox, Schedule(name="held", server=SERVER, cron="0 1 * * *", database=database, keep_last=2,
                                on_success=hook, on_failure=hook))
    front = subprocess.Popen([sys.executable, "-m", "pgbackup_tui", "run", "held", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (started.exists() and started.read_text().strip()):
        assert front.poll() is None and time.monotonic() < deadline, front.communicate()
        time.sleep(0.05)
    front.kill()  # the front; the hook, in a session of its own, sleeps on
    front.communicate(timeout=30)
    os.killpg(int(started.read_text()), signal.SIGKILL)
    (home / "config.toml").write_text((home / "config.toml").read_text().replace("; sleep 60", ""))
    done, report = run("held")
    said = [line for line in report["notices"] + report.get("warnings", []) if "hooks and notifications" in line]
    assert said and f"{ended}, then was stopped" in said[0] and "retention" not in said[0], report
    assert told.read_text().split() == (["succeeded", "succeeded"] if ended == "succeeded"
                                        else ["failed", "failed", "failed"]), told.read_text()


def test_config_changes_at_once_all_land_and_the_file_s_comments_and_link_are_kept(sandbox, home, tmp_path):
    """Two `schedule add` at once: each read config.toml, and the last write lost the other's
    schedule. A config.toml that is a symlink was replaced by a plain file; one with a DBA's
    comments lost them without a word."""
    configure(sandbox)
    managed = tmp_path / "managed" / "config.toml"
    managed.parent.mkdir()
    config_file = home / "config.toml"
    managed.write_text("# our servers, see the wiki\n" + config_file.read_text())
    managed.chmod(0o600)
    config_file.unlink()
    config_file.symlink_to(managed)
    adds = [subprocess.Popen([sys.executable, "-m", "pgbackup_tui", "schedule", "add", f"s{i}", "--server", SERVER,
                              "--db", "shop", "--cron", "0 1 * * *"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, stdin=subprocess.DEVNULL) for i in range(6)]
    outcomes = [(add.wait(timeout=60), add.stderr.read()) for add in adds]
    assert all(code == 0 for code, _ in outcomes), outcomes
    names = {s["name"] for s in json.loads(run_cli("schedule", "list", "--json").stdout)}
    assert names == {f"s{i}" for i in range(6)}
    assert config_file.is_symlink() and "[schedules.s5]" in managed.read_text()
    kept = managed.with_name("config.toml.bak")
    assert "# our servers, see the wiki" in kept.read_text() and oct(kept.stat().st_mode & 0o777) == "0o600"
    assert any("comments and all, is kept in" in err for _, err in outcomes)


def test_another_user_s_crontab_needs_the_config_s_folder(monkeypatch, cron_user):
    """`crontab -u postgres` without PGBACKUP_TUI_HOME wrote lines that read that user's own config,
    where these schedules are not: refused, saying what to set."""
    from pgbackup_tui.core import crontab
    from pgbackup_tui.core.config import Config
    from pgbackup_tui.core.errors import UsageError

    config = Config(servers={SERVER: ServerProfile(name=SERVER, host="/tmp")},
                    schedules={"n": Schedule(name="n", server=SERVER, cron="0 1 * * *", database="shop")})
    monkeypatch.setenv("PGBACKUP_TUI_CRONTAB", "crontab -u postgres")
    monkeypatch.delenv("PGBACKUP_TUI_HOME", raising=False)
    with pytest.raises(UsageError, match="PGBACKUP_TUI_HOME"):
        crontab.crontab_block(config)
    monkeypatch.setenv("PGBACKUP_TUI_HOME", "/srv/pgbackup")
    assert "PGBACKUP_TUI_HOME=/srv/pgbackup" in "\n".join(crontab.crontab_block(config))
    # That user's own block (their default home, no variable on its lines) is theirs: root's uninstall
    # into their crontab without PGBACKUP_TUI_HOME took it for root's default home's and removed it.
    monkeypatch.setenv("PGBACKUP_TUI_CRONTAB", f"crontab -u {cron_user}")
    monkeypatch.delenv("PGBACKUP_TUI_HOME")
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    line = "0 3 * * * PATH=/usr/bin /usr/bin/python3 -m pgbackup_tui run theirs >/dev/null"
    theirs = f"{crontab.BEGIN}\n{line}\n{crontab.END}\n"
    assert crontab.merge(theirs, []) == theirs


def test_homes_set_by_xdg_variables_alone_each_own_their_block(tmp_path, monkeypatch):
    """Two homes set through XDG_CONFIG_HOME (no PGBACKUP_TUI_HOME) were both taken for the default
    home: the second one's install replaced the first one's block (its schedules stopped running),
    and its uninstall removed it (QA). Each config folder owns its block, as PGBACKUP_TUI_HOME's do;
    the one crontab they share is the user's own, so this is the merge `install` writes, not crontab."""
    from pgbackup_tui.core import crontab, systemd_units
    from pgbackup_tui.core.config import Config
    from pgbackup_tui.core.errors import UsageError

    monkeypatch.delenv("PGBACKUP_TUI_CRONTAB", raising=False)
    monkeypatch.delenv("PGBACKUP_TUI_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    (tmp_path / "user" / ".config").mkdir(parents=True)
    (tmp_path / "alias").symlink_to(tmp_path / "b")
    text = "0 1 * * * /usr/local/bin/mine\n"

    def install(xdg: Path | None, name: str | None) -> str:
        """The crontab after `install` (`uninstall`: name None) of the home XDG_CONFIG_HOME=`xdg` sets."""
        if xdg is None:
            monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
            monkeypatch.delenv("XDG_DATA_HOME", raising=False)
        else:
            monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
            monkeypatch.setenv("XDG_DATA_HOME", str(xdg.with_name(xdg.name + "-data")))
        schedules = {} if name is None else {name: Schedule(name=name, server=SERVER, cron="0 2 * * *",
                                                             database="shop")}
        return crontab.merge(text, crontab.crontab_block(Config(schedules=schedules)))

    text = install(tmp_path / "a", "first")
    text = install(tmp_path / "b", "second")
    both = text
    assert " run first " in both and " run second " in both and both.count(crontab.BEGIN) == 2, both
    assert install(tmp_path / "a", "first") == both  # again: nothing changes
    # The default home (no XDG variable) is a third one; the same folder named by XDG_CONFIG_HOME is it.
    text = install(None, "third")
    assert text.count(crontab.BEGIN) == 3
    text = install(tmp_path / "user" / ".config", "third")
    assert text.count(crontab.BEGIN) == 3 and text.count(" run third ") == 1, text
    text = install(Path("relative"), None)  # passed over by platformdirs, here and in cron: the default home
    assert text == both
    assert systemd_units.systemd_user_dir() == tmp_path / "user" / ".config" / "systemd" / "user"  # and by systemd
    # The same folder by a symlink's path is the same block, replaced (two would run it twice).
    text = install(tmp_path / "alias", "second")
    assert text.count(" run second ") == 1 and text.count(crontab.BEGIN) == 2, text
    # Two blocks of one home (copied by hand, or by a version that took a symlink's path for another
    # home) ran each schedule twice: install replaced the first only, and uninstall left the second.
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if " run second " in line)
    start, end = at - 2, at + 1
    assert lines[start].startswith(crontab.BEGIN) and lines[end].startswith(crontab.END), lines
    text = text + "15 5 * * * /usr/local/bin/also-mine\n" + "".join(lines[start:end + 1])
    text = install(tmp_path / "b", "second")
    assert text.count(" run second ") == 1 and text.count(crontab.BEGIN) == 2, text
    assert text.index(" run second ") < text.index("also-mine"), text  # the first one's place
    text = install(tmp_path / "b", None)
    assert " run second " not in text and " run first " in text and text.startswith("0 1 * * * /usr/local/bin/mine\n")
    text = install(tmp_path / "a", None)
    assert text == "0 1 * * * /usr/local/bin/mine\n15 5 * * * /usr/local/bin/also-mine\n"
    # Review: a block's lines commented out by hand (paused) still say whose they are: the default
    # home took such a block of another home for its own, and its uninstall removed it.
    paused = install(tmp_path / "b", "second").replace("\n0 2 * * * ", "\n#0 2 * * * ")
    text = paused
    assert install(None, None) == paused
    # Review: a start marker pasted again before the end marker made two blocks overlap, and the
    # merge took the lines after them too ('mine' and 'also-mine' gone): refused, nothing changed.
    lines = paused.splitlines(keepends=True)
    text = "".join(lines[:1]) + crontab.BEGIN + "\n" + "".join(lines[1:])
    with pytest.raises(UsageError, match="start marker .* on lines 2 and"):
        install(tmp_path / "b", None)


def test_retention_still_counts_a_renamed_server_s_backups(sandbox, home, small_db):
    """A profile renamed (as the TUI does, its schedules following it) keeps its backups in the
    catalog; retention matched the old name only and never counted them again."""
    configure(sandbox, Schedule(name="keep1", server=SERVER, cron="0 1 * * *", database=small_db, keep_last=1,
                                keep_verified=False))
    done, first = run("keep1")
    assert done.returncode == 0, done.stderr
    config = load_config()
    config.servers = {"renamed": ServerProfile(name="renamed", dsn=sandbox.dsn())}
    config.schedules["keep1"] = Schedule(**{**config.schedules["keep1"].__dict__, "server": "renamed"})
    save_config(config)
    done, second = run("keep1")
    assert done.returncode == 0, done.stderr
    assert second["deleted"] == [first["backup_id"]], second


def test_a_disk_that_fills_after_the_backup_is_said_and_the_next_run_gives_the_backup_its_schedule(
        sandbox, home, small_db, monkeypatch):
    """The backup was made, then its manifest could not take the schedule's name (the disk full):
    the run said `internal error: OSError(28, ...)`, and retention never counted, nor ever deleted,
    that backup. A real tmpfs under the schedule's backup folder, filled as the job ends."""
    from pgbackup_tui.core.jobs import JobFinished
    from pgbackup_tui.core.schedule_run import run_schedule
    from small_disk import fill, small_filesystem

    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="0 1 * * *", database=small_db, keep_last=1))
    folder = home / "backups" / SERVER / small_db
    with small_filesystem(folder, 2048):
        def fill_when_done(event) -> None:
            if isinstance(event, JobFinished):
                fill(folder, 0)

        report = run_schedule(load_config(), "nightly", listener=fill_when_done)
        assert report.status == "failed", report
        assert "the disk is full" in report.message and "internal error" not in report.message, report.message
        made = report.backup_path
        assert made and Path(made).exists()
        (folder / "filler").unlink()
        done, second = run("nightly")
        assert done.returncode == 0, done.stderr
        assert any(made in notice and "now this schedule's" in notice for notice in second["notices"]), second
        # keep_last 1: the first backup has the schedule's name now, so retention counted and deleted it.
        assert not Path(made).exists()
        assert [b["path"] for b in backups() if b["database"] == small_db] == [second["backup_path"]]


def test_a_success_is_sent_as_one_and_a_failing_hook_goes_to_stderr(sandbox, home, small_db, receiver):
    """Every notification went as apprise's "info", a failure's too; and an on_success hook that
    failed was said on stdout only, which cron drops when the run exits 0."""
    port, received = receiver
    notify = home / "notify.toml"
    notify.write_text(f'[urls]\nops = "json://127.0.0.1:{port}/hook"\n')
    notify.chmod(0o600)
    configure(sandbox, Schedule(name="daily", server=SERVER, cron="0 3 * * *", database=small_db,
                                on_success="exit 3", notify=("ops",), notify_on_success=True))
    done = run_cli("run", "daily")
    assert done.returncode == 0, done.stderr
    assert "on_success hook: the hook exited 3" in done.stderr and "exited 3" not in done.stdout
    assert "daily: succeeded" in done.stdout
    [sent] = received
    assert sent["json"]["type"] == "success" and "daily succeeded" in sent["json"]["title"]
    # --json and --progress jsonl too: the report on stdout, the failed hook on stderr as well.
    for how in (("--json",), ("--progress", "jsonl")):
        scripted = run_cli("run", "daily", *how)
        assert scripted.returncode == 0, scripted.stderr
        [said] = scripted.stderr.strip().splitlines()
        assert said.startswith("pgbackup-tui: on_success hook: the hook exited 3"), how
        report = json.loads(scripted.stdout if how == ("--json",) else scripted.stdout.splitlines()[-1])
        assert report["status"] == "succeeded" and any("exited 3" in line for line in report["warnings"])


def test_a_schedule_that_names_a_notification_without_a_url_is_warned_of(sandbox, home):
    """Saved without a word: its failures then told nobody (the send found no URL at run time)."""
    configure(sandbox)
    args = ("schedule", "add", "nightly", "--server", SERVER, "--cron", "0 1 * * *", "--db", "shop", "--notify", "ops",
            "--notify", "ops")
    added = run_cli(*args)
    assert added.returncode == 0, added.stderr
    assert "warning: no URL for notification 'ops' yet" in added.stderr and "schedule url ops" in added.stderr
    assert load_config().schedules["nightly"].notify == ("ops",)  # saved once: it was ["ops", "ops"]
    told = subprocess.run([sys.executable, "-m", "pgbackup_tui", "schedule", "url", "ops"], input="json://127.0.0.1:9/x\n",
                          capture_output=True, text=True, env=dict(os.environ), check=False)
    assert told.returncode == 0, told.stderr
    again = run_cli(*args, "--replace")
    assert again.returncode == 0 and "no URL" not in again.stderr, again.stderr


def test_a_run_that_holds_the_lock_keeps_its_record_when_its_schedule_is_removed(home):
    from pgbackup_tui.core.schedule_run import forget_last_run, schedule_lock, schedules_state_dir

    record = schedules_state_dir() / "busy.json"
    record.write_text(json.dumps({"schedule": "busy", "status": "running", "started_at": "2026-12-03T01:00:00Z"}))
    with schedule_lock("busy"):  # as a run holds it, from its start to its end
        assert forget_last_run("busy") is False and record.exists()
    assert forget_last_run("busy") is True and not record.exists()
    assert forget_last_run("never-ran") is True and not (schedules_state_dir() / "never-ran.lock").exists()


def test_a_run_on_a_full_disk_still_tells_its_hook_and_says_one_line(sandbox, home, small_db, tmp_path):
    """The home (state, logs, backups: one disk, as platformdirs puts them) full: the run's first
    write, its record, failed out of the run with `error: …/nightly.json: No space left on device`,
    and on_failure and the notifications were never told: the failure monitoring most needs."""
    from small_disk import fill, small_filesystem

    hook_said = tmp_path / "hook.txt"
    with small_filesystem(home, 4096):
        configure(sandbox, Schedule(name="nightly", server=SERVER, cron="0 1 * * *", database=small_db, keep_last=1,
                                    on_failure=f"echo \"$PGBACKUP_TUI_ERROR\" >> '{hook_said}'"))
        done = run_cli("run", "nightly")
        assert done.returncode == 0, done.stderr
        made = [b["id"] for b in backups()]
        fill(home, 0)
        done = run_cli("run", "nightly")
        assert done.returncode == 1, done.stderr
        said = done.stderr
        assert said.startswith("pgbackup-tui: nightly: failed:") and "the disk is full" in said, said
        assert "Traceback" not in done.stderr and "on_failure hook ran" in done.stderr, done.stderr
        assert "the disk is full" in hook_said.read_text()
        (home / "filler").unlink()
        assert [b["id"] for b in backups()] == made  # a failed run deletes nothing


def test_a_run_whose_server_profile_was_renamed_by_hand_is_a_failed_run_that_tells(sandbox, home, small_db, receiver):
    """`[servers.X]` renamed (or removed) in config.toml by hand: the schedule naming X ended with
    exit 2 and one line on stderr, its on_failure hook and notifications never told, while a
    [servers.X] that does not load is a failed run that tells (the test above)."""
    port, received = receiver
    notify = home / "notify.toml"
    notify.write_text(f'[urls]\nops = "json://127.0.0.1:{port}/hook"\n')
    notify.chmod(0o600)
    hook_said = home / "hook.txt"
    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="0 1 * * *", database=small_db, notify=("ops",),
                                on_failure=f"echo \"$PGBACKUP_TUI_ERROR\" > '{hook_said}'"))
    config_file = home / "config.toml"
    config_file.write_text(config_file.read_text().replace(f"[servers.{SERVER}]", "[servers.renamed]"))
    done = run_cli("run", "nightly")
    assert done.returncode == 2, done.stderr
    line = f"server = '{SERVER}' is no server profile (known: renamed)"
    assert done.stderr.startswith("pgbackup-tui: nightly: failed:") and line in done.stderr, done.stderr
    assert line in hook_said.read_text()
    assert len(received) == 1 and line in received[0]["json"]["message"]
    assert json.loads(run_cli("jobs", "list", "--json").stdout) == []  # nothing was started


def test_a_cluster_run_that_fails_in_a_database_names_the_cause(sandbox, home, small_db):
    """pg_dumpall's last line ('pg_dump failed on database "X", exiting') was the run's error,
    what on_failure, the notification and cron's mail got: the cause (a role without SELECT on
    a schema: "permission denied for schema …") only in the log."""
    role = "t_noread_" + uuid.uuid4().hex[:6]
    sandbox.create_role(role)
    try:
        configure(sandbox, Schedule(name="whole", server=SERVER, cron="0 1 * * *", what="cluster"),
                  dsn=sandbox.dsn().replace("user=postgres", f"user={role}"))
        done, report = run("whole")
        assert done.returncode == 1 and report["status"] == "failed", done.stderr
        assert "permission denied for" in report["message"], report["message"]
        assert "pg_dump failed on database" in report["message"], report["message"]  # which database, still said
    finally:
        sandbox.psql(f'DROP ROLE "{role}";')


def test_a_name_that_is_no_schedule_lists_those_that_do_not_load_too(sandbox, home):
    """With every schedule's table broken (its server renamed by hand), `run` of a mistyped name
    said `known: none yet; add one with pgbackup-tui schedule add`: there were two."""
    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="0 1 * * *", database="shop"),
              Schedule(name="weekly", server=SERVER, cron="0 1 * * 0", database="shop"))
    config_file = home / "config.toml"
    config_file.write_text(config_file.read_text().replace(f"[servers.{SERVER}]", "[servers.renamed]"))
    done = run_cli("run", "nightlly")
    assert done.returncode == 2, done.stderr
    assert "none yet" not in done.stderr and "nightly" in done.stderr and "weekly" in done.stderr, done.stderr
    assert f"in {config_file} (known:" in done.stderr, done.stderr  # which config was read
    # A home moved or removed since its lines were installed: cron mailed "no schedule named 'nightly'
    # (known: none yet; add one with …)", and nothing said which file it had looked for.
    gone = home / "moved-away"
    done = run_cli("run", "nightly", env={**os.environ, "PGBACKUP_TUI_HOME": str(gone)})
    assert done.returncode == 2 and f"there is no {gone / 'config.toml'}" in done.stderr, done.stderr
    assert "none yet" not in done.stderr and done.stderr.count("\n") == 1, done.stderr


def _on_a_terminal(args: list[str], *, columns: int, env: dict[str, str]) -> list[str]:
    """The lines `pgbackup-tui ARGS` writes to a terminal (a pty) `columns` wide; exit 0 asserted.
    Read while it writes (a full pty would hold it up), until its end of the pty is closed."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    main, terminal = pty.openpty()
    output = b""
    try:
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        child = subprocess.Popen([sys.executable, "-m", "pgbackup_tui", *args], stdin=subprocess.DEVNULL,
                                 stdout=terminal, stderr=subprocess.DEVNULL, env=env)
        os.close(terminal)
        terminal = -1
        while True:
            if not select.select([main], [], [], 120)[0]:  # only a guard against a hang
                child.kill()
                raise AssertionError(f"pgbackup-tui {' '.join(args)} wrote nothing for 120 s: {output!r}")
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child's end is closed, all was read
                break
            if not chunk:
                break
            output += chunk
        assert child.wait(timeout=120) == 0, output
    finally:
        os.close(main)
        if terminal >= 0:
            os.close(terminal)
    return output.decode("utf-8").replace("\r\n", "\n").splitlines()


def test_a_long_schedule_name_leaves_the_list_s_columns_readable_at_80_columns(sandbox, home):
    """A 63-character name (the most) padded every line of `schedule list` to it: at 80 columns
    each schedule's cron went to the end of a row and the rest wrapped mid-word (QA). A long name
    has a line of its own, whole, on a terminal, where fields that do not fit go whole to the next
    line; piped (even with COLUMNS exported), one line a schedule, the long name's too."""
    long_name = "nightly-orders-eu-west-primary-cluster-full-with-verify-drill-x"
    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="30 2 * * *", database="shop"),
              Schedule(name=long_name, server=SERVER, cron="15 3 * * mon-fri", database="shop", keep_last=14,
                       keep_days=30),
              Schedule(name="weekly", server=SERVER, cron="0 4 * * sun", what="cluster", keep_days=60))
    piped_env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    piped = run_cli("schedule", "list", env={**piped_env, "COLUMNS": "80"})
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    # One line a schedule, the long name's too (review: `| grep NAME` showed the name alone).
    assert len(lines) == 3 and lines[1].startswith(f"{long_name}  15 3 "), lines
    crons = zip(lines, ["30 2", "15 3", "0 4"], strict=True)
    assert {line.index(cron) for line, cron in crons} == {len(long_name) + 2}, lines
    rows = _on_a_terminal(["schedule", "list"], columns=80, env=piped_env)
    assert long_name in rows and all(len(row) <= 80 for row in rows), rows
    assert sum(" keep last 14 + 30 days + newest verified" in row for row in rows) == 1, rows
    assert all("(in " in row.partition("next ")[2] for row in rows if "next " in row), rows  # a field whole


def test_installed_lines_find_a_config_kept_where_xdg_variables_put_it(sandbox, small_db, tmp_path, monkeypatch):
    """Without PGBACKUP_TUI_HOME the config, backups and state are where XDG_CONFIG_HOME,
    XDG_DATA_HOME and XDG_STATE_HOME say (platformdirs): cron has none of them, so every
    installed line read ~/.config and failed with "no schedule named 'nightly'"."""
    monkeypatch.delenv("PGBACKUP_TUI_HOME", raising=False)
    monkeypatch.delenv("PGBACKUP_TUI_CRONTAB", raising=False)
    user_home = tmp_path / "user home"
    user_home.mkdir(mode=0o700)
    monkeypatch.setenv("HOME", str(user_home))
    for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / "xdg" / variable.lower()))
    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="30 2 * * *", database=small_db))
    done = run_cli("schedule", "install", "--print")
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if " run nightly " in line)
    command = line.split(" ", 5)[5].replace("\\%", "%")  # what cron hands to sh (its \% is a %)
    cron_env = {"HOME": str(user_home), "LOGNAME": "root", "SHELL": "/bin/sh", "PATH": "/usr/bin:/bin"}
    if os.environ.get("PYTHONPATH"):  # the code under test, as the tests run it
        cron_env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    ran = subprocess.run(["/bin/sh", "-c", command.replace(" >/dev/null", "")], env=cron_env, cwd=user_home,
                         capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr
    assert "nightly: succeeded" in ran.stdout and str(tmp_path / "xdg" / "xdg_data_home") in ran.stdout, ran.stdout
    assert not (user_home / ".config").exists() and not (user_home / ".local").exists()


def test_installed_lines_find_the_password_file_libpq_was_told_of(sandbox, home, small_db, tmp_path, monkeypatch):
    """PGPASSFILE set in the DBA's shell: `schedule add` checked the server, a run by hand
    succeeded, and every run cron started failed with "no password supplied" (cron has no
    PGPASSFILE). The password itself is never on the line."""
    role, password = "t_cron_" + uuid.uuid4().hex[:6], "pw-" + uuid.uuid4().hex
    sandbox.create_role(role, password)
    sandbox.psql(f'GRANT pg_read_all_data TO "{role}";')
    try:
        passfile = tmp_path / "pgpass"
        passfile.write_text(f"127.0.0.1:{sandbox.port}:*:{role}:{password}\n")
        passfile.chmod(0o600)
        monkeypatch.setenv("PGPASSFILE", str(passfile))
        monkeypatch.delenv("PGPASSWORD", raising=False)
        configure(sandbox, Schedule(name="nightly", server=SERVER, cron="30 2 * * *", database=small_db),
                  dsn=f"host=127.0.0.1 port={sandbox.port} user={role} dbname=postgres")
        done = run_cli("schedule", "install", "--print")
        assert done.returncode == 0, done.stderr
        line = next(line for line in done.stdout.splitlines() if " run nightly " in line)
        assert password not in line
        command = line.split(" ", 5)[5].replace("\\%", "%").replace(" >/dev/null", "")
        cron_env = {"HOME": str(tmp_path), "LOGNAME": "root", "SHELL": "/bin/sh", "PATH": "/usr/bin:/bin"}
        if os.environ.get("PYTHONPATH"):  # the code under test, as the tests run it
            cron_env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        ran = subprocess.run(["/bin/sh", "-c", command], env=cron_env, cwd=tmp_path, capture_output=True, text=True,
                             timeout=120, check=False)
        assert ran.returncode == 0 and "nightly: succeeded" in ran.stdout, ran.stderr
    finally:
        sandbox.psql(f'DROP ROLE "{role}";')


def test_installed_lines_connect_as_securely_as_the_shell_that_installed_them(sandbox, home, small_db, tmp_path,
                                                                              monkeypatch):
    """PGSSLMODE=verify-full in the DBA's shell: `servers test` and `schedule add`'s check refused a
    server whose certificate did not verify, and every run cron started connected to it anyway
    (libpq's default sslmode, prefer) and backed it up. The sandbox has no TLS: a run that carries
    the shell's sslmode fails, as the shell's own connection does (QA)."""
    monkeypatch.setenv("PGSSLMODE", "verify-full")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PGSSLROOTCERT", "certs/root.crt")  # relative: cron starts in the home folder
    monkeypatch.delenv("PGPASSWORD", raising=False)
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{sandbox.port}:*:{sandbox.superuser}:{sandbox.password}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="30 2 * * *", database=small_db),
              dsn=sandbox.dsn(tcp=True))
    done = run_cli("schedule", "install", "--print")
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if " run nightly " in line)
    assert f"PGSSLROOTCERT={tmp_path / 'certs/root.crt'} " in line and "PGSSLMODE=verify-full " in line, line
    command = line.split(" ", 5)[5].replace("\\%", "%").replace(" >/dev/null", "")
    cron_env = {"HOME": str(tmp_path), "LOGNAME": "root", "SHELL": "/bin/sh", "PATH": "/usr/bin:/bin"}
    if os.environ.get("PYTHONPATH"):
        cron_env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    ran = subprocess.run(["/bin/sh", "-c", command], env=cron_env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, check=False)
    assert ran.returncode == 1 and "SSL" in ran.stderr, (ran.stdout, ran.stderr)


def test_installed_lines_reach_the_server_the_shell_s_libpq_variables_named(sandbox, home, small_db, tmp_path,
                                                                              monkeypatch):
    """A profile without host, port or user, and PGHOST, PGPORT and PGUSER in the DBA's shell:
    `servers test` and the schedule's check reached the server, and every run of cron went to the
    local socket on 5432 as the account's own user (failing, or backing up another server) (QA)."""
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(sandbox.port))
    monkeypatch.setenv("PGUSER", sandbox.superuser)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{sandbox.port}:*:{sandbox.superuser}:{sandbox.password}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="30 2 * * *", database=small_db),
              dsn="dbname=postgres")
    assert run_cli("servers", "test", SERVER).returncode == 0
    done = run_cli("schedule", "install", "--print")
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if " run nightly " in line)
    command = line.split(" ", 5)[5].replace("\\%", "%").replace(" >/dev/null", "")
    cron_env = {"HOME": str(tmp_path), "LOGNAME": "root", "SHELL": "/bin/sh", "PATH": "/usr/bin:/bin"}
    if os.environ.get("PYTHONPATH"):
        cron_env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    ran = subprocess.run(["/bin/sh", "-c", command], env=cron_env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, check=False)
    assert ran.returncode == 0 and "nightly: succeeded" in ran.stdout, ran.stderr


def test_retention_never_deletes_the_backup_its_run_just_made(sandbox, home, small_db):
    """Backups made while the clock ran a day fast (set right since by NTP) look newer than the
    one a run makes now: keep_last 1 kept the old one and deleted the run's own new backup, and the
    run said 'succeeded: backup X' of a backup it had deleted, every night until the clock caught up."""
    from datetime import datetime, timedelta

    from pgbackup_tui.core.manifest import load_manifest, save_manifest

    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="0 1 * * *", database=small_db, keep_last=1))
    done, first = run("nightly")
    assert done.returncode == 0, done.stderr
    old = Path(first["backup_path"])
    manifest = load_manifest(old)
    assert manifest is not None
    ahead = (datetime.fromisoformat(manifest.started_at) + timedelta(days=1)).isoformat()
    manifest.started_at = manifest.finished_at = ahead  # as that clock wrote them
    save_manifest(old, manifest)
    done, second = run("nightly")
    assert done.returncode == 0, done.stderr
    assert Path(second["backup_path"]).exists(), second
    assert second["deleted"] == [first["backup_id"]] and not old.exists(), second


def test_a_run_whose_state_folder_went_read_only_is_a_failed_run_that_tells(sandbox, home, small_db, tmp_path):
    """A disk remounted read-only (ext4's errors=remount-ro): the run could not open its lock and
    ended with `error: …/nightly.lock: Read-only file system`, exit 2 (bad input), its on_failure
    hook and notifications never told."""
    from small_disk import read_only

    hook_said = tmp_path / "hook.txt"
    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="0 1 * * *", database=small_db, keep_last=1,
                                on_failure=f"echo \"$PGBACKUP_TUI_ERROR\" >> '{hook_said}'"))
    assert run_cli("run", "nightly").returncode == 0
    made = [b["id"] for b in backups()]
    with read_only(home):
        done = run_cli("run", "nightly")
    assert done.returncode == 1, done.stderr
    said = done.stderr
    assert said.startswith("pgbackup-tui: nightly: failed:") and "Read-only file system" in said, said
    assert "Read-only file system" in hook_said.read_text()
    assert [b["id"] for b in backups()] == made


def test_retention_keeps_a_backup_a_process_is_reading_until_a_later_run(sandbox, home, small_db):
    """A directory archive deleted under a reader that is no job of ours (a drill or a verify runs in
    the process that asked; a DBA's own pg_restore) failed that reader half way, pg_restore opening
    each table's file as it comes to it. A process that has one of its files open keeps it, and so
    does one that names it (pg_restore waiting on a lock between two files has none open).
    And a backup whose files the filesystem would not let go (a directory archive another user made,
    or on a read-only mount) was kept with a note on stdout, which cron drops: kept night after
    night, and nobody heard of it. The run still succeeds: its backup was made."""
    from small_disk import read_only

    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="0 1 * * *", database=small_db,
                                format="directory", keep_last=1, keep_verified=False))
    done, first = run("nightly")
    assert done.returncode == 0, done.stderr
    table_file = next(Path(first["backup_path"]).glob("*.dat*"))
    with table_file.open("rb") as handle:
        reader = subprocess.Popen(["sleep", "60"], stdin=handle)
    try:
        done, second = run("nightly")
        assert done.returncode == 0 and second["deleted"] == [], second
        assert table_file.exists()
        said = f"kept {first['backup_id']}: process {reader.pid} (sleep) is reading it; a later run deletes it"
        assert said in second["notices"], second
    finally:
        reader.kill()
        reader.wait()
    archive = Path(second["backup_path"])  # named as a DBA in its folder types it: `pg_restore -d x 2026….dir`
    reader = subprocess.Popen(["sh", "-c", "sleep 60", "pg_restore", "-d", "x", archive.name], cwd=archive.parent)
    try:
        done, third = run("nightly")
        assert done.returncode == 0 and third["deleted"] == [first["backup_id"]], third
        assert f"kept {second['backup_id']}: process {reader.pid} (sh) is reading it" in " ".join(third["notices"])
    finally:
        reader.kill()
        reader.wait()
    with read_only(archive):
        done = run_cli("run", "nightly")
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if second["backup_id"] in line]
    assert said and "cannot be deleted" in said[0] and "Read-only file system" in said[0], done.stderr
    assert done.stdout.startswith("nightly: succeeded: ") and "cannot be deleted" not in done.stdout


def test_ctrl_c_in_a_hook_says_how_the_run_went_and_the_next_run_says_the_hooks_were_stopped(
        sandbox, home, small_db, tmp_path):
    """Ctrl-C while the on_success hook ran (a slow upload of the backup): the run said only
    `pgbackup-tui: cancelled`, exit 130, its backup made and verified, its retention done, unnamed.
    And while a run's hooks ran, the TUI's Run now said "started" of a run refused at once, unseen."""
    from pgbackup_tui.core.schedule_run import busy_now

    started = tmp_path / "hook-started"
    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="0 1 * * *", database=small_db, keep_last=1,
                                on_success=f"touch '{started}'; sleep 60"))
    front = subprocess.Popen([sys.executable, "-m", "pgbackup_tui", "run", "nightly"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not started.exists() and front.poll() is None:
        time.sleep(0.05)
    assert started.exists(), front.communicate()
    # Its job has ended, its hook runs and it holds its lock: a Run now (busy_now) is refused, not started.
    said = busy_now("nightly")
    assert said is not None and "schedule 'nightly' is already running" in said, said
    front.send_signal(signal.SIGINT)
    out, err = front.communicate(timeout=30)
    assert front.returncode == 130, err
    assert out.startswith("nightly: succeeded: backup ") and "retention kept 1" in out, (out, err)
    assert "hooks and notifications were stopped (Ctrl-C)" in err and "pgbackup-tui: cancelled" not in err, err
    made = [b for b in backups() if b["database"] == small_db]
    assert len(made) == 1 and made[0]["path"] in out
    assert busy_now("nightly") is None
    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="0 1 * * *", database=small_db))
    done, report = run("nightly")
    assert done.returncode == 0, done.stderr
    assert any("while its hooks and notifications ran" in line for line in report["notices"]), report


def test_a_drill_schedule_for_a_role_that_cannot_create_databases_is_warned_of(sandbox, home, small_db):
    """`--drill` saved for a role without CREATEDB: no word, then every run failed its drill
    ('permission denied to create database') and, a failed run deleting nothing, kept every backup."""
    role = "t_nodb_" + uuid.uuid4().hex[:6]
    sandbox.create_role(role)
    sandbox.psql(f'GRANT pg_read_all_data TO "{role}";')
    try:
        configure(sandbox, dsn=sandbox.dsn().replace("user=postgres", f"user={role}"))
        done = run_cli("schedule", "add", "drilled", "--server", SERVER, "--db", small_db, "--cron", "0 3 * * *",
                       "--drill")
        assert done.returncode == 0 and "drilled" in load_config().schedules, done.stderr
        assert f"role '{role}' may not create databases" in done.stderr, done.stderr
        sandbox.psql(f'ALTER ROLE "{role}" CREATEDB;')
        again = run_cli("schedule", "add", "drilled", "--server", SERVER, "--db", small_db, "--cron", "0 3 * * *",
                        "--drill", "--replace")
        assert again.returncode == 0 and "warning" not in again.stderr, again.stderr
    finally:
        sandbox.psql(f'DROP ROLE "{role}";')


def test_a_notification_url_given_on_the_command_line_is_refused_without_repeating_it(home):
    """`schedule url ops json://…` (the URL as an argument, not on stdin) was refused by argparse
    with 'unrecognized arguments: json://bot:TOKEN@…': the secret copied to stderr, into whatever
    log a provisioning script keeps. So did a URL given for the name ('{url!r}: a URL's name is…')."""
    secret = "t0ken-" + uuid.uuid4().hex[:8]
    done = run_cli("schedule", "url", "ops", f"json://bot:{secret}@127.0.0.1:9/hook")
    assert done.returncode == 2 and secret not in done.stdout + done.stderr, done.stderr
    assert "stdin" in _one_line(done) and not (home / "notify.toml").exists()
    done = run_cli("schedule", "url", f"json://bot:{secret}@127.0.0.1:9/hook")  # the URL for its name
    assert secret not in _one_line(done) and not (home / "notify.toml").exists()
    # It said only "a URL: a URL's name is letters, digits, ...", not where the URL goes (README audit).
    assert "stdin" in _one_line(done) and "schedule url NAME" in _one_line(done), done.stderr


def test_schedule_url_keeps_the_rest_of_notify_toml(home, tmp_path):
    """`schedule url` wrote notify.toml from its [urls] alone: a DBA's comments went without a word
    (config.toml's are kept in a .bak, and said so), a table of theirs went too, and a notify.toml
    that was a symlink (to a secrets mount) became a file of its own in the link's place (QA)."""
    import stat
    import tomllib

    real = tmp_path / "secrets" / "notify.toml"
    real.parent.mkdir(mode=0o700)
    before = '# the pager rota\n[urls]\nops = "json://127.0.0.1:9/ops"  # on call\n\n[mine]\nowner = "dba team"\n'
    real.write_text(before)
    real.chmod(0o600)
    (home / "notify.toml").symlink_to(real)
    done = subprocess.run([sys.executable, "-m", "pgbackup_tui", "schedule", "url", "pager"],
                          input="json://127.0.0.1:9/pager\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (home / "notify.toml").is_symlink() and stat.S_IMODE(real.stat().st_mode) == 0o600
    assert tomllib.loads(real.read_text()) == {
        "urls": {"ops": "json://127.0.0.1:9/ops", "pager": "json://127.0.0.1:9/pager"}, "mine": {"owner": "dba team"}}
    kept = real.with_name("notify.toml.bak")
    assert kept.read_text() == before and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert str(kept) in done.stderr and "json://" not in done.stderr


def test_a_run_whose_logs_folder_went_read_only_names_that_folder(sandbox, home, small_db):
    """The job could not open its log on a read-only logs folder, and the run said it could not
    write its state or log under the state folder, which was fine (QA)."""
    from small_disk import read_only

    configure(sandbox, Schedule(name="nightly", server=SERVER, cron="0 1 * * *", database=small_db))
    logs = paths.logs_dir()
    logs.mkdir(parents=True, exist_ok=True)
    with read_only(logs):
        done = run_cli("run", "nightly")
    assert done.returncode == 1, done.stderr
    assert f"could not write its log under {logs} (read-only" in done.stderr, done.stderr


def test_a_scheduled_directory_dump_takes_the_jobs_the_same_dump_by_hand_takes(sandbox, home, small_db, tmp_path):
    """A schedule saved without --jobs ran every directory dump with one worker (jobs = 1 written
    as the default), where `pgbackup-tui dump --format directory` by hand used every core."""
    import re

    from pgbackup_tui.core.defaults import usable_cores

    configure(sandbox)
    added = run_cli("schedule", "add", "nightly", "--server", SERVER, "--cron", "0 1 * * *", "--db", small_db,
                    "--format", "directory")
    assert added.returncode == 0, added.stderr
    assert "jobs" not in load_config().schedules["nightly"].to_toml()  # nothing fixed: chosen at each run
    done, report = run("nightly")
    assert done.returncode == 0, done.stderr
    by_hand = run_cli("dump", "--server", SERVER, "--db", small_db, "--format", "directory",
                      "--output", str(tmp_path / "by_hand"))
    assert by_hand.returncode == 0, by_hand.stderr
    by_hand_job = next(j for j in json.loads(run_cli("jobs", "list", "--json").stdout)
                       if j["output_path"] == str(tmp_path / "by_hand"))

    def pg_dump_jobs(log: Path) -> list[str]:
        line = next(line for line in log.read_text().splitlines() if "pg_dump' " in line or "/pg_dump " in line)
        return re.findall(r"--jobs=\d+", line)

    scheduled_jobs = pg_dump_jobs(Path(report["log_path"]))
    assert scheduled_jobs == pg_dump_jobs(Path(by_hand_job["log_path"]))
    if usable_cores() > 1:  # as on CI's two cores: more than one worker, as by hand
        assert scheduled_jobs and scheduled_jobs != ["--jobs=1"], scheduled_jobs


def test_a_notification_named_twice_is_one_however_the_schedule_is_made() -> None:
    """The CLI saved `--notify ops --notify ops` once, but the TUI's form ("ops, ops", through
    dataclasses.replace) and config.toml by hand kept both, and a failure paged twice (review)."""
    from dataclasses import replace

    base = Schedule(name="n", server="s", cron="0 3 * * *", database="d")
    assert replace(base, notify=("ops", "pager", "ops")).notify == ("ops", "pager")
    assert Schedule(**{**base.__dict__, "notify": ("ops", "ops")}).notify == ("ops",)


def test_a_scheduled_set_s_verify_is_recorded_on_its_members_too(sandbox, home, small_db):
    """A set's verify covers each member as a backup of its own; a schedule recorded it on the set
    alone, so its members listed `complete` under a `verified` set (QA), as the CLI's verify did."""
    configure(sandbox, Schedule(name="sets", server=SERVER, cron="0 3 * * *", what="set",
                                databases=(small_db,), verify=True))
    done, report = run("sets")
    assert done.returncode == 0 and report["checks"] == ["verified"], done.stderr
    folder = Path(report["backup_path"])
    members = json.loads(Path(f"{folder}.manifest.json").read_text())["members"]
    assert [m["database"] for m in members] == [small_db]
    own = json.loads((folder / members[0]["file"]).with_name(f"{members[0]['file']}.manifest.json").read_text())
    assert [(c["kind"], c["ok"]) for c in own["verifications"]] == [("verify", True)]
