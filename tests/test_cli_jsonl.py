"""`--progress jsonl`: stdout is JSON lines only, and the last `done` snapshot adds up.

On a database nobody has analyzed yet (reltuples -1, as after a fresh load or restore), where a
quick table is over before the progress view sees it: its rows must still be counted.
"""

from __future__ import annotations

import json
from pathlib import Path

from cliutil import run_cli

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
        try:
            restored = run_cli("restore", str(out), "--dsn", sandbox.dsn(), "--db", target, "--create",
                               "--progress", "jsonl")
            assert restored.returncode == 0, restored.stderr
            check_done(json_lines(restored.stdout), total)
        finally:
            sandbox.drop_database(target)
