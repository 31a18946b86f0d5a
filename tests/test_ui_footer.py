"""Pilot test: the footer is rebuilt (a relayout of the screen) only when the keys it shows change
(issue 15, point 3: a job's start cost one rebuild per bindings update, keys changed or not)."""

from __future__ import annotations

from textual.widgets._footer import FooterKey

from pgbackup_tui.ui.app import PgBackupApp
from pgbackup_tui.ui.widgets.lean_footer import LeanFooter

from uiutil import settle


async def test_the_footer_is_rebuilt_only_when_its_keys_change(home) -> None:
    app = PgBackupApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        footer = app.query_one(LeanFooter)
        keys = list(footer.query(FooterKey))
        before = footer.rebuilds
        assert keys, "the footer shows keys"
        for _ in range(3):  # bindings updated, nothing shown changed
            app.refresh_bindings()
            await pilot.pause()
        await settle(pilot)
        assert footer.rebuilds == before
        assert list(footer.query(FooterKey)) == keys  # the same widgets, not rebuilt ones

        def add_greyed_out(action: str, parameters: tuple[object, ...]) -> bool | None:
            return None if action == "add_server" else PgBackupApp.check_action(app, action, parameters)

        app.check_action = add_greyed_out  # type: ignore[method-assign]  # a key's state changes
        app.refresh_bindings()
        await settle(pilot)
        assert footer.rebuilds == before  # greyed out in place: a repaint, no rebuild
        assert footer.greyed_in_place == 1
        assert list(footer.query(FooterKey)) == keys
        add = next(key for key in footer.query(FooterKey) if key.action == "add_server")
        assert add.has_class("-disabled") and add._disabled

        app.check_action = lambda action, parameters: (  # type: ignore[method-assign]  # lit again, one hidden
            False if action == "restore" else PgBackupApp.check_action(app, action, parameters))
        app.refresh_bindings()
        await settle(pilot)
        assert footer.rebuilds == before + 1  # a key went: the keys are built again
        actions = [key.action for key in footer.query(FooterKey)]
        assert "restore" not in actions and "add_server" in actions
        add = next(key for key in footer.query(FooterKey) if key.action == "add_server")
        assert not add.has_class("-disabled") and not add._disabled


async def test_help_and_quit_stay_in_the_footer_at_80_columns(home) -> None:
    # QA: at 80x24, on a server with a job listed, the footer ended "c Cancel ? He▏^p palette":
    # the two keys a newcomer looks for were cut. They come first now.
    app = PgBackupApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        footer = app.screen.query_one(LeanFooter)
        shown = [key.description for key in footer.query(FooterKey)]
        assert shown.index("Help") <= 1 and shown.index("Quit") <= 2, shown  # after the tree's own key (space)
        assert all(key.region.right <= 80 for key in footer.query(FooterKey) if key.description in ("Help", "Quit"))
