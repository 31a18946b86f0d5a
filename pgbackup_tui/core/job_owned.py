"""What a job owns: reading its record, and undoing it after a dead runner (job_recovery.recover).

The record is owned.json, synced before each thing is created (the runner's StateWriter), until
the final state, which carries what is still owned; state.json's copy holds the children's
process groups (never synced: they serve only a runner that dies while the machine runs on, and
are passed over after a restart of the machine, when their ids may be others'). A job folder of
the version before owned.json has it all in state.json.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from .job_store import FINAL_STATES, GONE, OWNED, Dropper, JobRecord, list_jobs, read_json, runner_alive

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str | None:
    """This boot of the machine (Linux), or None where it cannot be read."""
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return None


def owned_items(folder: Path, state: dict[str, Any]) -> list[dict[str, Any]]:
    """What the job of `folder` owns by its record (state: its state.json as read): a final state
    carries it (synced, the last thing the runner wrote); before that, owned.json (synced before
    each thing was created), with the process groups from state.json (never synced: they matter
    only while the machine runs on). A folder without owned.json (of the version before, or of a
    job that never owned anything) has it all in state.json."""
    copy = list(state.get("owned") or [])
    # A process group recorded before the machine restarted names nothing of ours: its id may be
    # another job's pg_dump now.
    same_boot = state.get("boot_id") in (None, boot_id())
    if state.get("state") in FINAL_STATES:
        return [item for item in copy if item.get("kind") != "process_group" or same_boot]
    groups = [item for item in copy if item.get("kind") == "process_group" and same_boot]
    synced = read_json(folder / OWNED)
    if synced is None:
        return [item for item in copy if item.get("kind") != "process_group"] + groups
    return [item for item in synced.get("items") or [] if isinstance(item, dict)] + groups


def paths_of_live_jobs(except_id: str = "") -> dict[str, str]:
    """The paths that jobs whose runner is alive have on record: {path: job id}. A dead job's record
    may still name one of them: a name it claimed, found taken by another job (whose claim was on
    record before it created it) and let go of, its release not yet synced when it died. That name
    is the live job's. The catalog asks too: a .partial on record is a running job's output."""
    return {str(item.get("value")): other.id for other in list_jobs(unsettled_only=True)
            if other.id != except_id and runner_alive(other.folder)
            for item in owned_items(other.folder, other.state) if item.get("kind") == "path"}


def archives_of_live_jobs() -> dict[str, str]:
    """The backups that jobs whose runner is alive are reading (a restore's archive or set, a CSV
    import's folder): {path as on record: job id}. The catalog's delete asks: removed under a
    running restore, an archive's files went missing half way into its target."""
    return {str(path): record.id for record in list_jobs(unsettled_only=True)
            if (path := (record.spec.get("plan") or {}).get("archive") or (record.spec.get("plan") or {}).get("source"))
            and record.status not in FINAL_STATES and runner_alive(record.folder)}


def undo_owned(record: JobRecord, drop_database: Dropper,
               items: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Remove what the job owned (`items`, else what its record says: owned_items); return what
    could not be undone yet (databases on a server that cannot be reached). Paths are removed
    whatever they are: they were reserved by the job. An item found already gone (a database the
    runner had dropped before it could record so, a process group that died with its runner) is
    marked GONE: nothing was undone for it, and the recovery does not say it was."""
    left: list[dict[str, Any]] = []
    for item in owned_items(record.folder, record.state) if items is None else items:
        kind, value = item.get("kind"), str(item.get("value", ""))
        if kind == "path" and value:
            target = Path(value)
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
            _remove_empty_parents(target, item.get("stop_at"))
        elif kind == "database" and value:
            try:
                found = drop_database(record.spec, value, item.get("identity"))
            except Exception as exc:  # noqa: BLE001 - any failure keeps it for a later start
                left.append(dict(item, error=(str(exc).strip().splitlines() or ["?"])[0]))
                continue
            if found == "another":
                item["spared"] = True  # another database has that name now: the DBA's, left alone
            elif found == "absent":
                item[GONE] = True
        elif kind == "process_group" and not _kill_leftover_group(int(value)):
            item[GONE] = True
    return left


def _remove_empty_parents(path: Path, stop_at: str | None) -> None:
    """Folders the job created for its output go too when it leaves them empty."""
    if not stop_at:
        return
    stop = Path(stop_at)
    folder = path.parent
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except FileNotFoundError:
            pass  # not made yet (its name is on record first): the one above it may have been
        except OSError:
            return  # not empty: what is above it is not empty either
        folder = folder.parent


def _kill_leftover_group(pgid: int) -> int:
    """pg_dump --jobs workers outlive their leader by a moment: end the group if it is still ours.
    How many of its processes were still there (0: it had ended with its runner)."""
    killed = 0
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1:stat.rfind(")")]
        fields_after = stat[stat.rfind(")") + 2:].split()
        if len(fields_after) > 2 and int(fields_after[2]) == pgid and comm in ("pg_dump", "pg_restore", "psql"):
            with contextlib.suppress(OSError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += fields_after[0] != "Z"  # a zombie (dead, its parent gone) was no longer running
    return killed
