"""Progress of a dump: what pg_dump's lines, the server and pg_dump's socket say (inventory.py: the tables).

While pg_dump runs, a table's fraction is tuples_processed (pg_stat_progress_copy) over its
expected rows -- or, without a row estimate, COPY's bytes over its wire size (items.wire_bytes).
Bytes in snapshots are in heap units (done = fraction x size), so a dump and a restore of the
same backup show the same totals. pg_dump --verbose says "dumping contents of table" when a
table starts (serially: the previous one has finished) and, with --jobs, "finished item N TABLE
DATA name". Without the view (server < 14, or a role that may not read it) a serial dump's
running table is measured by the growth of the output over its size times the output/heap ratio
the format usually has (OUTPUT_PER_HEAP).

Over TCP a slow link holds megabytes the server has sent in socket buffers: a serial dump's running
table counts only the bytes pg_dump has read since it started (link.py), in the server's COPY bytes
(text + framing) per fraction, never more than the server's fraction. (With --jobs the workers'
sockets cannot be told apart by table: the server's counter is used.)
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

from ..archive_scan import archive_files
from ..defaults import is_compressed
from ..dump_verify import can_follow
from ..jobs import Job
from ..plans import DumpPlan
from .estimator import ProgressEstimator
from .inventory import DumpInventory as DumpInventory, TableSize as TableSize  # re-exported: DumpJob, the tests
from .inventory import expected_rows as expected_rows, take_inventory as take_inventory
from .items import COPY_FRAMING_PER_ROW, TAIL_FRACTION, ItemInfo, WorkItem, wire_bytes
from .link import ReceivedCounter
from .priors import (ARCHIVE_READ_BPS, CATALOG_BASE_S, CATALOG_PER_RELATION_S, COPY_BPS, COUNT_HEAP_BPS, HASH_BPS,
                     OUTPUT_PER_HEAP, STATEMENT_S, TOOL_START_S)
from .speed import machine_pace
from .files import open_positions, output_size
from .server_probe import BackendProgress
from .tracker import ProgressTracker

_DUMPING = re.compile(r'^pg_dump: dumping contents of table "(.*)"$')
_FINISHED = re.compile(r"^pg_dump: finished item \d+ TABLE DATA (.*)$")
_LARGE_OBJECTS_LINE = "pg_dump: saving large objects"


def _as_in_lines(name: str, codec: str) -> str:
    """A name as it reads in pg_dump's lines (written in `codec`) once Job decoded them as UTF-8."""
    return name.encode(codec, "surrogateescape").decode("utf-8", "replace")


def _bytes_read(pid: int) -> int | None:
    """What a process has read so far (/proc/<pid>/io rchar: files and pipes alike)."""
    with contextlib.suppress(OSError, ValueError, StopIteration), open(f"/proc/{pid}/io", encoding="ascii") as io:
        return int(next(line for line in io if line.startswith("rchar:")).split()[1])
    return None


def _argv_has(pid: int | None, arg: bytes) -> bool:
    with contextlib.suppress(OSError):
        return arg in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return False


def dump_is_compressed(plan: DumpPlan, run_format: str) -> bool:
    if run_format not in ("custom", "directory"):
        return False
    return is_compressed(plan.compress)  # a gzip level, or METHOD[:LEVEL] (lz4, zstd, none)


def recording_is_measured(plan: DumpPlan, run_format: str) -> bool:
    """Whether DumpProgress sees the passes over the new archive (a plain file is read twice by
    this process; a selection in plain SQL is recorded from another file than pg_dump wrote)."""
    return run_format == plan.format and run_format in ("custom", "tar", "directory")


def recording_is_followed(plan: DumpPlan, run_format: str) -> bool:
    """Whether the archive's rows are counted while pg_dump writes it (dump_verify.py): then only
    its checksum is left, taken while pg_dump fsyncs and exits, and pg_restore --list after it."""
    return can_follow(plan.format, run_format, plan.compress)


