"""What a restore will do, as work items with prior costs: from the archive's TOC and manifest.

Every TOC entry the restore will process is an item in its section's phase -- pre-data entries in
`schema`, TABLE DATA (and sequences, large objects) in `data`, indexes, constraints and the rest of
post-data in `indexes` (comments and ACLs follow the entry before them, as in pg_restore). A
table's denominators come, best first, from the backup's manifest (`tables`: rows and on-disk
bytes recorded by our dump), else from a directory archive's per-entry file sizes, else from an
equal share of the archive per TABLE DATA entry. restore.py follows them as they run.
"""

from __future__ import annotations

from pathlib import Path

from ..checksums import checkable
from ..identifiers import parse_qualified_name
from .items import WorkItem, wire_bytes
from .priors import (ARCHIVE_READ_BPS, FK_HEAP_BPS, HASH_BPS, INDEX_HEAP_BPS, OUTPUT_PER_HEAP, RESTORE_HEAP_BPS,
                     STATEMENT_S, TOOL_START_S)
from ..toc import METADATA_DESCS, Toc, TocEntry

DATA_DESCS = frozenset({"TABLE DATA", "BLOBS", "LARGE OBJECTS", "SEQUENCE SET"})
POST_DATA_DESCS = frozenset({
    "INDEX", "INDEX ATTACH", "CONSTRAINT", "CHECK CONSTRAINT", "FK CONSTRAINT", "TRIGGER",
    "EVENT TRIGGER", "RULE", "POLICY", "ROW SECURITY", "MATERIALIZED VIEW DATA", "PUBLICATION",
    "PUBLICATION TABLE", "PUBLICATION TABLES IN SCHEMA", "SUBSCRIPTION", "SUBSCRIPTION TABLE",
    "STATISTICS", "STATISTICS DATA", "ACL", "DEFAULT ACL",
})
SIZED_POST_DATA = frozenset({"INDEX", "CONSTRAINT", "FK CONSTRAINT"})
# Entries pg_restore --jobs never runs beside another item of the same table: they take an
# exclusive lock on it (identify_locking_dependencies in pg_backup_archiver.c).
EXCLUSIVE_LOCK_DESCS = frozenset({"CONSTRAINT", "CHECK CONSTRAINT", "FK CONSTRAINT", "RULE", "TRIGGER"})


def post_data_cost(desc: str, table_bytes: int) -> float:
    """Prior seconds for an index, a unique/primary key or a foreign key on a table of this size."""
    return STATEMENT_S + table_bytes / (FK_HEAP_BPS if desc == "FK CONSTRAINT" else INDEX_HEAP_BPS)


def entry_phase(entry: TocEntry, previous: str) -> str:
    if entry.desc in METADATA_DESCS:
        return previous
    if entry.desc in DATA_DESCS:
        return "data"
    return "indexes" if entry.desc in POST_DATA_DESCS else "schema"


def entry_matches(entry: TocEntry, text: str) -> bool:
    """True if pg_restore's verbose text ("ns.tag", or the tag alone) names this entry.

    The TOC line has "ns tag owner" with spaces that may occur inside names, the verbose line
    "ns.tag" with dots that may: try every dot as the separator.
    """
    rest = entry.rest
    if rest.startswith("- "):
        return rest[2:] == text or rest[2:].startswith(text + " ")
    for index, char in enumerate(text):
        if char == ".":
            candidate = text[:index] + " " + text[index + 1:]
            if rest == candidate or rest.startswith(candidate + " "):
                return True
    return f" {text} " in f" {rest} "  # "executing SEQUENCE SET tag" has no namespace


def manifest_tables(manifest: dict | None) -> dict[tuple[str, str], dict]:
    """(schema, name) -> {"name", "rows", "bytes"} from the manifest; anything malformed is skipped
    (a manifest is a file on disk: progress must not fail a restore because one was edited)."""
    tables = {}
    records = (manifest or {}).get("tables")
    for record in records if isinstance(records, list) else []:
        try:
            name = parse_qualified_name(str(record["name"]))
            clean = {"name": str(record["name"]), "rows": int(record.get("rows", -1)),
                     "bytes": int(record.get("bytes") or 0)}
        except Exception:
            continue
        tables[(name.schema, name.name)] = clean
    return tables


def _table_of(entry: TocEntry, tables: dict[str, tuple[str, str]]) -> tuple[str, str] | None:
    """(schema, name) of the table a data entry fills or an index is built on."""
    keys = [entry.rest, entry.named]
    for key in keys:
        if key in tables:
            return tables[key]
    return None


