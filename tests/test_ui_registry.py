"""Pilot test: the app keeps its jobs in one registry (ui/job_registry.py) and handles a job's end
in one place (JobsApp.on_jobs_pane_job_finished), whichever way the job reached the Jobs tab.

A job started the way the CLI starts one is listed by the store scan first; this app then claims it
(the order a slow JobStarted message meets): it must stay one entry, end once, be notified once,
and the quit dialog must count what the Jobs pane shows as running. Real runners and pg_dump; a
table lock keeps a dump running for as long as the test needs (see tests/test_ui_flow.py).
"""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from pathlib import Path

import psycopg
from textual.widgets import DataTable, Static

from pgbackup_tui.core import job_store
from pgbackup_tui.core.job_follow import JobFollower
from pgbackup_tui.core.jobs import JobState
from pgbackup_tui.core.plans import DumpPlan
from pgbackup_tui.core.runner_start import start_job
from pgbackup_tui.ui import app as app_module
from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.messages import JobStarted
from pgbackup_tui.ui.screens.quit_confirm import QuitScreen
from pgbackup_tui.ui.store_scan import SCAN_INTERVAL_S
from pgbackup_tui.ui.widgets.jobs_pane import JobsPane

from uiutil import settle, socket_profile, wait_until, write_config

SIZE = (120, 40)


class RecordingApp(PgBackupApp):
    """The real app; also records every job end it handles and the title of every notification."""

    CSS_PATH = str(Path(app_module.__file__).with_name("app.tcss"))  # relative paths are the subclass's

    def __init__(self) -> None:
        super().__init__()
        self.finished: list[str] = []
        self.notified: list[str] = []

    # Textual calls the handler of every class in the MRO: this one records, JobsApp's still runs.
    def on_jobs_pane_job_finished(self, message: JobsPane.JobFinished) -> None:
        self.finished.append(message.job.id)

    def notify(self, message: str, *, title: str = "", **kwargs) -> None:
        self.notified.append(title)
        super().notify(message, title=title, **kwargs)


@contextmanager
def locked(sandbox, dbname: str, table: str, monkeypatch):
    """Hold an ACCESS EXCLUSIVE lock on `table` until the block ends: pg_dump waits for it."""
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=200")  # our own connections give up; pg_dump waits
    with psycopg.connect(sandbox.dsn(dbname), options="-c lock_timeout=0") as conn:
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield conn
        conn.rollback()


def state_cells(app: PgBackupApp) -> dict[str, str]:
    table = app.jobs_pane.query_one("#jobs-table", DataTable)
    return {str(key.value): str(table.get_cell(key, "state")) for key in table.rows}


async def test_a_job_is_listed_once_ends_once_and_quit_counts_what_the_jobs_pane_shows(
        sandbox, home, monkeypatch, fresh_db_name):
    sandbox.create_database(fresh_db_name)
    sandbox.psql("CREATE TABLE public.held (id int); INSERT INTO public.held VALUES (1)", fresh_db_name)
    write_config(socket_profile(sandbox))
    app = RecordingApp()
    with locked(sandbox, "shop", "inventory.stock", monkeypatch):
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            target = app.profiles.target("sandbox")
            assert target is not None and app.jobs_pane.jobs is app.jobs  # one registry, shared
            app.start_plan("dump", DumpPlan(target=target, dbname="shop"), "held dump")
            await wait_until(lambda: len(app.jobs) == 1 and app.jobs[0].state == JobState.RUNNING)
            held = app.jobs[0]

            with locked(sandbox, fresh_db_name, "public.held", monkeypatch):
                job_id, _folder, process = start_job("dump", DumpPlan(target=target, dbname=fresh_db_name),
                                                     "quick dump")
                await wait_until(lambda: job_id in app.jobs, timeout=SCAN_INTERVAL_S + 10)  # the scan's view
                record = job_store.load(job_id)
                assert record is not None
                app.post_message(JobStarted(JobFollower(record, runner=process)))  # then ours, later
                await wait_until(lambda: app.jobs.is_mine(job_id))
                await pilot.press("3")  # its end out of view: said in a toast (in view, the Jobs tab says it)
            quick = app.jobs.get(job_id)
            assert quick is not None
            await wait_until(lambda: quick.state.is_final, timeout=60)
            await asyncio.sleep(SCAN_INTERVAL_S + 0.5)  # a store scan after its end adds nothing
            await pilot.pause()

            assert quick.state == JobState.SUCCEEDED, quick.result
            assert [job.id for job in app.jobs] == [held.id, job_id]
            assert list(state_cells(app)) == [held.id, job_id]  # the pane shows the registry, once each
            assert app.finished == [job_id]  # its end handled once
            assert app.notified.count("quick dump: succeeded") == 1
            assert process.poll() is not None  # our runner was reaped by the view we kept

            shown_running = [key for key, state in state_cells(app).items() if state in ("queued", "running")]
            assert shown_running == [held.id] == [job.id for job in app.jobs.running(mine=True)]
            await pilot.press("q")
            assert isinstance(app.screen, QuitScreen)
            question = str(app.screen.query_one("#quit-question", Static).content)
            assert question.startswith(f"{len(shown_running)} job still running"), question
            await pilot.press("c")  # cancel it and quit, once its runner has cleaned up
            await wait_until(lambda: not app.is_running, timeout=60)
    assert held.state == JobState.CANCELLED
