"""Add or edit a server profile: a DSN or host/port/user/database/sslmode, and a Test button.

The profile is validated with core's rules before the form closes. The password field is
optional and only ever reaches the app's in-memory store, never the profile or the config.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from ...core.server_profile import ServerProfile, validate_profile
from ...core.connect import target_from_profile
from ...core.errors import ConfigError, PgBackupError
from ..inspection import probe_server
from ..messages import ConnectionTested

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# (input id, label, placeholder) for the free-text fields, in form order.
TEXT_FIELDS = (
    ("name", "Name", "e.g. prod-eu"),
    ("dsn", "DSN", "postgresql://user@host:5432/db or key=value (optional)"),
    ("host", "Host", "host name, IP or socket dir"),
    ("port", "Port", "5432"),
    ("user", "User", "role to connect as"),
    ("dbname", "Database", "postgres (used when empty)"),
    ("bin_dir", "Bin dir", "where its pg_dump lives (optional)"),
)


@dataclass(frozen=True)
class ServerFormResult:
    """What the form returns: a valid profile, and a password to keep in memory (or None)."""

    profile: ServerProfile
    password: str | None


class ServerForm(ModalScreen[ServerFormResult | None]):
    """Dismisses with a ServerFormResult (Save) or None (Cancel / Escape)."""

    DEFAULT_CSS = """
    ServerForm { align: center middle; }
    ServerForm > #server-form {
        width: 84;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    ServerForm #server-form-title { text-style: bold; color: $text-primary; }
    ServerForm #server-form-fields {
        grid-size: 2;
        grid-columns: 10 1fr;
        grid-gutter: 0 1;
        height: auto;
        margin: 1 0;
    }
    ServerForm #server-form-fields Label { color: $text-muted; }
    ServerForm #server-form-fields Input, ServerForm #server-form-fields Select { width: 1fr; }
    ServerForm #server-form-result { height: auto; min-height: 1; }
    ServerForm #server-form-result.-ok { color: $text-success; }
    ServerForm #server-form-result.-error { color: $text-error; }
    ServerForm #server-form-buttons { height: auto; align-horizontal: right; }
    ServerForm #server-form-buttons Button { margin-left: 1; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="server-form.cancel"),
        Binding("ctrl+s", "save", "Save", id="server-form.save"),
        Binding("ctrl+t", "test", "Test", id="server-form.test"),
    ]

    def __init__(self, existing: ServerProfile | None = None, *, taken_names: frozenset[str] = frozenset(),
                 password: str | None = None) -> None:
        """`existing`: the profile to edit (None adds one); `taken_names`: names already in use."""
        super().__init__()
        self.existing = existing
        self.taken_names = taken_names - ({existing.name} if existing else set())
        self.initial_password = password

    def compose(self) -> ComposeResult:
        profile = self.existing
        title = f"Edit server {profile.name}" if profile else "Add a server"
        with Vertical(id="server-form"):
            yield Static(title, id="server-form-title", markup=False)
            with Grid(id="server-form-fields"):
                for field_id, label, placeholder in TEXT_FIELDS:
                    value = getattr(profile, field_id) if profile else None
                    yield Label(label)
                    yield Input("" if value is None else str(value), placeholder=placeholder,
                                id=f"server-{field_id}", compact=True)
                yield Label("SSL mode")
                yield Select([(mode, mode) for mode in SSL_MODES], prompt="libpq default", id="server-sslmode",
                             value=profile.sslmode if profile and profile.sslmode in SSL_MODES else Select.NULL,
                             compact=True)
                yield Label("Password")
                yield Input(self.initial_password or "", password=True, id="server-password", compact=True,
                            placeholder="optional: kept in memory for this session, never saved")
            yield Static("", id="server-form-result", markup=False)
            with Horizontal(id="server-form-buttons"):
                yield Button("Test", id="server-form-test")
                yield Button("Save", variant="primary", id="server-form-save")
                yield Button("Cancel", id="server-form-cancel")

    def on_mount(self) -> None:
        self.query_one("#server-name", Input).focus()

    # -- reading the form ------------------------------------------------------------------
    def _text(self, field_id: str) -> str | None:
        value = self.query_one(f"#server-{field_id}", Input).value.strip()
        return value or None

    def build_profile(self) -> ServerProfile:
        """The profile as typed; raises ConfigError with the reason when it is not valid."""
        name = self._text("name") or ""
        if name in self.taken_names:
            raise ConfigError(f"server '{name}' already exists; pick another name")
        port_text = self._text("port")
        try:
            port = int(port_text) if port_text else None
        except ValueError:
            raise ConfigError(f"port {port_text!r} is not a number") from None
        sslmode = self.query_one("#server-sslmode", Select).value
        profile = ServerProfile(
            name=name, dsn=self._text("dsn"), host=self._text("host"), port=port, user=self._text("user"),
            dbname=self._text("dbname"), sslmode=sslmode if isinstance(sslmode, str) else None,
            bin_dir=self._text("bin_dir"),
            service=self.existing.service if self.existing else None,
        )
        return validate_profile(profile)

    def _password(self) -> str | None:
        return self.query_one("#server-password", Input).value or None

    def _show_result(self, text: str, *, ok: bool) -> None:
        result = self.query_one("#server-form-result", Static)
        result.update(text)
        result.set_class(ok, "-ok")
        result.set_class(not ok, "-error")

    # -- actions -----------------------------------------------------------------------------
    @on(Button.Pressed, "#server-form-save")
    @on(Input.Submitted)
    def action_save(self) -> None:
        try:
            profile = self.build_profile()
        except ConfigError as exc:
            self._show_result(str(exc), ok=False)
            return
        self.dismiss(ServerFormResult(profile, self._password()))

    @on(Button.Pressed, "#server-form-test")
    def action_test(self) -> None:
        try:
            profile = self.build_profile()
        except ConfigError as exc:
            self._show_result(str(exc), ok=False)
            return
        self._show_result("connecting…", ok=True)
        self._probe(profile, self._password())

    @on(Button.Pressed, "#server-form-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @work(thread=True, exit_on_error=False, group="server-form-test", exclusive=True, description="test a server")
    def _probe(self, profile: ServerProfile, password: str | None) -> None:
        try:
            info = probe_server(target_from_profile(profile, password))
        except (PgBackupError, psycopg.Error) as exc:
            self.post_message(ConnectionTested(None, str(exc).strip().splitlines()[0]))
        else:
            self.post_message(ConnectionTested(info, None))

    def on_connection_tested(self, message: ConnectionTested) -> None:
        if message.info is not None:
            info = message.info
            role = "standby" if info.in_recovery else "primary"
            self._show_result(f"OK: PostgreSQL {info.version} ({role}), connected as {info.current_user}", ok=True)
        else:
            self._show_result(message.error or "the connection failed", ok=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The test exists to show errors, so even an unexpected one is shown here, in the form.
        if event.worker.group == "server-form-test" and event.state == WorkerState.ERROR:
            self._show_result(f"test failed: {event.worker.error!r}", ok=False)
