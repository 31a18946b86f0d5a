"""restore --create keeps what the database was; --clean leaves the target either restored or as it was.

Every test runs on two real clusters of different majors (the `cluster` fixture): the database
properties, partitions, dependent views and foreign keys behave differently enough across majors
that one is not proof for the other.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cliutil import run_cli
from dbcompare import table_fingerprints
from held_session import session_left_open
from pgbackup_tui.core.connect import connect, target_from_dsn
from pgbackup_tui.core.errors import TargetError
from pgbackup_tui.core.restore_clean import require_no_sessions
from pgbackup_tui.core.restore_output import RestoreOutput
from pgbackup_tui.core.sandbox import Sandbox


@pytest.fixture(params=["sandbox", "other_sandbox"])
def cluster(request: pytest.FixtureRequest) -> Sandbox:
    return request.getfixturevalue(request.param)


@pytest.fixture
def names(cluster: Sandbox) -> Iterator[list[str]]:
    """Database names a test makes; all dropped afterwards, with anything a restore left beside them."""
    made: list[str] = []
    yield made
    for name in made + scratch_databases(cluster):
        cluster.drop_database(name)


def new_name(made: list[str], prefix: str = "t") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    made.append(name)
    return name


def scratch_databases(cluster: Sandbox) -> list[str]:
    return [n for n in cluster.psql("SELECT datname FROM pg_database WHERE datname LIKE 'pgbackup\\_%'").split() if n]


def dump(cluster: Sandbox, db: str, out: Path, *extra: str) -> Path:
    result = run_cli("dump", "--dsn", cluster.dsn(), "--bin-dir", str(cluster.bin_dir), "--db", db,
                     "--output", str(out), *extra)
    assert result.returncode == 0, result.stderr
    return out


def restore(cluster: Sandbox, archive: Path, db: str, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("restore", str(archive), "--dsn", cluster.dsn(), "--bin-dir", str(cluster.bin_dir),
                   "--db", db, *extra)


def database_props(cluster: Sandbox, db: str) -> dict[str, str]:
    """Everything `pg_restore --create` keeps about a database itself, in comparable form."""
    provider = "datlocprovider::text" if cluster.major >= 15 else "'c'"
    row = cluster.psql(
        f"""SELECT pg_encoding_to_char(encoding), datcollate, datctype, {provider},
                   pg_get_userbyid(datdba), coalesce(shobj_description(oid, 'pg_database'), ''),
                   (SELECT coalesce(string_agg(a.grantee::regrole::text || ':' || a.privilege_type, ',' ORDER BY 1), '')
                      FROM aclexplode(coalesce(datacl, acldefault('d', datdba))) a)
            FROM pg_database WHERE datname = '{db}'""").strip()
    keys = ["encoding", "collate", "ctype", "provider", "owner", "comment", "acl"]
    props = dict(zip(keys, row.split("|"), strict=True))
    props["settings"] = cluster.psql(
        f"""SELECT coalesce(r.rolname, '*') || '=' || array_to_string(s.setconfig, ';')
            FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
            LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE d.datname = '{db}' ORDER BY 1""").strip()
    return props


def make_role(cluster: Sandbox, name: str) -> None:
    cluster.psql(f"DO $$ BEGIN CREATE ROLE {name}; EXCEPTION WHEN duplicate_object THEN NULL; END $$")


# -- restore --create ------------------------------------------------------------------------------


def test_create_keeps_encoding_locale_owner_comment_settings_and_grants(cluster, home, names, tmp_path):
    source, copy = new_name(names, "latin"), new_name(names, "copy")
    for role in ("pgb_owner", "pgb_reader"):
        make_role(cluster, role)
    cluster.psql(f"CREATE DATABASE {source} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0 "
                 "OWNER pgb_owner")
    cluster.psql(f"""COMMENT ON DATABASE {source} IS 'caf\u00e9; with ALTER DATABASE {source} inside
