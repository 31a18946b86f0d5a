"""Jobs on disk: what every front (CLI, TUI, cron) reads, and what a dead runner leaves to clean up.

Each job has a folder under the state dir (paths.state_dir()/jobs/<id>/, 0700):

- `spec.json`: what to run (kind and plan, never a password), written once by the front that
  started it;
- `state.json`: written atomically by the job's runner (runner.py) as it goes: state, the
  runner's pid, the latest progress snapshot, the result, and a copy of what the job owns
  (`owned`). Only its final state is synced: the writes before it (progress, states, process
  groups) are not, and a crash of the machine can leave it empty or old (XFS, without ext4's
  rename heuristics);
- `owned.json`: what the job owns and must undo if it does not finish (partial output paths,
  databases it created), only ever written synced, and *before* the thing is created: the
  record a dead job's cleanup goes by until the final state (which carries what is still owned)
  is on disk. A child's process group serves only a runner that dies while the machine runs on,
  so it is only in state.json's copy (unsynced; passed over after a restart of the machine). A
  folder of the version before has no owned.json: its state.json's `owned` is the record
  (job_owned.py reads it and undoes it);
- `runner.lock`: the runner holds an exclusive flock on it for its whole life. Whoever can take
  that lock knows the runner is gone (a PID can be reused; a lock dies with its process).

The log is the job's own file under the log dir (its path is in state.json). `job_recovery.recover()` runs at
the start of every command: a job that says it is running but whose runner is gone is marked
failed with the reason, its partial output removed and its databases dropped (unless its output
was already in place, its manifest naming the job: then it succeeded, job_finish.py); a database
that cannot be dropped yet (the server is down) stays listed and is dropped on a later start.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from . import paths
from .identifiers import QualifiedName

SPEC = "spec.json"
STATE = "state.json"
OWNED = "owned.json"
LOCK = "runner.lock"
# Made once the final state, with nothing left owned, is on disk: every command's look for dead
# jobs (recover) then passes the job by without parsing its state.
SETTLED = "settled"
# An empty file, UNWRITABLE_MARK + errno's name (ENOSPC), left by a runner that stopped because it
# could not write the job's state (runner.py): its recovery says so.
UNWRITABLE_MARK = "unwritable-"
FINAL_STATES = frozenset({"succeeded", "failed", "cancelled", "partial"})
# An owned item that is not undone: an existing database a restore writes into outside one
# transaction. A dead runner's recovery says it may be part-restored (it cannot be put back).
WRITES_INTO = "writes_into"
# Nor is this one: a cluster set's member database, restored and kept. A dead runner's recovery
# says which members were in (their databases stay) beside what it undid of the one it stopped in.
KEPT_MEMBER = "kept_member"
# Nor this one: a table a csv import into an existing database has loaded, on record once its
# transaction has committed (beside WRITES_INTO). A dead runner's recovery names them: they stay.
IMPORTED_TABLE = "imported_table"
# Nor this one, a marker: a restore's swap of its new database into the target's name (value;
# identity: the new database's OID; previous: the name the replaced one gets), on record before the
# swap commits and to the job's end. A dead runner's recovery asks the server which database has
# that name now: the new one means the restore had finished (said so), not that it is undone.
SWAPPED_IN = "swapped_in"
# A marker too: the id of the one transaction psql runs a restore in (value), on record while it
# runs (restore_transaction.py). A dead runner's recovery asks the server whether it committed.
COMMITS = "commits"
# A marker too: the transaction a csv import into an existing database loads a table in (identity:
# "xid pid", previous: the table), on record before its COMMIT and replaced by the next table's
# (value: always IMPORT_TRANSACTION). A runner killed after that COMMIT, before the table went on
# record as IMPORTED_TABLE, left it unnamed: a dead runner's recovery asks the server whether it committed.
IMPORT_COMMITS = "import_commits"
IMPORT_TRANSACTION = "transaction"
# A marker too: an empty database (value; identity: its OID) pg_restore --single-transaction fills,
# whose transaction says no id as psql's does (restore_transaction.MARK_SQL), on record while it runs.
# A dead runner's recovery looks at what the database holds: anything means it committed.
FILLS = "fills"
MARKERS = (SWAPPED_IN, COMMITS, IMPORT_COMMITS, FILLS)
# A database a TimescaleDB restore has put in restoring mode (timescaledb_pre_restore: its
# background jobs stop), on record until post_restore has run. A dead runner's recovery runs
# post_restore there, unless the database is one the job made (dropped instead).
TIMESCALE_RESTORING = "timescale_restoring"
# A mark on an owned item (job_owned.undo_owned), not a kind: found already gone when the recovery
# came to undo it (a database its runner dropped before it could record so, a process group that
# died with its runner). Nothing was undone for it, and the recovery does not say it was.
GONE = "gone"


def still_owned(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a final state's record still has to undo: not the markers it kept to its end."""
    return [item for item in items if item.get("kind") not in MARKERS]


def jobs_root() -> Path:
    return paths.state_dir() / "jobs"


def job_dir(job_id: str) -> Path:
    return jobs_root() / job_id


# -- plans as JSON -----------------------------------------------------------------------------

def _encode(value: Any) -> Any:
    from .connect import Target

    if isinstance(value, Target):  # never its password
        return {"label": value.label, "params": dict(value.params_items), "bin_dir": value.bin_dir}
    if isinstance(value, QualifiedName):
        return [value.schema, value.name]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    return value


def plan_to_json(plan: Any) -> dict[str, Any]:
    """A DumpPlan or RestorePlan as JSON-able data, without the password."""
    return {f.name: _encode(getattr(plan, f.name)) for f in fields(plan)}


