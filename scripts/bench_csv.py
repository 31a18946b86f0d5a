"""Benchmark: csv export and import of one big table stay in constant memory.

Starts a sandbox cluster, fills a table with about --mb megabytes (default 1024) of rows, runs
CsvExportJob and then CsvImportJob in this process (the code the runner runs), and prints the
time, the throughput and this process's peak RSS (resource.getrusage) after each. The copy loops
hold at most one chunk (1 MB) and one row, so the peak RSS should not grow with the table.
Never part of the test suite: `python scripts/bench_csv.py --mb 256`.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.csv_export import CsvExportJob
from pgbackup_tui.core.csv_import import CsvImportJob
from pgbackup_tui.core.csv_plans import CsvExportPlan, CsvImportPlan
from pgbackup_tui.core.identifiers import QualifiedName
from pgbackup_tui.core.sandbox import Sandbox

ROW_BYTES = 250  # about what one row below takes in CSV


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024, help="approximate CSV size in MB (default 1024)")
    args = parser.parse_args()
    rows = args.mb * (1 << 20) // ROW_BYTES
    with tempfile.TemporaryDirectory() as tmp, Sandbox() as cluster:
        home = Path(tmp)
        import os

        os.environ["PGBACKUP_TUI_HOME"] = str(home / "home")
        cluster.create_database("big")
        started = time.monotonic()
        cluster.psql(f"""CREATE TABLE big (id bigint PRIMARY KEY, ts timestamptz, note text, payload text, n numeric);
            INSERT INTO big SELECT g, '2024-01-01'::timestamptz + g * interval '1 second', 'row "' || g || '", ok',
                   repeat(md5(g::text), 5), g / 7.0
            FROM generate_series(1, {rows}) g;""", "big", timeout=3600)
        print(f"loaded {rows} rows in {time.monotonic() - started:.1f}s; peak RSS so far {peak_rss_mb():.1f} MB")
        target = target_from_dsn(cluster.dsn(), label="bench")
        out = home / "copy"
        export = CsvExportJob(CsvExportPlan(target=target, dbname="big", output=out,
                                            tables=(QualifiedName("public", "big"),)))
        result = asyncio.run(export.run())
        if result.exit_code != 0:
            print(result.message, file=sys.stderr)
            return 1
        size = sum(p.stat().st_size for p in out.iterdir())
        print(f"export: {size / 1e6:.0f} MB in {result.duration_s:.1f}s "
              f"({size / 1e6 / result.duration_s:.0f} MB/s); peak RSS {peak_rss_mb():.1f} MB")
        importer = CsvImportJob(CsvImportPlan(source=out, target=target, dbname="big_copy", create=True))
        result = asyncio.run(importer.run())
        if result.exit_code != 0:
            print(result.message, file=sys.stderr)
            return 1
        print(f"import: {size / 1e6:.0f} MB in {result.duration_s:.1f}s "
              f"({size / 1e6 / result.duration_s:.0f} MB/s); peak RSS {peak_rss_mb():.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
