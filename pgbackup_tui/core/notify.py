"""Telling someone how a scheduled run went: a command hook, and notification URLs through apprise.

Hooks: `on_failure` / `on_success` in the schedule are shell commands (run by /bin/sh, like a
crontab line) with PGBACKUP_TUI_SCHEDULE, PGBACKUP_TUI_STATUS, PGBACKUP_TUI_ERROR (the one error
line, empty on success), PGBACKUP_TUI_LOG (the job's log), PGBACKUP_TUI_JOB and PGBACKUP_TUI_BACKUP
in their environment. They get HOOK_TIMEOUT_S seconds.

URLs: apprise's one scheme for all (mailto://, slack://, tgram://, discord://, json://...). They
often carry a token or a password, so they follow the rule for passwords: never in config.toml,
argv or a log. A schedule names them (`notify = ["ops"]`); the URL itself is read at send time
  1. from the environment variable PGBACKUP_TUI_NOTIFY_<NAME> (upper case, '-' and '.' as '_'),
     for a secrets manager or a systemd credential, else
  2. from `notify.toml` in the config dir (`[urls]` ops = "..."), which must be 0600 (we refuse
     to read it when others can), kept apart from config.toml so that config can be shared.
Apprise's own log (which may print a URL) is silenced; a failure is reported by name only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import stat
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import paths
from .errors import ConfigError, UsageError

HOOK_TIMEOUT_S = 120
NOTIFY_FILE = "notify.toml"
ENV_PREFIX = "PGBACKUP_TUI_NOTIFY_"


def notify_file() -> Path:
    return paths.config_dir() / NOTIFY_FILE


def env_name(name: str) -> str:
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def read_urls(path: Path | None = None) -> dict[str, str]:
    """The URLs of notify.toml by name ({} when there is none); ConfigError for a file others can read."""
    path = path or notify_file()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path}: others can read it (mode {stat.S_IMODE(mode):o}) and it holds notification "
                          f"secrets; run chmod 600 {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}; fix the file") from None
    urls = raw.get("urls", {})
    if not isinstance(urls, dict) or not all(isinstance(v, str) for v in urls.values()):
        raise ConfigError(f'{path}: [urls] maps names to apprise URLs, e.g. ops = "mailto://..."')
    return dict(urls)


def _quiet_apprise() -> None:
    """Apprise logs URLs (and so their secrets) in some of its messages: keep its log out of ours."""
    apprise_log = logging.getLogger("apprise")
    apprise_log.propagate = False
    if not apprise_log.handlers:  # once: called at every send and check
        apprise_log.addHandler(logging.NullHandler())


def check_url(name: str, url: str) -> None:
    """UsageError, naming `name` and never the URL (it may hold a token), unless apprise can send
    to `url`. Checked offline, as send() adds it: a URL it does not understand is a notification
    that is never sent, found out the night a backup fails."""
    import apprise

    _quiet_apprise()
    if apprise.Apprise().add(url):
        return
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", url)
    why = (f"apprise does not understand it (a {scheme.group(1)}:// URL it does not know, or without what that "
           "service needs)" if scheme else "it is not a URL (SCHEME://...)")
    raise UsageError(f"URL {name}: {why}; give an apprise URL, e.g. mailto://user:password@example.com or "
                     "json://host/path; nothing was saved")


def save_url(name: str, url: str, path: Path | None = None) -> tuple[Path, Path | None]:
    """Add or replace one URL in notify.toml (0600, written atomically); UsageError for one apprise
    does not understand. Returns the file and, when it had comments, where the file as it was is
    kept (`notify.toml.bak`, 0600), as save_config keeps config.toml's.

    The rest of the file stays: the other URLs and any other table in it (a DBA's own notes
    under a key of theirs), under a lock, so that two `schedule url` at once both land; a
    notify.toml that is a symlink (to a secrets mount) is written through, the link kept."""
    import tomli_w

    check_url(name, url)
    path = path or notify_file()
    with paths.locked(path.parent / f".{path.name}.lock"):
        read_urls(path)  # refused as the runs would refuse it: others can read it, it does not parse
        real = paths.written_through(path)
        try:
            before = real.read_bytes()
        except FileNotFoundError:
            before = b""
        document = tomllib.loads(before.decode("utf-8"))
        document["urls"] = {**document.get("urls", {}), name: url}
        kept = paths.rewrite_toml_file(real, before, tomli_w.dumps(document).encode("utf-8"))
    return path, kept


def url_for(name: str, urls: dict[str, str]) -> str | None:
    return os.environ.get(env_name(name)) or urls.get(name)


def unreachable(names: tuple[str, ...] | list[str]) -> str | None:
    """Why some of a schedule's notification names would not be sent now (no URL anywhere, or a
    notify.toml that is refused), or None. Said when the schedule is saved: a failure's
    notification that cannot go is the one nobody hears of."""
    if not names:
        return None
    try:
        urls = read_urls()
    except ConfigError as exc:
        # Only a name the environment does not give needs the file (see send()).
        return None if all(os.environ.get(env_name(name)) for name in names) else str(exc)
    missing = [name for name in names if url_for(name, urls) is None]
    if not missing:
        return None
    return (f"no URL for notification {', '.join(repr(n) for n in missing)} yet: set it with `pgbackup-tui schedule "
            f"url {missing[0]}` (or {env_name(missing[0])} for the runs), or a failed run tells nobody")


@dataclass
class Outcome:
    """What a run tells: the schedule, how it ended, and where to look."""

    schedule: str
    status: str  # succeeded | failed | cancelled
    error: str = ""
    log_path: Path | None = None
    job_id: str = ""
    backup: str = ""
    lines: list[str] = field(default_factory=list)  # what the run did, for a notification's body

    @property
    def title(self) -> str:
        return f"pgbackup-tui: schedule {self.schedule} {self.status}"

    @property
    def body(self) -> str:
        # The error line once: a run's summary line (self.lines) may quote it already.
        parts = [self.error] if self.error and not any(self.error in line for line in self.lines) else []
        parts += self.lines
        if self.log_path and not any(str(self.log_path) in part for part in parts):  # a job's failure names it already
            parts.append(f"log: {self.log_path}")
        return "\n".join(parts) or self.title


# Secrets of ours a hook has no use for: the run's password (a prompt's, passed on to `run`) and
# the notification URLs given by environment (their tokens). The hook's own variables say the rest.
_NOT_FOR_HOOKS = ("PGPASSWORD",)


def hook_environment(outcome: Outcome) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in _NOT_FOR_HOOKS and not key.startswith(ENV_PREFIX)}
    env.update(PGBACKUP_TUI_SCHEDULE=outcome.schedule, PGBACKUP_TUI_STATUS=outcome.status,
               PGBACKUP_TUI_ERROR=outcome.error, PGBACKUP_TUI_LOG=str(outcome.log_path or ""),
               PGBACKUP_TUI_JOB=outcome.job_id, PGBACKUP_TUI_BACKUP=outcome.backup)
    return env


def run_hook(command: str, outcome: Outcome) -> str | None:
    """Run a hook command; None if it succeeded, else one line saying how it failed.

    Its output goes to a file, not a pipe: a hook that leaves a process running in the background
    (`notifier &`) would hold a pipe open, and the run would wait for it until the timeout, then
    say the hook was stopped when it had ended at once. On the timeout its whole process group ends."""
    import tempfile

    try:
        output = tempfile.TemporaryFile()  # noqa: SIM115 - the block below closes it
    except OSError as exc:  # no temp dir, no file descriptor left
        return f"the hook could not start: {exc.strerror or exc}"
    with output:
        try:
            process = subprocess.Popen(["/bin/sh", "-c", command], env=hook_environment(outcome),
                                       stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True)
        except OSError as exc:
            return f"the hook could not start: {exc.strerror or exc}"
        try:
            code = process.wait(timeout=HOOK_TIMEOUT_S)
        except BaseException as exc:  # the timeout, or a Ctrl-C: its own session gets no SIGINT, so end it here
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            if not isinstance(exc, subprocess.TimeoutExpired):
                raise
            return f"the hook did not finish in {HOOK_TIMEOUT_S} s and was stopped"
        if code != 0:
            size = output.seek(0, os.SEEK_END)
            output.seek(max(0, size - 4096))
            said = output.read().decode("utf-8", "replace").strip().splitlines()
            return f"the hook exited {code}" + (f": {said[-1]}" if said else "")
    return None


def send(names: tuple[str, ...] | list[str], outcome: Outcome) -> list[str]:
    """Send `outcome` to each named URL; one line per name (sent, or why not), never the URL."""
    names = list(dict.fromkeys(names))  # `notify = ["ops", "ops"]` (written by hand, or saved so before) paged twice
    if not names:
        return []
    # A URL the environment gives is read before the file and needs none of it: a notify.toml that
    # is refused (others can read it) or broken stops only the names it has to give. It stopped every
    # notification, those of a secrets manager's variables too, on the night a backup failed.
    refused = None
    try:
        urls = read_urls()
    except ConfigError as exc:
        urls, refused = {}, str(exc)
    if refused is not None and not any(os.environ.get(env_name(name)) for name in names):
        return [f"notifications not sent: {refused}"]
    import apprise

    _quiet_apprise()
    report = []
    for name in names:
        from_env = os.environ.get(env_name(name))
        url = url_for(name, urls)
        if url is None:
            report.append(f"notification '{name}' not sent: "
                          + (refused or f"no URL named '{name}' in {notify_file()} or {env_name(name)}"))
            continue
        kinds = {"succeeded": apprise.NotifyType.SUCCESS, "failed": apprise.NotifyType.FAILURE}
        sender = apprise.Apprise()
        if not sender.add(url):
            # Where the URL came from: the variable wins over the file, and sending the DBA to a
            # notify.toml that holds a good URL (or none) hid the variable that was wrong.
            source = f"the variable {env_name(name)}" if from_env else str(notify_file())
            report.append(f"notification '{name}' not sent: apprise does not understand its URL (check it in "
                          f"{source})")
            continue
        try:
            # Our body is plain text: said so, apprise converts it for a service that wants HTML
            # (mailto's default). Unsaid, the mail's text part lost its line breaks and anything
            # between < and > (an error quoting a table or a path).
            # Its type too: a receiver that routes or colours by it tells a failure from a success.
            ok = bool(sender.notify(title=outcome.title, body=outcome.body, body_format=apprise.NotifyFormat.TEXT,
                                    notify_type=kinds.get(outcome.status, apprise.NotifyType.WARNING)))
        except Exception as exc:  # noqa: BLE001 - a plugin's bug must not hide the run's own result
            ok = False
            report.append(f"notification '{name}' failed ({type(exc).__name__})")
            continue
        report.append(f"notification '{name}' sent" if ok else f"notification '{name}' failed to send")
    return report
