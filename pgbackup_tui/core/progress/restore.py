"""Progress of a restore: the archive's TOC and manifest, pg_restore's lines, the server's views.

The work is known before anything runs (restore_plan.py: the TOC's entries as work
items, sized from the backup's manifest). While it runs: the verification pass (`pg_restore -f
/dev/null`) is measured by its read position in the archive (/proc/<pid>/fdinfo); pg_restore
--verbose names each entry it starts ("creating INDEX ...", "processing data for table ...",
with --jobs "launching/finished item N"); the monitor polls pg_stat_progress_copy (COPY FROM:
tuples over the manifest's rows) and pg_stat_progress_create_index for the job's backends in the
target database. Without the view, the running table is measured by the archive read position
of pg_restore (serial restores).
"""

from __future__ import annotations

import re
import time

from ..archive import ArchiveInfo, path_size
from ..jobs import Job
from ..plans import RestorePlan
from .estimator import ProgressEstimator
from .items import WorkItem
from .files import open_positions
from .priors import INDEX_SCAN_SHARE, OUTPUT_PER_HEAP
from .server_probe import BackendProgress
from .tracker import ProgressTracker
from .restore_plan import data_files, entry_matches, restore_work_items
from .speed import PRIOR_S, machine_pace
from ..toc import KNOWN_DESCS, Toc

_DESCS = "|".join(re.escape(desc) for desc in KNOWN_DESCS)
_CREATING = re.compile(rf'^pg_restore: (?:creating|executing) ({_DESCS}) "?(.*?)"?$')
_DATA = re.compile(r'^pg_restore: processing data for table "(.*)"$')
_BLOBS = re.compile(r"^pg_restore: processing (BLOBS|LARGE OBJECTS)")
_LAUNCHED = re.compile(r"^pg_restore: (?:launching|processing) item (\d+) ")
_FINISHED = re.compile(r"^pg_restore: finished item (\d+) ")
SHARE_EVIDENCE_S = 4 * PRIOR_S  # eight polls


def scan_share_shown(started: float, scan_ended: float, finished: float) -> float | None:
    """The share of an index build's time its scan took, None for a build too short to tell (its
    scan's end is known to a poll): kept within 0.1-0.6, a build's sort and load take some time."""
    took = finished - started
    if took < SHARE_EVIDENCE_S:
        return None
    return min(0.6, max(0.1, (scan_ended - started) / took))


