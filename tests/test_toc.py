"""TOC parsing and the closure of a table selection, on a real `pg_restore -l --verbose` listing.

The database made here has one selected table, "Ops Team"."Work Items", which needs a schema with
a space, an enum, a domain, a function used in a DEFAULT, the citext extension and a standalone
sequence used in a DEFAULT; it owns an identity and a serial sequence, has an index, a comment and
an FK to a table outside the selection. Around it: a view over it, the referenced table, a table
with an FK into it, and "Work Items archive", whose name starts with the selected one's.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pgbackup_tui.core.connect import connect, target_from_dsn
from pgbackup_tui.core.identifiers import QualifiedName
from pgbackup_tui.core.pgtools import ClientTools, find_client_tools
from pgbackup_tui.core.sandbox import Sandbox
from pgbackup_tui.core.toc import (
    entry_is_named,
    PG_CLASS_OID,
    PREAMBLE_DESCS,
    Toc,
    TocEntry,
    parse_toc,
    seeds_by_name,
    seeds_by_object,
    write_list,
)
from pgbackup_tui.core.toc_closure import compute_closure

SCHEMA = "Ops Team"
SELECTED = QualifiedName(SCHEMA, "Work Items")

TOC_DB_SQL = """
CREATE EXTENSION citext;
CREATE SCHEMA "Ops Team";
CREATE TYPE "Ops Team".mood AS ENUM ('calm', 'busy');
CREATE DOMAIN "Ops Team".positive_int AS integer CHECK (VALUE > 0);
CREATE FUNCTION "Ops Team".next_code() RETURNS text LANGUAGE sql
    AS $$ SELECT 'C-' || floor(random() * 1000)::text $$;
