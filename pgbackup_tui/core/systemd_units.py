"""Putting schedules where systemd runs them, where there is no crontab: a user timer + service
per schedule, running the same command a crontab line would (crontab.py), in the user's unit dir.

Each service names its config folder in its Environment= (PGBACKUP_TUI_HOME, XDG_CONFIG_HOME): the
units of another config home are told apart by it and left alone, as crontab blocks are.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from pathlib import Path

from . import paths
from .config import Config
from .crontab import config_dir_named, environment, executable, refuse_broken
from .errors import UsageError
from .schedules import DAY_NAMES, check_cron, cron_fields

UNIT_PREFIX = "pgbackup-tui-"


def systemd_user_dir() -> Path:
    """Where a user's systemd manager reads units: XDG_CONFIG_HOME's, passed over when it is not an
    absolute path (as the XDG spec says, and platformdirs does), else ~/.config's."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    return Path(base if posixpath.isabs(base) else Path.home() / ".config") / "systemd" / "user"


def _values(values: set[int], full: range, width: int = 0) -> str:
    if set(values) >= set(full):
        return "*"
    return ",".join(f"{v:0{width}d}" for v in sorted(values))


def on_calendar(expression: str) -> list[str]:
    """systemd OnCalendar= lines equal to a cron expression. Cron ORs a restricted day-of-month
    with a restricted day-of-week; systemd ANDs them: then two lines (a timer fires on either)."""
    text = check_cron(expression)
    minutes, hours, days, months, weekdays = cron_fields(text)
    when = f"{_values(hours, range(24), 2)}:{_values(minutes, range(60), 2)}:00"
    month = _values(months, range(1, 13), 2)
    dom = _values(days, range(1, 32), 2)
    dow = "" if set(weekdays) >= set(range(7)) else ",".join(DAY_NAMES[d] for d in sorted(weekdays)) + " "
    dom_field, dow_field = text.split()[2], text.split()[4]
    if dom_field.startswith("*") or dow_field.startswith("*"):
        return [f"{dow}*-{month}-{dom} {when}"]
    return [f"*-{month}-{dom} {when}", f"{dow}*-{month}-* {when}"]


def _systemd_quote(value: str, *, command: bool = False) -> str:
    """`value` as one quoted word of a unit file: systemd expands `%` specifiers in Environment= and
    ExecStart= (a home `/srv/backups 100%` was ignored, "Failed to resolve specifiers"; `%h` became
    the home folder), and `$NAME` in ExecStart= (a venv under `/opt/$app`)."""
    value = value.replace("%", "%%")
    if command:
        value = value.replace("$", "$$")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_units(config: Config) -> dict[str, str]:
    """File name -> text of a .service and a .timer per schedule."""
    refuse_broken(config)
    units = {}
    env = " ".join(_systemd_quote(f"{k}={v}") for k, v in environment().items())
    for schedule in config.schedules.values():
        base = f"{UNIT_PREFIX}{schedule.name}"
        exec_start = " ".join(_systemd_quote(a, command=True) for a in [*executable(), "run", schedule.name])
        units[f"{base}.service"] = (
            f"[Unit]\nDescription=pgbackup-tui schedule {schedule.name}\n\n"
            f"[Service]\nType=oneshot\nEnvironment={env}\nExecStart={exec_start}\n")
        calendars = "".join(f"OnCalendar={line}\n" for line in on_calendar(schedule.cron))
        units[f"{base}.timer"] = (
            f"[Unit]\nDescription=pgbackup-tui schedule {schedule.name} ({schedule.cron})\n\n"
            f"[Timer]\n{calendars}Persistent=true\n\n[Install]\nWantedBy=timers.target\n")
    return units


def write_systemd_units(config: Config, folder: Path | None = None) -> list[Path]:
    """Write the units (0600) into the user's unit dir; remove ours of schedules that are gone.
    Units of another config home (their service's Environment= names another config folder) are
    left alone, as crontab blocks are: a second home's install removed the first one's timers as
    stale, and a schedule of the same name in both is refused, not written over the other's."""
    folder = folder or systemd_user_dir()
    units = systemd_units(config)
    ours = _our_config_folder()
    for name in units:
        if not name.endswith(".service"):
            continue  # its .timer is the service's: read once
        home = _unit_home(folder, name)
        if home is not None and home != ours:
            raise UsageError(f"{folder / name} runs a schedule of another config ({home}); give this config's "
                             f"schedule another name, or uninstall that config's units first; nothing was written")
    written = []
    for name, text in units.items():
        path = folder / name
        paths.write_private_file(path, text.encode("utf-8"))
        written.append(path)
    for stale in our_units(folder, ours):
        if stale.name not in units:
            stale.unlink()
    return written


def our_units(folder: Path | None = None, ours: str | None = None) -> list[Path]:
    """This config home's unit files in `folder` (the user's unit dir): what an install with no
    schedule left removes. `ours`: this config's folder (_our_config_folder), where known."""
    folder = folder or systemd_user_dir()
    ours = ours or _our_config_folder()
    found = [unit for unit in (sorted(folder.glob(f"{UNIT_PREFIX}*")) if folder.is_dir() else [])
             if unit.suffix in (".service", ".timer")]
    homes = {stem: _unit_home(folder, f"{stem}.service") for stem in {unit.stem for unit in found}}
    return [unit for unit in found if homes[unit.stem] in (None, ours)]


def _our_config_folder() -> str:
    """The config folder (real path) this home's units name."""
    return os.path.realpath(config_dir_named(environment()))


def _unit_home(folder: Path, name: str) -> str | None:
    """The config folder (real path) that the schedule unit `name` (a .service or its .timer) of
    `folder` runs, read from the service's Environment=; None when there is none to read."""
    try:
        text = (folder / f"{Path(name).stem}.service").read_text(encoding="utf-8")
        line = next(line for line in text.splitlines() if line.startswith("Environment="))
        words = shlex.split(line.removeprefix("Environment="))  # _systemd_quote's words
    except (OSError, UnicodeDecodeError, StopIteration, ValueError):
        return None
    assignments = {key: value.replace("%%", "%") for key, _, value in (word.partition("=") for word in words)}
    return os.path.realpath(config_dir_named(assignments))
