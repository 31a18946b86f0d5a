"""The Schedules tab: each schedule with its next run (relative and absolute), its last run with a
result badge, and its retention; add / edit / remove, Run now, install into crontab.

The pane reads config.toml itself and writes it only through a fresh read (load, change the
schedules, save), so a server added meanwhile in the tree is never lost. Run now starts
`pgbackup-tui run NAME` detached, exactly what cron runs: the job shows up in the Jobs tab (the
app's store scan), the lock keeps it from overlapping a cron run, retention and notifications
apply. Install shows the exact crontab lines (or systemd units, where there is no crontab) and
writes only after a yes. The clock and the time zone are parameters: the snapshot test fixes them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from ...core import crontab, systemd_units
from ...core.config import Config, editing_config, load_config
from ...core.errors import ConfigError, PgBackupError, UsageError
from ...core.notify import unreachable
from ...core.schedule_check import schedule_target_warning
from ...core.schedule_run import busy_now, forget_last_run_or_why, last_run_as_it_stands
from ...core.schedule_view import schedule_row, short_name
from ...core.schedules import Schedule, local_zone, put_schedule
from ..bindings import under_a_dialog

REFRESH_S = 5.0  # last runs and relative times; reading a few small JSON files
# The Schedule column's most: beside the tree at 80x24 (40 cells) the result and the next run's
# day and time still show. A longer name is cut in the middle; the line below says it whole.
NAME_CELLS = 16


def _now() -> datetime:
    return datetime.now(UTC)


class SchedulesPane(Vertical):
    """See the module docstring."""

    DEFAULT_CSS = """
    SchedulesPane #schedules-table {
        height: 1fr;
    }
    /* Beside the tree at 80x24 (40 columns) its two lines take 6: a max of 4 cut off where times
       are read and what i does. A share of the pane keeps the list in view on a short terminal. */
    SchedulesPane #schedules-status {
        height: auto;
        max-height: 40%;
        color: $text-muted;
        padding: 0 1;
    }
    """

    BINDINGS = [
        Binding("a", "add_schedule", "Add", tooltip="Add a schedule", id="schedules.add"),
        Binding("e", "edit_schedule", "Edit", tooltip="Edit the selected schedule", id="schedules.edit"),
        Binding("delete", "remove_schedule", "Remove", key_display="del", id="schedules.remove"),
        Binding("n", "run_now", "Run now", tooltip="Run the selected schedule now (it shows in Jobs)",
                id="schedules.run-now"),
        Binding("i", "install", "Install", tooltip="Write the schedules into your crontab (shown first)",
                id="schedules.install"),
    ]

    def __init__(self, *, clock: Callable[[], datetime] = _now, zone: tzinfo | None = None,
                 refresh_s: float | None = REFRESH_S, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.zone = zone
        self.refresh_s = refresh_s
        self.config: Config | None = None
        self.error: str | None = None
        self._started: list[subprocess.Popen[bytes]] = []
        # The last schedule was removed here: its line stays in the crontab (and fails every night,
        # "no schedule named …") until i writes the crontab again, so i stays on with none left.
        self._last_one_removed = False
        # The tree's cursor (its server and database; the app keeps it): what a new schedule starts from.
        self.where: tuple[str | None, str | None] = (None, None)

    def compose(self) -> ComposeResult:
        table: DataTable[str] = DataTable(id="schedules-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="schedules-status", markup=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, key in (("Schedule", "name"), ("Result", "result"), ("Next run", "next"), ("Last run", "last"),
                           ("Retention", "retention"), ("What", "what")):
            table.add_column(label, key=key)
        self.reload()
        if self.refresh_s:
            self.set_interval(self.refresh_s, self._reload_if_shown)

    def on_show(self) -> None:
        self.reload()  # the timer skips a hidden tab: read again as it shows

    def _reload_if_shown(self) -> None:
        # Behind another tab a reload would only cost a relayout of the screen (the Jobs tab's CPU).
        if self.is_on_screen:
            self.reload()

    # -- reading ---------------------------------------------------------------------------------
    def reload(self) -> None:
        """Read config.toml and the last runs again and redraw (keeps the cursor's schedule)."""
        self._started = [p for p in self._started if p.poll() is None]  # reap Run now's finished fronts
        zone: tzinfo | None = self.zone
        try:
            self.config, self.error = load_config(), None
            zone = self.zone or local_zone()  # a bad PGBACKUP_TUI_CRON_ZONE: said in the status line
        except ConfigError as exc:
            self.config, self.error = None, f"config not loaded: {exc}"
        except UsageError as exc:
            self.config, self.error = None, str(exc)
        table = self.query_one(DataTable)
        keep = self.selected_name
        table.clear()
        schedules = list(self.config.schedules.values()) if self.config else []
        now = self.clock()
        for schedule in schedules:
            row = schedule_row(schedule, last_run_as_it_stands(schedule.name), now, zone)
            table.add_row(short_name(row.name, NAME_CELLS), row.badge or "-", row.next_text, row.last_text,
                          row.retention, row.what, key=row.name)
        if keep is not None and keep in (self.config.schedules if self.config else {}):
            table.move_cursor(row=table.get_row_index(keep))
        self._show_status(schedules)

    def _show_status(self, schedules: list[Schedule]) -> None:
        status = self.query_one("#schedules-status", Static)
        broken = self.config.broken_schedules if self.config else {}
        if self.error:
            status.update(self.error)
        elif broken:  # never run, never listed above: said until mended (e edits only what loads)
            status.update(f"{len(broken)} schedule(s) do not load and never run: {next(iter(broken.values()))[1]}")
        elif not schedules:
            status.update("No schedules yet: a adds one (or pgbackup-tui schedule add).")
        else:
            try:
                where = "crontab" if crontab.crontab_available() else "systemd timers"
            except PgBackupError as exc:  # PGBACKUP_TUI_CRONTAB names no program: i says so too
                where = f"crontab ({exc})"
            chosen = self.selected
            about = ""
            if chosen is not None:
                checks = [c for c, on in (("verify", chosen.verify), ("drill", chosen.drill)) if on]
                about = " · ".join([f"{chosen.name}: {chosen.cron}", f"{chosen.describe} on {chosen.server}",
                                    chosen.retention_text, *checks]) + "\n"
            status.update(f"{about}{len(schedules)} schedule(s); times in this machine's zone, as cron runs them. "
                          f"i installs them into your {where}.")

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        if self.config is not None:
            self._show_status(list(self.config.schedules.values()))

    @property
    def selected_name(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0 or table.cursor_row < 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    @property
    def selected(self) -> Schedule | None:
        name = self.selected_name
        return self.config.schedules.get(name) if (self.config and name) else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if under_a_dialog(self):
            return False  # the dialog takes these keys: not in the footer left in view under it
        return self.applies(action)

    def applies(self, action: str) -> bool | None:
        """Whether the key `action` does something now (True), greyed (None); also what the
        palette offers, which asks while it is itself on top (so not through check_action)."""
        if action == "add_schedule":
            return (self.config is not None and bool(self.config.servers)) or None
        if action in ("edit_schedule", "remove_schedule", "run_now"):
            return self.selected is not None or None
        if action == "install":
            return (self.config is not None and (bool(self.config.schedules) or self._last_one_removed)) or None
        return True

    # -- changing ----------------------------------------------------------------------------------
    def _write(self, change: Callable[[Config], None]) -> bool:
        """Apply `change` to a fresh read of config.toml and save it; False (and a notice) if refused."""
        try:
            with editing_config() as config:
                change(config)
        except (PgBackupError, OSError) as exc:
            self.notify(str(exc), title="Schedule not saved", severity="error", timeout=15)
            return False
        note = config.comments_note()
        if note:
            self.notify(note, title="Comments kept aside", timeout=15)
        self.reload()
        return True

    def _forget(self, name: str) -> None:
        """Forget a schedule's last run once its name is gone, so that a new schedule of that name starts
        with none; say so when a run of it goes on (its record stays)."""
        kept = forget_last_run_or_why(name)
        if kept is not None:
            self.notify(kept, severity="warning", timeout=15)

    def action_add_schedule(self) -> None:
        self._open_form(None)

    def action_edit_schedule(self) -> None:
        if self.selected is not None:
            self._open_form(self.selected)

    def _open_form(self, existing: Schedule | None) -> None:
        from ..screens.schedule_form import ScheduleForm

        assert self.config is not None
        servers = list(self.config.servers)
        if existing is not None and existing.server not in servers:  # its [servers.X] did not load
            self.notify(f"schedule {existing.name} backs up server '{existing.server}', which does not load; mend "
                        f"[servers.{existing.server}] in config.toml first", severity="error", timeout=15)
            return
        if not servers:
            self.notify("no server to back up yet: add one in the tree first", severity="warning", timeout=10)
            return

        def saved(schedule: Schedule | None) -> None:
            if schedule is None:
                return

            def change(config: Config) -> None:
                renamed = existing is not None and existing.name != schedule.name
                # Only the schedule edited is replaced: renamed to a name another took meanwhile
                # (the form refuses the ones it knew of), that other one is refused, not overwritten.
                put_schedule(config, schedule, replace_existing=existing is not None and not renamed)
                if existing is not None and renamed:
                    config.schedules.pop(existing.name, None)

            if self._write(change):
                self.notify(f"schedule {schedule.name} saved; i writes it into your crontab", timeout=8)
                if existing is not None and existing.name != schedule.name:
                    self._forget(existing.name)  # renamed: the old name's last run is not this one's
                missing = unreachable(schedule.notify)
                if missing:
                    self.notify(missing, title="Notifications", severity="warning", timeout=15)
                if self.config is not None:
                    self._check_target(self.config, schedule)
                table = self.query_one(DataTable)
                table.move_cursor(row=table.get_row_index(schedule.name))

        server, database = self.where
        taken = frozenset(self.config.schedules) | frozenset(self.config.broken_schedules)
        self.app.push_screen(ScheduleForm(servers, existing, clock=self.clock, zone=self.zone, server=server,
                                          database=database, taken=taken), saved)

    def action_remove_schedule(self) -> None:
        from ..screens.confirm import ConfirmScreen

        schedule = self.selected
        if schedule is None:
            return

        def drop(config: Config) -> None:
            config.schedules.pop(schedule.name, None)

        def answered(yes: bool | None) -> None:
            if yes and self._write(drop):
                self.notify(f"schedule {schedule.name} removed; i updates your crontab", timeout=8)
                self._forget(schedule.name)
                if self.config is not None and not self.config.schedules:
                    self._last_one_removed = True
                    self.refresh_bindings()

        self.app.push_screen(ConfirmScreen(f"Remove schedule {schedule.name} ({schedule.cron}, {schedule.describe})? "
                                           "Its backups stay."), answered)

    def action_run_now(self) -> None:
        """Start `pgbackup-tui run NAME` on its own, as cron would: it outlives this TUI."""
        schedule = self.selected
        if schedule is None:
            return
        busy = busy_now(schedule.name)
        if busy is not None:  # the run started below would exit at once, its line unseen
            self.notify(busy.replace("this run did nothing", "not started again"), title="Already running",
                        severity="warning", timeout=10)
            return
        env = dict(os.environ)
        profiles = getattr(self.app, "profiles", None)
        password = profiles.passwords.get(schedule.server) if profiles is not None else None
        if password:
            env["PGPASSWORD"] = password  # typed this session: to the child's environment only
        self._started.append(subprocess.Popen(
            [*crontab.executable(), "run", schedule.name], env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        self.notify(f"schedule {schedule.name} started: its job shows in the Jobs tab", timeout=8)

    def action_install(self) -> None:
        from ..screens.crontab_confirm import CrontabConfirm

        if self.config is None or not (self.config.schedules or self._last_one_removed):
            return
        config = self.config
        try:
            if not config.schedules:
                lines, question = self._removal(config)
            elif crontab.crontab_available():
                lines = "\n".join(crontab.crontab_block(config))
                question = (f"Write these lines into your crontab ({' '.join(crontab.crontab_argv())})? Lines of "
                            "your own are kept; an older pgbackup-tui block is replaced.")
            else:
                folder = systemd_units.systemd_user_dir()
                units = systemd_units.systemd_units(config)
                lines = "\n".join(f"# {folder / name}\n{text}" for name, text in units.items())
                question = f"No crontab here. Write these systemd user units into {folder}?"
        except PgBackupError as exc:  # a schedule that does not load, a crontab of another user...
            self.notify(str(exc), title="Not installed", severity="error", timeout=15)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._install(config)

        self.app.push_screen(CrontabConfirm(question, lines), answered)

    @staticmethod
    def _removal(config: Config) -> tuple[str, str]:
        """What i shows with no schedule left: that the block (or the units) of this config goes."""
        if crontab.crontab_available():
            return ("(no lines: the block goes; lines of your own stay)",
                    f"No schedules left: take this config's pgbackup-tui block out of your crontab "
                    f"({' '.join(crontab.crontab_argv())})?")
        folder = systemd_units.systemd_user_dir()
        return ("\n".join(f"# {unit}" for unit in systemd_units.our_units(folder)) or "(none there)",
                f"No schedules left: remove this config's pgbackup-tui systemd user units from {folder}?")

    @work(thread=True, exit_on_error=False, group="schedule-check", description="check a schedule's database")
    def _check_target(self, config: Config, schedule: Schedule) -> None:
        """Its database and selection on its server, off the UI thread (a server that does not answer
        takes seconds): said like the command line's warning."""
        warning = schedule_target_warning(config, schedule)
        if warning:
            self.app.call_from_thread(self.notify, warning, title="Saved, but", severity="warning", timeout=20)

    @work(thread=True, exit_on_error=False, group="schedules", description="write the crontab")
    def _install(self, config: Config) -> None:
        try:
            if crontab.crontab_available():
                before, after = crontab.install(config)  # with no schedule: the block removed
                if not config.schedules:
                    text = (f"{crontab.whose_crontab()} had no pgbackup-tui block of this config" if before == after
                            else f"the pgbackup-tui block was removed from {crontab.whose_crontab()}")
                else:
                    text = "the crontab already had these lines" if before == after else \
                        f"{len(config.schedules)} schedule(s) written into {crontab.whose_crontab()}"
                warning = crontab.run_as_warning(config)
                if warning:  # written, as on the command line: said as loudly as a failure
                    self.app.call_from_thread(self.notify, warning, title="Installed, but", severity="warning",
                                              timeout=20)
            else:
                written = systemd_units.write_systemd_units(config)
                text = (f"{len(written)} unit files written; now run: systemctl --user daemon-reload && "
                        "systemctl --user enable --now " + " ".join(p.name for p in written if p.suffix == ".timer")
                        if written else "pgbackup-tui's units were removed; now run: systemctl --user daemon-reload")
        except (PgBackupError, OSError) as exc:
            self.app.call_from_thread(self.notify, str(exc), title="Not installed", severity="error", timeout=15)
            return
        if not config.schedules:
            self.app.call_from_thread(self._removed_from_crontab)
        self.app.call_from_thread(self.notify, text, timeout=10)

    def _removed_from_crontab(self) -> None:
        self._last_one_removed = False
        self.refresh_bindings()

    def run_now_processes(self) -> list[subprocess.Popen[bytes]]:
        """The `run` fronts Run now started that are still going (tests wait on them)."""
        return list(self._started)

