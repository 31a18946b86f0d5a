"""What kinds of job a runner can run: each kind's plan class and job class, imported when needed.

A front writes `kind` and the plan (job_store.plan_to_json) into the job's spec; the runner turns
them back into the plan and the job. A new kind of job registers here and nowhere else.
"""

from __future__ import annotations

import importlib
from typing import Any

# kind -> ("module:PlanClass", "module:JobClass"), modules relative to pgbackup_tui.core
KINDS: dict[str, tuple[str, str]] = {
    "dump": ("plans:DumpPlan", "dump:DumpJob"),
    "restore": ("plans:RestorePlan", "restore:RestoreJob"),
    "dumpall": ("cluster_plans:DumpallPlan", "dumpall:DumpallJob"),
    "cluster-restore": ("cluster_plans:ClusterRestorePlan", "cluster_restore:ClusterRestoreJob"),
    "csv-export": ("csv_plans:CsvExportPlan", "csv_export:CsvExportJob"),
    "csv-import": ("csv_plans:CsvImportPlan", "csv_import:CsvImportJob"),
}


def _load(ref: str) -> Any:
    module, name = ref.split(":")
    return getattr(importlib.import_module(f"pgbackup_tui.core.{module}"), name)


def plan_class(kind: str) -> Any:
    if kind not in KINDS:
        raise ValueError(f"unknown kind of job {kind!r}")
    return _load(KINDS[kind][0])


def job_class(kind: str) -> Any:
    if kind not in KINDS:
        raise ValueError(f"unknown kind of job {kind!r}")
    return _load(KINDS[kind][1])
