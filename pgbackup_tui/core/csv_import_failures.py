"""What a failed CSV import says (csv_import.py): the file and line a COPY stopped at, with the
server's reason and how to go on; why a script may fail on this server; the psql line that runs
a script the import did not get to."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from .csv_import_folder import ImportTable, header_lines
from .csv_plans import CsvImportPlan, table_options
from .identifiers import QualifiedName
from .pgtools import ClientTools

_COPY_LINE = re.compile(r"\bline (\d+)")


def copy_failure(plan: CsvImportPlan, table: ImportTable, exc: psycopg.Error, *, imported: list[QualifiedName],
                 remaining: list[QualifiedName], raw_into: str | None) -> str:
    """One line: the file and line, the server's reason, what was imported (`imported`) and how to
    go on (`remaining`: the tables after this one); `raw_into`: a SQL_ASCII export's bytes loaded as it."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    context = getattr(exc.diag, "context", None) or ""
    match = _COPY_LINE.search(context)
    where = f"{table.file}"
    if match:  # the server counts the file's lines (a quoted newline too), the header is line 1
        where += f", line {int(match.group(1)) + header_lines(Path(plan.source) / table.file) - 1}"
    done = ", ".join(str(t) for t in imported) or "none"
    left = [str(table.name)]
    # With --create the cleanup drops the database it made, and says so (cleanup_note): the
    # tables imported before this one go with it, so neither they nor this table's state are said.
    message = (f"{where}: {reason} (importing {table.name})" if plan.create else
               f"{where}: {reason} (importing {table.name}); {table.name} is as it was before (its transaction "
               f"was rolled back); tables imported before it: {done}")
    if raw_into and isinstance(exc, psycopg.errors.CharacterNotInRepertoire):
        message += (f"; the export is of a SQL_ASCII database, whose bytes have no declared encoding, and these "
                    f"are not valid {raw_into}: convert the file to {raw_into} (e.g. iconv -f "
                    "WINDOWS-1252), or import into a SQL_ASCII database")
    # The file's fault (a value, a key: SQLSTATE classes 22, 23) is the file's to fix; a session the
    # server ended (a restart), a lock or a full disk of the server's is not ("fix the file" misled).
    fix = "fix the file and " if (exc.sqlstate or "")[:2] in ("22", "23") else "once that is dealt with, "
    if plan.create:
        return message + f"; {fix}run the import again"
    left += [str(t) for t in remaining]
    return message + f"; {fix}import the rest with " + table_options(left)


def psql_line(plan: CsvImportPlan, tools: ClientTools, script: Path) -> str:
    """The psql command that runs `script` into the target as the import runs it (this psql: the
    script may need its \\restrict)."""
    return psql_command(str(tools.psql), plan.target.params, plan.dbname, script)


def psql_command(psql: str, params: dict[str, str], dbname: str, script: Path) -> str:
    """`psql` running `script` into `dbname` of the server `params` name, in one transaction."""
    where_to = {k: str(v) for k, v in params.items() if k in ("host", "port", "user")}
    dsn = make_conninfo(**where_to, dbname=dbname)  # no password: libpq's own places give it
    return (f"{shlex.quote(psql)} --single-transaction -v ON_ERROR_STOP=1 -d {shlex.quote(dsn)} "
            f"-f {shlex.quote(str(script))}")


def newer_export(exported_from: str, server_version: int, label: str) -> str:
    """Why a script may fail on this server: it was written for a newer one (`exported_from`, the
    export's "18.6"; `server_version`, the target's 170002). A copy of 18 into 15 failed with psql's
    "syntax error at or near ","" alone (a virtual generated column), which did not say that the
    export's server is newer than this one."""
    major = exported_from.split(".")[0]
    here = server_version // 10000
    if not major.isdigit() or not here or int(major) <= here:
        return ""
    return (f" (the export is of PostgreSQL {exported_from} and {label} runs {here}: "
            "its schema may use what this server does not have)")
