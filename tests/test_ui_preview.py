"""The backup dialog's preview is the command that runs, on screen, after every change (issue 11).

Two things are checked after each change of a field: what the terminal was sent (the preview
used to stay stale on screen until a resize when the number of lines did not change), and that
the previewed argv is the argv DumpJob runs for the plan the dialog returns. The job runs for
real up to the moment it would start pg_dump; there the argv is recorded and pg_dump is not run.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Checkbox, Input, Select, TextArea

from pgbackup_tui.core import dump_output
from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.identifiers import parse_qualified_name
from pgbackup_tui.core.jobs import JobState
from pgbackup_tui.ui.screens import backup_dialog as dialog_module
from pgbackup_tui.ui.screens.backup_dialog import BackupDialog

STAMP = "20260101T000000Z"


class ScreenRecorder(App[None]):
    """Opens the dialog and keeps the text of every update sent to the (headless) terminal."""

    def __init__(self, dialog: BackupDialog) -> None:
        super().__init__()
        self.dialog = dialog
        self.sent: list[str] = []

    def on_mount(self) -> None:
        self.push_screen(self.dialog)

    def _display(self, screen, renderable) -> None:
        if renderable is not None and hasattr(renderable, "render_segments"):
            self.sent.append(renderable.render_segments(self.console))
        super()._display(screen, renderable)


def preview_argv(dialog: BackupDialog) -> list[str]:
    return shlex.split(dialog.query_one("#command-preview", TextArea).text.replace("\\\n", " "))


async def argv_the_job_runs(dialog: BackupDialog, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run DumpJob on the plan Start would return, up to pg_dump; return pg_dump's argv."""
    seen: list[list[str]] = []

    async def record(self, argv, env, **kwargs):
        seen.append(list(argv))
        return 1  # pg_dump "failed": the job cleans its reserved output up

    monkeypatch.setattr(DumpJob, "run_process", record)
    assert dialog.can_start
    job = DumpJob(dialog.build_plan())
    await job.run()
    assert job.state == JobState.FAILED and len(seen) == 1
    return seen[0]


async def test_preview_is_the_argv_that_runs_and_is_on_screen_after_every_change(sandbox, home, monkeypatch):
    monkeypatch.setattr(dialog_module, "utc_stamp", lambda now=None: STAMP)
    monkeypatch.setattr(dump_output, "utc_stamp", lambda now=None: STAMP)
    target = target_from_dsn(sandbox.dsn("postgres"), label="sandbox")
    dialog = BackupDialog(target, sandbox.major, "shop")
    app = ScreenRecorder(dialog)
    # A short folder, so that its --file line is not wrapped on screen.
    elsewhere = Path(tempfile.mkdtemp(prefix="pv")) / "out"

    def set_format(fmt: str):
        def change() -> None:
            dialog.query_one("#format", Select).value = fmt
        return change

    def set_input(widget_id: str, value: str):
        def change() -> None:
            dialog.query_one(widget_id, Input).value = value
        return change

    def toggle(widget_id: str):
        def change() -> None:
            box = dialog.query_one(widget_id, Checkbox)
            box.value = not box.value
        return change

    # Every field of the dialog, each change followed by what must now be on screen.
    steps = [
        (set_format("tar"), "--format=t"),
        (set_format("directory"), "--format=d"),
        (set_input("#compress", "6"), "--compress=6"),
        (set_input("#jobs", "3"), "--jobs=3"),
        (toggle("#schema-only"), "--schema-only"),
        (toggle("#data-only"), "--data-only"),  # unticks schema-only
        (toggle("#no-owner"), "--no-owner"),
        (toggle("#no-privileges"), "--no-privileges"),
        (set_input("#output-folder", str(elsewhere)), f"--file={elsewhere}/shop-{STAMP}.dir.partial"),
        (set_input("#jobs", "1"), None),
        (set_input("#compress", ""), None),
        (set_format("plain"), f"--file={elsewhere}/shop-{STAMP}.sql.partial"),
        (toggle("#data-only"), None),
    ]
    async with app.run_test(size=(110, 40)) as pilot:  # tall enough for the whole command
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert await argv_the_job_runs(dialog, monkeypatch) == preview_argv(dialog)
        for change, on_screen in steps:
            app.sent.clear()
            change()
            await pilot.pause()
            await pilot.pause()
            argv = preview_argv(dialog)
            if on_screen is not None:
                assert on_screen in argv, argv
                assert any(on_screen in update for update in app.sent), f"{on_screen} not sent to the terminal"
            assert await argv_the_job_runs(dialog, monkeypatch) == argv
    assert not list(elsewhere.glob("*")), "the job left its reserved output behind"
    shutil.rmtree(elsewhere.parent, ignore_errors=True)


async def test_a_plain_selection_previews_the_custom_dump_the_job_runs_first(sandbox, home, monkeypatch):
    monkeypatch.setattr(dialog_module, "utc_stamp", lambda now=None: STAMP)
    monkeypatch.setattr(dump_output, "utc_stamp", lambda now=None: STAMP)
    target = target_from_dsn(sandbox.dsn("postgres"), label="sandbox")
    tables = (parse_qualified_name('"Sales & Ops"."Order Items"'),)
    dialog = BackupDialog(target, sandbox.major, "shop", tables)
    app = ScreenRecorder(dialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        dialog.query_one("#format", Select).value = "plain"
        await pilot.pause()
        argv = preview_argv(dialog)
        assert "--format=c" in argv and any(arg.endswith(".sql.selection.dump.partial") for arg in argv)
        assert await argv_the_job_runs(dialog, monkeypatch) == argv
    assert not any(Path(home, "backups").rglob("*.partial"))
