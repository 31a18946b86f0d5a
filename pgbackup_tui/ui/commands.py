"""Command palette (ctrl+p): every action, built from the app's current state.

Servers, loaded databases and running jobs each get their own entries ("Back up database shop
on demo", "Cancel job dump shop on demo"), so the palette reaches what the keys reach and more.
Their titles hold names (databases, backups, jobs): shown as they are, never read as markup.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Matcher, Provider
from textual.content import Content

from .plain_text import plain
from .tree_entries import READY
from .widgets.backups_pane import row_applies
from .widgets.schedules_pane import SchedulesPane

if TYPE_CHECKING:
    from .app import PgBackupApp

Command = tuple[str, Callable[[], object], str]


def build_commands(app: PgBackupApp) -> list[Command]:
    """(title, callback, help) for everything that can be done right now."""
    commands: list[Command] = []
    tree = app.server_tree
    selection = tree.selection
    if selection is not None:
        commands.append((f"Back up {selection.describe()}", app.action_backup,
                         "open the backup dialog for the selection"))
    if app.profiles.writable:
        commands.append(("Add a server", app.action_add_server, "a new server profile (DSN or host/port/user)"))
        for name in app.profiles.names:
            entry = tree.server_entry(name)
            commands.append((f"Edit server {name}", partial(app.edit_server, name), "change its connection settings"))
            commands.append((f"Remove server {name}", partial(app.remove_server, name), "asks first; backups stay"))
            commands.append((f"Refresh server {name}", partial(tree.reload, name), "reconnect and re-read it"))
            if entry is not None and entry.status == READY and entry.snapshot is not None:
                commands.append((f"Back up the whole server {name}", partial(app.dumpall, name, "whole"),
                                 "pg_dumpall: every database, roles and tablespaces"))
                commands.append((f"Back up roles and tablespaces of {name}", partial(app.dumpall, name, "globals"),
                                 "pg_dumpall --globals-only"))
                commands.append((f"Back up {name} as a cluster set", partial(app.dumpall, name, "set"),
                                 "globals plus one archive per database"))
                for database in entry.snapshot.databases:
                    if database.allow_connections:
                        commands.append((f"Back up database {database.name} on {name}",
                                         partial(app.backup, name, database.name), "the whole database"))
        if app.profiles.names:
            commands.append(("Restore a backup…", app.action_restore, "pick an archive, a target server and database"))
    if selection is not None and selection.qualified_names:
        commands.append((f"CSV export of {selection.describe()}", app.action_csv_export,
                         "schema.sql and one CSV per table, into one folder"))
    commands += backup_commands(app)
    commands += schedule_commands(app)
    for job in app.running_jobs():
        commands.append((f"Cancel job {job.title}", partial(app.cancel_job, job), "asks first"))
    commands += [
        ("Show the Details tab", partial(app.action_show_tab, "details"), "the object under the cursor"),
        ("Show the Jobs tab", partial(app.action_show_tab, "jobs"), "jobs started here, by the CLI or by cron"),
        ("Show the Backups tab", partial(app.action_show_tab, "backups"), "backups on disk for the focused database"),
        ("Show the Schedules tab", partial(app.action_show_tab, "schedules"), "scheduled backups, run by cron"),
        ("Zoom: hide or show the tree", app.action_zoom, "the tabs take the whole width"),
        ("Help: keys", app.action_help, "what each key does"),
        ("Quit", app.action_quit, "running jobs go on in the background; asks first"),
    ]
    return commands


def backup_commands(app: PgBackupApp) -> list[Command]:
    """What the Backups tab's keys do to the highlighted backup, by name."""
    row = app.backups_pane.selected_row()
    if row is None:
        return []
    pane = app.backups_pane
    commands: list[Command] = []
    for action, verb, help_text in (("show", "Show details of", "manifest, checks and the TOC"),
                                    ("verify", "Verify", "checksums, read to the end, client tools"),
                                    ("drill", "Drill (test-restore)", "into a scratch database, rows compared"),
                                    ("delete", "Delete", "asks first"),
                                    ("csv_import", "CSV import of", "into a new or existing database")):
        if row_applies(action, row):
            commands.append((f"{verb} backup {row.name}", partial(pane.action_request, action), help_text))
    if row.entry is not None:
        commands.append((f"Restore backup {row.name}…", app.action_restore, "opens the restore dialog"))
    return commands


def schedule_commands(app: PgBackupApp) -> list[Command]:
    """What the Schedules tab's keys do, by name, when they would (the pane's own `applies`): the
    palette had the tab but none of its actions."""
    pane = app.query_one(SchedulesPane)
    name = pane.selected_name
    commands: list[Command] = []
    for action, title, help_text in (
            ("add_schedule", "Add a schedule", "a backup cron runs, with retention and checks"),
            ("edit_schedule", f"Edit schedule {name}", "its server, what, when, retention and checks"),
            ("remove_schedule", f"Remove schedule {name}", "asks first; its backups stay"),
            ("run_now", f"Run schedule {name} now", "it shows in Jobs"),
            ("install", "Install the schedules into crontab", "shows the lines first")):
        if pane.applies(action):
            commands.append((title, getattr(pane, f"action_{action}"), help_text))
    return commands


class PgBackupCommands(Provider):
    """Palette entries for pgbackup-tui's actions."""

    def _commands(self) -> list[Command]:
        from .app import PgBackupApp  # the palette only runs inside the app

        app = self.app
        return build_commands(app) if isinstance(app, PgBackupApp) else []

    async def discover(self) -> Hits:
        for title, callback, help_text in self._commands():
            yield DiscoveryHit(plain(title), callback, text=title, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, _highlighted(matcher, title), callback, text=title, help=help_text)


def _highlighted(matcher: Matcher, title: str) -> Content:
    """The title with the letters the query matched marked; a title with a name in it that looks like
    markup ("Back up database [/]x on big") as it is, unmarked: Textual reads a str prompt, and what
    Matcher.highlight is given, as markup, and the palette ended the app with a MarkupError."""
    return matcher.highlight(title) if "[" not in title else plain(title)
