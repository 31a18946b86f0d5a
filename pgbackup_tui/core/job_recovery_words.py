"""What a dead job left, in words: for the line a recovery says of it (job_recovery.py) — what
was undone and what stays, per kind of job (a cluster restore's roles, a csv import's tables), and a
restore that had finished its swap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .job_store import GONE


def undone_in_words(shown: list[dict[str, Any]], left: list[dict[str, Any]]) -> str:
    """What the recovery of a job that stopped undid, by what it found: a dump's partial output, a
    job's temporary files, a database it created. Said only of what was there (a dump creates no
    database; a database its runner had dropped before it died is not dropped again)."""
    still = {(item.get("kind"), item.get("value")) for item in left}
    paths = [str(item.get("value")) for item in shown if item.get("kind") == "path"]
    dropped = [item for item in shown if item.get("kind") == "database" and not item.get("spared")
               and not item.get(GONE) and (item.get("kind"), item.get("value")) not in still]
    made = (["its partial output"] if any(path.endswith(".partial") for path in paths) else []) + (
        ["its temporary files"] if any(not path.endswith(".partial") for path in paths) else []) + (
        [f"the database{'s' if len(dropped) > 1 else ''} it created"] if dropped else [])
    return f"what it had made is undone ({', '.join(made)})" if made else "it had left nothing to undo"


def cluster_restore_stays(spec: dict[str, Any]) -> str:
    """What a cluster restore that stopped leaves. psql runs a pg_dumpall file (or a set's globals)
    as one script, making roles and databases as it goes: none of that is the job's to drop (a
    set member's database is)."""
    archive = Path(str((spec.get("plan") or {}).get("archive") or ""))
    file_stays = "roles, and the databases the pg_dumpall file makes as it goes, the last maybe part-restored"
    members = "a member being restored into a new database is dropped, one into a database that existed is rolled back"
    if archive.is_file():  # a pg_dumpall file: no members
        return f"what psql had run stays on the server ({file_stays})"
    if archive.is_dir():
        return f"what psql had run stays on the server (the set's roles and tablespaces); {members}"
    return f"what psql had run stays on the server ({file_stays}; for a set, its roles); for a set, {members}"


def csv_import_stays(spec: dict[str, Any], into: str, imported: list[str]) -> str:
    """What a csv import into an existing database that stopped leaves there: the tables whose
    transaction had committed (on record, IMPORTED_TABLE; its log's "imported" lines), and the rest
    to import with --table (the plan's tables, or the folder's manifest's)."""
    if imported:
        said = (f"; the tables imported into '{into}' before it stopped stay (each is its own transaction, "
                f"committed): {', '.join(imported)}")
    else:
        said = f"; no table's import into '{into}' had committed (each is its own transaction)"
    to_import = csv_import_tables(spec)
    rest = [name for name in to_import if name not in imported]
    if rest:
        from .csv_plans import table_options

        return said + "; import the rest with " + table_options(rest)
    if imported and to_import:
        # Every table was in: it stopped setting the sequences or running schema-post.sql. "Import the
        # rest with --table (the tables not named here)" named none, and a retry is refused (the tables
        # have rows): what may be missing is said, with the psql line that makes it, as a failure there says.
        return said + "; " + csv_import_after_the_data(spec, into)
    return said + "; import the rest with --table (the tables not named here)" if imported else said


def csv_import_after_the_data(spec: dict[str, Any], into: str) -> str:
    """What a csv import stopped after its last table's data may have left undone, and how to do it."""
    from .csv_import_failures import psql_command
    from .csv_plans import SCHEMA_POST

    plan = spec.get("plan") or {}
    params = (plan.get("target") or {}).get("params") or {}
    script = Path(str(plan.get("source"))) / SCHEMA_POST
    return (f"every table's data is in, but it stopped after: the sequences (set from the manifest) and "
            f"{SCHEMA_POST} (indexes, constraints, foreign keys, triggers) may not be done; if the tables lack "
            f"them, run: {psql_command('psql', params, into, script)}")


def csv_import_tables(spec: dict[str, Any]) -> list[str]:
    """The tables a csv import's spec was to load (qualified names; [] if they cannot be told)."""
    from .csv_import_folder import read_manifest
    from .errors import PgBackupError
    from .identifiers import QualifiedName

    plan = spec.get("plan") or {}
    try:
        if plan.get("tables"):
            return [str(QualifiedName(schema, name)) for schema, name in plan["tables"]]
        manifest = read_manifest(Path(str(plan.get("source"))))
        return [str(QualifiedName(t["schema"], t["name"])) for t in manifest["tables"]]
    except (PgBackupError, KeyError, TypeError, ValueError):
        return []


def swapped_message(title: str, runner: str, swap: dict[str, Any], owned: list[dict[str, Any]]) -> str:
    """A restore whose runner died after its swap committed: done, and what became of the database
    it replaced (dropped now, as the job would have; or kept, with --keep-old)."""
    name, previous = swap.get("value"), swap.get("previous")
    dropping = any(i.get("kind") == "database" and i.get("value") == previous for i in owned)
    message = (f"{title}: '{name}' is the restored database; {runner} stopped right after it put it in place, "
               "before it recorded the end (killed, or out of memory)")
    if dropping:
        return message + f"; the database it replaced ('{previous}') is dropped"
    return message + f"; the previous '{name}' is kept as '{previous}' (--keep-old): drop it when you no longer need it"
