"""Pilot test: what a dump's end costs the app while the Jobs tab shows it (issue 15, point 3).

A short dump's CPU is mostly one-off relayouts when it starts and ends; the footer is never
rebuilt for it (its cancel key lights up as it starts and greys out at its end, in place: a repaint,
where a rebuild cost two relayouts) and the hidden Backups tab is not listed again behind its
tab: it is when it shows, with the new backup in it. Real runner and pg_dump.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pgbackup_tui.core.jobs import JobState
from pgbackup_tui.core.plans import DumpPlan
from pgbackup_tui.ui import app as app_module
from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.backup_messages import BackupsListed
from pgbackup_tui.ui.widgets.backups_pane import BackupsPane
from pgbackup_tui.ui.widgets.lean_footer import LeanFooter
from pgbackup_tui.ui.widgets.server_tree import ServerTree

from uiutil import move_to, open_line, settle, socket_profile, wait_until, write_config

SIZE = (120, 40)


class CountingApp(PgBackupApp):
    """The real app; also counts the Backups tab's listings."""

    CSS_PATH = str(Path(app_module.__file__).with_name("app.tcss"))  # relative paths are the subclass's
    listings = 0

    def on_backups_listed(self, message: BackupsListed) -> None:  # PgBackupApp's handler runs too
        self.listings += 1


async def test_a_dump_rebuilds_no_footer_and_the_hidden_backups_tab_lists_it_when_shown(
        sandbox, home):
    write_config(socket_profile(sandbox))
    app = CountingApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tree = app.query_one(ServerTree)
        await open_line(pilot, tree, lambda text: text.split()[0] == "sandbox")
        await move_to(pilot, tree, lambda text: text.removeprefix("[ ] ").split()[0] == "shop")
        await settle(pilot)
        listed = app.listings
        footer = app.query_one(LeanFooter)
        target = app.profiles.target("sandbox")
        assert target is not None
        for first in (True, False):
            before = footer.rebuilds  # taken before the start: a short dump may end before RUNNING is seen
            greyed = footer.greyed_in_place
            count = len(app.jobs)
            app.start_plan("dump", DumpPlan(target=target, dbname="shop"), "a dump of shop")
            await wait_until(lambda count=count: len(app.jobs) > count)
            job = app.jobs[-1]
            await wait_until(lambda job=job: job.state.is_final)
            await settle(pilot)
            await asyncio.sleep(0.5)
            await pilot.pause()
            assert job.state == JobState.SUCCEEDED, job.result
            if first:  # the cancel key appears: before the first job it was hidden (nothing to cancel)
                assert footer.rebuilds - before <= 1
                continue
            # its cancel key lit when the new job is selected, greyed out at its end: in place
            assert footer.rebuilds == before
            assert footer.greyed_in_place - greyed == 2
        assert app.listings == listed  # not behind its tab

        await pilot.press("3")
        pane = app.query_one(BackupsPane)
        written = job.result.output_path
        await wait_until(lambda: any(row.path == written for row in pane.rows))
        assert app.listings == listed + 1
