"""A cluster set whose member archive was replaced by another one, with that one's own manifest
(copied from another set): it matched that manifest, so `verify` said "verified" and
`restore SET --only-db NAME` restored the other archive's contents into NAME, exit 0."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cliutil import run_cli
from pgbackup_tui.core.sandbox import Sandbox


@pytest.fixture
def two_dbs(sandbox: Sandbox) -> Iterator[tuple[str, str]]:
    first, second = (f"setm_{uuid.uuid4().hex[:8]}" for _ in range(2))
    for name, value in ((first, "aaa"), (second, "bbb")):
        sandbox.create_database(name)
        sandbox.psql(f"CREATE TABLE t (v text); INSERT INTO t SELECT '{value}' FROM generate_series(1, 50)", name)
    yield first, second
    for name in (first, second):
        sandbox.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_set(sandbox: Sandbox, out: Path, *dbs: str) -> str:
    """The set of databases `dbs` at `out`; what the command said on stderr."""
    picked = [arg for db in dbs for arg in ("--db", db)]
    done = run_cli("dumpall", "--set", "--compress", "0", *picked, "--output", str(out), "--progress", "none",
                   "--dsn", sandbox.dsn(), "--bin-dir", str(sandbox.bin_dir))
    assert done.returncode == 0, done.stderr
    return done.stderr


def swap_in(folder: Path, member: str, other: Path) -> None:
    """Put `other` (an archive with its manifest) where the set's `member` archive is."""
    shutil.copy(other, folder / member)
    shutil.copy(Path(f"{other}.manifest.json"), folder / f"{member}.manifest.json")


def test_a_member_replaced_by_another_database_s_archive_fails_verify_and_restore(sandbox, home, tmp_path, two_dbs):
    first, second = two_dbs
    out = tmp_path / "two.set"
    make_set(sandbox, out, first, second)
    swap_in(out, f"{first}.dump", out / f"{second}.dump")

    verified = run_cli("backups", "verify", str(out))
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert f"holds database '{second}', but the set was made with database '{first}'" in verified.stderr

    sandbox.psql(f'DROP DATABASE "{first}"')
    restored = run_cli("restore", str(out), "--only-db", first, "--progress", "none", "--dsn", sandbox.dsn(),
                       "--bin-dir", str(sandbox.bin_dir))
    assert restored.returncode == 2, restored.stdout + restored.stderr
    assert f"{first}.dump: holds database '{second}'" in restored.stderr and "nothing was restored" in restored.stderr
    assert len(restored.stderr.strip().splitlines()) == 1
    assert first not in sandbox.psql("SELECT datname FROM pg_database").split()  # refused before anything ran


def test_a_member_replaced_by_an_other_day_s_archive_of_its_database_fails_verify(sandbox, home, tmp_path, two_dbs):
    """The same database, the same size (one value of the same length changed), only other bytes."""
    first, second = two_dbs
    older, newer = tmp_path / "older.set", tmp_path / "newer.set"
    make_set(sandbox, older, first, second)
    sandbox.psql("UPDATE t SET v = 'zzz'", first)
    make_set(sandbox, newer, first, second)
    member = f"{first}.dump"
    assert (older / member).stat().st_size == (newer / member).stat().st_size
    swap_in(newer, member, older / member)

    verified = run_cli("backups", "verify", str(newer))
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert f"{member}: not the archive the set was made with" in verified.stderr


def test_a_changed_byte_in_a_member_stops_the_set_before_the_roles_change(sandbox, home, tmp_path, two_dbs):
    """A member changed without a change of size was found only by its own restore: the globals
    (roles) and the members before it were in by then, exit 1."""
    first, second = two_dbs
    out = tmp_path / "two.set"
    make_set(sandbox, out, first, second)
    member = out / f"{second}.dump"
    data = bytearray(member.read_bytes())
    at = data.find(b"bbb")
    assert at > 0  # --compress 0: the rows are there as text
    data[at] = ord("c")
    member.write_bytes(bytes(data))
    sandbox.psql(f'DROP DATABASE "{first}"')
    sandbox.psql(f'DROP DATABASE "{second}"')

    restored = run_cli("restore", str(out), "--progress", "none", "--dsn", sandbox.dsn(),
                       "--bin-dir", str(sandbox.bin_dir))
    assert restored.returncode == 2, restored.stdout + restored.stderr
    assert f"member {second}: {member}: its xxh3-128 checksum differs" in restored.stderr
    names = sandbox.psql("SELECT datname FROM pg_database").split()
    assert first not in names and second not in names  # not the member before it either


def test_a_member_whose_name_has_a_line_break_is_refused_in_one_line(sandbox, home, tmp_path):
    # QA: a set made before dumpall refused such names restored it as far as its own restore, after the
    # roles, where pg_restore refused the name: exit 1, and a message cut in two by the name ('break")').
    # A set's pg_dump takes the name as it is, so such a set can be made still.
    name = f"setm_{uuid.uuid4().hex[:8]}\nbreak"
    sandbox.create_database(name)
    try:
        out = tmp_path / "odd.set"
        said_at_dump = make_set(sandbox, out, name)
    finally:
        sandbox.drop_database(name)
    # Dumped (the data is safe), with a warning that its restore needs a database of another name.
    assert f"database {name!r} has a line break in its name" in said_at_dump, said_at_dump
    copy = tmp_path / "copy" / "odd.set"  # adopted elsewhere: listed, no traceback
    shutil.copytree(out, copy)
    shutil.copy(Path(f"{out}.manifest.json"), Path(f"{copy}.manifest.json"))
    assert run_cli("backups", "adopt", str(copy)).returncode == 0

    member = next(out.glob("*.dump"))
    target = ("--progress", "none", "--dsn", sandbox.dsn(), "--bin-dir", str(sandbox.bin_dir))
    for args, said in (((str(out), "--only-db", name), f"member database {name!r} has a line break in its name"),
                       ((str(member), "--db", "setm_other", "--create"),
                        "the database it was dumped from has a line break in its name")):
        restored = run_cli("restore", *args, *target)
        assert restored.returncode == 2 and len(restored.stderr.strip().splitlines()) == 1, restored.stderr
        assert said in restored.stderr and "nothing was restored" in restored.stderr, restored.stderr
    escaped = name.replace("\n", "\\n")
    made = f"SELECT count(*) FROM pg_database WHERE datname IN (E'{escaped}', 'setm_other')"
    assert sandbox.psql(made).strip() == "0"  # refused before anything ran
