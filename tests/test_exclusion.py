"""The --exclude-table patterns of a selection (core/exclusion.py) leave out exactly the relations
they should, as pg_dump itself reads them, and their number follows the selection, not the database."""

from __future__ import annotations

import random
import subprocess

from pgbackup_tui.core.exclusion import exclusion_patterns
from pgbackup_tui.core.identifiers import QualifiedName, always_quote
from pgbackup_tui.core.pgtools import find_client_tools

# Names a careless pattern would get wrong: case, psql pattern characters, quotes, dots, spaces,
# non-ASCII, prefixes of each other, and names a character class must not touch.
AWKWARD = ["t", "t1", "t10", "t2", "T1", "Tx", "t*", "t?x", "t.x", 't"q', "t q", "t$", "tä", "täx", "t_1", "t_",
           "t[1]", "t^", "t-1", "abc", "abd", "ab", "a", "B", "été", "x(y)", "x|y", "1", "_"]


def _table_ddl(schema: str, names: list[str]) -> str:
    return "".join(f"CREATE TABLE {always_quote(schema)}.{always_quote(n)} (id int);" for n in names)


def _dumped_tables(sandbox, dbname: str, patterns: list[str]) -> set[QualifiedName]:
    tools = find_client_tools(sandbox.major)
    argv = [tools.pg_dump, f"--dbname={sandbox.dsn(dbname)}", "--schema-only", "--format=c",
            *[f"--exclude-table={p}" for p in patterns]]
    archive = subprocess.run(argv, check=True, capture_output=True).stdout
    listing = subprocess.run([tools.pg_restore, "--list"], input=archive, check=True,
                             capture_output=True).stdout.decode()
    found = set()
    for line in listing.splitlines():
        # "217; 1259 16502 TABLE s t postgres": our schemas and names hold no space but "t q"
        if " TABLE " in line and not line.startswith(";"):
            rest = line.split(" TABLE ", 1)[1].rsplit(" ", 1)[0]
            schema = next(s for s in ("Odd Schema", "s", "gone") if rest.startswith(s + " "))
            found.add(QualifiedName(schema, rest[len(schema) + 1:]))
    return found


def test_patterns_leave_out_exactly_the_others(sandbox, empty_db):
    sandbox.psql("CREATE SCHEMA s; CREATE SCHEMA gone; CREATE SCHEMA \"Odd Schema\";"
                 + _table_ddl("s", AWKWARD) + _table_ddl("gone", ["a", "b"])
                 + _table_ddl("Odd Schema", ["k", "l"]) + "CREATE SEQUENCE s.t1seq;", empty_db)
    everything = {QualifiedName("s", n) for n in AWKWARD} | {QualifiedName("gone", n) for n in "ab"} \
        | {QualifiedName("Odd Schema", n) for n in "kl"}
    rng = random.Random(15)
    for _ in range(6):
        keep = set(rng.sample(sorted(everything - {QualifiedName("gone", "a"), QualifiedName("gone", "b")}), 5))
        keep.add(QualifiedName("Odd Schema", "k"))
        others = everything - keep
        # The standalone sequence must stay (a default may need it): it is among what the patterns must spare.
        patterns = exclusion_patterns(sorted(others), sorted(keep | {QualifiedName("s", "t1seq")}))
        assert '"gone".*' in patterns  # a schema with nothing to keep: one pattern
        assert _dumped_tables(sandbox, empty_db, patterns) == keep, (sorted(keep), patterns)


def test_pattern_count_follows_the_selection():
    others = [QualifiedName("public", f"t_{i:05d}") for i in range(1, 10_001) if i % 200 != 1]
    keep = [QualifiedName("public", f"t_{i:05d}") for i in range(1, 10_001) if i % 200 == 1]
    patterns = exclusion_patterns(others, keep)
    assert len(keep) == 50
    assert len(patterns) < 400 < len(others)
    assert all(len(p) < 100 for p in patterns)
