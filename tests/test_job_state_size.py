"""A finished job's state.json keeps what the fronts show, not the manifest that lies beside the
archive (issue 15, point 3: megabytes for 10,000 tables, written synced and parsed by every front)."""

from __future__ import annotations

import json

from cliutil import run_cli
from pgbackup_tui.core import job_store
from pgbackup_tui.core.manifest import manifest_path

SAMPLE_DB = "shop"  # what the session fixture in conftest.py loads


def test_a_dump_s_final_state_leaves_its_manifest_and_tables_to_the_manifest_file(sandbox, home, tmp_path):
    out = tmp_path / "orders.dump"
    result = run_cli("dump", "--dsn", sandbox.dsn(), "--db", SAMPLE_DB, "--table", "inventory.stock",
                     "--progress", "none", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "added" in result.stderr  # what a selection brought along: still said by the front
    (record,) = [r for r in job_store.list_jobs() if r.spec.get("kind") == "dump"]
    state = json.loads((record.folder / job_store.STATE).read_text())
    details = state["details"]
    assert "manifest" not in details and "tables" not in details, sorted(details)
    assert details["added"], details  # what the fronts show stays
    manifest = json.loads(manifest_path(out).read_text())
    assert [t["name"] for t in manifest["tables"]] == ["inventory.stock"]
