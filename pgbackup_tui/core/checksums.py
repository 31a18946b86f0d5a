"""The checksums a manifest keeps of its archive's files: taken once, compared before a restore.

New backups are summed with XXH3-128 (the `xxhash` package), written "xxh3-128:<32 hex>". It finds
a changed byte as surely as sha256 does for what the checksum is here to catch -- a file cut short,
rotted or copied wrong -- at a tenth of the CPU (0.012 s against 0.12-0.15 s for a 206 MB archive
on this project's 2-core VM): the sum is taken beside pg_dump and again beside pg_restore, where
the CPU it takes is CPU they wanted. It is not a seal against someone who edits the archive on
purpose: they could edit the manifest beside it as well, whatever the sum. `xxhsum -H2 FILE`
prints the same sum. A bare 64-hex value is a sha256 from a manifest written before (still read).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Protocol

import xxhash

from .archive_scan import CHUNK, archive_files

ALGORITHM = "xxh3-128"
_PREFIX = f"{ALGORITHM}:"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class Digest(Protocol):
    """hashlib's and xxhash's running sums alike."""

    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


def new_digest() -> Digest:
    """A running sum of the algorithm new manifests use; finish it with `as_checksum`."""
    return xxhash.xxh3_128()


def as_checksum(digest: Digest) -> str:
    """The manifest's text for a finished sum from `new_digest`."""
    return _PREFIX + digest.hexdigest()


def _known_kind(recorded: object) -> str | None:
    """"xxh3-128" or "sha256" (a manifest from before xxh3-128: bare hex), else None (a newer
    algorithm, a hand-edited manifest)."""
    if isinstance(recorded, str) and recorded.startswith(_PREFIX):
        return ALGORITHM
    if isinstance(recorded, str) and _SHA256.fullmatch(recorded):
        return "sha256"
    return None


def _digest_for(recorded: object) -> tuple[Digest, str] | None:
    """A running sum of the algorithm `recorded` was taken with, and the hex it must end at; None
    for a value this version does not know."""
    kind = _known_kind(recorded)
    if kind == ALGORITHM:
        return xxhash.xxh3_128(), str(recorded).removeprefix(_PREFIX)
    if kind == "sha256":
        return hashlib.sha256(), str(recorded)
    return None


def algorithm_of(recorded: object) -> str:
    """What `recorded` was taken with, for messages ("xxh3-128", "sha256", or what it says it is)."""
    return _known_kind(recorded) or str(recorded).partition(":")[0][:40] or "?"


def checkable(checksums: dict[str, str]) -> bool:
    """Whether this version can compare every one of a manifest's checksums (a restore reads an
    archive through instead where it cannot)."""
    return bool(checksums) and all(_digest_for(value) is not None for value in checksums.values())


def _read_into(path: Path, digest: Digest) -> Digest:
    """`digest` fed the whole file, in chunks (never held whole)."""
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest


def checksum_file(path: Path) -> str:
    """The checksum of one file."""
    return as_checksum(_read_into(path, new_digest()))


def checksum_archive(archive: Path) -> dict[str, str]:
    """The checksum of the archive's file, or of each file of a directory archive (by relative path)."""
    return {name: checksum_file(path) for name, path in archive_files(archive)}


def compare_checksums(archive: Path, expected: dict[str, str]) -> list[str]:
    """Problems, one line each naming the file: changed, missing, or not in the manifest."""
    problems = []
    present = dict(archive_files(archive)) if archive.exists() else {}
    for name, recorded in sorted(expected.items()):
        path = present.pop(name, None)
        shown = archive / name if name else archive
        known = _digest_for(recorded)
        if path is None:
            problems.append(f"{shown}: missing")
        elif known is None:
            problems.append(f"{shown}: the manifest's checksum is of a kind this pgbackup-tui does not know "
                            f"({algorithm_of(recorded)}); not compared")
        elif _read_into(path, known[0]).hexdigest() != known[1]:
            problems.append(f"{shown}: its {algorithm_of(recorded)} checksum differs from the manifest "
                            "(the file changed since the backup)")
    for name in sorted(present):
        problems.append(f"{archive / name}: not in the manifest (added since the backup)")
    return problems


def describe(checksums: dict[str, str]) -> str:
    """"xxh3-128" / "sha256" (or both, for a manifest that somehow mixes them): for messages."""
    return "/".join(sorted({algorithm_of(value) for value in checksums.values()})) or ALGORITHM
