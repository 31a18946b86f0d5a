"""`--progress jsonl`: stdout is JSON lines only, and the last `done` snapshot adds up.

On a database nobody has analyzed yet (reltuples -1, as after a fresh load or restore), where a
quick table is over before the progress view sees it: its rows must still be counted. And the
job's warnings, which --progress none and jsonl do not show as the log goes, are said at its end.
"""

from __future__ import annotations

import json
from pathlib import Path

from cliutil import run_cli
from pgbackup_tui.core.config import load_config, save_config
from pgbackup_tui.core.schedules import Schedule
from pgbackup_tui.core.server_profile import ServerProfile

ROWS = {"big": 30_000, "small": 777, "tiny": 2}


def json_lines(stdout: str) -> list[dict]:
    lines = stdout.splitlines()
    assert lines
    return [json.loads(line) for line in lines]  # any non-JSON line (a bare path) fails here


def check_done(objects: list[dict], rows: int) -> dict:
    finished = objects[-1]
    assert finished["event"] == "finished" and finished["exit_code"] == 0
    done = objects[-2]
    assert done["event"] == "progress" and done["phase"] == "done" and done["percent"] == 100
    assert done["bytes_done"] == done["bytes_total"] > 0
    assert done["tables_done"] == done["tables_total"] == len(ROWS)
    assert done["rows_done"] == rows
    return finished


def test_jsonl_dump_and_restore_of_a_never_analyzed_database(sandbox, home, empty_db, fresh_db_name, tmp_path):
    for name, count in ROWS.items():
        sandbox.psql(f"CREATE TABLE {name} (id int, note text) WITH (autovacuum_enabled = off); "
                     f"INSERT INTO {name} SELECT g, md5(g::text) FROM generate_series(1, {count}) g", empty_db)
    assert sandbox.psql("SELECT min(reltuples) FROM pg_class WHERE relname = 'tiny'", empty_db).strip() == "-1"
    total = sum(ROWS.values())
    for fmt, extra in (("custom", []), ("directory", ["--jobs", "2"])):
        out = tmp_path / f"never.{fmt}"
        dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", empty_db, "--format", fmt, *extra,
                         "--output", str(out), "--progress", "jsonl")
        assert dumped.returncode == 0, dumped.stderr
        finished = check_done(json_lines(dumped.stdout), total)
        assert finished["path"] == str(out) and Path(finished["path"]).exists()
        manifest = json.loads(Path(f"{out}.manifest.json").read_text())
        assert {t["name"]: t["rows"] for t in manifest["tables"]} == {f"public.{n}": c for n, c in ROWS.items()}

        target = f"{fresh_db_name}_{fmt[0]}"
        # A dry run's lines were printed on stdout after `finished`: no longer JSON lines only (QA).
        dry = run_cli("restore", str(out), "--dsn", sandbox.dsn(), "--db", target, "--create", "--dry-run",
                      "--progress", "jsonl")
        assert dry.returncode == 0, dry.stderr
        finished = json_lines(dry.stdout)[-1]
        assert finished["event"] == "finished" and any(f"create database '{target}'" in line
                                                       for line in finished["dry_run"]), finished
        try:
            restored = run_cli("restore", str(out), "--dsn", sandbox.dsn(), "--db", target, "--create",
                               "--progress", "jsonl")
            assert restored.returncode == 0, restored.stderr
            check_done(json_lines(restored.stdout), total)
        finally:
            sandbox.drop_database(target)


def test_a_warning_the_job_logs_is_on_stderr_in_every_progress_mode(sandbox, home, tmp_path):
    """A profile's bin_dir passed over for another pg_dump was said only in the job's log (and by
    --progress plain): nothing on stderr with --progress none (cron's), nor in jsonl's `finished`."""
    stale = tmp_path / "old-bin"  # the profile's bin_dir, emptied by an upgrade: passed over, not fatal
    stale.mkdir()
    config = load_config()
    config.servers["stale"] = ServerProfile(name="stale", dsn=sandbox.dsn(), bin_dir=str(stale))
    config.schedules["nightly"] = Schedule(name="nightly", server="stale", cron="0 3 * * *", database="shop",
                                           schema_only=True)
    save_config(config)
    warning = f"pgbackup-tui: warning: the bin dir {stale} holds no client tools: using "
    for mode in ("none", "jsonl"):
        done = run_cli("dump", "--server", "stale", "--db", "shop", "--schema-only", "--progress", mode,
                       "--output", str(tmp_path / f"{mode}.dump"))
        assert done.returncode == 0, done.stderr
        said = [line for line in done.stderr.splitlines() if line.startswith(warning)]
        assert len(said) == 1, done.stderr
        if mode == "jsonl":
            finished = json_lines(done.stdout)[-1]
            assert any(line == said[0].removeprefix("pgbackup-tui: warning: ") for line in finished["warnings"])
    run = run_cli("run", "nightly")  # cron's: stdout dropped, stderr mailed
    assert run.returncode == 0, run.stderr
    assert [line for line in run.stderr.splitlines() if line.startswith(warning)], run.stderr
