"""What the app does with backups on disk: the Backups tab, its keys, and the cluster and CSV jobs.

- listing: a thread worker reads the catalog (core/catalog.py scan, plus CSV copies) and posts
  the rows of the focused server or database (ui/backups_view.py); each time the tab shows, and on
  f5, it lists them again, as `backups list` would: backups the CLI or cron wrote meanwhile, an
  archive cut or grown on disk (changed). A change while the tab is hidden (a dump ends) waits for
  it to show (behind its tab, a listing would only cost a relayout of the screen: the Jobs tab's
  CPU); a listing that finds nothing new leaves the table as it was (its page, its scroll);
- enter shows a backup's details (screens/backup_details.py: the TOC is read in its worker);
- verify and drill run in thread workers (group "catalog", side by side), record their result in
  the manifest (catalog.record_check) and come back as BackupChecked; a drill asks which server
  gets the scratch database, the backup's own by default;
- delete asks (y for one backup; the newest verified backup of a database is refused unless
  forced, and the dialog says so and asks for `force` typed);
- restore: a pg_dump archive opens the restore dialog (tables can be picked from its TOC), a
  pg_dumpall file or a cluster set the cluster restore dialog (a ClusterRestoreJob);
- a server node backs up the whole server, its roles and tablespaces, or a cluster set
  (DumpallJob); a table selection exports CSV, a CSV copy in the Backups tab imports it.
Every job runs in its runner, like dumps (ui/jobs_app.py).
"""

from __future__ import annotations

import threading
from pathlib import Path

from textual import work
from textual.widgets import TabbedContent

from ..core import catalog, paths
from ..core.catalog_ops import delete, newest_verified
from ..core.cluster_plans import ClusterRestorePlan, DumpallPlan
from ..core.server_profile import ServerProfile
from ..core.connect import Target
from ..core.csv_plans import EXPORT_KIND, IMPORT_KIND, CsvExportPlan, CsvImportPlan
from ..core.drill import drill_backup
from ..core.errors import PgBackupError
from ..core.identifiers import one_line as name_on_one_line
from ..core.manifest import Verification
from ..core.verify import verify_backup
from .backup_messages import BackupChecked, BackupDeleted, BackupsListed
from .backup_summaries import SummaryReader
from .backups_view import BackupRow, set_members
from .jobs_app import JobsApp
from .keymap import key_name
from .profiles import ServerProfiles
from .screens.backup_details import BackupDetails
from .screens.cluster_restore_dialog import ClusterRestoreDialog
from .screens.confirm import ConfirmScreen
from .screens.csv_export_dialog import CsvExportDialog
from .screens.csv_import_dialog import CsvImportDialog
from .screens.dumpall_dialog import DumpallDialog
from .screens.server_pick import ServerPick
from .tree_entries import READY, TreeFocus
from .widgets.backups_pane import BackupsPane
from .widgets.server_tree import ServerTree

FORCE_WORD = "force"


