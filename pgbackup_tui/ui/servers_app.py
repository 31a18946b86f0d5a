"""The server profiles in the TUI: add, edit and remove them (the tree shows them anew), for
PgBackupApp (app.py), whose base this is. The profiles and the passwords typed this session are
PgBackupApp's (`profiles`); a server a schedule backs up is not removed.
"""

from __future__ import annotations

from ..core.config import load_config
from ..core.errors import PgBackupError
from .backups_app import BackupsApp
from .profiles import ServerProfiles
from .screens.confirm import ConfirmScreen
from .screens.server_form import ServerForm, ServerFormResult
from .widgets.server_tree import ServerTree


class ServersApp(BackupsApp):
    """Adding, editing and removing servers; see the module docstring."""

    profiles: ServerProfiles

    @property
    def server_tree(self) -> ServerTree:
        return self.query_one(ServerTree)

    def action_add_server(self) -> None:
        if self.profiles.writable:
            form = ServerForm(taken_names=frozenset(self.profiles.names))
            self.push_screen(form, lambda result: self._save_server(result, None))

    def action_edit_server(self) -> None:
        focus = self.server_tree.focus_info()
        if focus.server is not None:
            self.edit_server(focus.server.name)

    def edit_server(self, name: str) -> None:
        profile = self.profiles.profile(name)
        if profile is None or not self.profiles.writable:
            return
        form = ServerForm(profile, taken_names=frozenset(self.profiles.names),
                          password=self.profiles.passwords.get(name))
        self.push_screen(form, lambda result: self._save_server(result, name))

    def _save_server(self, result: ServerFormResult | None, old_name: str | None) -> None:
        if result is None:
            return
        try:
            path = self.profiles.save(result.profile, result.password, replacing=old_name)
        except (OSError, PgBackupError) as exc:
            self.notify(f"server {result.profile.name} not saved: {exc}", title="Config not saved", severity="error")
            return
        self.server_tree.set_servers(self.profiles.profiles)
        self.server_tree.load_idle_servers()
        self.notify(f"saved server {result.profile.name} to {path}" + self._comments_note())

    def _comments_note(self) -> str:
        """Where the comments of the config file just written over were kept, if it had any."""
        note = self.profiles.config.comments_note() if self.profiles.config is not None else None
        return f"\n{note}" if note else ""

    def action_remove_server(self) -> None:
        focus = self.server_tree.focus_info()
        if focus.server is not None:
            self.remove_server(focus.server.name)

    def remove_server(self, name: str) -> None:
        if self.profiles.profile(name) is None or not self.profiles.writable:
            return
        try:  # the schedules as on disk now: the Schedules tab writes them
            users = sorted(s.name for s in load_config(self.profiles.path).schedules.values() if s.server == name)
        except (OSError, PgBackupError):
            users = []  # the write below says what is wrong
        if users:  # said before the question, not after its Yes (the write would refuse it anyway)
            self.notify(f"server {name} is backed up by schedule '{users[0]}': remove the schedule first "
                        "(Schedules tab, del)", title="Server not removed", severity="warning", timeout=10)
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.profiles.remove(name)
            except (OSError, PgBackupError) as exc:
                self.notify(f"server {name} not removed: {exc}", title="Config not saved", severity="error")
                return
            self.server_tree.set_servers(self.profiles.profiles)
            self.notify(f"removed server {name}" + self._comments_note())

        question = f"Remove server {name} from {self.profiles.path}? Its backups on disk are kept."
        self.push_screen(ConfirmScreen(question), answered)
