"""Pilot tests of the backup dialog's choices (fast, small, custom) and of its compression and jobs
fields, at 80x24, on the real sandbox: what each choice fills in, that the effect shown is the
measured one (core.defaults.presets), that editing a field makes the choice custom, that the
compression field takes METHOD[:LEVEL], and that the preview stays the argv the job runs with;
the restore dialog's empty jobs field (chosen at the start) and its boxes.
"""

from __future__ import annotations

from textual.widgets import Button, Checkbox, Input, Select, Static, TextArea

from pgbackup_tui.core.defaults import MAX_AUTO_JOBS, parallel_jobs, presets, usable_cores
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.jobs import JobState
from pgbackup_tui.core.pgtools import find_client_tools
from pgbackup_tui.core.plans import DumpPlan, RestorePlan
from pgbackup_tui.ui.screens.backup_dialog import BackupDialog
from pgbackup_tui.ui.screens.restore_dialog import RestoreDialog
from pgbackup_tui.ui.widgets.option_box import OptionBox
from test_ui_jobs import DialogHost, settle, socket_target, text_of

SIZE = (80, 24)


def preview(dialog: BackupDialog) -> str:
    return dialog.query_one("#command-preview", TextArea).text


def fields(dialog: BackupDialog) -> tuple[str, str, str]:
    return (str(dialog.query_one("#format", Select).value), dialog.query_one("#compress", Input).value,
            dialog.query_one("#jobs", Input).value)


