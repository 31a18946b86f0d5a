"""Pilot tests of the Jobs tab as a view on the job store: jobs started by the CLI (or anyone)
show up in a running TUI and are followed live; a TUI started later lists them; the list is
bounded and says so.

Real everything: the CLI runs as a user runs it (a subprocess), its job in its own runner. To
have a CLI dump still running while the TUI looks, the test holds an ACCESS EXCLUSIVE lock on a
table that pg_dump waits for (as in test_ui_flow.py).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from textual.widgets import DataTable, Static

from pgbackup_tui.core import job_store
from pgbackup_tui.core.jobs import JobState
from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.store_scan import MAX_SHOWN, SCAN_INTERVAL_S
from pgbackup_tui.ui.widgets.backups_pane import BackupsPane

from cliutil import run_cli
from uiutil import socket_profile, wait_until, write_config

SIZE = (120, 40)


@contextmanager
def table_lock(sandbox, table: str, monkeypatch) -> Iterator[psycopg.Connection]:
    """An ACCESS EXCLUSIVE lock on `table` in shop, held until the block ends or `.rollback()`."""
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=200")  # only pg_dump waits (it sets its own)
    with psycopg.connect(sandbox.dsn("shop"), options="-c lock_timeout=0") as conn:
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield conn
        conn.rollback()


def text_of(app: PgBackupApp, selector: str) -> str:
    return str(app.jobs_pane.query_one(selector, Static).content)


def cell(app: PgBackupApp, job_id: str, column: str) -> str:
    return str(app.jobs_pane.query_one(DataTable).get_cell(job_id, column))


async def test_a_dump_the_cli_starts_shows_up_in_a_running_tui_and_is_followed_to_success(sandbox, home, monkeypatch):
    write_config(socket_profile(sandbox))
    with table_lock(sandbox, "inventory.stock", monkeypatch) as lock:
        app = PgBackupApp()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.5)
            assert len(app.jobs) == 0
            cli = asyncio.create_task(asyncio.to_thread(run_cli, "dump", "--server", "sandbox", "--db", "shop"))
            started = time.monotonic()
            await wait_until(lambda: bool(app.jobs), timeout=SCAN_INTERVAL_S + 10)
            job = app.jobs[0]
            assert time.monotonic() - started < SCAN_INTERVAL_S + 5  # found by the periodic scan
            # pg_dump is running and waiting for the lock: followed live, its log streaming in.
            await wait_until(lambda: job.state == JobState.RUNNING)
            await wait_until(lambda: any(text.startswith("pg_dump:") for text, _ in app.jobs_pane.log_lines(job)))
            await pilot.pause(0.2)
            assert cell(app, job.id, "state") == "running"
            # The target gives way to the figures in a narrow pane (cut with …); the title has it whole.
            assert "shop@sandbox".startswith(cell(app, job.id, "target").removesuffix("…"))
            # The lock it waits for first, then the job (once the progress monitor has seen the wait).
            await wait_until(lambda: text_of(app, "#job-title").startswith("waiting for a lock held by pid"))
            assert "dump shop on sandbox" in text_of(app, "#job-title")
            assert app.jobs_pane.selected_job() is job
            assert app.check_action("cancel_job", ()) is True  # it can be cancelled from here too
            await pilot.press("3")  # the Backups tab lists what it is writing
            backups = app.query_one(BackupsPane)
            await wait_until(lambda: any(row.status == "being written" for row in backups.rows), timeout=10)

            lock.rollback()
            await wait_until(lambda: job.state.is_final, timeout=60)
            await pilot.pause(0.2)
            assert job.state == JobState.SUCCEEDED
            assert cell(app, job.id, "state") == "succeeded"
            assert text_of(app, "#job-result") == job.result.message
            done = await cli
            assert done.returncode == 0, done.stderr
            assert job.result.output_path == Path(done.stdout.strip())
            assert job.result.output_path.is_file()
            assert len(app.jobs) == 1  # followed once, not added again by later scans
            await pilot.pause(SCAN_INTERVAL_S + 0.5)
            assert len(app.jobs) == 1


async def test_a_tui_started_after_a_cli_dump_lists_it_with_its_result_and_log(sandbox, home):
    write_config(socket_profile(sandbox))
    done = run_cli("dump", "--server", "sandbox", "--db", "shop")
    assert done.returncode == 0, done.stderr
    archive = Path(done.stdout.strip())
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: bool(app.jobs))
        await pilot.pause(0.2)
        job = app.jobs[0]
        assert job.state == JobState.SUCCEEDED
        assert job.result is not None and job.result.output_path == archive
        assert app.jobs_pane.selected_job() is job
        assert cell(app, job.id, "state") == "succeeded"
        assert "100%" in cell(app, job.id, "progress")
        assert text_of(app, "#job-title").startswith("dump shop on sandbox — succeeded")
        assert text_of(app, "#job-result") == job.result.message
        lines = [text for text, _ in app.jobs_pane.log_lines(job)]
        assert any(text.startswith("pg_dump: dumping contents of table") for text in lines)
        assert app.check_action("cancel_job", ()) is None  # nothing to cancel


def fake_finished_job(job_id: str, created_at: float) -> None:
    """A finished job as a runner leaves it in the store (no log: the pane must not need one)."""
    spec = {"id": job_id, "kind": "dump", "title": f"dump db{job_id} on old", "server": "old",
            "database": f"db{job_id}", "plan": {}, "created_at": created_at}
    folder, lock_fd = job_store.create_job_dir(job_id, spec)
    os.close(lock_fd)  # no runner: the job is over
    job_store.write_json(folder / job_store.STATE, {
        "state": "succeeded", "created_at": created_at, "started_at": created_at, "finished_at": created_at + 1,
        "exit_code": 0, "message": f"dumped db{job_id}", "owned": []})


async def test_the_jobs_tab_shows_the_newest_jobs_and_says_how_many_it_leaves_out(home):
    now = time.time() - 10_000
    ids = [f"{n:08x}" for n in range(MAX_SHOWN + 3)]
    for n, job_id in enumerate(ids):
        fake_finished_job(job_id, now + n)
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: len(app.jobs) == MAX_SHOWN)
        await pilot.pause(0.2)
        assert [job.id for job in app.jobs] == ids[3:]  # the newest, oldest first (the table: newest first)
        assert app.jobs_pane.selected_job() is app.jobs[-1]
        note = app.jobs_pane.query_one("#jobs-hidden", Static)
        assert note.display
        assert str(note.content) == "3 older jobs not shown (pgbackup-tui jobs list)"

        fake_finished_job("ffffffff", time.time())  # someone else's job, while the TUI runs
        await wait_until(lambda: app.jobs[-1].id == "ffffffff", timeout=SCAN_INTERVAL_S + 10)
        await pilot.pause(0.2)
        assert len(app.jobs) == MAX_SHOWN and app.jobs[0].id == ids[4]
        assert str(note.content) == "4 older jobs not shown (pgbackup-tui jobs list)"
        assert app.jobs_pane.selected_job() is app.jobs[-2]  # a new job does not take the cursor away
        assert app.jobs_pane.query_one(DataTable).row_count == MAX_SHOWN
