"""SVG snapshots at 80×24 of the Backups tab (every status but "being written", which needs a live
job; a cluster set with its member, a CSV copy) and of a backup's details screen (`--snapshot-update` to accept).

The catalog is written by hand in a fixed home: manifests with fixed ids and times, files of
fixed content, a fixed mtime on the files without a manifest. The server in the config fails the
same way every run (a closed port), so nothing on screen depends on a cluster, the clock or a
random name.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable

from pgbackup_tui.core.catalog import entry_for
from pgbackup_tui.core.server_profile import ServerProfile
from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.backups_view import entry_row
from pgbackup_tui.ui.screens.backup_details import BackupDetails, summary_lines
from pgbackup_tui.ui.widgets.backups_pane import BackupsPane

from uiutil import write_config

SIZE = (80, 24)
HOME = Path("/tmp/pgbackup-tui-snapshot-backups")
FIXED_MTIME = 1767232800  # 2026-01-01 02:00 UTC
PLAIN = b"--\n-- PostgreSQL database dump\n--\n\nSELECT 1;\n\n--\n-- PostgreSQL database dump complete\n--\n"
OK_VERIFY = {"kind": "verify", "at": "2026-01-03T03:00:00+00:00", "ok": True,
             "checks": ["sha256 of 1 file(s) matches the manifest", "reads to the end"]}


@pytest.fixture
def catalog_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(mode=0o700)
    monkeypatch.setenv("PGBACKUP_TUI_HOME", str(HOME))
    write_config(ServerProfile(name="prod-eu", host="127.0.0.1", port=1, user="postgres"))
    build_catalog(HOME / "backups" / "prod-eu")
    yield HOME
    shutil.rmtree(HOME, ignore_errors=True)


def manifest(backup_id: str, at: str, fmt: str = "custom", **more: Any) -> dict[str, Any]:
    return {"schema_version": 2, "id": backup_id, "kind": "dump", "server": "prod-eu",
            "server_key": {"system_identifier": "7300000000000000001", "host": "127.0.0.1", "port": "1"},
            "server_version": "17.6", "pg_dump_version": "17.6", "database": "shop", "format": fmt,
            "started_at": at, "finished_at": at, **more}


def write(archive: Path, body: bytes | None, data: dict[str, Any] | None) -> None:
    archive.parent.mkdir(parents=True, exist_ok=True)
    if body is not None:
        archive.write_bytes(body)
        os.utime(archive, (FIXED_MTIME, FIXED_MTIME))
    if data is not None:
        archive.with_name(archive.name + ".manifest.json").write_text(json.dumps(data))


def build_catalog(server: Path) -> None:
    shop = server / "shop"
    toc = {"counts": {"TABLE": 3, "INDEX": 4, "SEQUENCE": 2, "FUNCTION": 1},
           "tables": [{"name": "public.customers", "rows": 500, "rows_exact": True},
                      {"name": "public.orders", "rows": 2000, "rows_exact": True},
                      {"name": '"Sales & Ops"."Order Items"', "rows": 6021, "rows_exact": True}]}
    drill = {"kind": "drill", "at": "2026-01-03T04:00:00+00:00", "ok": True,
             "checks": ["restored into pgbackup_drill_0 on prod-eu", "rows of 3 tables match the manifest"]}
    write(shop / "20260103T020000Z.dump", b"PGDMP" + b"\0" * 2043,
          manifest("a1b2c3d4", "2026-01-03T02:00:00+00:00", verifications=[OK_VERIFY, drill], toc=toc))
    write(shop / "20260102T020000Z.sql", PLAIN * 40,
          manifest("b2c3d4e5", "2026-01-02T02:00:00+00:00", "plain", verifications=[OK_VERIFY], toc=toc,
                   selection={"tables": ["public.customers", "public.orders"]}))
    failed = {"kind": "verify", "at": "2026-01-02T03:00:00+00:00", "ok": False,
              "problems": ["20260101T020000Z.dump: sha256 differs from the manifest"]}
    write(shop / "20260101T020000Z.dump", b"PGDMP" + b"\1" * 4091,
          manifest("c3d4e5f6", "2026-01-01T02:00:00+00:00", verifications=[failed]))
    write(shop / "20251230T020000Z.dump", None, manifest("d4e5f6a7", "2025-12-30T02:00:00+00:00"))
    # Cut short since it was verified: its size is not the manifest's, whatever the last check said.
    write(shop / "20251231T020000Z.dump", b"PGDMP" + b"\3" * 1019,
          manifest("a7b8c9d0", "2025-12-31T02:00:00+00:00", bytes=8192, verifications=[OK_VERIFY]))
    write(shop / "dropped-in.sql", PLAIN, None)
    write(shop / "20251229T020000Z.dump.partial", b"PGDMP", None)
    cluster_set = server / "_cluster" / "20260104T020000Z.set"
    write(cluster_set / "shop.dump", b"PGDMP" + b"\2" * 1019,
          manifest("e5f6a7b8", "2026-01-04T02:00:00+00:00", member_of=cluster_set.name))
    write(cluster_set / "globals.sql", b"--\n-- PostgreSQL database cluster dump\n--\n", None)
    write(cluster_set, None, manifest("f6a7b8c9", "2026-01-04T02:00:00+00:00", kind="cluster-set", database=None,
                                      globals="globals.sql", bytes=1065,
                                      members=[{"database": "shop", "file": "shop.dump", "bytes": 1024}]))
    csv_copy = shop / "20260105T020000Z.csv"
    csv_copy.mkdir(parents=True)
    (csv_copy / "manifest.json").write_text(json.dumps({
        "kind": "csv", "server": "prod-eu", "database": "shop", "finished_at": "2026-01-05T02:00:00+00:00",
        "tables": [{"qualified": "public.orders", "file": "public.orders.csv", "rows": 2000}],
        "files": {"public.orders.csv": {"bytes": 81234, "rows": 2000}}}))
    (csv_copy / "schema.sql").write_bytes(PLAIN)


async def settled(pilot: Pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_backups_tab_with_every_status(snap_compare, catalog_home):
    async def run_before(pilot: Pilot) -> None:
        await settled(pilot)
        await pilot.press("home")  # the server node: its backups, every database, sets and CSV copies
        await pilot.press("3")
        await settled(pilot)
        pane = pilot.app.query_one(BackupsPane)
        assert {row.status for row in pane.rows} == {"drilled", "verified", "failed verification", "missing",
                                                    "foreign", "incomplete", "complete", "csv", "changed"}
        pane.query_one(DataTable).focus()
        await pilot.pause()

    assert snap_compare(PgBackupApp(), terminal_size=SIZE, run_before=run_before)


class DetailsHost(App[None]):
    def __init__(self, screen: BackupDetails) -> None:
        super().__init__()
        self.details = screen

    def on_mount(self) -> None:
        self.push_screen(self.details)


def test_details_of_a_verified_backup(snap_compare, catalog_home):
    """A plain dump: its contents are the manifest's (no pg_restore --list to run)."""
    entry = entry_for(catalog_home / "backups" / "prod-eu" / "shop" / "20260102T020000Z.sql")
    assert entry is not None
    assert snap_compare(DetailsHost(BackupDetails(entry_row(entry))), terminal_size=SIZE, run_before=settled)


