"""The sample database that `demo` and the tests load: what it holds, in names tests can use.

The SQL is in sql/sample.sql; Sandbox.load_sample() runs it. Names are written as SQL writes them.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_SQL = Path(__file__).parent / "sql" / "sample.sql"

# Each awkward table (qualified as SQL writes it) -> the decoys a naive pattern would also match.
SAMPLE_AWKWARD_TABLES: dict[str, list[str]] = {
    'public."star*name"': ["public.starxname", "public.star_name", "public.starname"],
    'public."what?"': ["public.whatx"],
    'public."Mixed Case"': ['public."mixed case"'],
    'public."dot.name"': ["dot.name"],
    'public."quote""name"': ["public.quotename"],
    '"Sales & Ops"."Order Items"': ['"Sales & Ops"."order items"'],
    '"café"."Été"': ['"café"."été"'],
}

# The tables that use the enum, the domain, citext and identity / serial columns (with their
# function-backed CHECK and DEFAULT and the trigger). Foreign keys stay inside this set.
SAMPLE_SELECTION_TABLES: list[str] = [
    '"Sales & Ops".customers',
    '"Sales & Ops".orders',
    '"Sales & Ops"."Order Items"',
]

SAMPLE_LARGE_OBJECT_CONTENT = "pgbackup-tui sample large object: café ☕".encode()
SAMPLE_INVOICE_SEQ_LAST_VALUE = 5000  # public.invoice_no_seq after load_sample (is_called = true)


def sample_row_counts(wide_rows: int) -> dict[str, int]:
    """Rows per table after load_sample(wide_rows=...), keyed by qualified name as SQL writes it.

    Partitioned public.measurements is listed as the parent (all partitions together) and per
    partition. Large objects and the materialized view are not tables and are left out.
    """
    counts = {
        '"Sales & Ops".customers': 500,
        '"Sales & Ops".orders': 2000,
        '"Sales & Ops"."Order Items"': 5000,
        "inventory.warehouses": 3,
        "inventory.stock": 750,
        "public.events": wide_rows,
        "public.measurements": 6000,
        "public.measurements_2024_q1": 1365,
        "public.measurements_2024_q2": 1365,
        "public.measurements_2024_q3": 1380,
        "public.measurements_default": 1890,
        "public.documents": 1,
        "public.invoices": 40,
    }
    for awkward, decoys in SAMPLE_AWKWARD_TABLES.items():
        for name in [awkward, *decoys]:
            counts.setdefault(name, 3)
    return counts
