"""The manifest's checksums (core/checksums.py): xxh3-128 for new backups, sha256 still read."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pgbackup_tui.core.checksums import ALGORITHM, checksum_archive, compare_checksums, describe


def test_a_new_checksum_is_xxh3_128_and_finds_one_changed_byte(tmp_path: Path) -> None:
    archive = tmp_path / "a.dump"
    archive.write_bytes(b"PGDMP" + bytes(range(256)) * 4096)
    recorded = checksum_archive(archive)
    assert list(recorded) == [""] and recorded[""].startswith(f"{ALGORITHM}:") and len(recorded[""]) == 9 + 32
    assert compare_checksums(archive, recorded) == []
    data = bytearray(archive.read_bytes())
    data[500_000] ^= 1
    archive.write_bytes(bytes(data))
    assert compare_checksums(archive, recorded) == [
        f"{archive}: its xxh3-128 checksum differs from the manifest (the file changed since the backup)"]


def test_a_manifest_from_before_keeps_its_sha256(tmp_path: Path) -> None:
    archive = tmp_path / "old.dump"
    archive.write_bytes(b"old archive bytes" * 1000)
    old = {"": hashlib.sha256(archive.read_bytes()).hexdigest()}
    assert describe(old) == "sha256" and compare_checksums(archive, old) == []
    archive.write_bytes(b"old archive bytes" * 999)
    assert compare_checksums(archive, old) == [
        f"{archive}: its sha256 checksum differs from the manifest (the file changed since the backup)"]


def test_a_directory_archive_names_the_file_that_changed_went_or_came(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    for name in ("toc.dat", "3001.dat.gz", "3002.dat.gz"):
        (folder / name).write_bytes(name.encode() * 100)
    recorded = checksum_archive(folder)
    assert sorted(recorded) == ["3001.dat.gz", "3002.dat.gz", "toc.dat"]
    (folder / "3001.dat.gz").write_bytes(b"x")
    (folder / "3002.dat.gz").unlink()
    (folder / "3003.dat.gz").write_bytes(b"new")
    assert compare_checksums(folder, recorded) == [
        f"{folder / '3001.dat.gz'}: its xxh3-128 checksum differs from the manifest "
        "(the file changed since the backup)",
        f"{folder / '3002.dat.gz'}: missing",
        f"{folder / '3003.dat.gz'}: not in the manifest (added since the backup)",
    ]


def test_a_checksum_of_an_unknown_kind_is_named_not_taken_for_a_changed_file(tmp_path: Path) -> None:
    archive = tmp_path / "new.dump"
    archive.write_bytes(b"bytes")
    assert compare_checksums(archive, {"": "blake3:" + "0" * 64}) == [
        f"{archive}: the manifest's checksum is of a kind this pgbackup-tui does not know (blake3); not compared"]
    assert compare_checksums(archive, {"": 12345}) == [  # type: ignore[dict-item]  # a hand-edited manifest
        f"{archive}: the manifest's checksum is of a kind this pgbackup-tui does not know (12345); not compared"]


def test_rows_that_differ_are_said_in_words() -> None:
    """A verify's or a drill's failure read '1 rows in the restored database' (QA)."""
    from pgbackup_tui.core.verify import compare_rows

    expected, found = {"public.a": 3, "public.b": 1, "public.c": 2}, {"public.a": 1, "public.c": 2}
    assert compare_rows(expected, found, "the archive") == [
        "table public.a: 1 row in the archive, 3 in the manifest",
        "table public.b: not in the archive (the manifest counted 1 row)"]