def one_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class BackupsApp(JobsApp):
    """The backup catalog's side of PgBackupApp; see the module docstring."""

    profiles: ServerProfiles  # set by PgBackupApp

    def __init__(self) -> None:
        super().__init__()
        self._backups_scope: tuple[str | None, str | None] | None = None
        self._drills: dict[str, threading.Event] = {}  # path -> its cancel event, while it runs
        self._verifying: set[str] = set()  # paths being verified, while it runs
        self._deleting: set[str] = set()  # paths being deleted, while it runs
        self._summaries = SummaryReader()  # the tab keeps a summary per backup, not its manifest

    @property
    def backups_pane(self) -> BackupsPane:
        return self.query_one(BackupsPane)

    def restore(self, archive: Path | None, server: str | None, dbname: str | None) -> None:
        """Open the restore dialog for a pg_dump archive (PgBackupApp's)."""
        raise NotImplementedError

    # -- listing ---------------------------------------------------------------------------
    def show_backups_for(self, focus: TreeFocus, *, force: bool = False) -> None:
        """List the backups of the focused server (and database) in the Backups tab."""
        server = focus.server.name if focus.server else None
        dbname = focus.database.info.name if focus.database else None
        if (server, dbname) == self._backups_scope and not force:
            return
        self._backups_scope = (server, dbname)
        profile = self.profiles.profile(server) if server is not None else None
        if profile is None:
            self.backups_pane.show_rows(None, None, ())
        else:
            self._list_backups(profile, dbname, self.profiles.profiles)  # a copy: the config may change meanwhile

    def backups_changed(self) -> None:
        if self.query_one(TabbedContent).active != "backups":
            return  # listed when the tab shows (on_tabbed_content_tab_activated)
        self.show_backups_for(self.query_one(ServerTree).focus_info(), force=True)

    def on_tabbed_content_tab_activated(self, message: TabbedContent.TabActivated) -> None:
        # Always, not only after a change this app saw: the CLI, cron or another TUI may have
        # written a backup meanwhile, and an archive may have been cut or grown on disk.
        if message.pane.id == "backups":
            self.show_backups_for(self.query_one(ServerTree).focus_info(), force=True)

    @work(thread=True, exit_on_error=False, group="backups", exclusive=True, description="list backups")
    def _list_backups(self, profile: ServerProfile, dbname: str | None, profiles: list[ServerProfile]) -> None:
        rows = self._summaries.rows(profile, dbname, paths.backups_dir(), profiles)
        self.post_message(BackupsListed(profile.name, dbname, tuple(rows)))

    def on_backups_listed(self, message: BackupsListed) -> None:
        if (message.server, message.dbname) == self._backups_scope:
            pane = self.backups_pane
            if (pane.server, pane.dbname) == (message.server, message.dbname) and message.rows == tuple(pane.rows):
                return  # nothing new (rows kept by SummaryReader are the same objects): keep its page and scroll
            pane.show_rows(message.server, message.dbname, message.rows)
            self.refresh_bindings()

    def on_backups_pane_row_highlighted(self) -> None:
        self.refresh_bindings()

    def on_backups_pane_action_requested(self, message: BackupsPane.ActionRequested) -> None:
        row = message.row
        if message.action == "show":
            self.push_screen(BackupDetails(row))
        elif message.action == "verify" and row.entry is not None:
            if not self._say_busy(row, "verified"):
                self.notify(f"verifying {row.name}…", timeout=5)
                self._verifying.add(str(row.path))
                self._verify(str(row.path))
        elif message.action == "drill":
            self.drill(row)
        elif message.action == "delete":
            self.delete_backup(row)
        elif message.action == "restore":
            self.restore_highlighted()
        elif message.action == "csv_import":
            self.csv_import(row)

    # -- verify, drill ---------------------------------------------------------------------
    @work(thread=True, exit_on_error=False, group="catalog", description="verify a backup")
    def _verify(self, path: str) -> None:
        try:
            self._verify_and_record(path)
        finally:
            self._verifying.discard(path)  # set.discard is atomic: no lock with the UI thread

    def _verify_and_record(self, path: str) -> None:
        entries = catalog.scan()
        found = next((e for e in entries if str(e.path) == path), None) or catalog.entry_for(Path(path))
        if found is None:
            self.post_message(BackupChecked("verify", path, Path(path).name, None, f"{path}: no longer listed"))
            return
        # A set's own check covers its globals and every member; each member's own result, taken on
        # the way, is recorded on its manifest too, so that its row in the set shows it.
        members = set_members(found) if found.manifest is not None and found.manifest.kind == "cluster-set" else []
        member_checks: dict[Path, Verification] = {}
        for entry in [found, *members]:
            try:
                check = member_checks.get(entry.path) or verify_backup(entry, member_checks=member_checks)
                catalog.record_check(entry, check)
            except (PgBackupError, OSError) as exc:
                self.post_message(BackupChecked("verify", str(entry.path), entry.path.name, None, one_line(exc)))
                continue
            self.post_message(BackupChecked("verify", str(entry.path), entry.path.name, check))

    def drill(self, row: BackupRow) -> None:
        """Ask which server gets the scratch database (the backup's own by default), then drill."""
        servers = list(self.profiles.targets())
        running = self._drills.get(str(row.path))
        if running is not None:  # d again on a backup being drilled: offer to cancel it
            def answered(yes: bool | None) -> None:
                if not yes:
                    return
                if self._drills.get(str(row.path)) is not running:  # it ended while the question was up
                    self.notify(f"the drill of {row.name} has ended already (its result was said)", timeout=8)
                    return
                running.set()

            self.push_screen(ConfirmScreen(f"Cancel the drill of {row.name}?"), answered)
            return
        if row.entry is None or not servers or self._say_busy(row, "drilled"):
            return
        default = self._backups_scope[0] if self._backups_scope else None
        question = (f"Restore {row.name} into a scratch database on which server? Its tables' rows are "
                    "compared with the manifest, then the scratch database is dropped.")

        def chosen(server: str | None) -> None:
            target = self.profiles.target(server) if server else None
            if target is not None:
                self.notify(f"drilling {row.name} on {server}… (d again to cancel)", timeout=5)
                self._drills[str(row.path)] = cancel = threading.Event()
                self._drill(str(row.path), target, cancel)

        self.push_screen(ServerPick("Drill: a test restore", question, servers, default), chosen)

    @work(thread=True, exit_on_error=False, group="catalog", description="drill a backup")
    def _drill(self, path: str, target: Target, cancel: threading.Event) -> None:
        name = Path(path).name
        try:
            entry = catalog.entry_for(Path(path), indexed=True)  # a set's member too (not in the scan)
            if entry is None:
                raise PgBackupError(f"{path}: no longer listed")
            check = drill_backup(entry, target, cancel=cancel)
            catalog.record_check(entry, check)
        except (PgBackupError, OSError) as exc:  # DrillCancelled too: said like any other end
            self.post_message(BackupChecked("drill", path, name, None, one_line(exc)))
            return
        finally:
            self._drills.pop(path, None)  # dict.pop is atomic: no lock with the UI thread
        self.post_message(BackupChecked("drill", path, name, check))

    def on_backup_checked(self, message: BackupChecked) -> None:
        check = message.check
        if check is None:
            self.notify(message.error or "?", title=f"{message.kind} {message.name}: not done", severity="error",
                        timeout=20)
        elif check.ok:
            self.notify("; ".join(check.checks), title=f"{message.name}: {message.kind} ok", timeout=10)
        else:
            self.notify("\n".join(check.problems), title=f"{message.name}: {message.kind} FAILED",
                        severity="error", timeout=30)
        self.backups_changed()

    # -- delete ----------------------------------------------------------------------------
    def _busy_with(self, path: Path) -> str | None:
        """What this app's workers do with `path` now (or with a set's member, or the set of a member):
        "drilled", "verified", "deleted", or None. One at a time: a delete under a check fails the
        check or has it write its result into a manifest recreated beside no archive; a check under
        a delete fails on files being removed."""
        def overlaps(other: str) -> bool:
            return Path(other) == path or Path(other).is_relative_to(path) or path.is_relative_to(other)

        for doing, paths_of in (("drilled", self._drills), ("verified", self._verifying),
                                ("deleted", self._deleting)):
            if any(overlaps(other) for other in list(paths_of)):
                return doing
        return None

    def _say_busy(self, row: BackupRow, wanted: str) -> bool:
        """Say, and True, when `row` cannot be `wanted` (verified, drilled, deleted) now: see _busy_with."""
        busy = self._busy_with(row.path)
        if busy is None:
            return False
        hint = " (d on it again cancels the drill)" if busy == "drilled" else ""
        self.notify(f"{row.name} or a backup in it is being {busy}{hint}: it can be {wanted} once that has ended",
                    title=f"Not {wanted}", severity="warning", timeout=15)
        return True

    def delete_backup(self, row: BackupRow) -> None:
        """Ask (y; for the newest verified backup of a database, `force` typed), then delete in a worker."""
        if row.entry is None or self._say_busy(row, "deleted"):
            return
        if row.member:  # refused by delete() too: said before the question, not after a y
            self.notify(f"{row.name} is a member archive of cluster set {row.path.parent.name}, deleted with it: "
                        f"{key_name(self, 'backups.delete')} on the set's row", title="Not deleted",
                        severity="warning", timeout=10)
            return
        entry = row.entry
        listed = [r.entry for r in self.backups_pane.rows if r.entry is not None]
        newest = newest_verified(entry, listed)
        what = f"{row.name} ({row.holds}, {row.status})"
        if row.is_set:
            what += " with every member archive in it"
        if newest:
            of = f"database '{entry.database}'" if entry.database else "the server's cluster backups of its kind"
            question = (f"{what} is the newest verified backup of {of} holding that: deleting it is refused unless "
                        f"forced. Delete it anyway? It removes {row.path} and its manifest.")
        else:
            question = f"Delete {what}? It removes {row.path} and its manifest."

        def answered(yes: bool | None) -> None:
            if yes and not self._say_busy(row, "deleted"):  # a check that started while the question was up
                self._deleting.add(str(row.path))
                self._delete(str(row.path), row.name, newest)

        self.push_screen(ConfirmScreen(question, FORCE_WORD if newest else None), answered)

    @work(thread=True, exit_on_error=False, group="catalog", description="delete a backup")
    def _delete(self, path: str, name: str, force: bool) -> None:
        try:
            self._delete_listed(path, name, force)
        finally:
            self._deleting.discard(path)  # set.discard is atomic: no lock with the UI thread

    def _delete_listed(self, path: str, name: str, force: bool) -> None:
        try:
            entries = catalog.scan()
            entry = next((e for e in entries if str(e.path) == path), None) or catalog.entry_for(Path(path))
            if entry is None:
                raise PgBackupError(f"{path}: no longer listed")
            removed = delete(entry, entries, force=force)
        except (PgBackupError, OSError) as exc:
            self.post_message(BackupDeleted(name, (), one_line(exc)))
            return
        self.post_message(BackupDeleted(name, tuple(removed)))

    def on_backup_deleted(self, message: BackupDeleted) -> None:
        if message.error:
            self.notify(message.error, title=f"{message.name}: not deleted", severity="error", timeout=20)
        else:
            self.notify(f"deleted {message.name} ({len(message.removed)} file(s) or folder(s))")
        self.backups_changed()

    # -- restore ---------------------------------------------------------------------------
    def restore_highlighted(self) -> bool:
        """On the Backups tab, restore the highlighted backup; False when there is none to restore."""
        if self.query_one(TabbedContent).active != "backups":
            return False
        row = self.backups_pane.selected_row()
        if row is not None and row.csv is not None:
            # It opened the restore dialog with no archive in it, as if r had been pressed on the tree.
            self.notify(f"{row.name} is a CSV copy: {key_name(self, 'backups.csv-import')} imports it "
                        "(r restores a pg_dump or pg_dumpall backup)", severity="warning", timeout=8)
            return True
        if row is None or row.entry is None:
            return False
        targets = self.profiles.targets()
        if row.is_set or row.is_cluster_file:
            members = None
            manifest = row.entry.manifest
            if row.is_set and manifest is not None:
                listed = manifest.extra.get("members")
                members = [str(m.get("database")) for m in listed] if isinstance(listed, list) else []
            dialog = ClusterRestoreDialog(row.path, targets, members)
            self.push_screen(dialog, self._cluster_restore_chosen)
            return True
        server = self._backups_scope[0] if self._backups_scope else None
        self.restore(row.path, server, row.entry.database or None)
        return True

    def _cluster_restore_chosen(self, plan: ClusterRestorePlan | None) -> None:
        if plan is not None:
            self.start_plan("cluster-restore", plan, f"restore {plan.archive.name} onto {plan.target.label}")

    # -- whole servers ---------------------------------------------------------------------
    def action_dumpall(self, what: str) -> None:
        focus = self.query_one(ServerTree).focus_info()
        if focus.server is not None:
            self.dumpall(focus.server.name, what)

    def dumpall(self, server: str, what: str = "whole") -> None:
        """Open the whole-server dialog: everything (whole), roles and tablespaces (globals), or a set."""
        entry = self.query_one(ServerTree).server_entry(server)
        target = self.profiles.target(server)
        if entry is None or entry.status != READY or target is None:
            self.notify(f"open server {server} first", severity="warning")
            return
        self.push_screen(DumpallDialog(target, what), self._dumpall_chosen)

    def _dumpall_chosen(self, plan: DumpallPlan | None) -> None:
        if plan is not None:
            self.start_plan("dumpall", plan, f"dump the {plan.what} of {plan.target.label}")

    # -- CSV -------------------------------------------------------------------------------
    def action_csv_export(self) -> None:
        selection = self.query_one(ServerTree).selection
        if selection is not None and selection.whole_database:
            # "check the tables to export first (space)" was said to a user whose space had just
            # checked the whole database: CSV export copies tables, named one by one.
            dbname = name_on_one_line(selection.dbname)
            self.notify(f"CSV export copies checked tables, not a whole database: open {dbname} and check its "
                        "tables or schemas (space)", severity="warning")
            return
        if selection is None or not selection.qualified_names:
            self.notify("check the tables to export first (space)", severity="warning")
            return
        target = self.profiles.target(selection.server)
        if target is not None:
            self.push_screen(CsvExportDialog(target, selection.dbname, selection.qualified_names),
                             self._csv_export_chosen)

    def _csv_export_chosen(self, plan: CsvExportPlan | None) -> None:
        if plan is not None:
            self.start_plan(EXPORT_KIND, plan, f"csv export {plan.dbname} on {plan.target.label}")

    def csv_import(self, row: BackupRow) -> None:
        if row.csv is None:
            return
        server = self._backups_scope[0] if self._backups_scope else None
        dialog = CsvImportDialog(row.path, row.csv.tables, self.profiles.targets(), server, row.csv.database)
        self.push_screen(dialog, self._csv_import_chosen)

    def _csv_import_chosen(self, plan: CsvImportPlan | None) -> None:
        if plan is not None:
            self.start_plan(IMPORT_KIND, plan, f"csv import into {plan.dbname} on {plan.target.label}")
