"""SVG snapshots of the main screen and its own dialogs at 80×24 (`--snapshot-update` to accept).

Only what is the same on every run is in the picture: servers that fail the same way without a
network (a closed port on 127.0.0.1, a socket directory that does not exist), a fixed app home,
no clock. Real data (sizes, database lists) changes with autovacuum and with other tests, so
browsing real data is covered by the Pilot tests instead.
"""

from __future__ import annotations

import shutil
from types import SimpleNamespace
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input

from pgbackup_tui.core.server_profile import ServerProfile
from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core import jobs as jobs_module
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.plans import DumpPlan
from pgbackup_tui.core.pgtools import CLIENT_DIRS_ENV
from pgbackup_tui.ui.screens.backup_dialog import BackupDialog
from pgbackup_tui.ui.screens.quit_confirm import QuitScreen
from pgbackup_tui.ui.widgets.jobs_pane import JobsPane
from pgbackup_tui.ui.app import PgBackupApp

from uiutil import write_config

SIZE = (80, 24)
FIXED_HOME = Path("/tmp/pgbackup-tui-snapshot-home")  # its path is on screen in the config error
# The major of the fake client tools the backup dialog is shown with: the installed ones differ
# between machines (Debian's 15 at /usr/lib/postgresql, or the wheels' 17 and 18 in the venv) in
# their path and in the compression methods they have, both on screen.
FAKE_CLIENT_MAJOR = 15


@pytest.fixture
def fixed_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    shutil.rmtree(FIXED_HOME, ignore_errors=True)
    FIXED_HOME.mkdir(mode=0o700)
    monkeypatch.setenv("PGBACKUP_TUI_HOME", str(FIXED_HOME))
    yield FIXED_HOME
    shutil.rmtree(FIXED_HOME, ignore_errors=True)


def failing_servers() -> None:
    write_config(
        ServerProfile(name="prod-eu", host="127.0.0.1", port=1, user="postgres"),
        ServerProfile(name="staging", host="/nonexistent/pgbackup-socket", port=5432, user="app", dbname="shop"),
    )


def fake_client_dir(folder: Path, major: int) -> Path:
    """A bin dir of client tools that only answer --version (as `major`.0). The dialog runs nothing
    else before 16: lz4 and zstd are known absent below it without asking pg_dump."""
    folder.mkdir(parents=True)
    for tool in ("pg_dump", "pg_restore", "pg_dumpall", "psql"):
        script = folder / tool
        script.write_text(f"#!/bin/sh\necho '{tool} (PostgreSQL) {major}.0'\n")
        script.chmod(0o755)
    return folder


async def settled(pilot: Pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_main_screen_with_servers_that_fail(snap_compare, fixed_home):
    failing_servers()

    async def run_before(pilot: Pilot) -> None:
        await settled(pilot)
        await pilot.press("home")
        await pilot.pause()

    assert snap_compare(PgBackupApp(), terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare, fixed_home):
    failing_servers()
    assert snap_compare(PgBackupApp(), terminal_size=SIZE, press=["question_mark"],
                        run_before=settled)


def test_server_form_after_a_failed_test(snap_compare, fixed_home):
    async def run_before(pilot: Pilot) -> None:
        await pilot.press("a")
        form = pilot.app.screen
        form.query_one("#server-name", Input).value = "prod-eu"
        form.query_one("#server-host", Input).value = "127.0.0.1"
        form.query_one("#server-port", Input).value = "1"
        form.query_one("#server-user", Input).value = "postgres"
        await pilot.press("ctrl+t")
        await settled(pilot)

    assert snap_compare(PgBackupApp(), terminal_size=SIZE, run_before=run_before)


def test_malformed_config(snap_compare, fixed_home):
    (fixed_home / "config.toml").write_text('[servers.prod]\nport = "5432\n')
    assert snap_compare(PgBackupApp(), terminal_size=SIZE, run_before=settled)


class DialogHost(App[None]):
    """A bare app that opens one dialog: the picture is the dialog, nothing else that varies."""

    def __init__(self, dialog) -> None:
        super().__init__()
        self.dialog = dialog

    def on_mount(self) -> None:
        self.push_screen(self.dialog)


def test_backup_dialog_shows_the_exact_command(snap_compare, fixed_home, monkeypatch):
    """A whole-database backup of `shop` on a named server: options and the exact pg_dump command
    (no password in it). The server is never contacted for a whole database, so the picture does
    not depend on one; the file name's timestamp is fixed, and so are the client tools (fakes at a
    fixed path, the only ones the dialog may pick)."""
    monkeypatch.setenv(CLIENT_DIRS_ENV, str(fake_client_dir(fixed_home / "bin", FAKE_CLIENT_MAJOR)))
    target = target_from_dsn("host=db1.example port=5432 user=app", label="prod").with_password("s3cret")
    dialog = BackupDialog(target, FAKE_CLIENT_MAJOR, "shop", stamp="20260101T000000Z")

    async def run_before(pilot: Pilot) -> None:
        await settled(pilot)
        assert "s3cret" not in pilot.app.export_screenshot()

    assert snap_compare(DialogHost(dialog), terminal_size=SIZE, run_before=run_before)


def test_quit_with_jobs_running(snap_compare, fixed_home):
    """Quitting while two jobs run: they go on in the background, or `c` cancels them first."""
    assert snap_compare(DialogHost(QuitScreen(2)), terminal_size=SIZE, run_before=settled)


class JobsHost(App[None]):
    """The Jobs pane alone, running one job to its end."""

    def __init__(self, job) -> None:
        super().__init__()
        self.job = job

    def compose(self):
        yield JobsPane()

    def on_mount(self) -> None:
        self.query_one(JobsPane).add_job(self.job)
        self.run_worker(self.job.run(), exit_on_error=False)


def test_finished_job_with_its_error(snap_compare, fixed_home, monkeypatch):
    """A dump that failed (nobody listens on the port): state, the one-line reason in the error
    colour, and the log. The log's name carries a time and a random id: both are pinned, and so is
    the job's clock (a busy machine took 2 s to fail, and the elapsed column said so)."""
    monkeypatch.setattr(jobs_module, "utc_stamp", lambda now=None: "20260101T000000Z")
    monkeypatch.setattr(jobs_module, "time", SimpleNamespace(time=lambda: 1_767_225_600.0))
    target = target_from_dsn("host=127.0.0.1 port=1 user=app", label="prod")
    job = DumpJob(DumpPlan(target=target, dbname="shop"))
    job.id = "0badc0de"

    async def run_before(pilot: Pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.3)
        assert job.state.value == "failed"

    assert snap_compare(JobsHost(job), terminal_size=SIZE, run_before=run_before)