and a second line';
ALTER DATABASE {source} SET search_path = app, public;
ALTER DATABASE {source} SET work_mem = '64MB';
ALTER DATABASE {source} SET timezone_abbreviations = 'Australia';
ALTER DATABASE {source} SET default_transaction_read_only = on;
ALTER ROLE pgb_reader IN DATABASE {source} SET work_mem = '8MB';
REVOKE CONNECT, TEMPORARY ON DATABASE {source} FROM PUBLIC;
GRANT CONNECT, CREATE ON DATABASE {source} TO pgb_reader;""")
    cluster.psql("SET default_transaction_read_only = off; CREATE TABLE t (a text); "
                 "INSERT INTO t VALUES ('\u00e9t\u00e9')", source)
    archive = dump(cluster, source, tmp_path / "latin.dump")

    dry = restore(cluster, archive, copy, "--create", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "LATIN1" in dry.stdout and "create database" in dry.stdout
    assert copy not in cluster.psql("SELECT datname FROM pg_database")  # a dry run creates nothing

    result = restore(cluster, archive, copy, "--create")
    assert result.returncode == 0, result.stderr
    # default_transaction_read_only = on came back too, yet the restore itself could write:
    # the database's settings are applied once its contents are in.
    assert database_props(cluster, copy) == database_props(cluster, source)
    assert cluster.psql("SELECT a FROM t", copy).strip() == "\u00e9t\u00e9"


def test_create_names_what_it_could_not_keep(cluster, home, names, tmp_path):
    """An owner or grantee role this server no longer has is reported, not fatal."""
    source, target = new_name(names, "src"), new_name(names)
    role = f"pgb_gone_{uuid.uuid4().hex[:6]}"
    cluster.psql(f"CREATE ROLE {role}")
    cluster.psql(f"CREATE DATABASE {source} OWNER {role}")
    cluster.psql(f"GRANT CONNECT ON DATABASE {source} TO {role}")
    archive = dump(cluster, source, tmp_path / "owned.dump", "--no-owner")
    cluster.drop_database(source)
    cluster.psql(f"DROP ROLE {role}")
    result = restore(cluster, archive, target, "--create", "--progress", "none")
    assert result.returncode == 0, result.stderr
    assert "not kept" in result.stderr and role in result.stderr, result.stderr
    assert target in cluster.psql("SELECT datname FROM pg_database")


# -- restore --table of a partitioned table --------------------------------------------------------


def test_table_restore_of_a_partitioned_table_brings_its_partitions(cluster, home, names, tmp_path):
    archive = dump(cluster, "shop", tmp_path / "shop.dump")
    target = new_name(names)
    result = restore(cluster, archive, target, "--create", "--table", "public.measurements", "--progress", "none")
    assert result.returncode == 0, result.stderr
    expected = cluster.psql("SELECT count(*) FROM public.measurements", "shop").strip()
    assert int(expected) > 0
    assert cluster.psql("SELECT count(*) FROM public.measurements", target).strip() == expected
    partitions = cluster.psql("SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.measurements'::regclass",
                              target).strip()
    assert partitions == cluster.psql(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.measurements'::regclass", "shop").strip()
    dry = restore(cluster, archive, new_name(names), "--create", "--table", "public.measurements", "--dry-run")
    assert "came along: TABLE public.measurements_default (partition or child of TABLE public.measurements)" \
        in dry.stdout


PARTITIONED_WITH_KEYS = """
CREATE TABLE public.events (id int, at date, note text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.events_2023 PARTITION OF public.events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE public.events_2024 PARTITION OF public.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE INDEX events_note_idx ON public.events (note);
CREATE UNIQUE INDEX events_2024_note_key ON public.events_2024 (note, id);
INSERT INTO public.events SELECT g, date '2023-06-01' + g, 'n' || g FROM generate_series(1, 400) g;
"""


def test_table_clean_of_one_partition_keeps_the_parent_s_indexes_and_its_own(cluster, home, names, tmp_path):
    # QA: a table-level --clean of one partition passed its dry run, then always failed: attached
    # to the parent first, the partition got the parent's primary key and indexes made for it, and
    # the archive's own ADD CONSTRAINT / CREATE INDEX then failed ("multiple primary keys",
    # "already exists"). Its indexes and constraints are now made before it is attached.
    source, target = new_name(names, "src"), new_name(names)
    cluster.create_database(source)
    cluster.psql(PARTITIONED_WITH_KEYS, source)
    archive = dump(cluster, source, tmp_path / "events.dump")
    made = restore(cluster, archive, target, "--create")
    assert made.returncode == 0, made.stderr
    cluster.psql("DELETE FROM public.events_2024; UPDATE public.events_2023 SET note = 'changed'", target)
    indexes = ("SELECT c.relname, coalesce(p.relname, '-') FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
               "LEFT JOIN pg_inherits h ON h.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = h.inhparent "
               "WHERE i.indrelid = 'public.events_2024'::regclass ORDER BY 1")
    before = cluster.psql(indexes, source)
    result = restore(cluster, archive, target, "--clean", "--table", "public.events_2024", "--progress", "none",
                     "--jobs", "2")
    assert result.returncode == 0, result.stderr
    # One psql transaction whatever --jobs says: a --jobs 2 went unused without a word (README audit).
    assert "--jobs 2 is not used: a table-level --clean runs in one psql transaction" in result.stderr
    assert cluster.psql("SELECT count(*) FROM public.events_2024", target) == \
        cluster.psql("SELECT count(*) FROM public.events_2024", source)
    assert cluster.psql("SELECT count(*) FROM public.events_2023 WHERE note = 'changed'", target).strip() != "0"
    assert cluster.psql(indexes, target) == before  # the same indexes, each attached to the same parent index
    inserted = cluster.psql("INSERT INTO public.events VALUES (1000, '2024-05-01', 'new') RETURNING id", target)
    assert inserted.split()[0] == "1000"


# -- a selection brings what it needs from other schemas --------------------------------------------

CROSS_SCHEMA = """
CREATE TABLE public.base (id int PRIMARY KEY, v text);
INSERT INTO public.base SELECT g, 'v' || g FROM generate_series(1, 100) g;
CREATE VIEW public.evens AS SELECT id, v FROM public.base WHERE id % 2 = 0;
CREATE SCHEMA other;
CREATE TABLE other.t2 (a int);
INSERT INTO other.t2 VALUES (1), (2);
CREATE FUNCTION other.f() RETURNS int LANGUAGE sql AS 'SELECT 42';
CREATE TYPE other.mood AS ENUM ('ok', 'meh');
CREATE SCHEMA s_mv;
CREATE MATERIALIZED VIEW s_mv.mv AS SELECT * FROM public.evens;
CREATE VIEW s_mv.v2 AS SELECT a, other.f() AS f FROM other.t2;
CREATE TABLE s_mv.plain (x int DEFAULT other.f(), m other.mood);
INSERT INTO s_mv.plain (m) VALUES ('ok');
CREATE TABLE public.unrelated (z int);
"""


def test_a_schema_selection_brings_what_its_objects_need_from_other_schemas(cluster, home, names, tmp_path):
    source, target = new_name(names, "src"), new_name(names)
    cluster.create_database(source)
    cluster.psql(CROSS_SCHEMA, source)
    result = run_cli("dump", "--dsn", cluster.dsn(), "--bin-dir", str(cluster.bin_dir), "--db", source,
                     "--schema", "s_mv", "--output", str(tmp_path / "s_mv.dump"), "--progress", "none")
    assert result.returncode == 0, result.stderr
    # Said without the log shown too (--progress none, the default off a terminal), as a schema it added is.
    assert "added view public.evens: needed by materialized view s_mv.mv" in result.stderr
    assert "added table other.t2: needed by view s_mv.v2" in result.stderr
    restored = restore(cluster, tmp_path / "s_mv.dump", target, "--create")
    assert restored.returncode == 0, restored.stderr
    assert cluster.psql("SELECT count(*) FROM s_mv.mv", target).strip() == "50"
    assert cluster.psql("SELECT a, f FROM s_mv.v2 ORDER BY a", target).split() == ["1|42", "2|42"]
    assert cluster.psql("SELECT x, m FROM s_mv.plain", target).strip() == "42|ok"
    assert cluster.psql("SELECT to_regclass('public.unrelated') IS NULL", target).strip() == "t"


def test_excluding_what_a_selection_needs_is_refused_before_dumping(cluster, home, names, tmp_path):
    source = new_name(names, "src")
    cluster.create_database(source)
    cluster.psql(CROSS_SCHEMA, source)
    result = run_cli("dump", "--dsn", cluster.dsn(), "--bin-dir", str(cluster.bin_dir), "--db", source,
                     "--schema", "s_mv", "--exclude-table", "public.evens", "--output", str(tmp_path / "x.dump"))
    assert result.returncode == 2
    assert "public.evens" in result.stderr and "needed by" in result.stderr
    assert not (tmp_path / "x.dump").exists() and not (tmp_path / "x.dump.partial").exists()


# -- --clean of some tables: one transaction ------------------------------------------------------

FILM = """
CREATE TABLE public.actor (id int PRIMARY KEY, name text);
CREATE TABLE public.film_actor (actor_id int REFERENCES public.actor, film_id int, PRIMARY KEY (actor_id, film_id));
CREATE TABLE public.casting_note (actor_id int, film_id int, note text,
    FOREIGN KEY (actor_id, film_id) REFERENCES public.film_actor);
CREATE VIEW public.actor_films AS SELECT a.name, fa.film_id
    FROM public.actor a JOIN public.film_actor fa ON fa.actor_id = a.id;
CREATE VIEW public.busy_actors AS SELECT name, count(*) AS films FROM public.actor_films GROUP BY name;
INSERT INTO public.actor SELECT g, 'actor ' || g FROM generate_series(1, 50) g;
INSERT INTO public.film_actor SELECT 1 + g % 50, g FROM generate_series(1, 500) g;
INSERT INTO public.casting_note VALUES (2, 1, 'first');
"""


def film_state(cluster: Sandbox, db: str) -> dict[str, str]:
    state = table_fingerprints(cluster, db, ["public.actor", "public.film_actor", "public.casting_note"])
    state["constraints"] = cluster.psql(
        "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint "
        "WHERE connamespace = 'public'::regnamespace", db).strip()
    state["views"] = cluster.psql("SELECT count(*) FROM public.busy_actors", db).strip()
    return state


def film_db(cluster: Sandbox, names: list[str], tmp_path: Path) -> tuple[str, Path, dict[str, str]]:
    """A database with the film tables, its archive, and what the archive holds."""
    db = new_name(names, "film")
    cluster.create_database(db)
    cluster.psql(FILM, db)
    archive = dump(cluster, db, tmp_path / "film.dump")
    return db, archive, film_state(cluster, db)


def test_table_clean_replaces_a_table_that_views_and_foreign_keys_depend_on(cluster, home, names, tmp_path):
    db, archive, dumped = film_db(cluster, names, tmp_path)
    cluster.psql("DELETE FROM public.casting_note; DELETE FROM public.film_actor WHERE film_id > 100; "
                 "INSERT INTO public.film_actor VALUES (1, 9999)", db)
    dry = restore(cluster, archive, db, "--clean", "--table", "public.film_actor", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "drop table public.film_actor" in dry.stdout
    assert "drop view public.busy_actors" in dry.stdout and "drop view public.actor_films" in dry.stdout
    assert "drop foreign key casting_note_actor_id_film_id_fkey on public.casting_note" in dry.stdout
    assert cluster.psql("SELECT count(*) FROM public.film_actor", db).strip() == "101"  # dry: untouched

    result = restore(cluster, archive, db, "--clean", "--table", "public.film_actor")
    assert result.returncode == 0, result.stderr
    after = film_state(cluster, db)
    assert after["public.film_actor"] == dumped["public.film_actor"]  # the archive's rows, no duplicates
    assert after["constraints"] == dumped["constraints"]  # primary key and both foreign keys are back
    assert after["views"] == dumped["views"]
    assert after["public.casting_note"] != dumped["public.casting_note"]  # not selected: left as it was


def test_table_clean_refuses_to_drop_a_view_the_archive_lacks(cluster, home, names, tmp_path):
    db, archive, _ = film_db(cluster, names, tmp_path)
    cluster.psql("CREATE VIEW public.made_later AS SELECT * FROM public.film_actor", db)
    before = film_state(cluster, db)
    result = restore(cluster, archive, db, "--clean", "--table", "public.film_actor")
    assert result.returncode == 2
    assert "view public.made_later" in result.stderr and "not in the archive" in result.stderr
    assert film_state(cluster, db) == before


def next_values(cluster: Sandbox, db: str, *sequences: str) -> list[int]:
    """What nextval would give for each sequence, without taking it."""
    return [int(cluster.psql(f"SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM {seq}",
                             db)) for seq in sequences]


def test_table_clean_sets_the_sequences_its_tables_take_from_to_the_archive_s(sandbox, home, fresh_db_name,
                                                                                 tmp_path):
    # QA: a sequence behind two tables' ids (or a serial another table's default takes from) is not
    # recreated by a table-level --clean, and kept the target's value: nextval handed out the ids of
    # restored rows again. One cluster: the rule is the restore's, not a major's.
    db = fresh_db_name
    sandbox.create_database(db)
    sandbox.psql("CREATE SEQUENCE shared_seq;"
                 "CREATE TABLE a (id bigint PRIMARY KEY DEFAULT nextval('shared_seq'));"
                 "CREATE TABLE b (id bigint PRIMARY KEY DEFAULT nextval('shared_seq'));"
                 "CREATE TABLE c (id serial PRIMARY KEY);"
                 "CREATE TABLE e (id int PRIMARY KEY DEFAULT nextval('c_id_seq'));"
                 "INSERT INTO a SELECT FROM generate_series(1, 10); INSERT INTO b SELECT FROM generate_series(1, 10);"
                 "INSERT INTO c SELECT FROM generate_series(1, 10); INSERT INTO e SELECT FROM generate_series(1, 5);",
                 db)
    archive = tmp_path / "seq.dump"  # shared_seq gives 21 next, c_id_seq 16
    subprocess.run([str(sandbox.bin_dir / "pg_dump"), "--format=c", f"--file={archive}", f"--dbname={sandbox.dsn(db)}"],
                   check=True, capture_output=True)

    # a and e restored, b and c not: each sequence goes forward to the archive's value, never back
    # under the rows of the table that was not restored.
    sandbox.psql("SELECT setval('shared_seq', 3); SELECT setval('c_id_seq', 100);", db)
    done = restore(sandbox, archive, db, "--clean", "--table", "public.a", "--table", "public.e")
    assert done.returncode == 0, done.stderr
    assert next_values(sandbox, db, "shared_seq", "c_id_seq") == [21, 101]
    logged = "".join(log.read_text() for log in (home / "logs").iterdir())
    assert "set sequence public.shared_seq to the archive's value, forward only: public.b takes from it" in logged
    sandbox.psql("INSERT INTO a DEFAULT VALUES", db)  # no duplicate key

    # Every table that takes from it restored: the archive's value exactly, back from further on too.
    sandbox.psql("SELECT setval('shared_seq', 500);", db)
    done = restore(sandbox, archive, db, "--clean", "--table", "public.a", "--table", "public.b")
    assert done.returncode == 0, done.stderr
    assert next_values(sandbox, db, "shared_seq") == [21]

    # c's own sequence, which e's default takes from: dropped with c, it would leave e's default without
    # it (psql failed half way, exit 1). Refused before anything runs; with e too, both go in one DROP.
    refused = restore(sandbox, archive, db, "--clean", "--table", "public.c")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "sequence public.c_id_seq" in refused.stderr and "(--table public.e)" in refused.stderr
    done = restore(sandbox, archive, db, "--clean", "--table", "public.c", "--table", "public.e")
    assert done.returncode == 0, done.stderr
    assert next_values(sandbox, db, "c_id_seq") == [16]


def test_clean_with_a_plain_dump_of_a_selection_is_refused(cluster, home, names, tmp_path):
    """A plain script of one table, restored with --clean, replaced the whole database with that
    table (exit 0): every other table was gone. It is refused (exit 2), the database as it was."""
    db, _, _ = film_db(cluster, names, tmp_path)
    script = dump(cluster, db, tmp_path / "one.sql", "--format", "plain", "--table", "public.film_actor")
    before = film_state(cluster, db)
    for extra in (("--dry-run",), ()):
        result = restore(cluster, script, db, "--clean", *extra)
        assert result.returncode == 2, result.stderr
        assert "a plain SQL dump of a selection" in result.stderr and "--create" in result.stderr, result.stderr
    assert film_state(cluster, db) == before
    assert not scratch_databases(cluster)
    fresh = new_name(names)
    done = restore(cluster, script, fresh, "--create")
    assert done.returncode == 0, done.stderr
    restored = table_fingerprints(cluster, fresh, ["public.film_actor"])
    assert restored == {"public.film_actor": before["public.film_actor"]}


INHERITANCE = """
CREATE TABLE public.parent_t (id int, note text);
CREATE TABLE public.child_t (extra int) INHERITS (public.parent_t);
CREATE TABLE public.grandchild_t () INHERITS (public.child_t);
CREATE TABLE public.both_t () INHERITS (public.parent_t, public.child_t);  -- two parents, one above the other
INSERT INTO public.parent_t VALUES (1, 'parent'), (2, 'parent');
INSERT INTO public.child_t VALUES (3, 'child', 30);
INSERT INTO public.grandchild_t VALUES (4, 'grandchild', 40);
"""


def own_rows(cluster: Sandbox, db: str) -> list[str]:
    return [cluster.psql(f"SELECT count(*) FROM ONLY public.{table}", db).strip()
            for table in ("parent_t", "child_t", "grandchild_t")]


def test_inheritance_parents_and_children_in_a_selection_and_a_table_clean(cluster, home, names, tmp_path):
    """A child selected brings its parent's definition, not the parent's rows (they were restored
    as if selected). A table-level --clean of a parent drops its children by INHERITS first (a
    DROP of the parent alone failed: the dry run promised a plan that could not run)."""
    db = new_name(names, "inh")
    cluster.create_database(db)
    cluster.psql(INHERITANCE, db)
    child_only = dump(cluster, db, tmp_path / "child.dump", "--table", "public.child_t")
    fresh = new_name(names)
    done = restore(cluster, child_only, fresh, "--create")
    assert done.returncode == 0, done.stderr
    assert own_rows(cluster, fresh) == ["0", "1", "1"]  # the parent's definition only; the child's family whole
    # A table-level --clean from that archive leaves the parent as it is (it came back empty) ...
    cluster.psql("DELETE FROM public.child_t", db)
    again = restore(cluster, child_only, db, "--clean")
    assert again.returncode == 0, again.stderr
    assert own_rows(cluster, db) == ["2", "1", "1"]
    # ... and a --clean of the parent itself from it is refused.
    refused = restore(cluster, child_only, db, "--clean", "--table", "public.parent_t")
    assert refused.returncode == 2 and "definition of" in refused.stderr and "only" in refused.stderr, refused.stderr
    assert own_rows(cluster, db) == ["2", "1", "1"]

    whole = dump(cluster, db, tmp_path / "whole.dump")
    # restore --table of the child out of a whole archive: the same, its parent's definition only
    # (the parent's rows came with it, as if selected) (QA).
    picked = new_name(names)
    done = restore(cluster, whole, picked, "--create", "--table", "public.child_t", "--progress", "plain")
    assert done.returncode == 0, done.stderr
    assert own_rows(cluster, picked) == ["0", "1", "1"]
    assert "added TABLE public.parent_t: the parent of a selected table (INHERITS), its definition without its own " \
           "rows" in done.stderr, done.stderr
    cluster.psql("DELETE FROM public.parent_t; INSERT INTO public.grandchild_t VALUES (5, 'later', 50)", db)
    dry = restore(cluster, whole, db, "--clean", "--table", "public.parent_t", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert all(f"drop table public.{t}" in dry.stdout for t in ("parent_t", "child_t", "grandchild_t", "both_t"))
    result = restore(cluster, whole, db, "--clean", "--table", "public.parent_t")
    assert result.returncode == 0, result.stderr
    assert own_rows(cluster, db) == ["2", "1", "1"]


def test_large_objects_left_out_of_a_selection_are_said(cluster, home, names, tmp_path):
    """A selection leaves large objects out (as pg_dump -t and pg_restore -t do): a table whose
    rows hold their OIDs was restored pointing at none, without a word. It is said, both ways."""
    db = new_name(names, "lo")
    cluster.create_database(db)
    cluster.psql("CREATE TABLE public.docs (id int PRIMARY KEY, blob oid); CREATE TABLE public.plain (id int);"
                 "INSERT INTO public.docs VALUES (1, lo_from_bytea(0, 'hello'::bytea))", db)
    done = run_cli("dump", "--dsn", cluster.dsn(), "--bin-dir", str(cluster.bin_dir), "--db", db,
                   "--output", str(tmp_path / "docs.dump"), "--table", "public.docs", "--progress", "plain")
    assert done.returncode == 0, done.stderr
    assert "large objects are left out of a selection" in done.stderr and "public.docs.blob" in done.stderr
    quiet = run_cli("dump", "--dsn", cluster.dsn(), "--bin-dir", str(cluster.bin_dir), "--db", db,
                    "--output", str(tmp_path / "plain.dump"), "--table", "public.plain", "--progress", "plain")
    assert quiet.returncode == 0 and "large objects" not in quiet.stderr, quiet.stderr

    whole = dump(cluster, db, tmp_path / "whole.dump")
    fresh = new_name(names)
    result = restore(cluster, whole, fresh, "--create", "--table", "public.docs", "--progress", "plain")
    assert result.returncode == 0, result.stderr
    assert "large objects are not restored with --table" in result.stderr, result.stderr


def test_a_cancelled_table_clean_leaves_the_tables_as_they_were(cluster, home, names, tmp_path):
    db, archive, _ = film_db(cluster, names, tmp_path)
    cluster.psql("DELETE FROM public.film_actor WHERE film_id > 250", db)
    before = film_state(cluster, db)
    # A session reading the table holds the restore's DROP TABLE on its lock: cancel it there.
    blocker = session_left_open(cluster, cluster.dsn(db),
                                "BEGIN; LOCK TABLE public.film_actor IN ACCESS SHARE MODE; SELECT pg_sleep(60);")
    job = subprocess.Popen([sys.executable, "-m", "pgbackup_tui", "restore", str(archive), "--dsn", cluster.dsn(),
                            "--bin-dir", str(cluster.bin_dir), "--db", db, "--clean", "--table", "public.film_actor"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            waiting = cluster.psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' "
                                   "AND wait_event_type = 'Lock' AND application_name LIKE 'pgbackup-tui%'").strip()
            if waiting != "0":
                break
            time.sleep(0.2)
        else:
            pytest.fail("the restore never reached its DROP TABLE")
        job.send_signal(signal.SIGINT)
        _, stderr = job.communicate(timeout=60)
    finally:
        blocker.kill()
        blocker.wait()
    assert job.returncode == 130, stderr
    assert film_state(cluster, db) == before


# -- --clean of a whole database: restored beside it, swapped in ------------------------------------


def test_whole_database_clean_with_partitions_swaps_in_the_restored_copy(cluster, home, names, tmp_path):
    archive = dump(cluster, "shop", tmp_path / "shop.dump")
    target = new_name(names)
    cluster.psql(f"CREATE DATABASE {target} TEMPLATE shop")
    cluster.psql("DELETE FROM public.measurements; CREATE TABLE public.stray (x int)", target)
    # A subscriber: the previous database, its subscription in it, could not be dropped after the swap
    # ("is being used by logical replication subscription"), and every later start failed again.
    cluster.psql("CREATE SUBSCRIPTION feed CONNECTION 'host=127.0.0.1 port=1 dbname=nowhere' PUBLICATION p "
                 "WITH (connect = false)", target)
    # A template database (the one a team makes theirs from): the previous one, once swapped out,
    # "cannot drop a template database", at the swap and at every later start.
    cluster.psql(f"ALTER DATABASE {target} IS_TEMPLATE true")
    dry = restore(cluster, archive, target, "--clean", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "restore into a new database beside" in dry.stdout and "swap" in dry.stdout

    result = restore(cluster, archive, target, "--clean")
    assert result.returncode == 0, result.stderr  # no "cannot drop inherited constraint" (exit 3)
    # Its slot stays on the publisher, which keeps WAL for it: said (review).
    assert "subscription(s) feed (slot feed) are dropped with it, their slots kept" in result.stderr, result.stderr
    assert table_fingerprints(cluster, target) == table_fingerprints(cluster, "shop")
    assert cluster.psql("SELECT to_regclass('public.stray') IS NULL", target).strip() == "t"
    assert scratch_databases(cluster) == []  # the old one is dropped, nothing else left
    assert "could not drop" not in result.stderr, result.stderr


def test_whole_database_clean_keeps_the_old_one_when_asked(cluster, home, names, tmp_path):
    archive = dump(cluster, "shop", tmp_path / "shop.dump")
    target = new_name(names)
    cluster.psql(f"CREATE DATABASE {target} TEMPLATE shop")
    cluster.psql("CREATE TABLE public.mine (x int); INSERT INTO public.mine VALUES (7)", target)
    result = restore(cluster, archive, target, "--clean", "--keep-old")
    assert result.returncode == 0, result.stderr
    kept = scratch_databases(cluster)
    assert len(kept) == 1 and kept[0] in result.stderr
    assert cluster.psql("SELECT x FROM public.mine", kept[0]).strip() == "7"


def test_a_failing_whole_database_clean_leaves_the_target_as_it_was(cluster, home, names, tmp_path):
    """The archive's objects belong to a role this server lacks: the restore fails in the new
    database, which is dropped; the target is not touched."""
    source, target = new_name(names, "src"), new_name(names)
    role = f"pgb_absent_{uuid.uuid4().hex[:6]}"
    cluster.psql(f"CREATE ROLE {role}")
    cluster.create_database(source)
    cluster.psql(f"CREATE TABLE public.owned (x int); ALTER TABLE public.owned OWNER TO {role}", source)
    archive = dump(cluster, source, tmp_path / "owned.dump")
    cluster.drop_database(source)
    cluster.psql(f"DROP ROLE {role}")
    cluster.create_database(target)
    cluster.psql("CREATE TABLE public.precious (x int); INSERT INTO public.precious VALUES (1)", target)
    result = restore(cluster, archive, target, "--clean")
    assert result.returncode == 1, result.stderr
    assert "is unchanged" in result.stderr
    # Stopped at that error, as a --create goes past it (exit 3): what to do is said all the same.
    assert f'role "{role}" does not exist; --no-owner restores without the archive\'s owners' in result.stderr
    assert cluster.psql("SELECT x FROM public.precious", target).strip() == "1"
    assert scratch_databases(cluster) == []
    # A role that may not give its objects to the archive's owner (not a member of it): the same way out.
    stopped = RestoreOutput()
    for line in ["pg_restore: error: could not execute query: ERROR:  must be member of role \"postgres\"",
                 "Command was: ALTER TABLE public.owned OWNER TO postgres;"]:
        stopped.watch(line)
    assert stopped.failure_hint().startswith("; --no-owner restores them as this role"), stopped.failure_hint()


def test_whole_database_clean_refuses_while_others_are_connected(cluster, home, names, tmp_path):
    archive = dump(cluster, "shop", tmp_path / "shop.dump")
    target = new_name(names)
    cluster.create_database(target)
    other = subprocess.Popen([str(cluster.bin_dir / "psql"), "-X", "-q", "-d", cluster.dsn(target), "-c",
                              "SELECT pg_sleep(30)"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while cluster.psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{target}'").strip() == "0":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        result = restore(cluster, archive, target, "--clean")
    finally:
        other.kill()
        other.wait()
    assert result.returncode == 2
    assert "other session" in result.stderr
    assert scratch_databases(cluster) == []


def test_a_whole_database_clean_cancelled_while_its_swap_waits_for_a_lock_leaves_the_target(sandbox, home, tmp_path,
                                                                                             fresh_db_name):
    """A DBA's uncommitted GRANT CONNECT holds the target's row in pg_database: the swap's rename
    waits for it. Ctrl-C was held until the lock went (never, for a transaction left open), and then
    the target was replaced (exit 0). Meanwhile the progress stood at its last line ("ETA 0s"): the
    wait is said, naming the session."""
    target = fresh_db_name
    archive = dump(sandbox, "shop", tmp_path / "shop.dump")
    sandbox.create_database(target)
    sandbox.psql("CREATE TABLE public.precious (x int); INSERT INTO public.precious VALUES (1)", target)
    blocker = session_left_open(sandbox, sandbox.dsn(), f"BEGIN; GRANT CONNECT ON DATABASE {target} TO PUBLIC;")
    job = subprocess.Popen([sys.executable, "-m", "pgbackup_tui", "restore", str(archive), "--dsn", sandbox.dsn(),
                            "--bin-dir", str(sandbox.bin_dir), "--db", target, "--clean", "--progress", "plain"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        while sandbox.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND query LIKE 'ALTER DATABASE%RENAME%'").strip() == "0":
            assert time.monotonic() < deadline and job.poll() is None, "the restore never reached its swap"
            time.sleep(0.1)
        holder = sandbox.psql("SELECT pid FROM pg_stat_activity WHERE query LIKE 'GRANT CONNECT%'").strip()
        lines: list[str] = []

        def read_stderr() -> None:
            assert job.stderr is not None
            for line in job.stderr:
                lines.append(line)

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        deadline = time.monotonic() + 20
        while not any("the swap of names waits for a lock" in line for line in lines):
            assert time.monotonic() < deadline, f"the wait was never said: {lines[-2:]}"
            time.sleep(0.1)
        assert any(f"held by pid {holder} (psql)" in line for line in lines), lines
        # `jobs list` (and the TUI, from the same record) said the load's last line meanwhile ("ETA 1s").
        listed = ""
        deadline = time.monotonic() + 20
        while "waiting for" not in listed:
            assert time.monotonic() < deadline, f"jobs list never said the swap's wait: {listed}"
            listed = " ".join(info["progress"] or "" for info in json.loads(run_cli("jobs", "list", "--json").stdout)
                              if info["state"] == "running")
        assert " finishing " in listed and "ETA" not in listed, listed
        assert f"waiting for a lock held by pid {holder} (psql) on database '{target}', to swap in" in listed, listed
        job.send_signal(signal.SIGINT)
        job.wait(timeout=30)
        reader.join(timeout=10)
        stderr = "".join(lines)
    finally:
        job.kill()
        blocker.kill()
        blocker.wait()
        leftovers = scratch_databases(sandbox)
        for name in leftovers:
            sandbox.drop_database(name)
    assert job.returncode == 130, stderr
    assert f"cancelled; '{target}' is unchanged; the new database 'pgbackup_new_" in stderr, stderr
    assert sandbox.psql("SELECT x FROM public.precious", target).strip() == "1"
    assert leftovers == []


def test_a_swap_says_its_wait_for_a_lock_before_it_commits_never_after(sandbox, monkeypatch):
    """The swap's "waits for a lock" line is written by a timer, whose cancel() does not stop a callback
    already started: its line could come after the swap had committed (QA). Here the line's writer
    lets the lock go and then waits for the swap to return: the swap waits for the line instead."""
    from pgbackup_tui.core import restore_target

    monkeypatch.setattr(restore_target, "SWAP_WAIT_SAID_AFTER_S", 0.05)
    current, restored, old = (f"t_{uuid.uuid4().hex[:8]}" for _ in range(3))
    sandbox.create_database(current)
    sandbox.create_database(restored)
    happened: list[str] = []
    swapped = threading.Event()
    try:
        with psycopg.connect(sandbox.dsn()) as dba:  # a DBA's open transaction holding the target's row
            # Locked, not changed: a row a GRANT had changed made the rename fail once let go.
            dba.execute("SELECT 1 FROM pg_database WHERE datname = %s FOR UPDATE", (current,))

            def log(line: str) -> None:
                assert "the swap of names waits for a lock" in line, line
                dba.commit()  # the renames go on; the line is written after the swap's COMMIT, or never
                swapped.wait(1)  # with the line held to the swap, this waits in vain: not an assertion
                happened.append("said")

            restore_target.swap_databases(target_from_dsn(sandbox.dsn()), "postgres", restored, current, old, log=log)
            happened.append("swapped")
            swapped.set()
            deadline = time.monotonic() + 10
            while "said" not in happened:  # the timer's thread, after the swap (without the guard)
                assert time.monotonic() < deadline, happened
                time.sleep(0.05)
        assert happened == ["said", "swapped"]
    finally:
        for name in (current, restored, old):
            sandbox.drop_database(name)


def test_whole_database_clean_of_postgres_itself(sandbox, home, tmp_path):
    """The maintenance database is the target: the job works from template1 (it connected to
    postgres itself, and refused the clean for its own session)."""
    with Sandbox(bin_dir=sandbox.bin_dir) as own:
        own.psql("CREATE TABLE public.kept (id int); INSERT INTO public.kept VALUES (1), (2);")
        archive = dump(own, "postgres", tmp_path / "postgres.dump")
        own.psql("DELETE FROM public.kept; CREATE TABLE public.later (id int);")
        result = restore(own, archive, "postgres", "--clean")
        assert result.returncode == 0, result.stderr
        assert own.psql("SELECT count(*) FROM public.kept").strip() == "2"
        assert own.psql("SELECT to_regclass('public.later') IS NULL").strip() == "t"
        assert not scratch_databases(own)


def test_whole_database_clean_waits_a_moment_for_sessions_that_are_ending(cluster, names):
    """`restore` then `restore --clean` back to back: the first one's goodbye may reach the server a
    moment late (a slow link); a session that ends within SESSIONS_ENDING_S is waited for, one that
    stays is refused after it."""
    target = new_name(names)
    cluster.create_database(target)
    checker = connect(target_from_dsn(cluster.dsn()))
    leaving = psycopg.connect(cluster.dsn(target))
    try:
        closer = threading.Timer(0.6, leaving.close)
        started = time.monotonic()
        closer.start()
        require_no_sessions(checker, target, wait_s=10)  # the session is there when it starts: it must wait for it
        assert time.monotonic() - started >= 0.5
        closer.join()
        staying = psycopg.connect(cluster.dsn(target))
        try:
            started = time.monotonic()
            with pytest.raises(TargetError, match=r"has 1 other session\(s\)"):
                require_no_sessions(checker, target, wait_s=0.5)
            assert time.monotonic() - started >= 0.5
        finally:
            staying.close()
    finally:
        leaving.close()
        checker.close()


def test_a_clean_with_a_schema_only_archive_says_the_tables_come_back_empty(sandbox, home, empty_db):
    archives = {}
    for option in ("--schema-only", None):
        dumped = run_cli("dump", "--dsn", sandbox.dsn(), "--db", "shop", "--progress", "none",
                         *([option] if option else []))
        assert dumped.returncode == 0, dumped.stderr
        archives[option] = dumped.stdout.strip()
    said = {}
    for option, archive in archives.items():
        dry = run_cli("restore", archive, "--dsn", sandbox.dsn(), "--db", empty_db, "--clean", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        said[option] = dry.stdout + dry.stderr
    assert f"the database that replaces '{empty_db}' has its tables empty" in said["--schema-only"]
    assert "has its tables empty" not in said[None]


def relation_acls(cluster: Sandbox, db: str) -> str:
    """Each relation's grants in public, a default (NULL) one as what it stands for."""
    return cluster.psql(
        "SELECT string_agg(relname || '=' || coalesce(relacl, acldefault(CASE relkind WHEN 'S' THEN 's' "
        "ELSE 'r' END::\"char\", relowner))::text, ' ' ORDER BY relname) FROM pg_class "
        "WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'v', 'S')", db).strip()


def test_table_clean_keeps_the_archive_s_grants_not_the_target_s_default_privileges(cluster, home, names, tmp_path):
    # The target's ALTER DEFAULT PRIVILEGES act on every relation a table-level --clean creates
    # again: the table, its serial's sequence and the view that reads it got grants they never had.
    make_role(cluster, "fid_reader")
    make_role(cluster, "fid_auditor")
    db = new_name(names, "acl")
    cluster.create_database(db)
    cluster.psql("CREATE TABLE public.t (id serial PRIMARY KEY, x int); INSERT INTO public.t(x) VALUES (1);"
                 "CREATE VIEW public.v AS SELECT * FROM public.t; GRANT SELECT (x) ON public.t TO fid_auditor;"
                 "GRANT UPDATE ON public.t TO fid_auditor;"
                 "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO fid_reader;"
                 "ALTER DEFAULT PRIVILEGES GRANT USAGE ON SEQUENCES TO fid_reader", db)
    before = relation_acls(cluster, db)
    archive = dump(cluster, db, tmp_path / "acl.dump")
    result = restore(cluster, archive, db, "--clean", "--table", "public.t")
    assert result.returncode == 0, result.stderr
    assert relation_acls(cluster, db) == before
    assert "fid_auditor" in cluster.psql("SELECT attacl FROM pg_attribute WHERE attrelid = 'public.t'::regclass "
                                         "AND attname = 'x'", db)


def test_clean_with_a_plain_dump_keeps_the_target_s_settings_and_none_of_its_objects(cluster, home, names, tmp_path):
    # A plain dump records nothing of its database: the one it replaces gives the new one its
    # settings. Read with pg_dump, that description held the old database's publications, foreign
    # data wrappers, event triggers... too: made again in the restored one (or "not kept" when the
    # archive has them too, on a restore that went well).
    db = new_name(names, "plain")
    cluster.create_database(db)
    cluster.psql("CREATE TABLE public.t (id int); INSERT INTO public.t VALUES (1); "
                 "CREATE PUBLICATION pub_dumped FOR TABLE public.t", db)
    archive = dump(cluster, db, tmp_path / "plain.sql", "--format", "plain")
    cluster.psql(f"CREATE PUBLICATION pub_after FOR ALL TABLES; CREATE FOREIGN DATA WRAPPER fdw_after; "
                 f"ALTER DATABASE {db} SET work_mem = '3MB'", db)
    result = restore(cluster, archive, db, "--clean")
    assert result.returncode == 0, result.stderr
    assert "not kept" not in result.stderr
    publications = cluster.psql("SELECT string_agg(pubname, ',' ORDER BY pubname) FROM pg_publication", db)
    assert publications.strip() == "pub_dumped"
    assert cluster.psql("SELECT count(*) FROM pg_foreign_data_wrapper", db).strip() == "0"
    assert database_props(cluster, db)["settings"] == "*=work_mem=3MB"
