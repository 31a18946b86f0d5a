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

The log is the job's own file under the log dir (its path is in state.json). `recover()` runs at
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
from typing import Any, Protocol

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
# Nor this one, a marker: a restore's swap of its new database into the target's name (value;
# identity: the new database's OID; previous: the name the replaced one gets), on record before the
# swap commits and to the job's end. A dead runner's recovery asks the server which database has
# that name now: the new one means the restore had finished (said so), not that it is undone.
SWAPPED_IN = "swapped_in"
# A marker too: the id of the one transaction psql runs a restore in (value), on record while it
# runs (restore_transaction.py). A dead runner's recovery asks the server whether it committed.
COMMITS = "commits"
MARKERS = (SWAPPED_IN, COMMITS)


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
        elif name in ("schemas", "databases") and value is not None:
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
def runner_lock(folder: Path, *, wait: bool = False, inherited_fd: int | None = None) -> Iterator[bool]:
    """Hold the job's runner lock while the block runs; yields False when another process has it.
    `inherited_fd`: the lock the front took for the runner (flock again on it succeeds at once)."""
    fd = inherited_fd if inherited_fd is not None else os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


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


class ServerLook(Protocol):
    """What a recovery asks the job's server (its spec names it); each raises if it cannot tell."""

    def database_oid(self, spec: dict[str, Any], name: str) -> str | None:
        """The OID of the database `name` now (None: there is none)."""

    def transaction_status(self, spec: dict[str, Any], xid: str, session: str | None) -> str:
        """restore_transaction's COMMITTED, ABORTED, IN_PROGRESS or UNKNOWN (`session`: its pid)."""


UNSURE_FOR_S = 86_400  # how long a recovery asks a server again whether a dead job's last step was done


class _CannotTell(Exception):
    """The server cannot say yet whether the job's last step was done: nothing is undone, nor said."""


def recover(drop_database: Dropper, log: Callable[[str], None] | None = None, only: str | None = None,
            look: ServerLook | None = None) -> list[str]:
    """Find jobs whose runner died, or whose cleanup was left pending, and finish them.

    Returns one line per job handled (for the CLI to print when it matters). A job whose runner
    still holds its lock is never touched.
    """
    lines: list[str] = []
    for record in list_jobs(unsettled_only=True):
        if only is not None and record.id != only:
            continue
        if record.status in FINAL_STATES and not still_owned(record.state.get("owned") or []):
            _settle(record.folder)  # e.g. written before SETTLED existed: parsed once, not at every start
            continue
        with runner_lock(record.folder) as got_it:
            if not got_it:
                continue  # alive (or being recovered by another process right now)
            line, recorded = _recover_one(record, drop_database, look)
        if line:
            lines.append(line)
            if log is not None and recorded:
                log(line)
    return lines