def dump_work_items(inventory: DumpInventory, plan: DumpPlan, run_format: str) -> list[WorkItem]:
    """The dump as work items with prior costs (seconds, priors.py). A table costs its bytes at
    COPY_BPS and two statements (COPY's round trips, a new compression stream)."""
    items = [WorkItem("catalog", "schema", CATALOG_BASE_S + CATALOG_PER_RELATION_S * inventory.relations,
                      kind="step")]
    for table in inventory.tables:
        items.append(WorkItem(f"table:{table.oid}", "data", 2 * STATEMENT_S + table.bytes / COPY_BPS,
                              label=str(table.name), kind="table", bytes=table.bytes, rows=table.rows,
                              info={"oid": table.oid, "name": table.name, "wire": wire_bytes(table.bytes, table.rows)}))
    if inventory.large_object_bytes is not None:
        lo_bytes = inventory.large_object_bytes
        items.append(WorkItem("large objects", "data", 2 * STATEMENT_S + lo_bytes / COPY_BPS,
                              label="large objects", kind="large objects", bytes=lo_bytes, info={"wire": lo_bytes}))
    compressed = dump_is_compressed(plan, run_format)
    output = sum(table.bytes for table in inventory.tables) * OUTPUT_PER_HEAP[compressed]
    finishing = CATALOG_BASE_S
    if run_format != plan.format:  # a selection in plain SQL: pg_restore turns the archive into SQL
        finishing += TOOL_START_S + output / ARCHIVE_READ_BPS[compressed]
    # Recording the backup (backup_record.py): the archive's checksum, then its rows counted in it --
    # steps of their own where DumpProgress can see them run, else part of the finishing step; the
    # rows are already counted where the archive was followed while pg_dump wrote it.
    heap = sum(table.bytes for table in inventory.tables) + (inventory.large_object_bytes or 0)
    here = ItemInfo(local=True)  # work on this machine, wherever the server is
    count_rows = TOOL_START_S + max(output / ARCHIVE_READ_BPS[compressed], heap / COUNT_HEAP_BPS)
    recording = [WorkItem("checksum", "finishing", output / HASH_BPS, kind="step", info=here.copy()),
                 WorkItem("count rows", "finishing", count_rows, kind="step", info=here.copy())]
    if recording_is_followed(plan, run_format):
        finishing += recording[0].cost_s
        recording = []
    elif not recording_is_measured(plan, run_format):
        finishing += sum(step.cost_s for step in recording)
        recording = []
    return items + [WorkItem("finishing", "finishing", finishing, kind="step", info=here)] + recording


