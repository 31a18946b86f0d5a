"""The sandbox cluster and the sample database, checked against the real server."""

from __future__ import annotations

from pgbackup_tui.core.sandbox import SAMPLE_AWKWARD_TABLES, Sandbox


def test_sample_awkward_tables_exist(sandbox: Sandbox) -> None:
    for awkward, decoys in SAMPLE_AWKWARD_TABLES.items():
        for name in [awkward, *decoys]:
            assert sandbox.psql(f"SELECT DISTINCT source_table FROM {name}", "shop").strip() == name
