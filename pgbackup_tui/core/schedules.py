"""Scheduled backups in config.toml: `[schedules.NAME]` tables, their validation, and next run times.

A schedule names a server profile, what to back up (`what`: a database with the dump options of
`pgbackup-tui dump`, or with pg_dumpall the whole `cluster`, the `globals`, the `roles`, or a
cluster `set`), a cron expression, retention (`keep_last`, `keep_days`, `keep_verified`), an
optional `verify` / `drill` after each run, and notifications (`on_failure` / `on_success`
commands; `notify`: names of URLs kept in notify.toml, never the URLs themselves, see notify.py).

Cron expressions are what Debian's cron runs: five fields (minute hour day-of-month month
day-of-week), numbers, names (jan, mon), `*`, `,`, `-`, `/`, and the @hourly-style macros.
cronsim computes the next runs (it mimics Debian cron, day-of-month/day-of-week "OR" included);
its extensions cron itself does not know (L, W, #, a seconds field) are refused here, so that
what we validate is what crontab will run.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from .defaults import parse_compress
from .errors import ConfigError, PgBackupError, UsageError

if TYPE_CHECKING:
    from .config import Config

SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
WHATS = ("database", "cluster", "globals", "roles", "set")
MAX_KEEP_DAYS = 36_500  # further back than datetime can count from now is no rule at all
MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
          "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}
FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_MONTHS = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}
_DAYS = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}
CRON_HINT = 'five fields: minute hour day-of-month month day-of-week, e.g. cron = "30 2 * * *"'


@dataclass(frozen=True)
class Schedule:
    """One `[schedules.NAME]` table. Never holds a password or a notification URL."""

    name: str
    server: str
    cron: str
    what: str = "database"
    database: str | None = None
    # pg_dump options (what = "database"), as `pgbackup-tui dump` takes them
    format: str = "custom"
    tables: tuple[str, ...] = ()
    schemas: tuple[str, ...] = ()
    exclude_tables: tuple[str, ...] = ()
    # None: as `dump` and `dumpall` choose without --jobs (a directory archive: from the cores and
    # the server's free connections; a set: one database at a time). Was 1, which held a scheduled
    # directory dump to one worker where the same `dump` by hand used every core.
    jobs: int | None = None
    # As `dump --compress` takes it (a cluster set's archives too): a gzip level (an int, the only
    # form config files had before, still read so) or "METHOD[:LEVEL]"; None: dump's measured default.
    compress: int | str | None = None
    schema_only: bool = False
    data_only: bool = False
    no_owner: bool = False
    no_privileges: bool = False
    # pg_dumpall options (cluster / globals / roles / set)
    set_format: str = "custom"
    databases: tuple[str, ...] = ()
    with_role_passwords: bool = False
    # retention: none given = keep everything
    keep_last: int | None = None
    keep_days: int | None = None
    keep_verified: bool = True
    verify: bool = False
    drill: bool = False
    on_failure: str | None = None
    on_success: str | None = None
    notify: tuple[str, ...] = ()
    notify_on_success: bool = False

    def __post_init__(self) -> None:
        # A URL named twice (`--notify ops --notify ops`, the form's "ops, ops", config.toml by hand)
        # is one URL: saved and paged once, whoever made the schedule.
        object.__setattr__(self, "notify", tuple(dict.fromkeys(self.notify)))

    @property
    def describe(self) -> str:
        """What it backs up, in a few words: "shop (custom)", "whole cluster", "cluster set"."""
        if self.what == "database":
            part = (f", {len(self.tables)} table{'s' if len(self.tables) != 1 else ''}" if self.tables else "") + (
                f", {len(self.schemas)} schema{'s' if len(self.schemas) != 1 else ''}" if self.schemas else "") + (
                ", schema only" if self.schema_only else ", data only" if self.data_only else "")
            return f"{self.database} ({self.format}{part}{self.compress_part})"
        return {"cluster": "whole cluster", "globals": "roles and tablespaces", "roles": "roles",
                "set": f"cluster set ({self.set_format}{self.compress_part})"}[self.what]

    @property
    def compress_part(self) -> str:
        """', compress zstd:3' as describe shows it ('' for the default): the value as written in
        config.toml and typed in the form, so that what the list shows is what the form holds."""
        return "" if self.compress is None else f", compress {compress_text(self.compress)}"

    @property
    def retention_text(self) -> str:
        parts = []
        if self.keep_last is not None:
            parts.append(f"last {self.keep_last}")
        if self.keep_days is not None:
            parts.append(f"{self.keep_days} days")
        if not parts:
            return "keep all"
        return "keep " + " + ".join(parts) + (" + newest verified" if self.keep_verified else "")

    def to_toml(self) -> dict[str, Any]:
        """The table as written to config.toml: only what differs from the defaults."""
        defaults = Schedule(name="", server="", cron="")
        body: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "name" or (f.name not in ("server", "cron") and value == getattr(defaults, f.name)):
                continue
            body[f.name] = list(value) if isinstance(value, tuple) else value
        return body


_TEXT = ("server", "cron", "what", "database", "format", "set_format", "on_failure", "on_success")
_LISTS = ("tables", "schemas", "exclude_tables", "databases", "notify")
_INTS = ("jobs", "keep_last", "keep_days")
_BOOLS = ("schema_only", "data_only", "no_owner", "no_privileges", "with_role_passwords", "keep_verified",
          "verify", "drill", "notify_on_success")


def schedule_from_toml(name: str, body: dict[str, Any], where: str) -> Schedule:
    """A Schedule from its TOML table; ConfigError naming `where` and the key for anything wrong."""
    allowed = {f.name for f in fields(Schedule)} - {"name"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    values: dict[str, Any] = {}
    for key, value in body.items():
        if key in _TEXT and not isinstance(value, str):
            raise ConfigError(f'{where}: {key} must be text in quotes, e.g. {key} = "..."')
        if key in _LISTS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f'{where}: {key} must be a list of text, e.g. {key} = ["a", "b"]')
            value = tuple(value)
        if key in _INTS and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{where}: {key} must be a whole number, e.g. {key} = 3")
        if key in _BOOLS and not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} must be true or false")
        if key == "compress":
            value = read_compress(value, where)
        values[key] = value
    for required in ("server", "cron"):
        if required not in values:
            raise ConfigError(f'{where}: {required} is missing, e.g. {required} = '
                              + ('"prod"' if required == "server" else '"30 2 * * *"'))
    return validate_schedule(Schedule(name=name, **values), where)


def compress_text(spec: int | str | None) -> str:
    """A schedule's compress as `schedule list`, the Schedules tab and the form show it ('' for None):
    the form reads the text back to the same value (a gzip level stays a level)."""
    return "" if spec is None else str(spec)


def read_compress(value: Any, where: str) -> int | str:
    """config.toml's `compress` (or the form's text), as dump's --compress takes it: a gzip level
    0-9 (an int, as older files have it) or "METHOD[:LEVEL]"; ConfigError naming `where` otherwise.
    Whether the schedule's pg_dump has the method is asked when it is saved and when it runs."""
    hint = 'a gzip level 0-9, or "gzip|lz4|zstd[:LEVEL]" or "none" in quotes, e.g. compress = "zstd:3"'
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{where}: compress must be {hint}")
    shown = value if isinstance(value, int) else f'"{value}"'
    if isinstance(value, int) and not 0 <= value <= 9:
        raise ConfigError(f"{where}: compress = {shown}: a gzip level is 0 to 9; or give a method: {hint}")
    try:
        return parse_compress(str(value))
    except UsageError as exc:
        reason = str(exc).split(": ", 1)[-1]
        raise ConfigError(f"{where}: compress = {shown}: {reason}") from None


