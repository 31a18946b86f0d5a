"""Where a dump writes: the output location checked before anything runs, the name reserved atomically.

Two dumps of one database started in the same second must never share a name: a dump owns its
name once it has created `NAME.partial` itself (O_EXCL for a file, mkdir for a directory archive),
and only then writes the manifest and renames the partial to NAME. The folders a dump created
for itself are removed again when it fails and leaves them empty.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UsageError
from .manifest import manifest_path
from .paths import sync_folder
from .plans import PARTIAL_SUFFIX
from .plans import partial_path as _partial

if TYPE_CHECKING:
    from .jobs import Job

NAME_MAX = 255  # bytes in one file name (ext4, xfs, btrfs, tmpfs)
# The job writes files named after the output with more around it (".NAME.selection.dump.partial.toc",
# "NAME.manifest.json"): the name itself must leave room for them.
NAME_ROOM = 32
MAX_OUTPUT_NAME_BYTES = NAME_MAX - NAME_ROOM
RESERVE_ATTEMPTS = 1000


def dump_run_target(fmt: str, final: Path, *, selection: bool) -> tuple[str, Path]:
    """(the format pg_dump runs with, the path it writes) for a dump whose output is `final`: the
    one rule DumpJob and the backup dialog's preview share. pg_dump writes `final`.partial, except
    for a table selection in plain SQL: that is dumped as a custom archive beside it first
    (".NAME.selection.dump.partial"), then filtered into SQL."""
    if selection and fmt == "plain":
        return "custom", final.with_name(f".{final.name}.selection.dump.partial")
    return fmt, _partial(final)


def check_output_location(final: Path, what: str = "--output") -> None:
    """Raise UsageError unless a dump could write `final`: a name the filesystem takes, under a
    folder (or a path of folders to create) we may write in, and nothing there yet. Looks, creates nothing."""
    for part in final.parts[1:-1] if final.is_absolute() else final.parts[:-1]:
        if len(os.fsencode(part)) > NAME_MAX:
            raise UsageError(f"{what} {_short(final)}: a folder name is longer than {NAME_MAX} bytes")
    name_bytes = len(os.fsencode(final.name))
    if name_bytes > MAX_OUTPUT_NAME_BYTES:
        raise UsageError(f"{what} {_short(final)}: the file name is {name_bytes} bytes long; at most "
                         f"{MAX_OUTPUT_NAME_BYTES} (the filesystem allows {NAME_MAX}, and the job adds "
                         f"'{PARTIAL_SUFFIX}' and the like)")
    existing = final.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{what} {_short(final)}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {_short(final)}: cannot write in {existing} "
                         f"({'a read-only filesystem' if _read_only_fs(existing) else 'permission denied'})")
    if final.exists() or final.is_symlink():
        raise UsageError(f"{final} already exists; choose another {what} or move it away")
    if _partial(final).exists():
        raise UsageError(f"{_partial(final)} exists: another dump may be writing it; remove it if not")
    lone_manifest = manifest_path(final)
    if os.path.lexists(lone_manifest):  # a backup's record, whatever became of its archive: never written over
        raise UsageError(f"{lone_manifest} exists (the manifest of a backup that was there); choose another "
                         f"{what} or move it away")


def make_folders(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents at 0700; return those created, outermost first."""
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    created = []
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:  # another dump made it a moment ago: it is theirs to remove
            continue
        os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
        created.append(path)
    return created


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove the folders a failed dump created, innermost first, if nothing else is in them."""
    for folder in reversed(folders):
        # Not empty (another dump's archive, a file the user put there) or already gone: keep going.
        with contextlib.suppress(OSError):
            folder.rmdir()


def reserve(final: Path, *, directory: bool) -> bool:
    """Create `final`.partial ourselves (0600 file or 0700 folder); False if the name is taken
    (the partial exists, or `final` itself does). Raises OSError for anything else."""
    partial = _partial(final)
    try:
        if directory:
            partial.mkdir(mode=0o700)
            os.chmod(partial, 0o700)
        else:
            os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        return False
    # A dump that finished renamed its partial to `final` in one step: the partial was free but the name is not.
    if final.exists() or final.is_symlink():
        _release(partial, directory)
        return False
    return True


Claim = Callable[[Path, "Path | None", bool], None]
"""(a name's partial, the folder above those made for it, held): a job's record of what it owns."""


def reserve_output(final: Path, *, directory: bool, numbered: bool, created: list[Path],
                   claim: Claim | None = None) -> Path:
    """Reserve `final` (or, if `numbered`, the first free of final, final-2, final-3...) and
    return the name reserved. Folders this creates are appended to `created`.

    `claim`: told of each name's partial before anything is created for it (held=True, with the
    folder above those this may create: they go too if left empty), and when the name proves
    taken (held=False): a job records it (Job.own), so that a runner killed at any moment leaves
    nothing that is not on record. A name seen taken is passed over without a claim.

    An explicit name that is taken is refused (UsageError); nothing else is written over.
    """
    candidate = final
    for _attempt in range(RESERVE_ATTEMPTS):
        candidate, n = final, 2
        above = _existing_ancestor(final.parent)
        claimed: Path | None = None
        try:
            while True:
                if not (os.path.lexists(candidate) or os.path.lexists(_partial(candidate))
                        or os.path.lexists(manifest_path(candidate))):
                    if claim is not None:
                        claim(_partial(candidate), above, True)
                        claimed = _partial(candidate)
                    created.extend(make_folders(final.parent))
                    if reserve(candidate, directory=directory):
                        return candidate
                    _unclaim(claim, claimed)
                    claimed = None
                if not numbered:
                    there = (final, _partial(final), manifest_path(final))
                    taken = next((path for path in there if os.path.lexists(path)), final)
                    why = {_partial(final): " (another dump may be writing it)",
                           manifest_path(final): " (the manifest of a backup that was there)"}.get(taken, "")
                    raise UsageError(f"{taken} already exists{why}; choose another --output or move it away")
                candidate = final.with_name(f"{final.stem}-{n}{final.suffix}")
                n += 1
        except FileNotFoundError as exc:
            _unclaim(claim, claimed)
            if candidate.parent.is_dir():  # there, yet refusing new names (/proc, /sys): not a race
                raise UsageError(f"cannot write {_short(candidate)}: {candidate.parent} takes no new files "
                                 f"({exc.strerror or exc})") from None
            refused = Path(exc.filename) if isinstance(exc.filename, str) else None
            if refused is not None and refused.parent.is_dir() and not refused.exists():
                # A folder we were making, in one that is there: not removed under us, refused
                # (/proc/x, /sys/x); trying again gave "it keeps disappearing" after seconds.
                raise UsageError(f"cannot create the folder {refused}: {refused.parent} takes no new folders "
                                 f"({exc.strerror or exc})") from None
            continue  # a failed dump removed the folder it had made between our mkdir and our reservation
        except OSError as exc:
            _unclaim(claim, claimed)
            raise UsageError(f"cannot write {_short(candidate)}: {exc.strerror or exc}") from None
    raise UsageError(f"cannot keep the folder {final.parent}: it keeps disappearing")


def job_claim(job: Job, kept: list[Path] | None = None) -> Claim:
    """reserve_output's claim for `job`: each name on the job's record (Job.own, with the folder
    above those made for it) before it or its folders exist, let go of when it proves taken;
    `kept`, the job's own list of what its cleanup removes, kept in step."""
    def claim(partial: Path, stop_at: Path | None, held: bool) -> None:
        if held:
            job.own("path", partial, stop_at=stop_at)  # first: if it cannot be recorded, nothing is made
            if kept is not None:
                kept.append(partial)
        else:
            if kept is not None:
                kept.remove(partial)
            job.release("path", partial)  # someone else's: never ours to remove
    return claim


def _unclaim(claim: Claim | None, partial: Path | None) -> None:
    if claim is not None and partial is not None:
        claim(partial, None, False)


def _existing_ancestor(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _release(partial: Path, directory: bool) -> None:
    if directory:
        partial.rmdir()
    else:
        partial.unlink()


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _short(path: Path, limit: int = 120) -> str:
    """A path for a one-line message: a 300-character name is cut in the middle."""
    text = str(path)
    return text if len(text) <= limit else f"{text[:limit // 2]}…{text[-limit // 2:]}"


def put_in_place(partial: Path, final: Path) -> None:
    """Rename a finished output (and its manifest, already beside `final`) into place, durably: the
    folder holding them is synced after the rename, which is the folder's change, so that a machine
    that stops right after the job said "succeeded" still has `final`, not a `.partial` that the job
    no longer owns (sync_folder passes over a file system that cannot sync a folder; an I/O error
    fails the job: a disk that fails now is one to hear about)."""
    partial.rename(final)
    sync_folder(final.parent)