async def test_fast_is_the_default_small_fills_its_compression_and_an_edit_makes_it_custom(sandbox, home):
    tools = find_client_tools(sandbox.major)
    expected = {preset.name: preset for preset in presets(tools)}
    dialog = BackupDialog(socket_target(sandbox), sandbox.major, "shop")
    app = DialogHost(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        choice = dialog.query_one("#preset", Select)
        effect = dialog.query_one("#preset-effect", Static)
        assert choice.value == "fast" and app.focused is choice  # the first thing to decide
        assert text_of(effect) == expected["fast"].effect
        # fast: the measured default, named by the empty field's placeholder and in the command.
        assert fields(dialog) == ("custom", "", "")
        assert dialog.query_one("#compress", Input).placeholder == str(expected["fast"].compress)
        assert f"--compress={expected['fast'].compress}" in preview(dialog)
        assert "--format=c" in preview(dialog)
        # The effect and the Start button are on screen at 80x24.
        assert effect.region.height >= 1 and dialog.query_one("#backup-start", Button).region.height == 1

        choice.value = "small"
        await pilot.pause()
        await pilot.pause()
        assert fields(dialog) == ("custom", str(expected["small"].compress), "")
        assert text_of(effect) == expected["small"].effect
        assert f"--compress={expected['small'].compress}" in preview(dialog)

        # Any edit of format, compression or jobs away from the preset: the choice is custom.
        compress = dialog.query_one("#compress", Input)
        compress.focus()
        await pilot.press("ctrl+u", *"gzip:4")
        await pilot.pause()
        assert choice.value == "custom" and text_of(effect).startswith("pick the format")
        assert ("--compress=4" if tools.major < 16 else "--compress=gzip:4") in preview(dialog)  # 16 knows gzip:N
        assert not dialog.query_one("#backup-start", Button).disabled

        choice.value = "fast"  # back to a preset: its fields again
        await pilot.pause()
        await pilot.pause()
        assert fields(dialog) == ("custom", "", "")
        await pilot.press("enter")
        await pilot.pause()
    plan = app.results[0]
    assert isinstance(plan, DumpPlan)
    assert (plan.format, plan.compress) == ("custom", expected["fast"].compress)


async def test_compression_takes_method_and_level_and_refuses_what_pg_dump_would(sandbox, home):
    tools = find_client_tools(sandbox.major)
    dialog = BackupDialog(socket_target(sandbox), sandbox.major, "shop")
    app = DialogHost(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        compress, error = dialog.query_one("#compress", Input), dialog.query_one("#backup-error", Static)
        start = dialog.query_one("#backup-start", Button)
        compress.focus()
        # As this pg_dump takes them: before 16, a gzip level only ("none" is 0, "gzip:3" is 3).
        before_16 = tools.major < 16
        for typed, argument in (("0", "0"), ("9", "9"), ("none", "0" if before_16 else "none"),
                                ("gzip:3", "3" if before_16 else "gzip:3")):
            await pilot.press("ctrl+u", *typed)
            await pilot.pause()
            assert f"--compress={argument}" in preview(dialog) and not start.disabled, typed
        for typed, said in (("gzip:12", "from 1 to 9"), ("brotli", "unknown method"), ("10", "0 to 9")):
            await pilot.press("ctrl+u", *typed)
            await pilot.pause()
            assert said in text_of(error) and start.disabled, typed
            await pilot.press("enter")
        assert app.results == []
        if sandbox.major < 16:  # lz4 and zstd came to pg_dump in 16: refused before anything runs
            await pilot.press("ctrl+u", *"zstd")
            await pilot.pause()
            assert "cannot compress with zstd" in text_of(error) and start.disabled


async def test_directory_format_previews_the_parallel_jobs_the_job_would_choose(sandbox, home):
    dialog = BackupDialog(socket_target(sandbox), sandbox.major, "shop")
    app = DialogHost(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        dialog.query_one("#format", Select).value = "directory"
        await pilot.pause()
        await pilot.pause()
        assert dialog.query_one("#preset", Select).value == "custom"
        jobs = dialog.query_one("#jobs", Input)
        assert not jobs.disabled and jobs.value == "" and jobs.placeholder == "auto"
        chosen = dialog.build_plan().jobs
        assert chosen is not None and 1 <= chosen <= parallel_jobs(usable_cores(), None)
        assert (f"--jobs={chosen}" in preview(dialog)) == (chosen > 1)
        # A tar dump from a preset that filled the compression: the preset's value goes with it.
        dialog.query_one("#preset", Select).value = "small"
        await pilot.pause()
        await pilot.pause()
        dialog.query_one("#format", Select).value = "tar"
        await pilot.pause()
        await pilot.pause()
        assert fields(dialog)[1] == "" and not dialog.query_one("#backup-start", Button).disabled
        # QA: the empty fields of a tar dump read "Compression 1  Jobs auto": it is neither compressed
        # nor run in parallel. They say what it runs with.
        compress = dialog.query_one("#compress", Input)
        assert (compress.placeholder, jobs.placeholder) == ("none", "1")
        assert compress.disabled and jobs.disabled and "--compress" not in preview(dialog)
        dialog.query_one("#format", Select).value = "custom"
        await pilot.pause()
        await pilot.pause()
        assert compress.placeholder == str(dialog._choices.fast_compress) and jobs.placeholder == "1"
        # A compression typed, then a format that has none: said in the dialog's words, not as
        # "--compress with --format plain" (QA: flags the TUI has not).
        compress.value = "5"  # the user's own (a preset's value goes with the format)
        for fmt in ("plain", "tar"):
            dialog.query_one("#format", Select).value = fmt
            await pilot.pause()
            await pilot.pause()
            said = text_of(dialog.query_one("#backup-error", Static))
            assert said.startswith(f"Compression: a {fmt} dump is not compressed") and "--" not in said, said
            assert dialog.query_one("#backup-start", Button).disabled


async def test_restore_dialog_leaves_jobs_to_the_start_and_says_what_it_will_be(sandbox, home):
    target = socket_target(sandbox)
    dumped = await DumpJob(DumpPlan(target=target, dbname="shop", schema_only=True)).run()
    assert dumped.state == JobState.SUCCEEDED, dumped.message
    dialog = RestoreDialog(dumped.output_path, {"sandbox": target}, "sandbox", None)
    app = DialogHost(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        jobs = dialog.query_one("#jobs", Input)
        assert jobs.value == "" and jobs.placeholder == "auto"
        summary = dialog.query_one("#restore-summary", Static)
        cores = min(usable_cores(), MAX_AUTO_JOBS)
        expected = f"up to {cores} parallel pg_restore jobs" if cores > 1 else "one pg_restore job: one core here"
        assert expected in text_of(summary)
        # The boxes are the backup dialog's: an unchecked one is blank, a checked one has its X.
        single = dialog.query_one("#single-transaction", Checkbox)
        assert isinstance(single, OptionBox)
        assert "X" not in single.render().plain and "X" in dialog.query_one("#create", Checkbox).render().plain
        single.value = True
        await pilot.pause()
        assert "one pg_restore job: --single-transaction is one session" in text_of(summary)
        single.value = False
        jobs.focus()
        await pilot.press("3")
        await pilot.pause()
        assert "chosen at the start" not in text_of(summary) and "--jobs=3" in text_of(summary)
        await pilot.press("backspace", "enter")
        await pilot.pause()
    plan = app.results[0]
    assert isinstance(plan, RestorePlan) and plan.jobs is None


def test_the_backup_dialog_s_selection_line_keeps_a_name_s_line_break_on_its_line():
    # QA at 80x24: "1 table selected in two" / 'lines: public."t' / 'x"', three lines of the dialog.
    from pgbackup_tui.core.identifiers import QualifiedName
    from pgbackup_tui.ui.dump_choices import describe_selection

    assert describe_selection("two\nlines", (QualifiedName("public", "t\nx"),)) == (
        '1 table selected in two\\nlines: public."t\\nx"')
    assert describe_selection("two\nlines", ()) == "whole database two\\nlines"