def _recover_one(record: JobRecord, drop_database: Dropper, look: ServerLook | None) -> tuple[str, bool]:
    """Finish one job whose runner is gone (its lock held by us): the line saying what was done
    ("" for nothing), and whether its state was written."""
    from .job_owned import owned_items, paths_of_live_jobs, undo_owned

    fresh = record.state = read_json(record.folder / STATE) or {}
    owned = owned_items(record.folder, fresh)
    if any(item.get("kind") == "path" for item in owned):  # a name another job holds now is not ours to remove
        held = paths_of_live_jobs(record.id)
        owned = [item for item in owned if item.get("kind") != "path" or str(item.get("value")) not in held]
    ended = fresh.get("state") in FINAL_STATES
    if ended:
        owned = still_owned(owned)
    if ended and not owned:
        _settle(record.folder)
        return "", True
    finished, unlisted = None, None
    if not ended:
        from .job_finish import finished_output, list_in_catalog, remove_orphan_manifests

        finished = finished_output(record.id, owned)  # renamed into place before the runner died?
        if finished is None:
            remove_orphan_manifests(record.id, owned)
        else:
            unlisted = list_in_catalog(str(record.spec.get("kind")), finished.path)
    unsure = ""
    try:
        swapped, committed = _done_on_server(record.spec, owned, look)
    except _CannotTell as exc:
        # Asked again at each start for a day; then it is recorded as it is, failed, with what could
        # not be told (what is undone then is safe either way: a database only if still the job's).
        since = fresh.setdefault("unsure_since", time.time())
        if time.time() - since < UNSURE_FOR_S:
            with contextlib.suppress(OSError):
                write_json(record.folder / STATE, fresh)
            return (f"job {record.id}: its runner stopped at its last step; {exc}: looked at again on a later "
                    "start", False)
        swapped, committed, unsure = [], False, str(exc)
    # The new database is the target now: not ours to drop (it has another name than on record anyway).
    restored = {i.get("identity") for i in swapped}
    owned = [i for i in owned if not (i.get("kind") == "database" and i.get("identity") in restored)]
    # Said as undone: what was there (a path let go of once gone may still be on record).
    touched = [str(i.get("value")) for i in owned if i.get("kind") == WRITES_INTO]
    kept = list(dict.fromkeys([str(i.get("value")) for i in owned if i.get("kind") == KEPT_MEMBER]
                              + [str(i.get("value")) for i in swapped]))
    owned = [i for i in owned if i.get("kind") not in (WRITES_INTO, KEPT_MEMBER, *MARKERS)]
    shown = [i for i in owned if i.get("kind") != "path" or os.path.lexists(str(i.get("value") or ""))]
    left = undo_owned(record, drop_database, owned)
    if not ended:
        pid = fresh.get("runner_pid")
        runner = f"the job's runner{f' (pid {pid})' if pid else ''}"
        title = record.spec.get("title", record.id)
        if (swapped or committed) and record.spec.get("kind") != "cluster-restore":
            message = (_swapped_message(title, runner, swapped[0], owned) if swapped else
                       f"{title}: the restore's transaction committed (what it restored is in "
                       f"'{(record.spec.get('plan') or {}).get('dbname')}'); {runner} stopped right after, before "
                       "it recorded the end (killed, or out of memory)")
            fresh.update(state="succeeded", exit_code=0, finished_at=time.time(), progress=None, message=message,
                         details={"warnings": [message]})
        elif finished is None:
            what_undone = ("what it had made is undone (its partial output, a database it created)"
                           if record.spec.get("kind") != "cluster-restore" else
                           # psql runs a pg_dumpall file (or a set's globals) as one script, making roles
                           # and databases as it goes: none of that is the job's to drop (a member's is).
                           "what psql had run stays on the server (roles, and databases a pg_dumpall file "
                           "makes as it goes, maybe part-restored); a set's member being restored into a new "
                           "database is dropped, one into a database that existed is rolled back")
            if unsure:
                what_undone = (f"whether its last step (a swap, or its transaction's commit) was done could not be "
                               f"told for a day ({unsure}): look at the target; {what_undone}")
            if kept:
                what_undone += (f"; the set's members restored before it stopped are kept: "
                                f"{', '.join(repr(name) for name in kept)}")
            if touched and record.spec.get("kind") == "csv-import":
                what_undone += (f"; the tables imported into '{touched[0]}' before it stopped stay (each is its own "
                                "transaction; its log names them): import the rest with --table")
            elif touched:
                what_undone += (f"; database '{touched[0]}' may be partly restored: pg_restore was writing into it "
                                "(restore again with --clean, or use --single-transaction for all-or-nothing)")
            fresh.update(state="failed", exit_code=1, finished_at=time.time(),
                         message=f"{title}: {runner} stopped without finishing ({_why_stopped(record.folder)}); "
                                 f"{what_undone}")
        else:
            why = (f"{title}: {finished.path} is complete and verified; {runner} stopped after putting it in "
                   "place, before it recorded the end (killed, or out of memory)")
            why += f"; {unlisted}" if unlisted else ""
            fresh.update(state="succeeded", exit_code=0, finished_at=finished.finished_at, message=why,
                         output_path=str(finished.path), bytes_written=finished.bytes, details={"warnings": [why]},
                         progress=None)  # not the last snapshot the runner wrote (97 %...)
    still = {(item["kind"], item["value"]) for item in left}
    undone = [f"{i['kind']} {i['value']}" for i in shown
              if (i.get("kind"), i.get("value")) not in still and not i.get("spared")]
    spared = [f"database '{i['value']}' (one of that name was made since: not the job's)" for i in shown
              if i.get("spared")]
    if left:
        names = ", ".join(f"database '{item['value']}' ({item['error']})" for item in left)
        fresh["cleanup_pending"] = f"could not drop {names} yet: dropped on a later start"
    else:
        fresh.pop("cleanup_pending", None)
    # Final from here on: this state (synced) is the record of what is still owned (owned_items).
    fresh["owned"] = [{k: v for k, v in item.items() if k != "error"} for item in left]
    try:
        write_json(record.folder / STATE, fresh, durable=True)
    except OSError as exc:  # a full disk: what was undone is undone; the record waits for room
        return f"job {record.id}: cleaned up, but its state could not be written ({exc.strerror})", False
    if not left:
        _settle(record.folder)
    line = f"job {record.id}: {fresh.get('message', '')}"
    if undone:
        line += f"; undone: {', '.join(undone)}"
    if spared:
        line += f"; left alone: {', '.join(spared)}"
    if left:
        line += f"; {fresh['cleanup_pending']}"
    return line, True


