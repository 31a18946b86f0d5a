"""The schema and the data of a csv export in one snapshot (csv_export.py): the data session's
settings, its locks on the tables, the schema's pg_dump run as the export's child, and the tables
as the snapshot holds them, checked against the look-up's."""

from __future__ import annotations

import dataclasses

from .csv_export_lookup import ExportPreflight, ExportTable
from .dump import DumpJob
from .errors import JobFailed
from .jobs import Job, JobEvent, LogLine, Owned
from .plans import DumpPlan

# What pg_dump sets for its own session, so that the files do not depend on the DBA's environment
# (PGDATESTYLE, PGTZ, PGOPTIONS) or on ALTER ROLE/DATABASE ... SET: dates as ISO (`SQL, DMY` wrote
# 10/03/2024 and `IST`, read back as another day and Israel's time), every float digit, intervals
# in the style their input reads back, and no row hidden by a row-level security policy (the
# COPY fails instead, as pg_dump does). TimeZone UTC: one offset in every file, whatever the
# server's. No timeout may stop the export half way (idle: its one transaction waits on the disk):
# connect() lifts the role's and the database's, transaction_timeout (17+) included.
EXPORT_SESSION = ("SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3; "
                  "SET TimeZone = 'UTC'; SET row_security = off")


class SchemaDump(DumpJob):
    """The DumpJob run for the export's schema: it logs into the export's log and its owned paths
    become the export's (the runner records them), instead of a log and a record of its own."""

    def __init__(self, plan: DumpPlan, parent: Job) -> None:
        super().__init__(plan)
        self.parent = parent
        self.index_output = False  # a working file of the export, deleted with it: not a backup to list
        # Its rows go by CSV, hypertables made again by csv import: "use csv export instead" misled.
        self.warn_of_hypertables = False
        self.warn_of_newer_pg_dump = False  # csv import has no --allow-older-server to point to
        self.subscribe(self._forward)

    def _forward(self, event: JobEvent) -> None:
        if isinstance(event, LogLine):
            self.parent.log(event.text, level=event.level)
        elif isinstance(event, Owned):
            self.parent.emit(dataclasses.replace(event, job_id=self.parent.id))

    def _open_log(self) -> None:
        self.log_path = self.parent.log_path

    def _close_log(self) -> None:
        pass



def as_in_snapshot(pre: ExportPreflight, now: ExportPreflight, *, columns_may_change: bool) -> ExportPreflight:
    """`pre` (its tables' files and sizes) with the columns and sequences of the data's snapshot
    (`now`); JobFailed when the tables are not the same ones (created, dropped or renamed between the
    look-up and the locks), or when their columns changed and may not (`columns_may_change`: False
    where schema.sql was dumped before the snapshot, and so holds what the look-up saw)."""
    before = {t.name: t for t in pre.tables}
    after = {t.name: t for t in now.tables}
    if before.keys() != after.keys():
        gone = ", ".join(str(n) for n in sorted(before.keys() - after.keys()))
        new = ", ".join(str(n) for n in sorted(after.keys() - before.keys()))
        said = "; ".join(part for part in (f"no longer there: {gone}" if gone else "",
                                           f"new: {new}" if new else "") if part)
        raise JobFailed(f"the tables to copy changed as the export began ({said}); run it again")
    for name, table in before.items():
        if after[name].columns != table.columns:
            if not columns_may_change:
                raise JobFailed(f"the columns of {name} changed as the export began (an ALTER TABLE): its "
                                "schema.sql and its file would not agree; run it again")
            table.columns = after[name].columns
        table.local_leaves, table.foreign_partitions = after[name].local_leaves, after[name].foreign_partitions
    return dataclasses.replace(pre, sequences=now.sequences)


def lock_statement(tables: list[ExportTable]) -> str:
    """ACCESS SHARE on every table, as pg_dump takes, before the snapshot (LOCK takes none, the
    first COPY does). A TRUNCATE, or an ALTER TABLE that rewrites a table, is not MVCC-safe: one
    committed after the snapshot but before a table's COPY left its file empty (the rows neither
    before nor after it) and the export good. Now such a statement waits for the export's end.
    ONLY where the COPY reads ONLY; a partitioned table or a hypertable locks its partitions or chunks."""
    names = ", ".join(f"{'ONLY ' if t.relkind == 'r' and t.hypertable is None else ''}{t.name.sql}" for t in tables)
    return f"LOCK TABLE {names} IN ACCESS SHARE MODE"
