"""Pilot tests at 80×24 of the whole-server dialogs (back up the server, restore a cluster set):
what they say before Start is in the dialog's own words, never a CLI flag the TUI has not.

- "Databases at a time" at 0 said "--jobs must be 1 or more".
"""

from __future__ import annotations

from textual.widgets import Button, Input, Static

from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.dumpall import DumpallJob
from pgbackup_tui.core.cluster_plans import DumpallPlan
from pgbackup_tui.core.jobs import JobState
from pgbackup_tui.ui.screens.cluster_restore_dialog import ClusterRestoreDialog
from pgbackup_tui.ui.screens.dumpall_dialog import CLUSTER_SET, DumpallDialog

from test_ui_jobs import DialogHost
from uiutil import settle

SIZE = (80, 24)


def problem_of(dialog, prefix: str) -> str:
    line = dialog.query_one(f"#{prefix}-error", Static)
    return str(line.content) if line.display else ""


async def test_databases_at_a_time_of_0_restoring_a_set_is_said_in_the_dialog_s_words(sandbox, home, empty_db):
    target = target_from_dsn(sandbox.dsn(), label="sandbox")
    made = await DumpallJob(DumpallPlan(target=target, set_format="custom", databases=(empty_db,))).run()
    assert made.state == JobState.SUCCEEDED, made.message
    dialog = ClusterRestoreDialog(made.output_path, {"sandbox": target}, [empty_db], "sandbox")
    app = DialogHost(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        dialog.query_one("#cluster-jobs", Input).value = "0"
        await settle(pilot)
        assert problem_of(dialog, "cluster") == "Databases at a time: 1 or more"
        assert dialog.query_one("#cluster-start", Button).disabled


async def test_databases_at_a_time_of_0_is_said_in_the_dialog_s_words(sandbox, home):
    target = target_from_dsn(sandbox.dsn(), label="sandbox")
    dialog = DumpallDialog(target, CLUSTER_SET)
    app = DialogHost(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        dialog.query_one("#set-jobs", Input).value = "0"
        await settle(pilot)
        assert problem_of(dialog, "dumpall") == "Databases at a time: 1 or more"
        assert dialog.query_one("#dumpall-start", Button).disabled
