"""The restore dialog's words: the default target database and what the restore will run."""

from __future__ import annotations

import shlex
from typing import Any

from ..core.identifiers import quote_ident
from ..core.plans import RestorePlan, restore_command

RESTORED_SUFFIX = "_restored"


def suggested_database(manifest: dict[str, Any] | None, default_dbname: str | None) -> str:
    """`<source db>_restored`: the manifest's database if known, else the caller's default."""
    source = (manifest or {}).get("database") or default_dbname
    return f"{source}{RESTORED_SUFFIX}" if source else ""


def restore_summary(plan: RestorePlan, archive_format: str) -> str:
    """What the restore will do, in the words of the commands it runs (password never shown)."""
    lines = []
    where = f"on {plan.target.label}"
    if plan.create:
        lines.append(f"CREATE DATABASE {quote_ident(plan.dbname)} {where}, then:")
    elif plan.clean:
        lines.append(f"replacing the database {quote_ident(plan.dbname)} {where} "
                     "(restored beside it, then swapped in):")
    else:
        lines.append(f"into the existing, empty database {quote_ident(plan.dbname)} {where}:")
    if plan.tables:  # restore --table: pg_restore reads a list of their TOC entries (not shown in argv)
        lines.append(f"only {len(plan.tables)} table(s) of the archive: " + ", ".join(str(t) for t in plan.tables))
    argv = restore_command(plan, archive_format)
    lines.append("  " + shlex.join(argv))
    return "\n".join(lines)
