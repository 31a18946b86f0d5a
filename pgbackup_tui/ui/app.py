"""The Textual app: composes the main screen and wires widgets, workers and screens together.

Workers live on the App (not on a screen that could be popped): thread workers for psycopg
(group "inspect"), the catalog (group "backups", "catalog") and the job store (group "store",
"start"), async workers that follow jobs (group "jobs", never exclusive, so jobs run side by
side); a dialog's own checks run on the dialog (its group is named after it). Jobs themselves run in
runners of their own and the Jobs tab is a view on the job store (ui/jobs_app.py). Results come
back as messages from ui/messages.py. on_worker_state_changed is the one place where a worker
that failed unexpectedly becomes an error notification.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import psycopg
from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, TabbedContent, TabPane, Tabs
from textual.worker import Worker, WorkerState

from ..core.connect import Target, connect
from ..core.dump import DumpJob
from ..core.errors import EXIT_OK, ConnectError, PgBackupError
from ..core.identifiers import QualifiedName
from ..core.plans import DumpPlan, RestorePlan
from ..core.restore import RestoreJob
from .breakpoints import WIDTH_CLASSES
from .bindings import APP_BINDINGS, MAIN_SCREEN_ACTIONS, action_applies
from .commands import PgBackupCommands
from .idle_gc import IdleCollector
from .inspection import inspect_database, inspect_server
from .keymap import describe_unknown, key_name, unknown_ids
from .messages import DatabaseInspected, InspectionFailed, ServerInspected, StrayOutputLine
from .profiles import ServerProfiles
from .servers_app import ServersApp
from .stray_output import StrayOutput
from .screens.backup_dialog import BackupDialog
from .screens.help import HelpScreen
from .screens.password_prompt import PasswordPrompt
from .screens.restore_dialog import RestoreDialog
from .tree_entries import short_reason
from .widgets.backups_pane import BackupsPane
from .widgets.details_pane import DetailsPane
from .widgets.jobs_pane import JobsPane
from .widgets.lean_footer import LeanFooter
from .widgets.schedules_pane import SchedulesPane
from .widgets.selection_summary import SelectionSummary
from .widgets.server_tree import ServerTree


LIST_TABS = ("backups", "schedules")  # tabs that are a list with keys of its own: shown, the list has focus

class PgBackupApp(ServersApp):
    """Browse servers, pick tables or databases, run dump and restore jobs."""

    CSS_PATH = "app.tcss"
    # Under breakpoints.NARROW_BELOW columns the tree and the tabs stack (app.tcss: Screen.-narrow).
    HORIZONTAL_BREAKPOINTS = WIDTH_CLASSES
    TITLE = "pgbackup-tui"
    COMMANDS = App.COMMANDS | {PgBackupCommands}
    BINDINGS = APP_BINDINGS

    def __init__(self) -> None:
        super().__init__()
        # Server profiles and the passwords typed this session (memory only: never saved or logged).
        self.profiles = ServerProfiles()
        self._idle_gc = IdleCollector()  # full garbage collections at idle moments (idle_gc.py)
        self._prompting: set[str] = set()
        self.user_keymap: dict[str, str] = {}  # [keymap] of config.toml: texts name these keys (keymap.py)
        self._loading: dict[Worker, tuple[str, str | None]] = {}
        self._tree_had_focus = False  # when z hid the tree: z again gives it the focus back
        self.stray_output: StrayOutput | None = None  # run_app's: libpq's own stderr lines, kept off the screen

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield ServerTree(id="servers")
                yield SelectionSummary(id="selection")
            with TabbedContent(id="tabs", initial="details"):
                with TabPane("Details", id="details"):
                    yield DetailsPane(id="details-pane")
                with TabPane("Jobs", id="jobs"):
                    yield JobsPane(self.jobs, id="jobs-pane")  # the one registry of jobs
                with TabPane("Backups", id="backups"):
                    yield BackupsPane(id="backups-pane")
                with TabPane("Schedules", id="schedules"):
                    yield SchedulesPane(id="schedules-pane")
        yield LeanFooter()  # Footer without Textual's leak of replaced keys (lean_footer.py)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.InputEvent):
            self._idle_gc.input_seen()
        await super().on_event(event)

    def on_unmount(self) -> None:
        self._idle_gc.stop()

    def on_mount(self) -> None:
        self._idle_gc.start(self)
        tree = self.server_tree
        self.profiles.load()
        if self.profiles.error is not None:
            # Never written over: every action that would save is disabled until a restart.
            tree.show_config_error(self.profiles.error)
            self.notify(self.profiles.error, title="Config not loaded", severity="error", timeout=30)
        else:
            config = self.profiles.config
            for problem in ([config.broken_keymap[1]] if config and config.broken_keymap else []) + (
                    [why for _body, why in config.broken_servers.values()] if config else []):
                # Loaded all the same (a scheduled backup runs whatever the TUI's keys say): told here.
                self.notify(problem, title="Config", severity="warning", timeout=30)
            if self.profiles.config is not None and self.profiles.config.keymap:
                self.user_keymap = dict(self.profiles.config.keymap)
                self.set_keymap(self.user_keymap)  # the user's own keys, by binding id
                unknown = unknown_ids(self.user_keymap)
                if unknown:  # Textual would ignore them without a word
                    self.notify(describe_unknown(unknown), title="Keymap", severity="warning", timeout=30)
            self.query_one(SelectionSummary).show(None)  # its hint names the key, maybe remapped
            tree.set_servers(self.profiles.profiles)
            tree.load_idle_servers()
        tree.focus()
        tree.cursor_line = 0  # Details shows the first server (or the config error) from the start
        self.watch_job_store()  # jobs started here, by the CLI, by cron: running or finished
        if self.stray_output is not None:  # post_message is thread-safe: the reader thread calls it
            for line in self.stray_output.listen(lambda line: self.post_message(StrayOutputLine(line))):
                self.post_message(StrayOutputLine(line))

    def on_stray_output_line(self, message: StrayOutputLine) -> None:
        """What libpq (or a child) wrote to stderr, where it would have garbled the screen: said here,
        once for each distinct line, and printed again on the terminal when the app quits."""
        self.notify(message.line, title="Written to stderr", severity="warning")

    # -- loading the tree ------------------------------------------------------------------
    def databases_changed(self, server: str) -> None:
        # A restore made a database, or a CSV import filled tables: the tree shows it where the server
        # is open (what was open below it opens again); a closed one reads it when opened.
        if self.server_tree.is_open(server):
            self.server_tree.reload(server)

    def on_server_tree_load_requested(self, message: ServerTree.LoadRequested) -> None:
        target = self.profiles.target(message.server)
        if target is not None:
            self._loading[self._inspect(target, message.dbname)] = (message.server, message.dbname)

    @work(thread=True, exit_on_error=False, group="inspect", description="read a server or database")
    def _inspect(self, target: Target, dbname: str | None) -> None:
        """Read a server (dbname None) or one database; expected failures come back as messages."""
        try:
            if dbname is None:
                self.post_message(ServerInspected(target.label, inspect_server(target)))
            else:
                self.post_message(DatabaseInspected(target.label, dbname, inspect_database(target, dbname)))
        except (PgBackupError, psycopg.Error) as exc:
            self.post_message(InspectionFailed.from_error(target.label, dbname, exc))

    def on_server_inspected(self, message: ServerInspected) -> None:
        self.server_tree.show_server(message.server, message.snapshot)
        self.refresh_bindings()

    def on_database_inspected(self, message: DatabaseInspected) -> None:
        self.server_tree.show_database(message.server, message.dbname, message.snapshot)
        self.refresh_bindings()

    def on_inspection_failed(self, message: InspectionFailed) -> None:
        # Only a node the user opened asks for a password; the start-up round stays quiet.
        opened = self.server_tree.is_open(message.server, message.dbname)
        self.server_tree.show_failure(message.server, message.dbname, message.error)
        if message.needs_password and opened:
            # A password typed earlier that no longer works is forgotten before asking again.
            self.profiles.passwords.pop(message.server, None)
            self._ask_password(message.server, message.dbname, message.error)

    def _ask_password(self, server: str, dbname: str | None, reason: str,
                      then: Callable[[], None] | None = None) -> None:
        """Ask for `server`'s password, then load `dbname` (or the server) again, or run `then`."""
        target = self.profiles.target(server)
        if target is None or server in self._prompting:
            return
        self._prompting.add(server)

        def answered(password: str | None) -> None:
            self._prompting.discard(server)
            if password:
                self.profiles.passwords[server] = password
                if then is not None:
                    then()
                else:
                    self.server_tree.reload(server, dbname)

        self.push_screen(PasswordPrompt(server, target.where(), short_reason(reason, server)), answered)

    # -- focus, selection, backups list ----------------------------------------------------
    def on_server_tree_cursor_moved(self, message: ServerTree.CursorMoved) -> None:
        focus = message.focus
        self.query_one(DetailsPane).show(focus)
        self.query_one(SchedulesPane).where = (focus.server.name if focus.server else None,
                                               focus.database.info.name if focus.database else None)
        self.show_backups_for(focus)
        self.refresh_bindings()

    def on_server_tree_selection_changed(self, message: ServerTree.SelectionChanged) -> None:
        self.query_one(SelectionSummary).show(message.selection)
        self.refresh_bindings()

    # -- jobs ------------------------------------------------------------------------------
    def action_backup(self) -> None:
        # The cursor says which database: the checks inside it, or all of it when they are
        # elsewhere (the checks stay, and the dialog says they are not part of this backup).
        # Off any database (on a server line), the checks are what is meant.
        selection = self.server_tree.selection
        focus = self.server_tree.focus_info()
        cursor_db = (focus.server.name, focus.database.info.name) if focus.server and focus.database else None
        if selection is not None and cursor_db in (None, (selection.server, selection.dbname)):
            self.backup(selection.server, selection.dbname, selection.qualified_names)
        elif cursor_db is not None:
            note = f"not the checked {selection.describe()}" if selection is not None else None
            self.backup(*cursor_db, (), note=note)

    def backup(self, server: str, dbname: str, tables: tuple[QualifiedName, ...] = (), *,
               note: str | None = None) -> None:
        """Open the backup dialog for `dbname` (whole, or only `tables`); `note` adds to its selection line."""
        entry = self.server_tree.server_entry(server)
        target = self.profiles.target(server)
        if entry is None or entry.snapshot is None or target is None:
            self.notify(f"open server {server} first, so its version is known", severity="warning")
            return
        dialog = BackupDialog(target, entry.snapshot.info.major, dbname, tables, note=note)
        self.push_screen(dialog, self._dump_chosen)

    def _dump_chosen(self, plan: DumpPlan | None) -> None:
        if plan is not None:
            self.start_in_runner(DumpJob(plan))

    def action_restore(self) -> None:
        if self.restore_highlighted():  # the Backups tab's highlighted backup (backups_app.py)
            return
        focus = self.server_tree.focus_info()
        self.restore(None, focus.server.name if focus.server else None,
                     focus.database.info.name if focus.database else None)

    def restore(self, archive: Path | None, server: str | None, dbname: str | None) -> None:
        """Open the restore dialog, prefilled with `archive` and a default target."""
        targets = self.profiles.targets()
        if not targets:
            add_key = key_name(self, "app.add-server")
            self.notify(f"add a server first ({add_key}): a restore needs a target server", severity="warning")
            return
        default_server = server if server in targets else None
        self.push_screen(RestoreDialog(archive, targets, default_server, dbname), self._restore_chosen)

    def _restore_chosen(self, plan: RestorePlan | None) -> None:
        if plan is not None:
            self._log_in_then_restore(plan)

    @work(thread=True, exit_on_error=False, group="login", description="log in to the restore's server")
    def _log_in_then_restore(self, plan: RestorePlan) -> None:
        """Start the restore once its server takes our login. A server not opened in the tree yet
        has had no password typed: it is asked for here (the job's runner cannot ask; it failed
        with 'no password supplied'). Any other failure to connect is the job's to say."""
        server = plan.target.label
        try:
            with connect(plan.target, plan.target.maintenance_db(plan.dbname)):
                pass
        except ConnectError as exc:
            if exc.needs_password:
                self.call_from_thread(self._ask_password, server, None, str(exc), lambda: self._restore_chosen(
                    replace(plan, target=self.profiles.target(server) or plan.target)))
                return
        except (PgBackupError, psycopg.Error, OSError):
            pass  # unreachable, refused: the job's own check says it, with its log
        self.call_from_thread(self.start_in_runner, RestoreJob(plan))

    def on_jobs_pane_job_selected(self) -> None:
        self.refresh_bindings()

    # -- everything else -------------------------------------------------------------------
    def action_refresh(self) -> None:
        focus = self.server_tree.focus_info()
        if focus.server is None:
            return
        self.server_tree.reload(focus.server.name, focus.database.info.name if focus.database else None)
        self.show_backups_for(focus, force=True)

    def action_show_tab(self, tab: str) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = tab
        if tab in LIST_TABS:  # their keys (v, d, x…) act on the list: no Tab press first
            lists = tabs.get_pane(tab).query(DataTable)
            if lists:
                lists.first().focus()
        elif self.focused is None or (tabs in self.focused.ancestors
                                      and tabs.get_pane(tab) not in self.focused.ancestors):
            # The focus was on another tab's list (3 gives it the Backups list): hidden now, it
            # left the keys to nothing, and ↓ or enter did not reach the tree.
            zoomed = self.query_one("#main").has_class("-zoomed")
            (tabs.query_one(Tabs) if zoomed else self.server_tree).focus()

    def action_zoom(self) -> None:
        main = self.query_one("#main")
        main.toggle_class("-zoomed")
        tabs = self.query_one(TabbedContent).query_one(Tabs)
        if main.has_class("-zoomed") and self.server_tree.has_focus:
            tabs.focus()  # keys must not act on a hidden tree
            self._tree_had_focus = True
        elif not main.has_class("-zoomed") and self._tree_had_focus and tabs.has_focus:
            self.server_tree.focus()  # back where the user was before the zoom, unless they moved on
        if not main.has_class("-zoomed"):
            self._tree_had_focus = False

    def action_help(self) -> None:
        # Our own bindings all carry an id; Textual's scrolling keys are described in the text.
        shown = [active.binding for active in self.screen.active_bindings.values() if active.binding.id]
        # The app's keys that are hidden right now (check_action False: c with nothing to cancel) too.
        hidden = [binding for binding in APP_BINDINGS
                  if isinstance(binding, Binding) and binding.id and binding.id not in {b.id for b in shown}]
        # The tabs' own keys, which apply once their list has the focus: listed with their tab's name.
        shown_ids = {b.id for b in shown + hidden}
        tabs = [(binding, tab) for pane, tab in ((BackupsPane, "Backups"), (SchedulesPane, "Schedules"))
                for binding in pane.BINDINGS
                if isinstance(binding, Binding) and binding.id and binding.id not in shown_ids]
        keys = [(self.get_key_display(binding), binding.tooltip or binding.description) for binding in shown + hidden]
        keys += [(self.get_key_display(binding), f"{binding.tooltip or binding.description} ({tab} tab)")
                 for binding, tab in tabs]
        # The Backups list's enter is its DataTable's own (no binding of ours): it was missing here,
        # though the tab's heading says "enter: details" and README lists it.
        last_backups_key = max((i for i, (_, text) in enumerate(keys) if text.endswith("(Backups tab)")), default=None)
        details = ("enter", "Details: the manifest, the last checks, the contents (Backups tab)")
        keys.insert(len(keys) if last_backups_key is None else last_backups_key + 1, details)
        self.push_screen(HelpScreen(keys))

    async def _on_message(self, message: Message) -> None:
        # Once the app is shutting down its panes are gone: a worker's late message (a listing, a
        # store scan, a job's end) has nobody to show it to. Events (Unmount…) still go through.
        if not self.is_running and not isinstance(message, events.Event):
            return
        await super()._on_message(message)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out (None) what does not apply to the current state."""
        if self.leaving:
            return False
        # Before the first screen is up (App.is_mounted is a method that takes a widget, not a flag).
        if not self.screen_stack:
            return True
        if len(self.screen_stack) > 1:  # a dialog on top: the main screen's keys do not apply there
            return action not in MAIN_SCREEN_ACTIONS
        try:  # query_one is cached; a query's truth walked the whole screen, once a key (20 a footer)
            tree = self.screen.query_one(ServerTree)
        except NoMatches:
            return True
        return action_applies(action, tree.focus_info(), has_selection=tree.selection is not None,
                              profiles=self.profiles, selected_job=self.jobs_pane.selected_job(),
                              tree_focused=self.focused is tree)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place an unexpected worker failure becomes an error the user sees."""
        worker = event.worker
        if not worker.is_finished:
            return
        place = self._loading.pop(worker, None)
        if event.state != WorkerState.ERROR:
            return
        error = worker.error
        if place is not None:
            self.server_tree.show_failure(place[0], place[1], f"internal error: {error!r}")
        self.notify(f"{worker.description or worker.name}: {error!r}", title="Unexpected error",
                    severity="error", timeout=30)


def run_app(server_stops_on_quit: str | None = None) -> int:
    """Run the TUI until the user quits; returns the process exit code. `server_stops_on_quit`:
    the profile of a server that stops with the app (the demo's sandbox)."""
    app = PgBackupApp()
    app.server_stops_on_quit = server_stops_on_quit
    with StrayOutput() as stray_output:  # libpq writes some warnings to stderr, where Textual draws
        app.stray_output = stray_output
        app.run()
    return app.return_code or EXIT_OK
