"""Pilot tests at 80×24 of the whole-server dialogs (back up the server, restore a cluster set):
what they say before Start is in the dialog's own words, never a CLI flag the TUI has not.

- "Databases at a time" at 0 said "--jobs must be 1 or more".
- A set restored onto a server that holds one of its databases, not empty, failed as a job saying
  "leave it out with --exclude-db shop"; the dialog says so before Start now ("untick it").
- A whole-cluster file onto a server that has one of its databases failed as a job saying "back the
  cluster up as a set (dumpall --set)"; the dialog says it before Start, naming the TUI's key.
- A file or set of a newer pg_dumpall than the server failed saying "add --allow-older-server": the
  dialog says it before Start and offers "allow older server".
"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Button, Input, Select, SelectionList, Static

import pgbackup_tui.ui

from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.dumpall import DumpallJob
from pgbackup_tui.core.cluster_plans import DumpallPlan
from pgbackup_tui.core.identifiers import one_line
from pgbackup_tui.core.jobs import JobState
from pgbackup_tui.ui.screens.cluster_restore_dialog import ClusterRestoreDialog
from pgbackup_tui.ui.screens.dumpall_dialog import CLUSTER_SET, DumpallDialog
from pgbackup_tui.ui.widgets.option_box import OptionBox

from test_ui_jobs import DialogHost
from uiutil import settle, wait_until

SIZE = (80, 24)


def problem_of(dialog, prefix: str) -> str:
    line = dialog.query_one(f"#{prefix}-error", Static)
    return str(line.content) if line.display else ""


def test_the_databases_at_a_time_field_is_written_once():
    """Its label and its "1 or more" were written in both dialogs that have it (QA): one widget
    module has them now, and the dialogs (the tests below) read as before."""
    ui = Path(pgbackup_tui.ui.__file__).parent
    holders = sorted(str(path.relative_to(ui)) for path in ui.rglob("*.py")
                     if "Databases at a time" in path.read_text())
    assert holders == ["widgets/databases_at_a_time.py"], holders


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


async def test_a_set_member_the_server_holds_already_is_said_before_start(sandbox, home, empty_db):
    target = target_from_dsn(sandbox.dsn(), label="sandbox")
    made = await DumpallJob(DumpallPlan(target=target, set_format="custom", databases=("shop", empty_db))).run()
    assert made.state == JobState.SUCCEEDED, made.message
    dialog = ClusterRestoreDialog(made.output_path, {"sandbox": target}, ["shop", empty_db])
    app = DialogHost(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        dialog.query_one("#cluster-server", Select).value = "sandbox"
        start = dialog.query_one("#cluster-start", Button)
        await wait_until(lambda: "not empty" in problem_of(dialog, "cluster"), timeout=30)
        problem = problem_of(dialog, "cluster")
        assert problem.startswith("database 'shop' on sandbox is not empty (") and "untick it" in problem, problem
        assert "--" not in problem and start.disabled
        dialog.query_one("#cluster-jobs", Input).value = "0"
        await settle(pilot)
        assert problem_of(dialog, "cluster") == "Databases at a time: 1 or more"
        dialog.query_one("#cluster-jobs", Input).value = "1"
        summary = str(dialog.query_one("#cluster-summary", Static).content)
        assert f"then into the existing shop, {empty_db} on sandbox (no --create)" in summary, summary
        dialog.query_one("#cluster-members", SelectionList).deselect("shop")  # the empty one restores into itself
        await settle(pilot)
        assert problem_of(dialog, "cluster") == "" and not start.disabled
        # It exists (empty): restored into, not created; the summary said "1 database(s) with --create".
        summary = str(dialog.query_one("#cluster-summary", Static).content)
        assert "--create" not in summary.replace("(no --create)", ""), summary
        assert f"into the existing {empty_db} on sandbox (no --create)" in summary, summary
        plan = dialog.build_plan()
        assert plan is not None and plan.databases == (empty_db,)


async def test_a_member_dropped_while_the_dialog_is_open_lets_it_start(sandbox, home, fresh_db_name):
    # Review: the server was looked at once per dialog, and after the DBA dropped the database the
    # dialog said to drop, Start stayed off until the dialog was opened again.
    sandbox.create_database(fresh_db_name)
    sandbox.psql("CREATE TABLE kept (id int)", fresh_db_name)
    target = target_from_dsn(sandbox.dsn(), label="sandbox")
    made = await DumpallJob(DumpallPlan(target=target, set_format="custom", databases=(fresh_db_name,))).run()
    assert made.state == JobState.SUCCEEDED, made.message
    dialog = ClusterRestoreDialog(made.output_path, {"sandbox": target}, [fresh_db_name], "sandbox")
    app = DialogHost(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        start = dialog.query_one("#cluster-start", Button)
        await wait_until(lambda: "not empty" in problem_of(dialog, "cluster"), timeout=30)
        assert start.disabled
        sandbox.drop_database(fresh_db_name)  # as the DBA does in another terminal
        await wait_until(lambda: problem_of(dialog, "cluster") == "", timeout=30)
        assert not start.disabled
        assert str(dialog.query_one("#cluster-summary", Static).content) == (
            "globals.sql through psql, then 1 new database(s) with --create on sandbox, 1 at a time")


async def test_a_file_from_a_newer_pg_dumpall_offers_allow_older_server(sandbox, other_sandbox, home):
    # QA: restoring a newer pg_dumpall's file onto an older server failed as a job saying "add
    # --allow-older-server", which the dialog did not offer. It says so before Start now, and offers it.
    older, newer = sorted((sandbox, other_sandbox), key=lambda cluster: cluster.major)
    targets = {name: target_from_dsn(cluster.dsn(), label=name)
               for name, cluster in (("older", older), ("newer", newer))}
    made = await DumpallJob(DumpallPlan(target=targets["newer"], globals_only=True)).run()
    assert made.state == JobState.SUCCEEDED, made.message
    dialog = ClusterRestoreDialog(made.output_path, targets, None, "older")
    app = DialogHost(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        row, start = dialog.query_one("#allow-older-row"), dialog.query_one("#cluster-start", Button)
        await wait_until(lambda: row.has_class("-offered"), timeout=30)
        problem = problem_of(dialog, "cluster")
        assert f"runs {older.major}:" in problem and "“allow older server”" in problem, problem
        assert start.disabled and row.region.height == 1
        dialog.query_one("#allow-older", OptionBox).value = True
        await settle(pilot)
        plan = dialog.build_plan()
        assert not start.disabled and plan is not None and plan.allow_older_server
        dialog.query_one("#cluster-server", Select).value = "newer"  # a server new enough: nothing to allow
        await wait_until(lambda: not row.has_class("-offered"), timeout=30)
        plan = dialog.build_plan()
        assert plan is not None and not plan.allow_older_server


async def test_a_whole_cluster_file_onto_a_server_that_has_its_databases_is_said_before_start(sandbox, home):
    # QA: it failed as a job saying "back the cluster up as a set (dumpall --set)", a CLI command.
    target = target_from_dsn(sandbox.dsn(), label="sandbox")
    made = await DumpallJob(DumpallPlan(target=target)).run()
    assert made.state == JobState.SUCCEEDED, made.message
    dialog = ClusterRestoreDialog(made.output_path, {"sandbox": target}, None, "sandbox")
    app = DialogHost(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: "already exists" in problem_of(dialog, "cluster"), timeout=30)
        problem = problem_of(dialog, "cluster")
        assert "already exists on sandbox" in problem and "as a cluster set (w)" in problem, problem
        assert "--" not in problem and dialog.query_one("#cluster-start", Button).disabled
        await settle(pilot)


async def test_a_member_named_with_a_line_break_is_said_on_one_line(sandbox, home, tmp_path):
    # QA: the summary read "…into the existing postgres, shop, two" and "lines on sandbox…" on the
    # next line, and the problem line broke the same way.
    name = "two\nlines " + tmp_path.name[-6:]
    sandbox.create_database(name)
    try:
        sandbox.psql("CREATE TABLE kept (id int)", name)
        target = target_from_dsn(sandbox.dsn(), label="sandbox")
        dialog = ClusterRestoreDialog(tmp_path / "x.set", {"sandbox": target}, [name], "sandbox")
        app = DialogHost(dialog)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await wait_until(lambda: "not empty" in problem_of(dialog, "cluster"), timeout=30)
            shown = one_line(name)
            assert problem_of(dialog, "cluster").startswith(f"database '{shown}' on sandbox is not empty")
            summary = str(dialog.query_one("#cluster-summary", Static).content)
            assert f"into the existing {shown} on sandbox" in summary and "\n" not in summary, summary
    finally:
        sandbox.drop_database(name)
