"""Putting schedules where the system runs them: a marked block in the user's crontab, or systemd units.

The block sits between BEGIN and END; install replaces only that block (in place, or appended
at the end), so lines of the user's own are kept byte for byte, and installing twice changes
nothing. A crontab may hold one block per config home (PGBACKUP_TUI_HOME, or XDG_CONFIG_HOME): each
replaces its own.
Each line runs `<python> -m pgbackup_tui run NAME` with the absolute path of this
interpreter (the virtualenv's, not resolved through its symlink), with PGBACKUP_TUI_HOME when set
and a PATH that finds the client tools, inline (an assignment line in a crontab would also change
the user's own lines after it). stdout goes to /dev/null: cron mails what a run prints on stderr,
which is the one error line of a failed run.

The crontab command is `crontab`, or what PGBACKUP_TUI_CRONTAB says (e.g. `crontab -u postgres`,
for root installing another user's schedules; the tests point it at a throwaway user's crontab).
Where there is no crontab: the same commands as a systemd user timer + service per schedule
(systemd_units.py).
"""

from __future__ import annotations

import os
import posixpath
import pwd
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from . import paths
from .config import Config
from .errors import ConfigError, UsageError
from .schedules import Schedule

BEGIN = "# >>> pgbackup-tui schedules >>>"
END = "# <<< pgbackup-tui schedules <<<"
NOTE = "# written by `pgbackup-tui schedule install`; edits between these markers are replaced"
CRONTAB_ENV = "PGBACKUP_TUI_CRONTAB"
BASE_PATH = ("/usr/local/bin", "/usr/bin", "/bin")


def crontab_argv() -> list[str]:
    """The crontab command: PGBACKUP_TUI_CRONTAB's when it is set, else `crontab`. A value that
    names no program is a UsageError naming the variable: taken for "no crontab here", it had
    `schedule install` print systemd units and exit 0 with nothing installed."""
    given = os.environ.get(CRONTAB_ENV)
    if not given:
        return ["crontab"]
    try:
        argv = shlex.split(given)
    except ValueError as exc:
        raise UsageError(f"{CRONTAB_ENV}={given!r} does not read as a command ({exc}); give the crontab command, "
                         f"e.g. {CRONTAB_ENV}='crontab -u postgres', or unset it") from None
    if not argv or shutil.which(argv[0]) is None:
        program = argv[0] if argv else ""
        raise UsageError(f"{CRONTAB_ENV}={given!r}: no program {program!r} here (not found, or not executable); give "
                         f"the crontab command, e.g. {CRONTAB_ENV}='crontab -u postgres', or unset it")
    return argv


def crontab_available() -> bool:
    """Whether schedules go into a crontab: PGBACKUP_TUI_CRONTAB's (UsageError when it names no
    program: never taken for "no crontab, use systemd"), else `crontab` on PATH."""
    return shutil.which(crontab_argv()[0]) is not None


def _crontab_said(*args: str) -> str:
    """How messages name the crontab command run with `args`: with the variable that chose it, when one did."""
    command = shlex.join([*crontab_argv(), *args])
    return f"{CRONTAB_ENV}={os.environ[CRONTAB_ENV]!r}: `{command}`" if os.environ.get(CRONTAB_ENV) else f"`{command}`"


def executable() -> list[str]:
    """How cron starts us: this interpreter's absolute path (not resolved: a venv's python is a symlink)."""
    return [str(Path(sys.executable).absolute()), "-m", "pgbackup_tui"]


def tools_path() -> str:
    """PATH for scheduled runs: the folders of PATH that hold pg_dump (pgtools also looks in
    /usr/lib/postgresql/*/bin and the profiles' bin_dir), then the system's own."""
    found = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if folder and folder not in found and (Path(folder) / "pg_dump").exists():
            found.append(folder)
    return os.pathsep.join(found + [f for f in BASE_PATH if f not in found])