class DumpProgress(ProgressTracker):
    """pg_dump's lines, pg_stat_progress_copy and the growing output -> a DumpJob's progress."""

    def __init__(self, job: Job, inventory: DumpInventory, plan: DumpPlan, run_format: str, output: Path,
                 *, name_codec: str = "utf-8") -> None:
        """`name_codec`: what pg_dump writes names in (server_text.dump_encoding)."""
        origin = time.monotonic() - job.elapsed_s
        estimator = ProgressEstimator(dump_work_items(inventory, plan, run_format), origin=origin,
                                      estimate="pg_stat_progress_copy + table sizes", jobs=plan.jobs or 1,
                                      machine=machine_pace())
        super().__init__(job, estimator)
        self.measure_link(plan.target, plan.dbname)
        self.output = output
        self.run_format = run_format
        self._archive_files: list[tuple[Path, int]] | None = None  # the new archive's files, once written
        self.name_codec = name_codec
        self.compressed = dump_is_compressed(plan, run_format)
        self.fallback_estimate = ("table counts and output size" if plan.jobs == 1
                                  else "table counts and elapsed time")
        self._by_verbose: dict[str, WorkItem] = {}
        self._by_oid: dict[int, WorkItem] = {}
        for item in estimator.items:
            name = item.info.get("name")
            if name is not None:
                self._by_verbose.setdefault(_as_in_lines(f"{name.schema}.{name.name}", name_codec), item)
                self._by_oid[item.info["oid"]] = item
        self._serial_item: WorkItem | None = None
        self._serial_out0 = 0
        self._received: ReceivedCounter | None = None  # pg_dump's TCP bytes received (serial dumps)
        self._received0, self._over_tcp = 0, False  # ...when the running table started; it can tell
        self._received_last: int | None = None  # ...at the last tick
        self._finished_wire = 0.0  # with --jobs: the finished tables' bytes on the wire, as seen (or planned)

    # -- lines -----------------------------------------------------------------------------------
    def line(self, line: str, now: float) -> None:
        match = _DUMPING.match(line)
        if match:
            item = self._by_verbose.get(match.group(1))
            if item is not None:
                self._start_serially(item, now)
            return
        match = _FINISHED.match(line)
        if match:
            name = match.group(1)
            for item in self.estimator.running():
                if item.kind == "table" and _as_in_lines(item.info["name"].name, self.name_codec) == name:
                    self._finished_wire += item.info.get("wire_per_fraction", item.info["wire"])
                    self.estimator.finish(item.key, now)
                    break
            return
        if line.startswith(_LARGE_OBJECTS_LINE):
            item = self.estimator.get("large objects")
            if item is not None:
                self._start_serially(item, now)

    def _start_serially(self, item: WorkItem, now: float) -> None:
        if self.estimator.jobs == 1:
            # Only the fallback needs the output's size (a directory archive costs a scan).
            measure = self.probe_failed or self.probe is None or self.probe.polls == 0
            self._serial_item, self._serial_out0 = item, output_size(self.output) if measure else 0
            # The last tick's reading, not a new one: pg_dump names 200 small tables in a burst of
            # lines read without a pause, and a reading each (a netlink dump: 4 ms, 20 under load)
            # held the ticks back for up to 1.5 s.
            self._received0 = self._received_last or 0
        self.estimator.start(item.key, now)

    def _received_bytes(self) -> int | None:
        """What pg_dump has received over TCP so far; None: not over TCP, or the kernel cannot tell."""
        if self._received is None:
            pid = self.job.child_pid
            if pid is None:
                return None
            self._received = ReceivedCounter(pid)
        received = self._received.read()
        self._over_tcp = received is not None
        return received

    # -- the server ------------------------------------------------------------------------------
    def observe_server(self, rows: list[BackendProgress], now: float) -> None:
        if self._serial_item is not None:
            self._serial_item.info["copying"] = False  # unless this poll shows it
        seen: list[tuple[WorkItem, float, int]] = []  # with --jobs: what the server says, to be capped
        for row in rows:
            item = self._by_oid.get(row.relid) if row.kind == "copy" and row.relid else None
            if item is None or item.done:
                continue
            item.info["copying"] = True
            item.info["seen_tuples"] = max(item.info.get("seen_tuples", 0), row.tuples)
            item.info["seen_copy_bytes"] = max(item.info.get("seen_copy_bytes", 0), row.copy_bytes)
            wire = row.copy_bytes + COPY_FRAMING_PER_ROW * row.tuples
            fraction = row.tuples / item.rows if item.rows > 0 else wire / max(1, item.info["wire"])
            item.info["server_fraction"] = fraction
            if fraction > 0:
                item.info["wire_per_fraction"] = wire / fraction
            if self.estimator.jobs > 1:
                seen.append((item, fraction, row.tuples))
            elif item is not self._serial_item or not self._over_tcp:
                self.estimator.observe(item.key, fraction, now, rows_done=row.tuples)
        share = self._received_share(seen)
        for item, fraction, tuples in seen:
            self.estimator.observe(item.key, fraction * share, now, rows_done=round(tuples * share))

    def _received_share(self, seen: list[tuple[WorkItem, float, int]]) -> float:
        """With --jobs over TCP the workers' sockets cannot be told apart by table, but together they
        cannot have read more than pg_dump's processes have received: the share of what the server
        says it has sent of the running tables that can have arrived (1.0 when all of it can). The
        finished tables count at their wire size as seen (or planned), and what else pg_dump reads
        (its catalog queries) only loosens the bound."""
        received = self._received_last
        if received is None or not seen:
            return 1.0
        finished = self._finished_wire
        sent = sum(item.info["wire_per_fraction"] * fraction for item, fraction, _ in seen
                   if "wire_per_fraction" in item.info)
        return 1.0 if sent <= 0 else max(0.0, min(1.0, (received - finished) / sent))

    def observe_local(self, now: float) -> None:
        self._observe_received(now)
        self._observe_recording(now)
        item = self._serial_item
        if not self.probe_failed or item is None or not item.running or item.bytes <= 0:
            return
        grown = output_size(self.output) - self._serial_out0
        self.estimator.observe(item.key, grown / (item.bytes * OUTPUT_PER_HEAP[self.compressed]), now)

    def _observe_received(self, now: float) -> None:
        """The running table of a serial dump, as far as pg_dump has received it: never more than
        the server has copied, and on after the server has finished (its COPY row is gone while
        the rest is still on its way)."""
        received = self._received_last = self._received_bytes()  # one reading a tick
        item = self._serial_item
        if self.estimator.jobs > 1:
            return  # the running tables share the workers' sockets: observe_server caps them together
        if received is None or item is None or not item.running or item.bytes <= 0 or received == self._received0:
            return
        if "wire_per_fraction" in item.info:
            server = item.info["server_fraction"] if item.info.get("copying") else 1.0
            fraction = min(server, (received - self._received0) / item.info["wire_per_fraction"])
        else:  # the server's row was never seen: its size as planned, a guess
            fraction = min(TAIL_FRACTION, (received - self._received0) / max(1, item.info["wire"]))
        rows = round(fraction * item.rows) if item.rows > 0 else None
        self.estimator.observe(item.key, fraction, now, rows_done=rows)

    def _observe_recording(self, now: float) -> None:
        """After pg_dump: the checksum pass reads the archive in this process (its files in name
        order), then pg_restore -- the job's child -- reads it all to count the rows. Our read
        position and the child's bytes read say which runs and how far."""
        count = self.estimator.get("count rows")
        if self.estimator.phase != "finishing" or count is None:
            return
        if self._archive_files is None:
            with contextlib.suppress(OSError):
                self._archive_files = [(path, path.stat().st_size) for _, path in archive_files(self.output)]
                self.estimator.reprice("checksum", sum(size for _, size in self._archive_files) / HASH_BPS)
        total = max(1, sum(size for _, size in self._archive_files or ()))
        child = self.job.child_pid
        if child is not None and _argv_has(child, b"--data-only"):  # not pg_restore --list
            self.estimator.finish("finishing", now)
            self.estimator.finish("checksum", now)
            read = _bytes_read(child)
            if read is not None:
                self.estimator.observe("count rows", read / total, now)
            return
        positions = open_positions(os.getpid(), self.output)
        if positions and not count.running:
            self.estimator.finish("finishing", now)
            done = 0
            for path, size in self._archive_files or ():
                if path in positions:
                    done += positions[path]
                    break
                done += size
            self.estimator.observe("checksum", done / total, now)

    # -- the record ------------------------------------------------------------------------------
    def table_totals(self) -> list[dict]:
        """Each table's rows and bytes, for the result and the manifest (restores read them back).

        bytes: size on disk (heap + TOAST) when the dump started, the unit progress is shown in;
        copy_bytes: COPY's text bytes; rows: the larger of the last tuples_processed the view
        showed (a poll may come just before the end) and the planner's estimate. "estimated":
        true when the view never saw the table (too quick to be caught, or no view): rows is then
        the planner's estimate and copy_bytes its planned wire size less the framing (items.wire_bytes).
        """
        totals = []
        for item in self.estimator.items:
            if item.kind != "table":
                continue
            seen = item.info.get("seen_tuples")
            if seen is not None:
                rows = max(seen, item.rows)
                copy_bytes = item.info["seen_copy_bytes"] * rows // seen if seen else item.info["seen_copy_bytes"]
            else:
                rows = max(0, item.rows)
                copy_bytes = max(0, item.info["wire"] - COPY_FRAMING_PER_ROW * rows)
            totals.append({"name": item.label, "rows": rows, "bytes": item.bytes, "copy_bytes": copy_bytes,
                           "estimated": seen is None})
        return totals