CREATE SEQUENCE "Ops Team".ticket_seq START 100;
CREATE TABLE "Ops Team".teams (id integer PRIMARY KEY, label text);
CREATE TABLE "Ops Team"."Work Items" (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    serial_no serial,
    ticket integer NOT NULL DEFAULT nextval('"Ops Team".ticket_seq'),
    state "Ops Team".mood NOT NULL DEFAULT 'calm',
    qty "Ops Team".positive_int NOT NULL,
    code text NOT NULL DEFAULT "Ops Team".next_code(),
    title citext NOT NULL,
    team_id integer REFERENCES "Ops Team".teams (id)
);
CREATE INDEX "Work Items title idx" ON "Ops Team"."Work Items" (title);
COMMENT ON TABLE "Ops Team"."Work Items" IS 'the selected table';
CREATE VIEW "Ops Team"."Work View" AS SELECT id, title FROM "Ops Team"."Work Items";
CREATE TABLE "Ops Team".notes (id integer PRIMARY KEY, item_id integer REFERENCES "Ops Team"."Work Items" (id));
CREATE TABLE "Ops Team"."Work Items archive" (id integer PRIMARY KEY, title text);
INSERT INTO "Ops Team".teams VALUES (1, 'a');
INSERT INTO "Ops Team"."Work Items" (qty, title, team_id) VALUES (1, 'x', 1), (2, 'y', 1), (3, 'z', NULL);
INSERT INTO "Ops Team".notes VALUES (1, 1);
INSERT INTO "Ops Team"."Work Items archive" VALUES (1, 'old');
"""


@dataclass
class Listing:
    toc: Toc
    archive: Path
    tools: ClientTools
    relation_oids: dict[str, int]


@pytest.fixture(scope="module")
def listing(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listing]:
    """A custom archive of the database above and its parsed verbose TOC (made once)."""
    dbname = "toc_" + uuid.uuid4().hex[:8]
    sandbox.create_database(dbname)
    try:
        sandbox.psql(TOC_DB_SQL, dbname)
        with connect(target_from_dsn(sandbox.dsn(dbname)), dbname) as conn:
            oids: dict[str, int] = dict(conn.execute(
                "SELECT relname, oid::int8 FROM pg_class WHERE relnamespace = %s::regnamespace",
                ('"Ops Team"',),
            ).fetchall())
        tools = find_client_tools(sandbox.major)
        archive = tmp_path_factory.mktemp("toc") / "toc.dump"
        subprocess.run([tools.pg_dump, f"--dbname={sandbox.dsn(dbname)}", "--format=c", f"--file={archive}"],
                       check=True, capture_output=True, timeout=120)
        text = subprocess.run([tools.pg_restore, "-l", "--verbose", str(archive)],
                              check=True, capture_output=True, text=True, timeout=60).stdout
        yield Listing(parse_toc(text), archive, tools, oids)
    finally:
        sandbox.drop_database(dbname)


def find(toc: Toc, desc: str, rest_prefix: str) -> TocEntry:
    """The one entry with this description whose `rest` starts with `rest_prefix`."""
    hits = [e for e in toc.entries if e.desc == desc and e.rest.startswith(rest_prefix)]
    assert len(hits) == 1, (desc, rest_prefix, [e.line for e in hits])
    return hits[0]


def selected_seed(listing: Listing) -> set[int]:
    return seeds_by_object(listing.toc, {(PG_CLASS_OID, listing.relation_oids["Work Items"])})


# -- parsing --------------------------------------------------------------------------------------

def test_header_versions(listing: Listing, sandbox: Sandbox) -> None:
    # The fixture's pg_dump is the lowest client that fits: the server's own major here.
    assert listing.toc.dumped_by_major == find_client_tools(sandbox.major).major
    assert listing.toc.dumped_from_major == sandbox.major
    assert listing.toc.header["Format"] == "CUSTOM"


def test_entries_descriptions_and_dependencies(listing: Listing) -> None:
    toc = listing.toc
    schema = find(toc, "SCHEMA", f"- {SCHEMA} ")
    table = find(toc, "TABLE", f"{SCHEMA} Work Items postgres")
    data = find(toc, "TABLE DATA", f"{SCHEMA} Work Items postgres")
    assert table.object_oid == listing.relation_oids["Work Items"]
    assert table.class_oid == 1259
    assert schema.dump_id in table.depends_on
    assert data.depends_on == [table.dump_id]
    # Multi-word descriptions are recognised as a whole, not as their first word.
    for desc in ("SEQUENCE OWNED BY", "SEQUENCE SET", "FK CONSTRAINT", "CONSTRAINT", "DEFAULT", "INDEX", "VIEW"):
        assert any(e.desc == desc for e in toc.entries), desc
    assert {e.desc for e in toc.entries} >= PREAMBLE_DESCS
    namespaces = ["public", SCHEMA]
    assert entry_is_named(table, SCHEMA, "Work Items", namespaces)
    assert not entry_is_named(table, SCHEMA, "Work Items archive", namespaces)
    assert table.label == "TABLE Ops Team Work Items"


def test_every_known_description_is_read_whole_before_the_tag() -> None:
    """Each description pg_restore prints, followed by a namespace and a tag that are themselves
    words of descriptions ("TABLE DATA public TABLE postgres"), is read as the whole description,
    never as a shorter one it starts with nor as one running into the tag; an unknown one is its
    first word."""
    from pgbackup_tui.core.toc import KNOWN_DESCS

    lines = [f"{n}; 1259 {100 + n} {desc} public TABLE DATA postgres" for n, desc in enumerate(KNOWN_DESCS, 1)]
    lines.append("900; 1259 900 NEW THING public x postgres")
    toc = parse_toc("\n".join(lines))
    assert [e.desc for e in toc.entries] == [*KNOWN_DESCS, "NEW"]
    assert {e.rest for e in toc.entries[:-1]} == {"public TABLE DATA postgres"}
    assert toc.entries[-1].rest == "THING public x postgres"


def test_seeds_by_object_and_by_name_agree_for_names_with_spaces(listing: Listing) -> None:
    table = find(listing.toc, "TABLE", f"{SCHEMA} Work Items postgres")
    assert selected_seed(listing) == {table.dump_id}
    view = find(listing.toc, "VIEW", f"{SCHEMA} Work View ")
    missing_name = QualifiedName(SCHEMA, "No Such Table")
    found, missing = seeds_by_name(listing.toc, [QualifiedName(SCHEMA, "Work View"), missing_name])
    assert found == {view.dump_id}
    assert missing == [missing_name]


def test_seeds_by_name_does_not_take_a_table_whose_name_extends_it(listing: Listing) -> None:
    table = find(listing.toc, "TABLE", f"{SCHEMA} Work Items postgres")
    found, missing = seeds_by_name(listing.toc, [SELECTED])
    assert missing == []
    assert found == {table.dump_id}


def test_seeds_by_name_does_not_split_a_schema_with_spaces_elsewhere(listing: Listing) -> None:
    wrong = QualifiedName("Ops", "Team Work View")
    found, missing = seeds_by_name(listing.toc, [wrong])
    assert (found, missing) == (set(), [wrong])


# -- closure --------------------------------------------------------------------------------------

def test_closure_brings_what_the_table_needs_and_reports_it(listing: Listing) -> None:
    toc = listing.toc
    table = find(toc, "TABLE", f"{SCHEMA} Work Items postgres")
    closure = compute_closure(toc, selected_seed(listing))
    needed = {
        "schema": find(toc, "SCHEMA", f"- {SCHEMA} "),
        "enum": find(toc, "TYPE", f"{SCHEMA} mood "),
        "domain": find(toc, "DOMAIN", f"{SCHEMA} positive_int "),
        "function": find(toc, "FUNCTION", f"{SCHEMA} next_code() "),
        "extension": find(toc, "EXTENSION", "- citext"),
    }
    added = {entry.dump_id: needed_by for entry, needed_by in closure.added}
    for what, entry in needed.items():
        assert entry.dump_id in closure.included, what
        assert entry.dump_id in added, what
        assert added[entry.dump_id].dump_id == table.dump_id, what
    # Only dependencies are "added": the seed and what hangs off it are not reported.
    assert table.dump_id not in added
    assert all(entry.desc not in ("SEQUENCE SET", "TABLE DATA", "INDEX") for entry, _ in closure.added)
    owned = find(toc, "SEQUENCE", f"{SCHEMA} Work Items_serial_no_seq ")
    assert owned.dump_id not in added  # owned by the table: part of it, not a dependency


def test_closure_brings_a_standalone_sequence_used_by_a_default(listing: Listing) -> None:
    toc = listing.toc
    closure = compute_closure(toc, selected_seed(listing))
    sequence = find(toc, "SEQUENCE", f"{SCHEMA} ticket_seq ")
    assert sequence.dump_id in closure.included
    assert find(toc, "SEQUENCE SET", f"{SCHEMA} ticket_seq ").dump_id in closure.included


def test_closure_reports_a_standalone_sequence_as_added(listing: Listing) -> None:
    closure = compute_closure(listing.toc, selected_seed(listing))
    sequence = find(listing.toc, "SEQUENCE", f"{SCHEMA} ticket_seq ")
    assert sequence.dump_id in {entry.dump_id for entry, _ in closure.added}


def test_closure_keeps_what_hangs_off_the_table(listing: Listing) -> None:
    toc = listing.toc
    closure = compute_closure(toc, selected_seed(listing))
    attached = [
        find(toc, "TABLE DATA", f"{SCHEMA} Work Items postgres"),
        find(toc, "SEQUENCE", f"{SCHEMA} Work Items_id_seq "),
        find(toc, "SEQUENCE", f"{SCHEMA} Work Items_serial_no_seq "),
        find(toc, "SEQUENCE OWNED BY", f"{SCHEMA} Work Items_serial_no_seq "),
        find(toc, "SEQUENCE SET", f"{SCHEMA} Work Items_id_seq "),
        find(toc, "SEQUENCE SET", f"{SCHEMA} Work Items_serial_no_seq "),
        find(toc, "SEQUENCE SET", f"{SCHEMA} ticket_seq "),
        find(toc, "DEFAULT", f"{SCHEMA} Work Items serial_no "),
        find(toc, "CONSTRAINT", f"{SCHEMA} Work Items Work Items_pkey "),
        find(toc, "INDEX", f"{SCHEMA} Work Items title idx "),
        find(toc, "COMMENT", f'{SCHEMA} TABLE "Work Items" '),
        find(toc, "COMMENT", "- EXTENSION citext"),
    ]
    for entry in attached:
        assert entry.dump_id in closure.included, entry.line
    for entry in toc.entries:
        if entry.desc in PREAMBLE_DESCS:
            assert entry.dump_id in closure.included, entry.line


def test_closure_leaves_out_other_relations_and_foreign_keys_to_them(listing: Listing) -> None:
    toc = listing.toc
    closure = compute_closure(toc, selected_seed(listing))
    outside = [
        find(toc, "VIEW", f"{SCHEMA} Work View "),
        find(toc, "TABLE", f"{SCHEMA} teams "),
        find(toc, "TABLE DATA", f"{SCHEMA} teams "),
        find(toc, "CONSTRAINT", f"{SCHEMA} teams teams_pkey "),
        find(toc, "FK CONSTRAINT", f"{SCHEMA} Work Items Work Items_team_id_fkey "),
        find(toc, "TABLE", f"{SCHEMA} notes "),
        find(toc, "FK CONSTRAINT", f"{SCHEMA} notes notes_item_id_fkey "),
        find(toc, "TABLE", f"{SCHEMA} Work Items archive "),
        find(toc, "TABLE DATA", f"{SCHEMA} Work Items archive "),
    ]
    for entry in outside:
        assert entry.dump_id not in closure.included, entry.line


def test_drop_leaves_an_entry_out_and_says_why(listing: Listing) -> None:
    toc = listing.toc
    index = find(toc, "INDEX", f"{SCHEMA} Work Items title idx ")
    closure = compute_closure(toc, selected_seed(listing), drop={index.dump_id: "not wanted"})
    assert index.dump_id not in closure.included
    assert [(entry.dump_id, why) for entry, why in closure.left_out][0] == (index.dump_id, "not wanted")
    # and what the walk left out itself, a foreign key to a table not selected, is said too
    rest = closure.left_out[1:]
    assert rest and all(entry.desc == "FK CONSTRAINT" and why.endswith("which is not restored") for entry, why in rest)
    assert all(entry.dump_id not in closure.included for entry, _ in rest)


def test_use_list_restores_the_selection_into_an_empty_database(
    listing: Listing, sandbox: Sandbox, empty_db: str, tmp_path: Path
) -> None:
    """The closure is right when pg_restore --use-list rebuilds the table in an empty database."""
    closure = compute_closure(listing.toc, selected_seed(listing))
    list_file = tmp_path / "selection.list"
    write_list(listing.toc, closure.included, list_file)
    lines = list_file.read_text().splitlines()
    order = [int(line.split(";", 1)[0]) for line in lines]
    archive_order = [e.dump_id for e in listing.toc.entries if e.dump_id in closure.included]
    assert order == archive_order

    result = subprocess.run(
        [listing.tools.pg_restore, f"--dbname={sandbox.dsn(empty_db)}", "--exit-on-error",
         f"--use-list={list_file}", str(listing.archive)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = sandbox.psql(
        """SELECT count(*), sum(qty), string_agg(title::text, ',' ORDER BY id) FROM "Ops Team"."Work Items";
           SELECT last_value FROM "Ops Team"."Work Items_serial_no_seq";
           SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c
             WHERE c.relnamespace = '"Ops Team"'::regnamespace AND c.relkind IN ('r', 'v');""",
        empty_db,
    ).splitlines()
    assert rows == ["3|6|x,y,z", "3", "Work Items"]


def test_notes_quote_every_name_as_sql_and_dump_s_notes_write_it(listing: Listing) -> None:
    # restore --table said `added SCHEMA Ops Team` and `left out FK CONSTRAINT Ops Team Work Items
    # Work Items_team_id_fkey: …` (the listing's words) where dump says `added schema "Ops Team"`.
    toc = listing.toc
    closure = compute_closure(toc, selected_seed(listing))
    added = {toc.describe(entry) for entry, _ in closure.added}
    assert 'SCHEMA "Ops Team"' in added and 'DOMAIN "Ops Team".positive_int' in added, added
    # A function's name too, before its arguments (`FUNCTION Ops Team next_code()` was the listing's) (QA).
    assert 'FUNCTION "Ops Team".next_code()' in added and "EXTENSION citext" in added, added
    assert {why for _, why in closure.left_out} == {
        'FK CONSTRAINT "Work Items_team_id_fkey" on "Ops Team"."Work Items": it needs TABLE "Ops Team".teams, '
        "which is not restored"}
    index = find(toc, "INDEX", f"{SCHEMA} Work Items title idx ")
    assert toc.describe(index) == 'INDEX "Ops Team"."Work Items title idx"'
    pkey = find(toc, "CONSTRAINT", f"{SCHEMA} Work Items Work Items_pkey ")
    assert toc.describe(pkey) == 'CONSTRAINT "Work Items_pkey" on "Ops Team"."Work Items"'


def test_a_list_written_onto_a_full_disk_names_its_file(listing: Listing, tmp_path: Path) -> None:
    # QA: csv export onto a nearly full disk (room for the schema archive, none for its list) ended
    # "the disk is full (No space left on device); the job was stopped", naming no file: the write
    # fails, not the open, and its error carried no file name.
    from small_disk import fill, small_filesystem

    with small_filesystem(tmp_path / "small", 64) as small:
        fill(small, 0)
        with pytest.raises(OSError) as raised:
            write_list(listing.toc, {e.dump_id for e in listing.toc.entries}, small / "selection.list")
    assert raised.value.filename == str(small / "selection.list"), raised.value