# Where platformdirs puts the config, backups, logs and state when PGBACKUP_TUI_HOME is not set.
# Cron (and a systemd user manager) has none of a login shell's: a line without them read
# ~/.config's config, not this one, and every run failed with "no schedule named …".
XDG_VARIABLES = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")
# Where libpq finds the password file and the services: a DBA's PGPASSFILE made `schedule add`'s
# check and a run by hand succeed, and every run of cron fail ("no password supplied"). Names of
# files only: PGPASSWORD, the password itself, is never written on a line.
LIBPQ_FILE_VARIABLES = ("PGPASSFILE", "PGSERVICEFILE", "PGSYSCONFDIR")
# How libpq secures a connection, when the shell says it: a DBA's PGSSLMODE=verify-full (with their
# PGSSLROOTCERT) made `servers test` and `schedule add`'s check refuse a server whose certificate
# did not verify, while every run of cron connected to it unverified (libpq's default, prefer) and
# backed it up. Carried as set; the files among them as whole paths (cron starts in the home folder).
LIBPQ_TLS_FILE_VARIABLES = ("PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "PGSSLCRL", "PGSSLCRLDIR")
LIBPQ_TLS_VARIABLES = ("PGSSLMODE", "PGREQUIRESSL", "PGSSLNEGOTIATION", "PGSSLCERTMODE", "PGSSLMINPROTOCOLVERSION",
                       "PGSSLMAXPROTOCOLVERSION", "PGGSSENCMODE", "PGCHANNELBINDING", "PGREQUIREAUTH")
# Where and as whom libpq connects when a profile does not say (a DSN without host, port or user):
# with PGHOST, PGPORT and PGUSER in the DBA's shell, `servers test` and the schedule's check reached
# the server, and every run of cron went to the local socket on 5432 (failing, or backing up another
# server than the one checked) as the account's own user. Carried as set, like the TLS ones.
LIBPQ_WHERE_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE", "PGCONNECT_TIMEOUT",
                         "PGTARGETSESSIONATTRS", "PGLOADBALANCEHOSTS", "PGOPTIONS")


def environment() -> dict[str, str]:
    env = {}
    home = os.environ.get(paths.HOME_ENV)
    if home:
        env[paths.HOME_ENV] = str(Path(home).expanduser().absolute())
    else:
        # Only those platformdirs reads: an absolute path (a relative one is passed over, here and in cron).
        env |= {name: os.environ[name] for name in XDG_VARIABLES if posixpath.isabs(os.environ.get(name, ""))}
    env |= {name: str(Path(os.environ[name]).expanduser().absolute()) for name in LIBPQ_FILE_VARIABLES
            if os.environ.get(name, "").strip()}
    env |= {name: _tls_file(name, os.environ[name]) for name in LIBPQ_TLS_FILE_VARIABLES
            if os.environ.get(name, "").strip()}
    env |= {name: os.environ[name] for name in (*LIBPQ_TLS_VARIABLES, *LIBPQ_WHERE_VARIABLES)
            if os.environ.get(name, "").strip()}
    env["PATH"] = tools_path()
    return env


def _tls_file(name: str, value: str) -> str:
    """A TLS file variable's value for a line: a whole path, but `system` (the system's roots, for
    PGSSLROOTCERT) and an OpenSSL engine's key (ENGINE:KEY, for PGSSLKEY), which are no paths."""
    if (name == "PGSSLROOTCERT" and value == "system") or (name == "PGSSLKEY" and ":" in value and
                                                            not value.startswith(("/", "~", "."))):
        return value
    return str(Path(value).expanduser().absolute())


def command_line(schedule: Schedule) -> str:
    """The shell command that runs `schedule` (cron's % escaped: cron reads it as a newline)."""
    assignments = [f"{key}={shlex.quote(value)}" for key, value in environment().items()]
    argv = [*executable(), "run", schedule.name]
    text = " ".join([*assignments, *(shlex.quote(a) for a in argv), ">/dev/null"])
    return text.replace("%", "\\%")


def refuse_broken(config: Config) -> None:
    """A schedule that does not load would lose its line and never run: mended first, whatever the front."""
    if config.broken_schedules:
        raise ConfigError(f"{len(config.broken_schedules)} schedule(s) of {config.path} do not load "
                          f"({next(iter(config.broken_schedules.values()))[1]}); mend or remove them, then "
                          "install again; nothing was changed")


def crontab_block(config: Config) -> list[str]:
    """The lines of the marked block for every schedule in `config` (empty: no block at all)."""
    refuse_broken(config)
    if not config.schedules:
        return []
    if os.environ.get(CRONTAB_ENV) and not os.environ.get(paths.HOME_ENV):
        # Another user's crontab (`crontab -u postgres`): its lines would read that user's own
        # config, where these schedules are not, and fail every night.
        raise UsageError(f"{CRONTAB_ENV} names another crontab: set {paths.HOME_ENV} to the folder of this "
                         f"config (one that user can read), so that its lines find their schedules")
    lines = [BEGIN, NOTE]
    for schedule in config.schedules.values():
        cron = schedule.cron.strip()
        cron = cron.lower() if cron.startswith("@") else cron  # cron knows @daily, not @DAILY (cronsim reads both)
        lines.append(f"{cron} {command_line(schedule)}")
    lines.append(END)
    return lines


