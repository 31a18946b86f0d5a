"""The app's keys. Every binding has an id, so users can remap it from config.toml:

    [keymap]
    "app.backup" = "B"
"""

from __future__ import annotations

from textual._context import NoActiveAppError
from textual.binding import Binding, BindingType
from textual.dom import DOMNode, NoScreen

from ..core.job_follow import JobView
from .profiles import ServerProfiles
from .tree_entries import READY, TreeFocus

APP_BINDINGS: list[BindingType] = [
    # First in the footer: at 80 columns the keys after them may be cut, and these are the two a
    # newcomer looks for (the help lists the rest).
    Binding("question_mark", "help", "Help", key_display="?", tooltip="This help", id="app.help"),
    Binding("q", "quit", "Quit", tooltip="Quit (running jobs go on in the background; asks first)",
            id="app.quit"),
    Binding("a", "add_server", "Add", tooltip="Add a server", id="app.add-server"),
    Binding("e", "edit_server", "Edit server", show=False, id="app.edit-server"),
    Binding("delete", "remove_server", "Remove server", show=False, key_display="del", id="app.remove-server"),
    Binding("b", "backup", "Backup", tooltip="Back up the cursor's database (only its checked tables, if any)",
            id="app.backup"),
    Binding("r", "restore", "Restore", tooltip="Restore a backup", id="app.restore"),
    # Shown on a server node only (check_action hides them elsewhere).
    Binding("w", "dumpall('whole')", "Whole server", tooltip="Back up the whole server (pg_dumpall, or a cluster set)",
            id="app.dumpall"),
    Binding("g", "dumpall('globals')", "Roles", tooltip="Back up roles and tablespaces (pg_dumpall --globals-only)",
            id="app.dumpall-globals"),
    Binding("C", "csv_export", "CSV export", show=False, key_display="C",
            tooltip="Export the checked tables as CSV files with the schema they need", id="app.csv-export"),
    Binding("c", "cancel_job", "Cancel", tooltip="Cancel the selected job", id="app.cancel-job"),
    Binding("f5", "refresh", "Refresh", show=False, tooltip="Reload the focused server or database",
            id="app.refresh"),
    Binding("z", "zoom", "Zoom", show=False, tooltip="Hide or show the tree (more room for jobs and logs)",
            id="app.zoom"),
    Binding("1", "show_tab('details')", "Details tab", show=False, id="app.tab-details"),
    Binding("2", "show_tab('jobs')", "Jobs tab", show=False, id="app.tab-jobs"),
    Binding("3", "show_tab('backups')", "Backups tab", show=False, id="app.tab-backups"),
    Binding("4", "show_tab('schedules')", "Schedules tab", show=False, id="app.tab-schedules"),
]

# The main screen's actions (tree, tabs, jobs): hidden while a dialog is on top (App.check_action).
# Help and quit stay: they mean the same everywhere.
MAIN_SCREEN_ACTIONS = frozenset(
    binding.action.partition("(")[0] for binding in APP_BINDINGS if isinstance(binding, Binding)) - {"quit", "help"}


def under_a_dialog(node: DOMNode) -> bool:
    """Whether another screen (a dialog) is on top of `node`'s. The main screen's footer stays in
    view under a dialog and showed the focused list's keys (v Verify, r Restore, space Select),
    which the dialog takes for itself: their check_action hides them then, as App.check_action
    hides the app's (MAIN_SCREEN_ACTIONS)."""
    try:
        return node.app.screen is not node.screen
    except (NoScreen, NoActiveAppError):
        return False


def action_applies(action: str, focus: TreeFocus, *, has_selection: bool, profiles: ServerProfiles,
                   selected_job: JobView | None, tree_focused: bool = True) -> bool | None:
    """Whether a key's action applies now: True, None to show it greyed out, False to hide it (App.check_action).
    `tree_focused`: the tree has the keyboard focus, not a tab's list."""
    if action == "add_server":
        return profiles.writable or None
    if action in ("edit_server", "remove_server"):
        # Only from the tree: a tab's list whose own e / delete does not apply (an empty Backups or
        # Schedules list) let the key through to these, and `delete` there asked to remove the server
        # under the tree's cursor, one `y` (as a backup's delete wants) from dropping it from config.
        if not tree_focused:
            return False
        return (profiles.writable and focus.server is not None) or None
    if action == "backup":
        if has_selection:
            return True
        return (focus.database is not None and focus.server is not None and focus.server.status == READY) or None
    if action == "dumpall":
        if focus.server is None or focus.database is not None or focus.hint is not None:
            return False  # hidden: it acts on a server node
        return focus.server.status == READY or None
    if action == "csv_export":
        return has_selection or None
    if action == "restore":
        return bool(profiles.names) or None
    if action == "cancel_job":
        if selected_job is None:
            return False  # hidden before the first job: 80 columns of footer are few
        # Greyed out once the job ends: a footer repaint, where hiding it would rebuild the footer
        # (two relayouts) at every job's end (widgets/lean_footer.py).
        return not selected_job.state.is_final or None
    if action == "refresh":
        return focus.server is not None or None
    return True