def _why_stopped(folder: Path) -> str:
    """Why a runner stopped before its end, as far as its folder says."""
    marks = sorted(path.name.removeprefix(UNWRITABLE_MARK) for path in folder.glob(f"{UNWRITABLE_MARK}*"))
    if not marks:
        return "killed, or out of memory"
    cause = os.strerror(getattr(errno, marks[0], errno.EIO))
    full = ": the disk was full" if marks[0] == "ENOSPC" else ""
    return f"it could not write the job's state under {folder} ({cause}){full}"


def _done_on_server(spec: dict[str, Any], owned: list[dict[str, Any]],
                    look: ServerLook | None) -> tuple[list[dict[str, Any]], bool]:
    """A dead restore's last step, as the server has it: its swaps that were done (SWAPPED_IN: the
    target's OID is the restored one's), and whether its one transaction committed (COMMITS)."""
    markers = [i for i in owned if i.get("kind") in MARKERS]
    if not markers or look is None:
        return [], False
    from .restore_transaction import COMMITTED, IN_PROGRESS  # psycopg: only for a job that left a marker

    try:
        swapped = [i for i in markers if i.get("kind") == SWAPPED_IN
                   and look.database_oid(spec, str(i.get("value"))) == i.get("identity")]
        statuses = [look.transaction_status(spec, str(i.get("value")), i.get("identity"))
                    for i in markers if i.get("kind") == COMMITS]
    except Exception as exc:  # noqa: BLE001 - any failure to ask: asked again on a later start
        cause = (str(exc).strip().splitlines() or ["?"])[0]
        raise _CannotTell(f"whether it was done cannot be told yet ({cause})") from None
    if IN_PROGRESS in statuses:  # its session has not seen psql go yet: it ends (rolled back, or committed) soon
        raise _CannotTell("its transaction is still open on the server")
    return swapped, COMMITTED in statuses


def _swapped_message(title: str, runner: str, swap: dict[str, Any], owned: list[dict[str, Any]]) -> str:
    """A restore whose runner died after its swap committed: done, and what became of the database
    it replaced (dropped now, as the job would have; or kept, with --keep-old)."""
    name, previous = swap.get("value"), swap.get("previous")
    dropping = any(i.get("kind") == "database" and i.get("value") == previous for i in owned)
    message = (f"{title}: '{name}' is the restored database; {runner} stopped right after it put it in place, "
               "before it recorded the end (killed, or out of memory)")
    if dropping:
        return message + f"; the database it replaced ('{previous}') is dropped"
    return message + f"; the previous '{name}' is kept as '{previous}' (--keep-old): drop it when you no longer need it"


def _settle(folder: Path) -> None:
    """Mark a job that is final with nothing left to undo (SETTLED): the next looks pass it by."""
    with contextlib.suppress(OSError):  # only a shortcut: without it the state is read as before
        os.close(os.open(folder / SETTLED, os.O_WRONLY | os.O_CREAT, 0o600))  # 0600, as every file of ours