def merge(existing: str, block: list[str]) -> str:
    """`existing` crontab text with this config's block replaced by `block` (removed when empty);
    other lines kept, and so are the blocks of other configs (another home's schedules, installed
    into the same crontab: one block per home, told apart by the config folder their lines name)."""
    lines = existing.splitlines()
    ours = [(start, end) for start, end in _blocks(lines) if _is_ours(lines[start:end + 1])]
    # A second block of this home (one copied by hand, or written by a version that took the home by
    # a symlink's path for another) ran each schedule twice, and install replaced the first only:
    # the first is replaced, the others go (last first, so that the first one's place holds).
    for start, end in reversed(ours[1:]):
        del lines[start:end + 1]
    if ours:
        lines[ours[0][0]:ours[0][1] + 1] = block
    else:
        lines += block
    return "\n".join(lines) + "\n" if lines else ""


def _blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(first, last) line of every marked block. A start marker again before the end marker (a
    block pasted into another by hand) is refused: the two would overlap, and replacing them took
    the lines after them too (review)."""
    found, start = [], None
    for index, line in enumerate(lines):
        marker = line.strip()
        if marker == BEGIN:
            if start is not None:
                raise UsageError(f"the crontab has our start marker ({BEGIN!r}) on lines {start + 1} and {index + 1} "
                                 f"with no end marker between them; fix it with crontab -e")
            start = index
        elif marker == END and start is not None:
            found.append((start, index))
            start = None
    if start is not None:
        raise UsageError(f"the crontab has our start marker but no end marker ({END!r}); fix it with crontab -e")
    return found


def _is_ours(block: list[str]) -> bool:
    """Whether a block runs this config's schedules: its lines name the config folder this home's
    lines name (PGBACKUP_TUI_HOME, else XDG_CONFIG_HOME's pgbackup-tui, else ~/.config's). Homes
    set through XDG variables alone were all taken for the default one: a second one's install
    replaced the first one's block, and its uninstall removed it. The same folder by another path
    (a symlink) is this home too: otherwise a second block would run every schedule twice."""
    ours = os.path.realpath(config_dir_named(environment()))
    # A line without a home of its own reads the default one of the crontab's user, as cron runs it:
    # root's `schedule uninstall` into `crontab -u postgres` took postgres's own block for root's.
    cron_home = _crontab_user_home()
    commands = [line for line in block if line.strip() and not line.lstrip().startswith("#")]
    folders = {config_dir_named(_line_assignments(line), cron_home) for line in commands}
    # Lines a DBA commented out to pause them still say whose they are, where they name a home
    # (the markers and the note name none): such a block was taken for the default home's (review).
    paused = (_line_assignments(line.lstrip().lstrip("#")) for line in block if line.lstrip().startswith("#"))
    folders |= {config_dir_named(assignments, cron_home) for assignments in paused if assignments}
    # A block without a line (emptied by hand) reads no config: taken for the default home's, as before.
    folders = folders or {config_dir_named({}, cron_home)}
    return any(os.path.realpath(folder) == ours for folder in folders)


def config_dir_named(assignments: dict[str, str], user_home: str | None = None) -> str:
    """The config folder that a line with these assignments reads (paths.config_dir): without a
    home of their own, the default one under `user_home` (default: ours, the installing shell's)."""
    if assignments.get(paths.HOME_ENV):
        return assignments[paths.HOME_ENV]
    if posixpath.isabs(assignments.get("XDG_CONFIG_HOME", "")):  # platformdirs passes a relative one over
        return str(Path(assignments["XDG_CONFIG_HOME"]) / paths.APP_NAME)
    return str(Path(user_home or Path.home()) / ".config" / paths.APP_NAME)


def _crontab_user_home() -> str:
    """The home folder of the crontab's user (cron starts its lines there): ours, or that of the
    user PGBACKUP_TUI_CRONTAB names (`crontab -u NAME`)."""
    user = other_user()
    try:
        return pwd.getpwnam(user).pw_dir if user else str(Path.home())
    except KeyError:  # crontab -u says so itself
        return str(Path.home())


def _line_assignments(line: str) -> dict[str, str]:
    """The PGBACKUP_TUI_HOME and XDG_CONFIG_HOME a crontab line sets (command_line's assignments)."""
    found: dict[str, str] = {}
    for name in (paths.HOME_ENV, "XDG_CONFIG_HOME"):
        at = line.find(f"{name}=")
        if at < 0 or (at > 0 and not line[at - 1].isspace()):
            continue
        try:
            assignment = shlex.split(line[at:].replace("\\%", "%"))[0]
        except (ValueError, IndexError):  # an edited line: not one of ours to match
            continue
        found[name] = assignment.partition("=")[2]
    return found


def read_crontab() -> str:
    """The user's crontab ('' when they have none)."""
    argv = crontab_argv()
    done = subprocess.run([*argv, "-l"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        if "no crontab for" in done.stderr:
            return ""
        raise UsageError(f"{_crontab_said('-l')} failed: {_what_it_said(done)}; nothing was changed")
    return done.stdout


# Lines of a refusal kept in our one line: crontab says why in its first lines, a wrapper may say more.
SAID_LINES = 4


def _what_it_said(done: subprocess.CompletedProcess[str]) -> str:
    """A refusing crontab's stderr as one line: every line of it, first ones first. Its last line
    alone was kept, and that is the one that does not say why: `errors in crontab file, can't
    install.` after `"-":3: bad minute` (or `command too long`), `See crontab(1) for more
    information` after `You (dba) are not allowed to use this program` (cron.deny)."""
    lines = [line.strip().rstrip(".") for line in done.stderr.splitlines() if line.strip()]
    if len(lines) > SAID_LINES:
        lines = [*lines[:SAID_LINES - 1], "…", lines[-1]]
    return "; ".join(lines) if lines else f"exit {done.returncode}"


def write_crontab(text: str, block: list[str]) -> None:
    """Install `text` as the crontab, then read it back: a command that takes it and keeps nothing
    (PGBACKUP_TUI_CRONTAB set to `true`, `cat`, a script) must not have install say it is written.
    Only our block is compared: a crontab may add its own header."""
    argv = crontab_argv()
    done = subprocess.run([*argv, "-"], input=text, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise UsageError(f"{_crontab_said('-')} refused the new crontab: {_what_it_said(done)}; nothing was changed")
    try:
        kept = read_crontab()
        holds_it = merge(kept, block).splitlines() == kept.splitlines()  # our block as written, or none
    except UsageError:
        holds_it = False
    if not holds_it:
        raise UsageError(f"{_crontab_said('-')} took the new crontab, but `{shlex.join([*argv, '-l'])}` does not show "
                         "it: not a crontab command? The schedules are not installed")


def other_user() -> str | None:
    """The user whose crontab PGBACKUP_TUI_CRONTAB names (`crontab -u NAME`), when not ourselves."""
    argv = crontab_argv()
    name = next((argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "-u"), None)
    if name is None:
        return None
    try:
        return None if pwd.getpwnam(name).pw_uid == os.geteuid() else name
    except KeyError:
        return name  # crontab says so itself


def cannot_run_as(user: str, config_path: Path) -> str | None:
    """Why `user`'s cron could not run our lines (this interpreter, this config), or None: tried as
    that user, as root installing another user's crontab can (a venv under /root, a 0700 home)."""
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        return None  # crontab -u refuses an unknown user itself, by name
    script = ('test -r "$1" || { echo "cannot read $1"; exit 1; }; '
              'out=$("$2" -c "import pgbackup_tui.cli" 2>&1) || '
              '{ echo "cannot run $2: $(echo "$out" | tail -n 1)"; exit 1; }')
    try:
        done = subprocess.run(["/bin/sh", "-c", script, "sh", str(config_path), executable()[0]],
                              capture_output=True, text=True, check=False, timeout=30, stdin=subprocess.DEVNULL,
                              user=account.pw_uid, group=account.pw_gid, extra_groups=[],
                              env={"PATH": tools_path(), "HOME": "/"}, cwd="/")
    except (OSError, subprocess.SubprocessError):
        return None  # we cannot act as that user (not root): crontab -u says what it thinks itself
    if done.returncode == 0:
        return None
    return (done.stdout.strip() or done.stderr.strip() or f"exit {done.returncode}").splitlines()[-1]


def run_as_warning(config: Config) -> str | None:
    """What to warn of after an install into another user's crontab that user cannot run."""
    user = other_user()
    if user is None or not config.schedules:
        return None
    problem = cannot_run_as(user, config.path or paths.config_file())
    return None if problem is None else (
        f"user {user} cannot run these lines as they are ({problem}); every scheduled run would fail until that "
        "user can read the config and run the interpreter")


def whose_crontab() -> str:
    """'your crontab', or another user's (`crontab -u NAME`), for messages."""
    user = other_user()
    return f"{user}'s crontab" if user else "your crontab"


def install(config: Config) -> tuple[str, str]:
    """Write the block; (crontab before, after). Nothing is written when nothing changes."""
    before = read_crontab()
    block = crontab_block(config)
    after = merge(before, block)
    if after != before:
        write_crontab(after, block)
    return before, after


def uninstall() -> tuple[str, str]:
    before = read_crontab()
    after = merge(before, [])
    if after != before:
        write_crontab(after, [])
    return before, after


# -- systemd ---------------------------------------------------------------------------------------