def validate_schedule(schedule: Schedule, where: str | None = None) -> Schedule:
    """Raise ConfigError (one line, naming `where` and the key) unless the schedule can run."""
    where = where or f"schedule '{schedule.name}'"
    if not SCHEDULE_NAME.match(schedule.name):
        raise ConfigError(f"{where}: a schedule name is ASCII letters, digits, '_', '-', '.' (up to 63), "
                          "starting with a letter or digit")
    check_cron(schedule.cron, where)
    if schedule.what not in WHATS:
        raise ConfigError(f"{where}: what = {schedule.what!r} is not one of {', '.join(WHATS)}")
    if (schedule.what == "database") != (schedule.database is not None):
        raise ConfigError(f'{where}: database = "NAME" goes with what = "database" (the default) and only with it')
    for key in ("keep_last", "keep_days"):
        value = getattr(schedule, key)
        if value is not None and value < 1:
            raise ConfigError(f"{where}: {key} = {value}: keep at least 1 (leave it out to keep every backup)")
    if schedule.keep_days is not None and schedule.keep_days > MAX_KEEP_DAYS:
        raise ConfigError(f"{where}: keep_days = {schedule.keep_days}: at most {MAX_KEEP_DAYS} (100 years); "
                          "leave it out to keep every backup")
    if schedule.drill and schedule.what != "database":
        raise ConfigError(f"{where}: drill = true restores one database; a {schedule.what} backup cannot be drilled "
                          "(use verify = true)")
    if schedule.drill and schedule.data_only:
        raise ConfigError(f"{where}: drill = true restores into a scratch database, which a data-only backup has no "
                          "tables for (use verify = true)")
    for key in ("on_failure", "on_success"):
        if getattr(schedule, key) is not None and not getattr(schedule, key).strip():
            raise ConfigError(f"{where}: {key} is empty; give a command or leave the key out")
    for name in schedule.notify:
        if not SCHEDULE_NAME.match(name):
            # A URL given here carries its token or password: not repeated in the error (nor in a log).
            shown = "a URL" if "://" in name or "@" in name else repr(name)
            raise ConfigError(f"{where}: notify = [{shown}]: name a URL kept in notify.toml "
                              "(letters, digits, '_', '-', '.'), never the URL itself")
    try:
        build_plan(schedule, None)
    except PgBackupError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return schedule


