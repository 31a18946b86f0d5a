"""After a dead runner: find the jobs whose runner died, or whose cleanup was left pending, and
finish them (recover), saying truthfully what became of them.

What a job owned is undone (job_owned.undo_owned); what it had already finished is said as done:
an archive renamed into place (job_finish.py), a restore's swap or its one transaction's commit,
which the job's server is asked about (ServerLook: its markers, job_store.SWAPPED_IN / COMMITS).
Run at the start of every command (job_cleanup.recover_jobs) and by a front whose runner died.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .job_recovery_words import cluster_restore_stays, csv_import_stays, swapped_message, undone_in_words
from .job_store import (COMMITS, FILLS, FINAL_STATES, GONE, IMPORT_COMMITS, IMPORTED_TABLE, KEPT_MEMBER, MARKERS, STATE,
                        SWAPPED_IN, TIMESCALE_RESTORING, UNWRITABLE_MARK, WRITES_INTO, Dropper, JobRecord, list_jobs,
                        read_json, runner_lock, settle, still_owned, write_json)


class ServerLook(Protocol):
    """What a recovery asks the job's server (its spec names it); each raises if it cannot tell."""

    def database_oid(self, spec: dict[str, Any], name: str) -> str | None:
        """The OID of the database `name` now (None: there is none)."""

    def transaction_status(self, spec: dict[str, Any], xid: str, session: str | None) -> str:
        """restore_transaction's COMMITTED, ABORTED, IN_PROGRESS or UNKNOWN (`session`: its pid)."""

    def fill_status(self, spec: dict[str, Any], name: str, oid: str | None) -> str:
        """restore_transaction's COMMITTED, ABORTED, IN_PROGRESS or UNKNOWN for the empty database
        `name` (of OID `oid`) one transaction was filling (job_store.FILLS): what it holds now."""

    def end_timescale_restore(self, spec: dict[str, Any], dbname: str) -> None:
        """timescaledb_post_restore() in `dbname`, which the job left in restoring mode."""


UNSURE_FOR_S = 86_400  # how long a recovery asks a server again whether a dead job's last step was done


SETTLING_WAIT_S = 20.0  # how long a command waits for another that is settling a dead job (drops: 3 s + 2 s each)


