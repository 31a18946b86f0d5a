"""Pilot tests of the toasts a job's end raises at 80x24 (ui/toasts.py).

QA: toasts covered a large part of an 80x24 screen for 20 s and more, several stacked: a dump's
result (the backup's whole path) over four or five lines, for 10 s; a failure's for 20 s. Now a
toast for an information stays a few seconds, is a title and at most two lines, at most two are
stacked at 24 rows; a job's end whose result the Jobs tab shows already raises none.

Real runners and pg_dump; the dumps wait for an ACCESS EXCLUSIVE lock the test holds, so that they
end when the test says (as in test_ui_store.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from textual.notifications import Notification, Notify
from textual.widgets._toast import Toast

from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.jobs import JobState
from pgbackup_tui.core.plans import DumpPlan
from pgbackup_tui.ui import app as app_module
from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.screens.backup_dialog import BackupDialog
from pgbackup_tui.ui.toasts import TIMEOUT_S, ToastsApp, cut_to_lines

from uiutil import settle, socket_profile, wait_until, write_config

SIZE = (80, 24)


@contextmanager
def table_lock(sandbox, monkeypatch) -> Iterator[psycopg.Connection]:
    """An ACCESS EXCLUSIVE lock on inventory.stock in shop: a dump of shop waits until the block ends."""
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=200")  # only pg_dump waits (it sets its own)
    with psycopg.connect(sandbox.dsn("shop"), options="-c lock_timeout=0") as conn:
        conn.execute("LOCK TABLE inventory.stock IN ACCESS EXCLUSIVE MODE")
        yield conn
        conn.rollback()


async def start_dumps(app: PgBackupApp, count: int) -> None:
    target = app.profiles.target("sandbox")
    assert target is not None
    for n in range(count):
        app.start_plan("dump", DumpPlan(target=target, dbname="shop"), f"dump {n} of shop")
    await wait_until(lambda: len(app.jobs) == count and all(job.state == JobState.RUNNING for job in app.jobs))


class RecordingApp(PgBackupApp):
    """The real app; also keeps every notification raised (a toast of 4 s may be gone when the
    test looks: the dumps end when the machine lets them)."""

    CSS_PATH = str(Path(app_module.__file__).with_name("app.tcss"))  # relative paths are the subclass's

    def __init__(self) -> None:
        super().__init__()
        self.raised: list[Notification] = []

    # Textual calls the handler of every class in the MRO: this one records, ToastsApp's still runs.
    def on_notify(self, event: Notify) -> None:
        self.raised.append(event.notification)


async def test_three_dumps_ending_out_of_view_raise_short_toasts_two_at_most_at_80x24(sandbox, home, monkeypatch):
    write_config(socket_profile(sandbox))
    app = RecordingApp()
    async with app.run_test(size=SIZE, notifications=True) as pilot:  # the toasts drawn too
        await settle(pilot)
        with table_lock(sandbox, monkeypatch):
            await start_dumps(app, 3)
            await pilot.press("3")  # the Backups tab: the jobs' results are not on screen
        stacked, tallest = 0, 0

        def ended() -> bool:
            nonlocal stacked, tallest
            toasts = list(app.screen.query(Toast))
            # The toasts shown: a Toast pushed out leaves the DOM a moment after the new one is in.
            stacked = max(stacked, len(list(app._notifications)))
            tallest = max([tallest, *(toast.outer_size.height for toast in toasts)])
            return all(job.state.is_final for job in app.jobs) and len(app.raised) == 3

        await wait_until(ended)
        await pilot.pause(0.3)
        ended()

        assert all(job.state == JobState.SUCCEEDED for job in app.jobs)
        assert 1 <= stacked <= 2  # three raised: the third pushes the oldest out if it is still there
        assert 0 < tallest <= 3  # the title and two lines
        assert all(toast.outer_size.width <= SIZE[0] // 2 for toast in app.screen.query(Toast))
        by_title = {notification.title: notification for notification in app.raised}
        assert set(by_title) == {f"{job.title}: succeeded" for job in app.jobs}
        for job in app.jobs:
            notification = by_title[f"{job.title}: succeeded"]
            assert notification.severity == "information" and notification.timeout <= 5
            # The backup named by its file's name, not its whole path (too long for two lines: the
            # Jobs tab shows it), then its size and time, not cut.
            assert job.result is not None and job.result.output_path is not None
            assert len(job.result.message) > 80  # more than two lines' worth
            assert len(notification.message.splitlines()) <= 2
            assert notification.message.startswith(job.result.output_path.name)
            assert notification.message.endswith("s)") and "…" not in notification.message


async def test_a_third_toast_pushes_out_the_oldest_information_first():
    app = ToastsApp()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        app.notify("the first error", severity="error")
        app.notify("an information")
        app.notify("the second error", severity="error")
        await pilot.pause()
        assert [n.message for n in app._notifications] == ["the first error", "the second error"]
        assert len(app.screen.query(Toast)) == 2
        assert [n.timeout for n in app._notifications] == [TIMEOUT_S["error"]] * 2


async def test_a_job_whose_result_the_jobs_tab_shows_raises_no_toast(sandbox, home, monkeypatch):
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        with table_lock(sandbox, monkeypatch):
            await start_dumps(app, 1)
        job = app.jobs[0]
        await wait_until(lambda: job.state.is_final)
        await pilot.pause(0.3)
        assert job.state == JobState.SUCCEEDED
        assert app.jobs_pane.selected_job() is job  # the Jobs tab shows it, and its result line
        assert list(app._notifications) == []


async def test_a_cancelled_job_ending_out_of_view_is_one_line_for_a_few_seconds(sandbox, home, monkeypatch):
    write_config(socket_profile(sandbox))
    app = PgBackupApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        with table_lock(sandbox, monkeypatch):
            await start_dumps(app, 1)
            await pilot.press("3")
            job = app.jobs[0]
            job.cancel()  # as `c` does once asked (test_ui_flow.py)
            await wait_until(lambda: job.state.is_final)
        await pilot.pause(0.3)
        assert job.state == JobState.CANCELLED
        [told] = list(app._notifications)
        assert (told.severity, told.title, told.message) == ("warning", "", "dump 0 of shop: cancelled")  # said once
        assert told.timeout <= 10


def test_a_long_message_is_cut_to_its_first_lines_with_an_ellipsis():
    path = "/home/dba/.local/share/pgbackup-tui/backups/prod/shop/20260101T000000Z.dump (1.6 MB in 1.0s)"
    assert cut_to_lines(path, 37, 2) == f"{path[:37]}\n{path[37:73]}…"
    assert cut_to_lines("dumped shop", 37, 2) == "dumped shop"
    assert cut_to_lines("one\ntwo\nthree", 37, 2) == "one\ntwo…"


async def test_a_toast_over_a_dialog_leaves_its_buttons_in_view(sandbox, home):
    # QA at 80x24: a job ending while the backup dialog was open raised its toast at the bottom right,
    # over the dialog's Start and Cancel. On a dialog toasts go to the top right.
    app = PgBackupApp()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        app.push_screen(BackupDialog(target_from_dsn(sandbox.dsn("postgres"), label="sandbox"), sandbox.major, "shop"))
        await settle(pilot)
        app.notify("20261205T004801Z.dump (1.1 kB in 0.5s)", title="dump shop on sandbox: succeeded", lines=2)
        await wait_until(lambda: any(toast.region.height for toast in app.screen.query(Toast)))  # laid out
        toasts = [toast.region for toast in app.screen.query(Toast)]
        for button in ("#backup-start", "#backup-cancel"):
            region = app.screen.query_one(button).region
            assert region.height and not any(toast.overlaps(region) for toast in toasts), (button, region, toasts)