def data_files(archive: Path) -> dict[int, Path]:
    """dump id -> data file of a directory archive (e.g. 4542.dat.gz)."""
    found = {}
    for path in archive.iterdir():
        head = path.name.split(".", 1)[0]
        if head.isdigit() and ".dat" in path.name:
            found[int(head)] = path
    return found

def restore_work_items(archive: Path, archive_bytes: int, compressed: bool, files: dict[int, Path],
                       toc: Toc | None, manifest: dict | None) -> tuple[list[WorkItem], str]:
    """The restore as work items with prior costs (seconds), and where the table sizes came from.
    Every entry costs a statement, and the ones that move bytes their bytes (priors.py).

    `files`: a directory archive's data files (data_files), empty for the other formats."""
    verify_cost = TOOL_START_S + archive_bytes / ARCHIVE_READ_BPS[compressed] if toc is not None else 0.01
    # With the manifest's checksums the check is one plain read, begun beside the listing before we
    # count: its time says nothing of this machine's pace (restore_archive.py).
    hashed = toc is not None and checkable((manifest or {}).get("checksums") or {})
    items = [WorkItem("verify", "preparing", archive_bytes / HASH_BPS if hashed else verify_cost, kind="step",
                      info={"no_evidence": True} if hashed else {"local": True}),
             WorkItem("target", "preparing", 0.05, kind="step", info={"no_evidence": True, "wait": True})]
    finishing = WorkItem("finishing", "finishing", 0.02, kind="step", info={"no_evidence": True})
    if toc is None:  # a plain SQL script: psql's read position is all there is
        items.append(WorkItem("script", "data", archive_bytes / RESTORE_HEAP_BPS, kind="step",
                              bytes=archive_bytes, label=archive.name, info={"wire": archive_bytes}))
        return items + [finishing], "script read position"
    recorded = manifest_tables(manifest)
    table_entries = {e.dump_id: e for e in toc.entries if e.desc == "TABLE"}
    names = {}
    for (schema, name) in recorded:
        names[f"{schema} {name}"] = (schema, name)
    data_entries = [e for e in toc.entries if e.desc == "TABLE DATA"]
    share = archive_bytes / max(1, len(data_entries))
    sources = set()
    phase = "schema"
    for entry in toc.entries:
        phase = entry_phase(entry, phase)
        item = WorkItem(f"entry:{entry.dump_id}", phase, STATEMENT_S, info={"entry": entry})
        if entry.desc == "TABLE DATA":
            table = _table_of(entry, names)
            record = recorded.get(table) if table else None
            item.kind, item.label = "table", entry.label.removeprefix("TABLE DATA ")
            if record is not None:
                item.label = str(record["name"])
                item.bytes, item.rows = record["bytes"], record["rows"]
                heap: float = item.bytes
                sources.add("backup manifest")
            elif entry.dump_id in files:
                item.bytes = files[entry.dump_id].stat().st_size
                compressed = files[entry.dump_id].suffix != ".dat"
                heap = item.bytes / OUTPUT_PER_HEAP[compressed]
                sources.add("archive entry sizes")
            else:
                item.bytes = round(share)
                heap = share / OUTPUT_PER_HEAP[compressed]
                sources.add("TOC table count")
            item.cost_s = STATEMENT_S + heap / RESTORE_HEAP_BPS
            item.info["heap"] = heap
            item.info["wire"] = wire_bytes(round(heap), item.rows)
            item.info["table"] = table
            item.group = str(entry.object_oid)  # the table's OID in the dumped database
        elif entry.desc in ("BLOBS", "LARGE OBJECTS"):
            item.kind, item.label = "large objects", "large objects"
        elif entry.desc in SIZED_POST_DATA:
            parent = next((table_entries[d] for d in entry.depends_on if d in table_entries), None)
            table = _table_of(parent, names) if parent is not None else None
            item.group = str(parent.object_oid) if parent is not None else None
            item.info["exclusive"] = entry.desc in EXCLUSIVE_LOCK_DESCS
            record = recorded.get(table) if table else None
            if record is not None:
                item.cost_s = post_data_cost(entry.desc, record["bytes"])
                item.label = str(record["name"])
                item.info["table"] = table
        items.append(item)
    source = " + ".join(sorted(sources)) if sources else "TOC table count"
    return items + [finishing], source