def _runner_gone(state: dict[str, Any]) -> bool:
    """Whether the runner the job's state names has ended: its pid runs no more, or it ran in an earlier
    boot of the machine. Unknown (no pid on record yet: its front holds the lock until it starts it): False."""
    from .job_owned import boot_id
    from .sandbox_sweep import process_alive

    pid = state.get("runner_pid")
    if state.get("state") in FINAL_STATES or not isinstance(pid, int):
        return False
    return state.get("boot_id") not in (None, boot_id()) or not process_alive(pid)


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
            settle(record.folder)  # e.g. written before SETTLED existed: parsed once, not at every start
            continue
        # A runner that is gone whose lock is held: another command is settling the job right now (two
        # commands started at once after a crash). Waited for, so that this one does not list a dead job
        # as running; once it has the lock, the state it reads again is that command's end.
        wait_s = SETTLING_WAIT_S if _runner_gone(record.state) else 0.0
        with runner_lock(record.folder, wait_s=wait_s) as got_it:
            if not got_it:
                continue  # alive (or being recovered by another process for longer than we wait)
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
        settle(record.folder)
        return "", True
    finished, unlisted = None, None
    if not ended:
        from .job_finish import finished_output, list_in_catalog, remove_orphan_manifests

        finished = finished_output(record.id, owned)  # renamed into place before the runner died?
        if finished is None:
            remove_orphan_manifests(record.id, owned)
        else:
            unlisted = list_in_catalog(str(record.spec.get("kind")), finished.path)
    unsure, imported_late = "", []
    try:
        swapped, committed, rolled_back = _done_on_server(record.spec, owned, look)
        imported_late = _import_committed(record.spec, owned, look)
    except _CannotTell as exc:
        # Asked again at each start for a day; then it is recorded as it is, failed, with what could
        # not be told (what is undone then is safe either way: a database only if still the job's).
        since = fresh.setdefault("unsure_since", time.time())
        if time.time() - since < UNSURE_FOR_S:
            with contextlib.suppress(OSError):
                write_json(record.folder / STATE, fresh)
            return (f"job {record.id}: its runner stopped at its last step; {exc}: looked at again on a later "
                    "start", False)
        swapped, committed, rolled_back, unsure = [], False, False, str(exc)
    # The new database is the target now: not ours to drop (it has another name than on record anyway).
    restored = {i.get("identity") for i in swapped}
    owned = [i for i in owned if not (i.get("kind") == "database" and i.get("identity") in restored)]
    # Said as undone: what was there (a path let go of once gone may still be on record).
    touched = [str(i.get("value")) for i in owned if i.get("kind") == WRITES_INTO]
    kept = list(dict.fromkeys([str(i.get("value")) for i in owned if i.get("kind") == KEPT_MEMBER]
                              + [str(i.get("value")) for i in swapped]))
    restoring = [i for i in owned if i.get("kind") == TIMESCALE_RESTORING]
    imported = [str(i.get("value")) for i in owned if i.get("kind") == IMPORTED_TABLE]
    imported += [name for name in imported_late if name not in imported]
    owned = [i for i in owned
             if i.get("kind") not in (WRITES_INTO, KEPT_MEMBER, IMPORTED_TABLE, TIMESCALE_RESTORING, *MARKERS)]
    shown = [i for i in owned if i.get("kind") != "path" or os.path.lexists(str(i.get("value") or ""))]
    left = undo_owned(record, drop_database, owned)
    ended_restoring, still_restoring = _end_timescale_restores(record, restoring, owned, look)
    left += still_restoring
    if ended and ended_restoring:  # its end said it could not run post_restore: it has run now
        fresh["message"] = str(fresh.get("message", "")) + "".join(
            f"; timescaledb_post_restore() ran in '{name}' since: timescaledb.restoring is off"
            for name in ended_restoring)
    if not ended:
        pid = fresh.get("runner_pid")
        runner = f"the job's runner{f' (pid {pid})' if pid else ''}"
        title = record.spec.get("title", record.id)
        if (swapped or committed) and record.spec.get("kind") != "cluster-restore":
            message = (swapped_message(title, runner, swapped[0], owned) if swapped else
                       f"{title}: the restore's transaction committed (what it restored is in "
                       f"'{(record.spec.get('plan') or {}).get('dbname')}'); {runner} stopped right after, before "
                       "it recorded the end (killed, or out of memory)")
            fresh.update(state="succeeded", exit_code=0, finished_at=time.time(), progress=None, message=message,
                         details={"warnings": [message]})
        elif finished is None:
            what_undone = (undone_in_words(shown, left)
                           if record.spec.get("kind") != "cluster-restore" else cluster_restore_stays(record.spec))
            if rolled_back and record.spec.get("kind") != "cluster-restore":
                what_undone += (f"; '{(record.spec.get('plan') or {}).get('dbname')}' is as it was (the restore's "
                                "one transaction was rolled back)")
            if unsure:
                what_undone = (f"whether its last step (a swap, or its transaction's commit) was done could not be "
                               f"told for a day ({unsure}): look at the target; {what_undone}")
            if kept:
                named = ", ".join(f"'{name}'" for name in kept)  # as every line names a database, not repr's
                what_undone += f"; the set's members restored before it stopped are kept: {named}"
            if touched and record.spec.get("kind") == "csv-import":
                what_undone += csv_import_stays(record.spec, touched[0], imported)
            elif touched:
                what_undone += (f"; database '{touched[0]}' may be partly restored: pg_restore was writing into it "
                                "(restore again with --clean, or use --single-transaction for all-or-nothing)")
            what_undone += "".join(f"; timescaledb_post_restore() ran in '{name}': timescaledb.restoring is off"
                                   for name in ended_restoring)
            fresh.update(state="failed", exit_code=1, finished_at=time.time(),
                         message=f"{title}: {runner} stopped without finishing "
                                 f"({_why_stopped(record.folder, fresh.get('log_path'))}); "
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
              if (i.get("kind"), i.get("value")) not in still and not i.get("spared") and not i.get(GONE)]
    spared = [f"database '{i['value']}' (one of that name was made since: not the job's)" for i in shown
              if i.get("spared")]
    if left:
        names = ", ".join(f"database '{item['value']}' ({item['error']})" for item in left
                          if item.get("kind") != TIMESCALE_RESTORING)
        restoring_left = ", ".join(f"'{item['value']}' ({item['error']})" for item in still_restoring)
        pending = [f"could not drop {names} yet: dropped on a later start"] if names else []
        pending += ([f"could not run timescaledb_post_restore() in {restoring_left} yet (timescaledb.restoring is "
                     "still on there): run on a later start"] if restoring_left else [])
        fresh["cleanup_pending"] = "; ".join(pending)
    else:
        fresh.pop("cleanup_pending", None)
    # Final from here on: this state (synced) is the record of what is still owned (owned_items).
    fresh["owned"] = [{k: v for k, v in item.items() if k != "error"} for item in left]
    try:
        write_json(record.folder / STATE, fresh, durable=True)
    except OSError as exc:  # a full disk: what was undone is undone; the record waits for room
        return f"job {record.id}: cleaned up, but its state could not be written ({exc.strerror})", False
    if not left:
        settle(record.folder)
    line = f"job {record.id}: {fresh.get('message', '')}"
    if undone:
        line += f"; undone: {', '.join(undone)}"
    if spared:
        line += f"; left alone: {', '.join(spared)}"
    if left:
        line += f"; {fresh['cleanup_pending']}"
    return line, True