class RestoreProgress(ProgressTracker):
    """A RestoreJob's progress from its archive's TOC + manifest, lines, files and the server."""

    fallback_estimate = "table counts and archive read position"

    def __init__(self, job: Job, plan: RestorePlan, info: ArchiveInfo, toc: Toc | None, manifest: dict | None) -> None:
        self.archive = plan.archive
        self.archive_bytes = path_size(plan.archive)
        self.format = info.format
        options = (manifest or {}).get("options") or {}
        self.compressed = info.format in ("custom", "directory") and options.get("compress", None) != 0
        self._files = data_files(plan.archive) if info.format == "directory" and toc else {}
        items, source = restore_work_items(plan.archive, self.archive_bytes, self.compressed, self._files,
                                           toc, manifest)
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
                                      jobs=plan.jobs or 1, machine=machine_pace())
        super().__init__(job, estimator)
        # The target may not exist yet: the link is timed from the database a restore --create starts from.
        # A dry run (the TUI's previews too) moves no data: it does not time the link.
        if not plan.dry_run:
            self.measure_link(plan.target, plan.target.maintenance_db(plan.dbname))
        self._cursor = 0
        self._serial_start_pos: dict[str, int] = {}
        self.index_scan_share = INDEX_SCAN_SHARE  # the prior, until a build of this job shows its own
        self._scans_ended: dict[str, float] = {}  # index item -> when a poll first saw it past its scan
        self._unseen_tables: dict[int, str] = {}  # relid -> table item, for relations the monitor cannot name

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
        desc, text = ("TABLE DATA", match.group(1)) if match else (None, "")
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
        running = self.estimator.running()
        for row in rows:
            table = (row.schema, row.table) if row.schema else None
            if row.kind == "copy":
                candidates = [i for i in running if i.kind == "table"]
                item = next((i for i in candidates if table and i.info.get("table") == table), None)
                if item is None and table is not None:
                    qualified = f"{table[0]}.{table[1]}"
                    item = next((i for i in candidates if entry_matches(i.info["entry"], qualified)), None)
                if item is None and table is None and row.relid is not None and self.estimator.jobs == 1:
                    item = self._item_of_unseen_table(row.relid, candidates)
                if item is None and table is not None:
                    # psql running pg_restore's script into tables that are there (a data-only load)
                    # prints no line per table either: the COPY the server shows starts its table.
                    item = next((i for i in self.estimator.items if i.kind == "table" and i.started_at is None
                                 and i.info.get("table") == table), None)
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
                on_table = [i for i in candidates if table and i.info.get("table") == table]
                item = on_table[0] if on_table else candidates[0] if len(candidates) == 1 else None
                if item is None:
                    continue
                # The share a build goes by is fixed when it is first seen (a share learnt meanwhile
                # would move its fraction at once); a scan's end is taken from a btree's phases
                # alone (a GIN build says "building index" throughout), on a table one build holds.
                share = item.info.setdefault("scan_share", self.index_scan_share)
                if row.btree_past_scan and len(on_table) == 1:
                    self._scans_ended.setdefault(item.key, now)
                fraction = row.index_fraction(share)
                if fraction is not None:
                    self.estimator.observe(item.key, fraction, now)
        self._learn_scan_share()

    def _item_of_unseen_table(self, relid: int, running: list[WorkItem]) -> WorkItem | None:
        """The table item a COPY loads into a relation the monitor cannot name: one the job's own
        transaction made (--single-transaction, a table-level --clean). pg_restore's line has started
        its item by then; psql running pg_restore's script (a table-level --clean, a data-only load)
        prints no line per table, and the bar stood at "0% schema" to the end. It runs the script in
        the TOC's order: a relation first seen is the next table not started, which observe() starts."""
        key = self._unseen_tables.get(relid)
        if key is None:
            taken = set(self._unseen_tables.values())
            item = next((i for i in running if i.key not in taken), None) if len(running) == 1 else None
            item = item or next((i for i in self.estimator.items if i.kind == "table" and i.started_at is None
                                 and not i.done), None)
            if item is None:
                return None
            key = self._unseen_tables[relid] = item.key
        return self.estimator.get(key)

    def _learn_scan_share(self) -> None:
        """A finished build whose scan's end a poll saw tells this job's scan share."""
        for key, ended in list(self._scans_ended.items()):
            item = self.estimator.get(key)
            if item is None or item.started_at is None or item.finished_at is None:
                continue
            del self._scans_ended[key]
            self.index_scan_share = scan_share_shown(item.started_at, ended, item.finished_at) or self.index_scan_share

    def observe_local(self, now: float) -> None:
        for key in ("verify", "script"):  # steps that read the archive through: how far they have read
            step = self.estimator.get(key)
            if step is not None and step.running:
                position = self._read_position()
                if position is not None:
                    self.estimator.observe(key, position / max(1, self.archive_bytes), now)
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
        if self.format == "plain" and self.archive not in positions:
            # psql fed the script through a pipe (--file=-: without a --clean dump's DROPs, its large
            # objects' BEGIN/COMMIT, settings the server lacks): the bytes fed, as the bar stood at 0 %.
            return self.job.stdin_fed
        if self.format != "directory":
            return positions.get(self.archive)
        for path, position in positions.items():
            head = path.name.split(".", 1)[0]
            if head.isdigit() and int(head) in self._bytes_before:
                return self._bytes_before[int(head)] + position
        return None