def test_details_say_what_a_set_roles_or_an_adopted_archive_are_of(catalog_home):
    # QA: the details' source line read "(all databases) on prod-eu" for a set of shop alone and for
    # roles alone, and "shop on  (PostgreSQL …)" for an archive adopted from an unknown server.
    folder = catalog_home / "backups" / "prod-eu"
    roles = folder / "_globals" / "20260106T020000Z.sql"
    write(roles, b"--\n-- PostgreSQL database cluster dump\n--\n",
          manifest("a0b0c0d0", "2026-01-06T02:00:00+00:00", "plain", kind="dumpall", database=None, what="roles",
                   roles_only=True, databases=[]))
    # Review: a pg_dumpall file adopted before its databases were recorded is of all of them, not of none.
    unrecorded = catalog_home / "cluster-elsewhere.sql"
    write(unrecorded, b"--\n-- PostgreSQL database cluster dump\n--\n",
          manifest("a2a2a2a2", "2026-01-06T03:00:00+00:00", "plain", kind="dumpall", database=None))
    adopted = catalog_home / "elsewhere.dump"
    write(adopted, b"PGDMP" + b"\0" * 2043, {**manifest("a1a1a1a1", "2026-01-07T02:00:00+00:00"), "server": "",
                                              "server_key": {}, "adopted": True})

    def source(path: Path) -> str:
        entry = entry_for(path)
        assert entry is not None
        return next(line for line in summary_lines(entry_row(entry)) if line.startswith("source"))

    assert source(folder / "_cluster" / "20260104T020000Z.set").startswith("source   shop on prod-eu (")
    assert source(roles).startswith("source   no database (roles) on prod-eu (PostgreSQL 17.6, pg_dumpall 17.6)")
    assert source(adopted).startswith("source   shop on an unknown server (adopted) (")
    assert source(unrecorded).startswith("source   every database (not recorded) on prod-eu ("), source(unrecorded)
