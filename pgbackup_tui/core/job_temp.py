"""A job's temporary folder, on record before it exists.

tempfile.mkdtemp creates the folder and only then says its name: a runner killed between that
and the job's record of it (Job.own) would leave a folder nobody removes. Here the name is
chosen first (as mkdtemp does: random, under the temp dir), recorded, then created, 0700; a kill
at any point leaves nothing that is not on record.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

from .jobs import Job

ATTEMPTS = 100  # as mkdtemp's: a name is taken only by chance (or by someone guessing ours)


def owned_temp_dir(job: Job, prefix: str) -> Path:
    """A new private folder `prefix`XXXX under the temp dir, owned by `job` (removed by the job's
    cleanup, or by the next command's if its runner dies) before it is created."""
    root = Path(tempfile.gettempdir())
    for _attempt in range(ATTEMPTS):
        path = root / f"{prefix}{secrets.token_hex(6)}"
        job.own("path", path)  # raises if it cannot be recorded: then nothing is created
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            job.release("path", path)  # someone else's: never ours to remove (synced: it exists)
            continue
        except BaseException:
            job.release("path", path)  # not created: nothing to remove
            raise
        return path
    raise FileExistsError(f"no free name {prefix}... under {root} after {ATTEMPTS} attempts")
