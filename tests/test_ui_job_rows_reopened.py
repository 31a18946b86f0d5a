"""Pilot tests of the Jobs table at 80x24 across a restart of the TUI, and of its order.

A finished job's row shows the same figures (percentage, bytes, elapsed) in a TUI opened after it
ended as in the TUI that followed it to its end (QA: reopened, a succeeded dump showed "—" and no
bytes, a cancelled one "cancelled —", although its state.json had them). The rows are newest
first, like `pgbackup-tui jobs list`: a job the CLI starts while the TUI is open is the first row,
in view, even with the table scrolled down to older jobs.

Real everything: the CLI runs as a user runs it (a subprocess), each job in its own runner; the
dump to cancel waits for an ACCESS EXCLUSIVE lock the test holds (as in test_ui_store.py).
"""

from __future__ import annotations

import asyncio
import os
import time

import psycopg
from textual.widgets import DataTable

from pgbackup_tui.core import job_store
from pgbackup_tui.core.formatting import human_bytes
from pgbackup_tui.core.jobs import JobState
from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.store_scan import SCAN_INTERVAL_S

from cliutil import run_cli
from uiutil import socket_profile, wait_until, write_config

SIZE = (80, 24)


def row_texts(app: PgBackupApp, job_id: str) -> dict[str, str]:
    """The row's cells by column (the columns the table has: a narrow pane leaves some out)."""
    table = app.jobs_pane.query_one(DataTable)
    cells = zip(table.ordered_columns, table.get_row(job_id), strict=True)
    return {str(column.key.value): str(cell) for column, cell in cells}


def figures(app: PgBackupApp, job_id: str) -> list[str]:
    """The row's state, progress, bytes and elapsed (the target's width depends on the figures the
    table has shown so far: a running dump's "1.5 MB / 6.3 MB" narrows it)."""
    row = row_texts(app, job_id)
    return [row[column] for column in ("state", "progress", "bytes", "elapsed")]


def rows_in_order(app: PgBackupApp) -> list[str]:
    table = app.jobs_pane.query_one(DataTable)
    return [row.key.value or "" for row in table.ordered_rows]


def visible_rows(table: DataTable) -> range:
    """The indexes of the rows the table shows (below its header, above any scrollbar)."""
    first = round(table.scroll_y)
    return range(first, first + table.scrollable_content_region.height - table.header_height)


async def test_finished_rows_show_the_same_figures_after_the_tui_is_reopened(sandbox, home, monkeypatch):
    write_config(socket_profile(sandbox))
    live: dict[str, list[str]] = {}
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        # The Jobs tab zoomed (beside the tree, 40 cells leave bytes and elapsed out of the table):
        # its cells as an 80-column screen draws them.
        await pilot.press("2", "z")
        monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=200")  # only pg_dump waits (it sets its own)
        with psycopg.connect(sandbox.dsn("shop"), options="-c lock_timeout=0") as lock:
            lock.execute("LOCK TABLE inventory.stock IN ACCESS EXCLUSIVE MODE")
            blocked = asyncio.create_task(asyncio.to_thread(run_cli, "dump", "--server", "sandbox", "--db", "shop"))
            await wait_until(lambda: bool(app.jobs), timeout=SCAN_INTERVAL_S + 10)
            cancelled = app.jobs[0]
            # Under way, waiting for the lock: its progress monitor has said how far it is.
            await wait_until(lambda: cancelled.progress is not None or cancelled.state.is_final)
            assert cancelled.state == JobState.RUNNING, cancelled.result
            stopped = await asyncio.to_thread(run_cli, "jobs", "cancel", cancelled.id)
            assert stopped.returncode == 0, stopped.stderr
            assert (await blocked).returncode == 130
            lock.rollback()
        monkeypatch.delenv("PGOPTIONS")
        await wait_until(lambda: row_texts(app, cancelled.id)["state"] == "cancelled")  # its end shown
        done = await asyncio.to_thread(run_cli, "dump", "--server", "sandbox", "--db", "shop")
        assert done.returncode == 0, done.stderr
        await wait_until(lambda: len(app.jobs) == 2, timeout=SCAN_INTERVAL_S + 10)
        succeeded = app.jobs[1]
        await wait_until(lambda: row_texts(app, succeeded.id)["state"] == "succeeded")
        await pilot.pause(0.3)
        live = {job.id: figures(app, job.id) for job in app.jobs}
        live_order = rows_in_order(app)

    # As followed to their end: the cancelled one where it stopped, the other whole, with its bytes.
    percent = round(cancelled.progress.percent)
    assert live[cancelled.id][0] == "cancelled" and live[cancelled.id][1].endswith(f"{percent:3d}%")
    assert live[succeeded.id][0] == "succeeded" and live[succeeded.id][1].endswith("100%")
    assert live[succeeded.id][2].endswith(human_bytes(succeeded.result.bytes_written))

    again = PgBackupApp()
    async with again.run_test(size=SIZE) as pilot:
        await pilot.press("2", "z")
        await wait_until(lambda: len(again.jobs) == 2)
        await pilot.pause(0.3)
        assert [job.state for job in again.jobs] == [JobState.CANCELLED, JobState.SUCCEEDED]
        assert {job.id: figures(again, job.id) for job in again.jobs} == live
        assert live_order == rows_in_order(again) == [succeeded.id, cancelled.id]  # newest first
        assert again.jobs_pane.selected_job().id == succeeded.id  # the newest, under the cursor
        assert again.jobs_pane.query_one(DataTable).cursor_row == 0


def finished_job(job_id: str, created_at: float) -> None:
    """A finished job as a runner leaves it in the store (no log: the pane must not need one)."""
    spec = {"id": job_id, "kind": "dump", "title": f"dump db{job_id} on old", "server": "old",
            "database": f"db{job_id}", "plan": {}, "created_at": created_at}
    folder, lock_fd = job_store.create_job_dir(job_id, spec)
    os.close(lock_fd)  # no runner: the job is over
    job_store.write_json(folder / job_store.STATE, {
        "state": "succeeded", "created_at": created_at, "started_at": created_at, "finished_at": created_at + 1,
        "exit_code": 0, "message": f"dumped db{job_id}", "owned": []})


async def test_a_job_the_cli_starts_while_the_tui_is_open_is_the_first_row_in_view(sandbox, home):
    write_config(socket_profile(sandbox))
    older = [f"{n:08x}" for n in range(15)]  # more than the table shows at 80x24
    start = time.time() - 10_000
    for n, job_id in enumerate(older):
        finished_job(job_id, start + n)
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_until(lambda: len(app.jobs) == len(older))
        await pilot.pause(0.2)
        table = app.jobs_pane.query_one(DataTable)
        assert rows_in_order(app) == older[::-1]
        table.focus()
        await pilot.press("ctrl+end")  # the user looks at the oldest jobs, at the bottom
        await pilot.pause(0.2)
        assert table.max_scroll_y > 0 and 0 not in visible_rows(table)

        done = await asyncio.to_thread(run_cli, "dump", "--server", "sandbox", "--db", "shop")
        assert done.returncode == 0, done.stderr
        await wait_until(lambda: len(app.jobs) == len(older) + 1, timeout=SCAN_INTERVAL_S + 10)
        await pilot.pause(0.3)
        new = app.jobs[-1]
        assert new.id not in older
        assert table.get_row_index(new.id) == 0  # newest first
        assert 0 in visible_rows(table)
        assert app.jobs_pane.selected_job().id == older[0]  # the cursor stays on the job it was on