def _end_timescale_restores(record: JobRecord, restoring: list[dict[str, Any]], owned: list[dict[str, Any]],
                            look: ServerLook | None) -> tuple[list[str], list[dict[str, Any]]]:
    """post_restore in the databases the job left in TimescaleDB's restoring mode, but those it
    made (dropped: undo_owned). The names where it ran, and the items it could not run in yet."""
    made = {str(i.get("value")) for i in owned if i.get("kind") == "database"}
    ran: list[str] = []
    left: list[dict[str, Any]] = []
    for item in restoring:
        name = str(item.get("value"))
        if name in made:
            continue
        try:
            if look is None:
                raise RuntimeError("no server to ask")
            look.end_timescale_restore(record.spec, name)
        except Exception as exc:  # noqa: BLE001 - any failure: asked again on a later start
            left.append(dict(item, error=(str(exc).strip().splitlines() or ["?"])[0]))
        else:
            ran.append(name)
    return ran, left


LOG_TAIL_BYTES = 16_384  # where a runner that could not write its state said so, last


def _why_stopped(folder: Path, log_path: object = None) -> str:
    """Why a runner stopped before its end, as far as its folder says, or else its log: a folder that went
    read-only takes no mark (UNWRITABLE_MARK), and its runner was then said to be "killed, or out of memory"."""
    marks = sorted(path.name.removeprefix(UNWRITABLE_MARK) for path in folder.glob(f"{UNWRITABLE_MARK}*"))
    if not marks:
        said = _unwritable_in_log(folder, log_path)
        return f"it could not write the job's state under {folder} ({said})" if said else "killed, or out of memory"
    cause = os.strerror(getattr(errno, marks[0], errno.EIO))
    full = ": the disk was full" if marks[0] == "ENOSPC" else ""
    return f"it could not write the job's state under {folder} ({cause}){full}"


def _unwritable_in_log(folder: Path, log_path: object) -> str | None:
    """The cause the runner logged as it stopped for its state could not be written (runner.StateWriter's
    line), if its log's end says so."""
    if not isinstance(log_path, str) or not log_path:
        return None
    try:
        with open(log_path, "rb") as log:
            log.seek(max(0, os.fstat(log.fileno()).st_size - LOG_TAIL_BYTES))
            tail = log.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    found = re.findall(rf"cannot write the job's state under {re.escape(str(folder))}: ([^;\n]+)", tail)
    return found[-1].strip() if found else None


def _done_on_server(spec: dict[str, Any], owned: list[dict[str, Any]],
                    look: ServerLook | None) -> tuple[list[dict[str, Any]], bool, bool]:
    """A dead restore's last step, as the server has it: its swaps that were done (SWAPPED_IN: the
    target's OID is the restored one's), whether its one transaction committed (COMMITS, FILLS), and
    whether it was rolled back."""
    markers = [i for i in owned if i.get("kind") in MARKERS]
    if not markers or look is None:
        return [], False, False
    from .restore_transaction import ABORTED, COMMITTED, IN_PROGRESS  # psycopg: only for a job that left a marker

    try:
        swapped = [i for i in markers if i.get("kind") == SWAPPED_IN
                   and look.database_oid(spec, str(i.get("value"))) == i.get("identity")]
        statuses = [look.transaction_status(spec, str(i.get("value")), i.get("identity"))
                    for i in markers if i.get("kind") == COMMITS]
        statuses += [look.fill_status(spec, str(i.get("value")), i.get("identity"))
                     for i in markers if i.get("kind") == FILLS]
    except Exception as exc:  # noqa: BLE001 - any failure to ask: asked again on a later start
        cause = (str(exc).strip().splitlines() or ["?"])[0]
        raise _CannotTell(f"whether it was done cannot be told yet ({cause})") from None
    if IN_PROGRESS in statuses:  # its session has not seen psql go yet: it ends (rolled back, or committed) soon
        raise _CannotTell("its transaction is still open on the server")
    return swapped, COMMITTED in statuses, ABORTED in statuses and COMMITTED not in statuses


def _import_committed(spec: dict[str, Any], owned: list[dict[str, Any]], look: ServerLook | None) -> list[str]:
    """The table a dead csv import was loading when its runner died, if its transaction committed
    (IMPORT_COMMITS: killed after the COMMIT, before the table went on record as imported)."""
    marker = next((i for i in owned if i.get("kind") == IMPORT_COMMITS), None)
    if marker is None or look is None:
        return []
    from .restore_transaction import COMMITTED, IN_PROGRESS  # psycopg: only for a job that left the marker

    xid, _, pid = str(marker.get("identity") or "").partition(" ")
    try:
        status = look.transaction_status(spec, xid, pid or None)
    except Exception as exc:  # noqa: BLE001 - any failure to ask: asked again on a later start
        cause = (str(exc).strip().splitlines() or ["?"])[0]
        raise _CannotTell(f"whether its last table's import committed cannot be told yet ({cause})") from None
    if status == IN_PROGRESS:
        raise _CannotTell("its last table's transaction is still open on the server")
    return [str(marker.get("previous"))] if status == COMMITTED else []
