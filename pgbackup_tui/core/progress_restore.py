"""Progress of a restore: the archive's TOC and manifest, pg_restore's lines, the server's views.

The work is known before anything runs: every TOC entry the restore will process is an item in
its section's phase -- pre-data entries in `schema`, TABLE DATA (and sequences, large objects) in
`data`, indexes, constraints and the rest of post-data in `indexes` (comments and ACLs follow the
entry before them, as in pg_restore). A table's denominators come, best first, from the backup's
manifest (`tables`: rows and on-disk bytes recorded by our dump), else from a directory archive's
per-entry file sizes, else from an equal share of the archive per TABLE DATA entry.

While it runs: the verification pass (`pg_restore -f /dev/null`) is measured by its read position
in the archive (/proc/<pid>/fdinfo); pg_restore --verbose names each entry it starts ("creating
INDEX ...", "processing data for table ...", with --jobs "launching/finished item N"); the
monitor polls pg_stat_progress_copy (COPY FROM: tuples over the manifest's rows) and
pg_stat_progress_create_index for the job's backends in the target database, and the autovacuum
workers there (a table just loaded is often vacuumed while the rest loads; its first index then
waits deadlock_timeout for the worker). Without the view, the running table is measured by the
archive read position of pg_restore (serial restores).
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from pathlib import Path

from .archive import ArchiveInfo, path_size
from .identifiers import parse_qualified_name
from .jobs import Job
from .plans import RestorePlan
from .progress_dump import OUTPUT_PER_HEAP
from .progress_estimator import ProgressEstimator
from .progress_items import WorkItem
from .progress_monitor import BackendProgress, ProgressTracker, open_positions
from .toc import KNOWN_DESCS, METADATA_DESCS, Toc, TocEntry

# Prior costs, measured with PostgreSQL 15 on a 2-core VM (scripts/bench_progress.py).
VERIFY_BPS = {True: 90e6, False: 600e6}  # archive bytes/s read by `pg_restore -f /dev/null`
RESTORE_HEAP_BPS = 90e6  # COPY FROM, in on-disk bytes of the table
TABLE_OVERHEAD_S = 0.001
# A btree build, per on-disk byte of its table. Small tables' keys (1,000 restored primary keys on
# 1 MB tables, regressed): about 1 ms per statement + 320 MB/s; big ones 400 MB/s.
INDEX_HEAP_BPS = 400e6
SMALL_INDEX_HEAP_BPS = 320e6
IN_MEMORY_SORT_BYTES = 64 << 20
FK_HEAP_BPS = 150e6  # validating a foreign key scans the referencing table
ENTRY_COST_S = {"TABLE": 0.002, "EXTENSION": 0.02, "MATERIALIZED VIEW DATA": 0.02, "INDEX": 0.001,
                "CONSTRAINT": 0.001, "FK CONSTRAINT": 0.003}
DEFAULT_ENTRY_COST_S = 0.001
METADATA_COST_S = 0.0005

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
    if desc == "FK CONSTRAINT":
        rate = FK_HEAP_BPS
    else:
        rate = SMALL_INDEX_HEAP_BPS if table_bytes < IN_MEMORY_SORT_BYTES else INDEX_HEAP_BPS
    return ENTRY_COST_S[desc] + table_bytes / rate

_DESCS = "|".join(re.escape(desc) for desc in KNOWN_DESCS)
_CREATING = re.compile(rf'^pg_restore: (?:creating|executing) ({_DESCS}) "?(.*?)"?$')
_DATA = re.compile(r'^pg_restore: processing data for table "(.*)"$')
_BLOBS = re.compile(r"^pg_restore: processing (BLOBS|LARGE OBJECTS)")
_LAUNCHED = re.compile(r"^pg_restore: (?:launching|processing) item (\d+) ")
_FINISHED = re.compile(r"^pg_restore: finished item (\d+) ")


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


def _manifest_tables(manifest: dict | None) -> dict[tuple[str, str], dict]:
    """(schema, name) -> {"name", "rows", "bytes"} from the manifest; anything malformed is skipped
    (a manifest is a file on disk: progress must not fail a restore because one was edited)."""
    tables = {}
    records = (manifest or {}).get("tables")
    for record in records if isinstance(records, list) else []:
        try:
            name = parse_qualified_name(str(record["name"]))
            clean = {"name": str(record["name"]), "rows": int(record.get("rows", -1)), "bytes": int(record.get("bytes") or 0)}
        except Exception:
            continue
        tables[(name.schema, name.name)] = clean
    return tables


def _table_of(entry: TocEntry, tables: dict[str, tuple[str, str]]) -> tuple[str, str] | None:
    """(schema, name) of the table a data entry fills or an index is built on."""
    keys = [entry.rest, entry.rest.rsplit(" ", 1)[0]]
    for key in keys:
        if key in tables:
            return tables[key]
    return None


class RestoreProgress(ProgressTracker):
    """A RestoreJob's progress from its archive's TOC + manifest, lines, files and the server."""

    fallback_estimate = "table counts and archive read position"

    def __init__(self, job: Job, plan: RestorePlan, info: ArchiveInfo, toc: Toc | None, manifest: dict | None) -> None:
        self.archive = plan.archive
        self.archive_bytes = path_size(plan.archive)
        self.format = info.format
        options = (manifest or {}).get("options") or {}
        self.compressed = info.format in ("custom", "directory") and options.get("compress", None) != 0
        self._files = self._data_files() if info.format == "directory" and toc else {}
        items, source = self._work_items(toc, manifest)
        # A directory archive is read file by file in TOC order: bytes before each data file.
        self._file_sizes = {dump_id: path.stat().st_size for dump_id, path in self._files.items()}
        self._bytes_before: dict[int, int] = {}
        total = 0
        for item in items:
            entry = item.info.get("entry")
            if entry is not None and entry.dump_id in self._file_sizes:
                self._bytes_before[entry.dump_id] = total
                total += self._file_sizes[entry.dump_id]
        origin = time.monotonic() - job.elapsed_s
        estimator = ProgressEstimator(items, origin=origin, estimate=f"pg_stat_progress_copy + {source}",
                                      jobs=plan.jobs)
        super().__init__(job, estimator)
        self._cursor = 0
        self._serial_start_pos: dict[str, int] = {}
        self._post_data: dict[str, list[WorkItem]] = defaultdict(list)  # table's group -> its indexes...
        self._groups_by_table: dict[tuple[str | None, str | None], str | None] = {}
        self.lock_check_s: float | None = None  # the restore sessions' deadlock_timeout, if the job set one
        for item in items:
            if item.phase == "indexes" and item.group is not None:
                self._post_data[item.group].append(item)

    # -- the plan ------------------------------------------------------------------------------
    def _data_files(self) -> dict[int, Path]:
        """dump id -> data file of a directory archive (e.g. 4542.dat.gz)."""
        found = {}
        for path in self.archive.iterdir():
            head = path.name.split(".", 1)[0]
            if head.isdigit() and ".dat" in path.name:
                found[int(head)] = path
        return found

    def _work_items(self, toc: Toc | None, manifest: dict | None) -> tuple[list[WorkItem], str]:
        verify_cost = self.archive_bytes / VERIFY_BPS[self.compressed] if toc is not None else 0.01
        items = [WorkItem("verify", "preparing", verify_cost, kind="step"),
                 WorkItem("target", "preparing", 0.05, kind="step", info={"no_evidence": True})]
        finishing = WorkItem("finishing", "finishing", 0.02, kind="step", info={"no_evidence": True})
        if toc is None:  # a plain SQL script: psql's read position is all there is
            items.append(WorkItem("script", "data", self.archive_bytes / RESTORE_HEAP_BPS, kind="step",
                                  bytes=self.archive_bytes, label=self.archive.name))
            return items + [finishing], "script read position"
        recorded = _manifest_tables(manifest)
        table_entries = {e.dump_id: e for e in toc.entries if e.desc == "TABLE"}
        names = {}
        for (schema, name) in recorded:
            names[f"{schema} {name}"] = (schema, name)
        data_entries = [e for e in toc.entries if e.desc == "TABLE DATA"]
        share = self.archive_bytes / max(1, len(data_entries))
        sources = set()
        phase = "schema"
        for entry in toc.entries:
            phase = entry_phase(entry, phase)
            item = WorkItem(f"entry:{entry.dump_id}", phase, ENTRY_COST_S.get(entry.desc, DEFAULT_ENTRY_COST_S),
                            info={"entry": entry})
            if entry.desc in METADATA_DESCS:
                item.cost_s = METADATA_COST_S
            if entry.desc == "TABLE DATA":
                table = _table_of(entry, names)
                record = recorded.get(table) if table else None
                item.kind, item.label = "table", entry.label.removeprefix("TABLE DATA ")
                if record is not None:
                    item.label = str(record["name"])
                    item.bytes, item.rows = record["bytes"], record["rows"]
                    heap = item.bytes
                    sources.add("backup manifest")
                elif entry.dump_id in self._files:
                    item.bytes = self._files[entry.dump_id].stat().st_size
                    compressed = self._files[entry.dump_id].suffix != ".dat"
                    heap = item.bytes / OUTPUT_PER_HEAP[compressed]
                    sources.add("archive entry sizes")
                else:
                    item.bytes = round(share)
                    heap = share / OUTPUT_PER_HEAP[self.compressed]
                    sources.add("TOC table count")
                item.cost_s = TABLE_OVERHEAD_S + heap / RESTORE_HEAP_BPS
                item.info["heap"] = heap
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

    def select(self, included: set[int]) -> None:
        """Only these dump ids will be restored (a --use-list): forget the other entries."""
        self._guarded(lambda: self.estimator.remove_items(
            [item.key for item in self.estimator.items
             if "entry" in item.info and item.info["entry"].dump_id not in included]))

    # -- lines -----------------------------------------------------------------------------------
    def line(self, line: str, now: float) -> None:
        estimator = self.estimator
        match = _LAUNCHED.match(line)
        if match:
            estimator.start(f"entry:{match.group(1)}", now)
            return
        match = _FINISHED.match(line)
        if match:
            estimator.finish(f"entry:{match.group(1)}", now)
            return
        if estimator.jobs > 1:
            return  # with --jobs every item is named by its dump id above
        match = _DATA.match(line)
        desc, text = ("TABLE DATA", match.group(1)) if match else (None, None)
        if desc is None:
            match = _CREATING.match(line)
            if match:
                desc, text = match.group(1), match.group(2)
        if desc is None:
            match = _BLOBS.match(line)
            if match:
                desc, text = match.group(1), ""
        if desc is None:
            return
        item = self._find(desc, text)
        if item is not None:
            if item.kind == "table" and (self.probe_failed or item.rows <= 0):
                self._serial_start_pos[item.key] = self._read_position() or 0
            estimator.start(item.key, now)

    def _find(self, desc: str, text: str) -> WorkItem | None:
        """The next entry not started yet that the line names, searching from the last match."""
        items = self.estimator.items
        for offset in range(len(items)):
            index = (self._cursor + offset) % len(items)
            item = items[index]
            entry = item.info.get("entry")
            if entry is None or item.started_at is not None or entry.desc != desc:
                continue
            if not text or entry_matches(entry, text):
                self._cursor = index
                return item
        return None

    # -- the server and the files ------------------------------------------------------------------
    def observe_server(self, rows: list[BackendProgress], now: float) -> None:
        self._foresee_autovacuum_waits([row for row in rows if row.kind == "autovacuum"], now)
        running = self.estimator.running()
        for row in rows:
            table = (row.schema, row.table) if row.schema else None
            if row.kind == "autovacuum":
                continue
            if row.kind == "copy":
                candidates = [i for i in running if i.kind == "table"]
                item = next((i for i in candidates if table and i.info.get("table") == table), None)
                if item is None and table is not None:
                    item = next((i for i in candidates if entry_matches(i.info["entry"], f"{table[0]}.{table[1]}")), None)
                if item is None and len(candidates) == 1:
                    item = candidates[0]
                if item is None:
                    continue
                if item.rows > 0:
                    self.estimator.observe(item.key, row.tuples / item.rows, now, rows_done=row.tuples)
                else:
                    item.rows_done = max(item.rows_done, row.tuples)
            else:
                candidates = [i for i in running if i.phase == "indexes"]
                item = next((i for i in candidates if table and i.info.get("table") == table), None)
                if item is None and len(candidates) == 1:
                    item = candidates[0]
                fraction = row.index_fraction()
                if item is not None and fraction is not None:
                    self.estimator.observe(item.key, fraction, now)

    def _foresee_autovacuum_waits(self, workers: list[BackendProgress], now: float) -> None:
        """An autovacuum worker on a table whose indexes or constraints are still to come: the
        first of them will wait deadlock_timeout for it (the server then cancels the worker).
        The ETA includes that wait ahead of time, and counts it down while it lasts."""
        estimator = self.estimator
        behind_autovacuum = bool(estimator.waiting) and "autovacuum" in estimator.waiting
        waited = now - estimator.waiting_since if behind_autovacuum and estimator.waiting_since is not None else 0.0
        expected = 0.0
        for worker in workers:
            group = self._group_of((worker.schema, worker.table))
            ahead = [item for item in self._post_data.get(group, ()) if not item.done]
            # A measured build is past its lock; one that has started may be the one waiting.
            if ahead and not any(item.measured for item in ahead):
                timeout = worker.a / 1000.0 if self.lock_check_s is None else self.lock_check_s
                expected = max(expected, timeout - waited)
        estimator.expect_wait(expected)

    def _group_of(self, table: tuple[str | None, str | None]) -> str | None:
        """The group (the dumped table's OID) of the data item that fills `table`."""
        if table not in self._groups_by_table:
            self._groups_by_table[table] = next(
                (item.group for item in self.estimator.items if item.kind == "table" and (
                    item.info.get("table") == table or entry_matches(item.info["entry"], f"{table[0]}.{table[1]}"))),
                None)
        return self._groups_by_table[table]

    def observe_local(self, now: float) -> None:
        verify = self.estimator.get("verify")
        if verify is not None and verify.running:
            position = self._read_position()
            if position is not None:
                self.estimator.observe("verify", position / max(1, self.archive_bytes), now)
            return
        script = self.estimator.get("script")
        if script is not None and script.running:
            position = self._read_position()
            if position is not None:
                self.estimator.observe("script", position / max(1, self.archive_bytes), now)
            return
        if self.estimator.jobs > 1 or not (self.probe_failed or self._lacks_rows()):
            return
        for item in self.estimator.running():
            if item.kind == "table":
                self._observe_by_position(item, now)

    def _lacks_rows(self) -> bool:
        return any(item.kind == "table" and item.rows <= 0 for item in self.estimator.running())

    def _observe_by_position(self, item: WorkItem, now: float) -> None:
        entry = item.info["entry"]
        pid = self.job.child_pid
        if pid is None:
            return
        if self.format == "directory":
            path = self._files.get(entry.dump_id)
            if path is None:
                return
            position = open_positions(pid, path).get(path)
            if position is not None:
                self.estimator.observe(item.key, position / max(1, self._file_sizes[entry.dump_id]), now)
            return
        position = self._read_position()
        if position is None:
            return
        start = self._serial_start_pos.get(item.key, position)
        archive_share = item.info["heap"] * OUTPUT_PER_HEAP[self.compressed]
        self.estimator.observe(item.key, (position - start) / max(1.0, archive_share), now)

    def _read_position(self) -> int | None:
        """Bytes of the archive the running child has read (a directory: data files done + pos)."""
        pid = self.job.child_pid
        if pid is None:
            return None
        positions = open_positions(pid, self.archive)
        if self.format != "directory":
            return positions.get(self.archive)
        for path, position in positions.items():
            head = path.name.split(".", 1)[0]
            if head.isdigit() and int(head) in self._bytes_before:
                return self._bytes_before[int(head)] + position
        return None
