"""Which of some backups a process on this machine is reading now (Linux: /proc).

Retention asks before it deletes: a restore of our own is a job and is found as one
(catalog_ops: archives_of_live_jobs), but a drill or a verify runs in the process that asked for
it, and a DBA's own `pg_restore` of a scheduled backup is nobody's job at all. A directory
archive deleted under such a reader failed it half way (pg_restore opens each table's file as it
comes to it), its target left half restored.

A process reads a backup when it has one of its files open, or when the backup is one of its
arguments: pg_restore waiting on a lock, between two tables' files, has none of them open. Only
the processes we may look at are seen (our own user's, every one for root); elsewhere than
Linux none is, and nothing is kept for it.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")


def readers_of(paths: list[Path]) -> dict[Path, int]:
    """Of `paths` (archives: a file, or a folder whose files count), those another process is
    reading now, each with the id of one such process."""
    if not paths:
        return {}
    wanted = {os.path.realpath(path): path for path in paths}
    names = {os.path.basename(real) for real in wanted} | {path.name for path in paths}
    found: dict[Path, int] = {}

    def note(target: str, pid: int) -> None:
        for real, path in wanted.items():
            if path not in found and (target == real or target.startswith(real + os.sep)):
                found[path] = pid

    try:
        pids = [int(name) for name in os.listdir(PROC) if name.isdigit()]
    except OSError:
        return {}
    ours = _this_and_its_starters()
    for pid in pids:
        if pid in ours:
            continue
        for argument in _arguments(pid, names):
            note(argument, pid)
        folder = PROC / str(pid) / "fd"
        try:
            fds = os.listdir(folder)
        except OSError:  # gone meanwhile, or another user's
            continue
        for fd in fds:
            try:
                note(os.readlink(folder / fd), pid)
            except OSError:
                continue
    return found


def _this_and_its_starters() -> set[int]:
    """This process and those that started it (its parent, theirs...): not readers of a backup this
    one is deleting (a wrapper that names it, `strace -P` in the tests)."""
    found, pid = {os.getpid()}, os.getppid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            stat = (PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
            pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent's id: after the name, which may hold ')'
        except (OSError, ValueError, IndexError):
            break
    return found


def _arguments(pid: int, names: set[str]) -> list[str]:
    """The arguments of process `pid` that hold one of `names` (the backups' own names: few
    arguments of few processes), as whole real paths (a relative one from the process's own working
    folder). Only those are resolved: resolving every argument of every process could wait on a
    path of a hung network mount."""
    try:
        argv = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")[1:]
    except OSError:
        return []
    candidates = [argument for raw in argv if (argument := os.fsdecode(raw)) and not argument.startswith("-")
                  and any(name in argument for name in names)]
    if not candidates:
        return []
    try:
        cwd: str | None = os.readlink(PROC / str(pid) / "cwd")
    except OSError:
        cwd = None
    named = []
    for argument in candidates:
        if not os.path.isabs(argument):
            if cwd is None:
                continue
            argument = os.path.join(cwd, argument)
        named.append(os.path.realpath(argument))
    return named


def command_of(pid: int) -> str:
    """The program of process `pid` as `ps` names it ('pg_restore'), or '?' when it cannot be read."""
    try:
        return (PROC / str(pid) / "comm").read_text(encoding="utf-8", errors="replace").strip() or "?"
    except OSError:
        return "?"
