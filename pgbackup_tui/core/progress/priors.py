"""The priors: what each kind of work costs before the job has shown its own pace. These are the
only numbers in the progress model that were measured on one machine (the reference: a 2-core VM,
PostgreSQL 15, scripts/bench_progress.py), and none of them is trusted for long:

- each is scaled by this machine's pace, measured as the job starts (speed.machine_pace);
- a class of work (a phase's small items, or its large ones) goes at the pace the job shows once
  it has 0.5 s of evidence (speed.py): a prior only splits the time among work not started yet;
- over TCP a data item costs at least its bytes on the wire at the link's rate, timed as the job
  starts (link.link_rate);
- an index build's share of scanning is the job's own once one build has shown it (restore.py).

Rates are in bytes a second on the reference machine; a table's bytes are its size on disk.
"""

from __future__ import annotations

REFERENCE_ZLIB_BPS = 165e6  # zlib level 1 over COPY-like text: what speed.machine_pace compares with
STATEMENT_S = 0.001  # a statement's round trip to a local server
CATALOG_BASE_S = 0.05  # pg_dump reads the catalog (and writes its TOC at the end)...
CATALOG_PER_RELATION_S = 0.0003  # ...longer with more relations
SCHEMA_STEP_S = 1.0  # a CSV job's pg_dump + pg_restore for a schema, or psql running one

# Bytes a second of the work that moves bytes.
COPY_BPS = 60e6  # a table dumped (zstd:1; gzip is slower, none faster) or copied to or from CSV
RESTORE_HEAP_BPS = 90e6  # COPY FROM
INDEX_HEAP_BPS = 400e6  # a btree build (an index, a primary or unique key), per byte of its table
FK_HEAP_BPS = 150e6  # validating a foreign key scans the referencing table
# pg_restore reading an archive through -- a check (`-f /dev/null`), a selection written as SQL, the
# rows of a new archive counted (`--data-only`) -- starts and reads the TOC...
TOOL_START_S = 0.2
ARCHIVE_READ_BPS = {True: 85e6, False: 600e6}  # ...then reads archive bytes a second: compressed or not
COUNT_HEAP_BPS = 200e6  # the rows counted: its COPY text parsed here, table bytes a second (120-300e6 seen)
# The checksum of a new archive, or of one before it is restored: a read through in this process. (Not
# this machine's rate timed as the job starts: measured with sha256, which SHA-NI hashed at 2 GB/s
# here while the passes took 3-4 times that, the file read and its last writes synced included.
# XXH3-128, the checksum since (checksums.py), hashes at 17 GB/s: the read is the pass, and this
# prior, not measured again, errs on the slow side.)
HASH_BPS = 500e6
OUTPUT_PER_HEAP = {True: 0.33, False: 0.9}  # archive bytes per table byte: compressed or not

# A CREATE INDEX reports blocks while it scans the table, tuples while it loads the tree, nothing
# while it sorts: the scan's share of a build's time (the reference's btrees: 35-45 %), until a
# build of this job has shown its own, and the sort's (about 15 %).
INDEX_SCAN_SHARE = 0.4
INDEX_SORT_SHARE = 0.15
