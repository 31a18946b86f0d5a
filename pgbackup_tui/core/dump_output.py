"""A dump job's output: the archive's name reserved, and the work files it owns until it succeeds.

The name is reserved through output_names.py (its `.partial` is the job's from then on); each work
file is on the job's record before it exists (Job.own) and removed by a failure or a cancel, with
the folders made for it; a directory archive is made private before it is put in place.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from . import paths
from .jobs import Job
from .output_names import check_output_location, job_claim, reserve_output
from .plans import DumpPlan, default_output_path, utc_stamp


class DumpOutputs(Job):
    """The part of DumpJob that claims its output and its work files, and removes them on failure."""

    plan: DumpPlan
    backups_root: Path | None
    _owned_paths: list[Path]  # removed unless the job succeeds
    _created_folders: list[Path]  # folders made for the output: removed if left empty by a failure

    def _choose_output(self) -> Path:
        """Reserve the archive's name (output_names.py): its `.partial` is ours from here on."""
        plan = self.plan
        directory = plan.format == "directory"
        if plan.output is not None:
            final = Path(plan.output).expanduser().absolute()
            check_output_location(final)
            final = reserve_output(final, directory=directory, numbered=False, created=self._created_folders,
                                   claim=job_claim(self, self._owned_paths))
        else:
            root = self.backups_root or paths.backups_dir()
            final = default_output_path(root, plan.target.label, plan.dbname, plan.format, utc_stamp())
            # Two dumps of one database in the same second get distinct names: -2, -3...
            final = reserve_output(final, directory=directory, numbered=True, created=self._created_folders,
                                   claim=job_claim(self, self._owned_paths))
        return final

    def _own_path(self, path: Path) -> None:
        """`path` is ours until the job succeeds: on record (durably, in the runner) and removed on failure."""
        top = min(self._created_folders, key=lambda p: len(p.parts)).parent if self._created_folders else None
        self._owned_paths.append(path)  # first: if recording it fails (a full disk), cleanup still removes it
        self.own("path", path, stop_at=top)

    def _claim(self, path: Path, *, directory: bool) -> None:
        """Create a work file ourselves at 0600/0700 (pg_dump keeps the mode of a file it truncates)."""
        self._own_path(path)
        if directory:
            path.mkdir(mode=0o700)
        else:
            path.touch(mode=0o600)

    def _remove_owned(self) -> None:
        for path in self._owned_paths:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            self.release("path", path)
        self._owned_paths = []


def make_private(folder: Path) -> None:
    """pg_dump -Fd creates its files with the process umask: make them 0600 like everything we write."""
    for item in folder.rglob("*"):
        item.chmod(0o700 if item.is_dir() else 0o600)