def plan_from_json(kind: str, data: dict[str, Any], password: str | None = None) -> Any:
    """The plan back from plan_to_json's data (unknown keys ignored: an older or newer front)."""
    from .connect import Target
    from .job_kinds import plan_class

    cls = plan_class(kind)
    known = {f.name for f in fields(cls)}
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name not in known:
            continue
        if name == "target":
            value = Target(label=value["label"], params_items=tuple(sorted(value["params"].items())),
                           password=password, bin_dir=value.get("bin_dir"))
        elif name in ("tables", "exclude_tables"):
            value = tuple(QualifiedName(schema, table) for schema, table in value)
        elif name in ("schemas", "databases", "excluded_databases") and value is not None:
            value = tuple(value)
        elif name in ("archive", "output") and value is not None:
            value = Path(value)
        values[name] = value
    return cls(**values)


# -- reading and writing -------------------------------------------------------------------------

def write_json(path: Path, data: dict[str, Any], *, durable: bool = False) -> None:
    """Atomically replace `path` (0600). `durable`: on disk when this returns, whatever comes next
    (what must survive a crash of the machine): the new file synced before the rename, and the
    folder synced after it -- the rename is a change of the folder, and without that it reaches
    the disk only with the file system's next commit (ext4 every 5 s, XFS up to 30 s), by when
    the thing it records may long exist."""
    # Unique per call: a runner's jobs may write from several threads (a cluster set's members).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, default=str)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        named = paths.named_error(exc, path)
        if named is exc:
            raise
        raise named from exc
    if durable:
        paths.sync_folder(path.parent)


def details_for_state(details: dict[str, Any]) -> dict[str, Any]:
    """A result's details as state.json keeps them: what the fronts show (added, left out,
    warnings, a dry run's lines…), not what the archive's own manifest holds on disk beside it --
    the whole manifest and the per-table list, megabytes for 10,000 tables, which the final state
    would write synced and every front that follows the job would parse (the TUI: 20 ms a dump)."""
    def beside_the_archive(key: str, value: Any) -> bool:
        return (key == "manifest" and isinstance(value, dict)) or (key == "tables" and isinstance(value, list))

    return {key: value for key, value in details.items() if not beside_the_archive(key, value)}


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def create_job_dir(job_id: str, spec: dict[str, Any]) -> tuple[Path, int]:
    """The job's folder with its spec and a first state (queued), and a descriptor holding its
    runner lock: taken before anything else is written, so that no other process ever sees the
    job without its lock held. The runner inherits that descriptor (the same lock); the front
    closes its copy once the runner runs."""
    folder = paths.ensure_private_dir(jobs_root()) / job_id
    folder.mkdir(mode=0o700)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        write_json(folder / SPEC, spec, durable=True)
        # Not synced: lost in a crash of the machine, it reads as the same "queued" (load: no state);
        # the runner's first write, before the job owns anything, is synced.
        write_json(folder / STATE, {"state": "queued", "created_at": time.time(), "owned": []})
    except BaseException:
        os.close(fd)
        raise
    return folder, fd


@contextlib.contextmanager
def runner_lock(folder: Path, *, wait: bool = False, inherited_fd: int | None = None,
                wait_s: float = 0.0) -> Iterator[bool]:
    """Hold the job's runner lock while the block runs; yields False when another process has it
    (`wait_s`: for that long at most, asked again every 50 ms).
    `inherited_fd`: the lock the front took for the runner (flock again on it succeeds at once)."""
    fd = inherited_fd if inherited_fd is not None else _open_lock(folder / LOCK)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.05)
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def _open_lock(path: Path) -> int:
    """The lock file, opened to flock it. On a read-only folder (a disk remounted read-only) one that exists
    is opened read-only: a flock needs no write access, and a dead runner's job is then still told from a
    live one (jobs list said `error: …/runner.lock: Read-only file system`, exit 2, and listed nothing)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM) or not path.exists():
            raise
        return os.open(path, os.O_RDONLY)


def runner_alive(folder: Path) -> bool:
    """True while the job's runner holds its lock (or while someone else is cleaning up after it)."""
    if not (folder / LOCK).exists():
        return False
    with runner_lock(folder) as got_it:
        return not got_it


@dataclass
class JobRecord:
    """A job as the store has it: its id, spec and last state."""

    id: str
    folder: Path
    spec: dict[str, Any]
    state: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.state.get("state", "queued"))

    @property
    def created_at(self) -> float:
        return float(self.state.get("created_at") or self.spec.get("created_at") or 0)


def load(job_id: str) -> JobRecord | None:
    folder = job_dir(job_id)
    spec = read_json(folder / SPEC)
    if spec is None:
        return None
    return JobRecord(job_id, folder, spec, read_json(folder / STATE) or {})


def list_jobs(*, unsettled_only: bool = False) -> list[JobRecord]:
    """Every job in the store, oldest first (`unsettled_only`: not those marked SETTLED)."""
    root = jobs_root()
    if not root.is_dir():
        return []
    records = [record for entry in root.iterdir()
               if not (unsettled_only and (entry / SETTLED).exists()) and (record := load(entry.name)) is not None]
    return sorted(records, key=lambda record: (record.created_at, record.id))


# -- after a dead runner ---------------------------------------------------------------------------

# (the job's spec, database name, its OID if recorded): drop it or raise; what it found: "dropped",
# "absent", or "another" (a database of that name that is not the job's, left alone).
Dropper = Callable[[dict[str, Any], str, "str | None"], str]


def settle(folder: Path) -> None:
    """Mark a job that is final with nothing left to undo (SETTLED): the next looks pass it by."""
    with contextlib.suppress(OSError):  # only a shortcut: without it the state is read as before
        os.close(os.open(folder / SETTLED, os.O_WRONLY | os.O_CREAT, 0o600))  # 0600, as every file of ours