def check_cron(expression: str, where: str = "cron") -> str:
    """The five-field expression cronsim reads for `expression` (macros expanded); ConfigError
    naming the field otherwise."""
    text = expression.strip()
    if text.lower() == "@reboot":
        raise ConfigError(f'{where}: cron = "@reboot" has no next run time; give a time, e.g. "30 2 * * *"')
    text = MACROS.get(text.lower(), text)
    parts = text.split()
    if len(parts) != 5:
        raise ConfigError(f'{where}: cron = "{expression}" has {len(parts)} field(s); {CRON_HINT}')
    for index, part in enumerate(parts):
        for token in re.split(r"[,/-]", part.upper()):
            names = _MONTHS if index == 3 else _DAYS if index == 4 else set()
            if token == "*" or token.isdigit() or token in names:
                continue
            raise ConfigError(f'{where}: cron = "{expression}": the {FIELD_NAMES[index]} field "{part}" is not '
                              f"something cron understands; {CRON_HINT}")
    try:
        CronSim(text, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        field_name = str(exc).removeprefix("Bad ").strip()
        raise ConfigError(f'{where}: cron = "{expression}": bad {field_name} field; {CRON_HINT}') from None
    return text


DAY_NAMES = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


def cron_fields(text: str) -> tuple[set[int], set[int], set[int], set[int], set[int]]:
    """Minutes, hours, days of month, months and days of week (0 = Sunday) a checked expression names."""
    sim = CronSim(text, datetime(2000, 1, 1, tzinfo=UTC))
    weekdays = {int(d) % 7 for d in sim.weekdays if isinstance(d, int)}
    return set(sim.minutes), set(sim.hours), set(sim.days), set(sim.months), weekdays


CRON_ZONE_ENV = "PGBACKUP_TUI_CRON_ZONE"


def local_zone() -> tzinfo:
    """The time zone cron runs the schedules in: this machine's (/etc/localtime's zone, else
    /etc/timezone), else its fixed offset now; PGBACKUP_TUI_CRON_ZONE names another (a cron daemon
    started with TZ set). Not the shell's TZ: the daemon does not have it, and a DBA's TZ would
    have `schedule next` say 02:30 New York time for a line cron runs at 02:30 UTC.

    A PGBACKUP_TUI_CRON_ZONE that is no IANA zone is a UsageError naming it: passed over for
    the machine's zone, every time shown would be off by the difference, without a word."""
    given = os.environ.get(CRON_ZONE_ENV, "")
    if given.strip():
        try:
            return ZoneInfo(given.strip().lstrip(":"))
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise UsageError(f"{CRON_ZONE_ENV}={given!r} is not a time zone; give an IANA name the cron daemon runs "
                             "in (e.g. Europe/Berlin, America/New_York, UTC), or unset it for this machine's") from None
    candidates = []
    try:
        link = os.readlink("/etc/localtime")
        candidates.append(link.split("zoneinfo/", 1)[1] if "zoneinfo/" in link else "")
    except OSError:
        pass
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    for name in candidates:
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return datetime.now().astimezone().tzinfo or UTC


def next_runs(expression: str, after: datetime, count: int = 1, zone: tzinfo | None = None) -> list[datetime]:
    """The next `count` run times of `expression` after `after`, as cron in `zone` (default: local) runs it."""
    zone = zone or local_zone()
    text = check_cron(expression)
    sim = CronSim(text, after.astimezone(zone))
    return [next(sim) for _ in range(count)]


def build_plan(schedule: Schedule, target: Any) -> Any:
    """The DumpPlan or DumpallPlan this schedule runs on `target` (validated). With `target` None a
    placeholder target is used: only to validate the options when the config is read."""
    from .cluster_plans import DumpallPlan
    from .connect import Target
    from .identifiers import parse_qualified_name, parse_schema_name
    from .plans import DumpPlan

    target = target or Target(label=schedule.server, params_items=())
    if schedule.what == "database":
        assert schedule.database is not None  # validate_schedule
        plan: Any = DumpPlan(
            target=target, dbname=schedule.database, format=schedule.format,  # type: ignore[arg-type]
            tables=tuple(parse_qualified_name(t) for t in schedule.tables),
            schemas=tuple(parse_schema_name(s) for s in schedule.schemas),
            exclude_tables=tuple(parse_qualified_name(t) for t in schedule.exclude_tables),
            jobs=schedule.jobs, compress=schedule.compress, schema_only=schedule.schema_only,
            data_only=schedule.data_only, no_owner=schedule.no_owner, no_privileges=schedule.no_privileges)
    else:
        plan = DumpallPlan(
            target=target, globals_only=schedule.what == "globals", roles_only=schedule.what == "roles",
            with_role_passwords=schedule.with_role_passwords,
            set_format=schedule.set_format if schedule.what == "set" else None,
            jobs=1 if schedule.jobs is None else schedule.jobs, compress=schedule.compress,
            databases=schedule.databases)
    plan.validate()
    return plan


def schedules_from_toml(raw: Any, path: Path,
                        servers: set[str]) -> tuple[dict[str, Schedule], dict[str, tuple[Any, str]]]:
    """Every `[schedules.NAME]` of config.toml: (the good ones, the broken ones as {name: (their
    table as written, the ConfigError's line naming the file, the table and the key)}). A broken
    schedule fails only what uses it (`run` of it, `schedule install`): one bad table must not stop
    every other schedule's backups. It is written back as it was."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: [schedules] must be a table of schedules, e.g. [schedules.nightly]")
    found: dict[str, Schedule] = {}
    broken: dict[str, tuple[Any, str]] = {}
    for name, body in raw.items():
        where = f"{path}: [schedules.{name}]"
        try:
            if not isinstance(body, dict):
                raise ConfigError(f"{where} must be a table")
            schedule = schedule_from_toml(name, body, where)
            if schedule.server not in servers:
                known = ", ".join(sorted(servers)) or "none yet"
                raise ConfigError(f"{where}: server = {schedule.server!r} is no server profile (known: {known})")
        except ConfigError as exc:
            broken[name] = (body, str(exc))
            continue
        found[name] = schedule
    return found, broken


def find_schedule(config: Config, name: str) -> Schedule:
    """The schedule called `name` in `config`; ConfigError listing the known ones otherwise."""
    if name in config.broken_schedules:
        raise ConfigError(config.broken_schedules[name][1])
    try:
        return config.schedules[name]
    except KeyError:
        # Which file was read: cron mailed "no schedule named 'nightly' (known: none yet…)" for a
        # home moved or removed since `schedule install` (its line names it), or a line that reads
        # another config than the DBA's, and nothing said where it had looked.
        if config.path is not None and not config.path.exists():
            raise ConfigError(f"no schedule named '{name}': there is no {config.path} (moved or removed? a crontab "
                              "line reads the config home it names; install again from the right one)") from None
        broken = [f"{other} (does not load)" for other in config.broken_schedules]  # there, to be mended
        known = ", ".join([*config.schedules, *broken]) or "none yet; add one with `pgbackup-tui schedule add`"
        where = f" in {config.path}" if config.path is not None else ""
        raise ConfigError(f"no schedule named '{name}'{where} (known: {known})") from None


def put_schedule(config: Config, schedule: Schedule, *, replace_existing: bool = False) -> None:
    """Add (or with `replace_existing`, replace) a validated schedule in `config` (not saved here)."""
    validate_schedule(schedule)
    if schedule.server in config.broken_servers and schedule.server not in config.servers:
        raise ConfigError(f"schedule '{schedule.name}': {config.broken_servers[schedule.server][1]}")
    if schedule.server not in config.servers:
        raise ConfigError(f"schedule '{schedule.name}': no server named '{schedule.server}' "
                          "(add it first: pgbackup-tui servers add)")
    if (schedule.name in config.schedules or schedule.name in config.broken_schedules) and not replace_existing:
        raise ConfigError(f"schedule '{schedule.name}' already exists; remove it first, or add --replace")
    config.broken_schedules.pop(schedule.name, None)  # replaced by a good one
    config.schedules[schedule.name] = schedule


def schedules_for_servers(path: Path | None, servers: set[str] | list[str],
                          renamed: tuple[str, str] | None = None
                          ) -> tuple[dict[str, Schedule], dict[str, tuple[Any, str]]]:
    """The schedules in the config file at `path`, for a config about to be written with `servers`
    (a front that changes servers writes these back, so schedules added meanwhile are kept): a
    renamed server's schedules follow it; a server a schedule still uses cannot go. With the broken
    ones, written back as they are."""
    from .config import load_config

    kept = {}
    on_disk = load_config(path)
    for name, schedule in on_disk.schedules.items():
        if renamed is not None and schedule.server == renamed[0]:
            schedule = replace(schedule, server=renamed[1])
        if schedule.server not in servers:
            raise ConfigError(f"schedule '{name}' backs up server '{schedule.server}'; remove the schedule first "
                              f"(pgbackup-tui schedule remove {name})")
        kept[name] = schedule
    return kept, on_disk.broken_schedules
