"""What a restore restores, decided before the target is touched: RestoreJob's layer between
restore_archive.py (the archive identified, listed and proven whole) and restore.py (the restore
run into its target).

The mode: a new database (--create), an existing empty one, a whole database replaced (--clean:
restored beside, then swapped in), some tables replaced in one transaction (a table-level
--clean), or a data-only archive's rows loaded into existing tables. The entries: which of the
archive's the restore takes (restore_selection.py), or a data-only archive's tables
(restore_data.py), written as pg_restore's list file.
"""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError
from .restore_archive import RestoreArchiveJob
from .restore_clean import TableClean
from .restore_data import (
    DataLoad,
    check_large_objects,
    is_data_only,
    plan_rows_load,
    refuse_create,
)
from .plain_script import ScriptContents, scan_script, script_relations
from .restore_preview import ArchiveCheck
from .restore_selection import choose_entries
from .toc import entry_name, schema_names, write_list

RELATION_DESCS = frozenset({"TABLE", "FOREIGN TABLE", "MATERIALIZED VIEW"})  # what check_no_table_lost counts


class RestoreChoiceJob(RestoreArchiveJob):
    """The mode and the entries of RestoreJob's restore (see the module doc)."""

    _table_clean: TableClean | None  # a table-level --clean's tables (restore_clean.py)
    _came_along: list[str]  # what the selected entries brought with them, said in the log and the result
    _data_load: DataLoad | None  # a data-only archive's tables (restore_data.py)
    _plain_script: ScriptContents | None  # a plain data-only file, read once

    def _mode(self, check: ArchiveCheck) -> str:
        """create: a new database; replace: a whole-database --clean (restore beside, then swap);
        tables: a table-level --clean in one transaction; into: an existing empty database;
        data: a data-only archive's rows into existing tables, in one transaction (restore_data.py)."""
        plan = self.plan
        if is_data_only(check.toc, self._manifest(), check.info.first_entry_type):
            if plan.create:
                refuse_create(plan.archive)
            if plan.keep_old:
                raise UsageError("--keep-old keeps a database a whole-database --clean replaces; a data-only "
                                 "archive's --clean empties its tables instead: drop --keep-old")
            return "data"
        if plan.create:
            return "create"
        if not plan.clean:
            return "into"
        selection_archive = bool(self._manifest().get("restore_list"))
        if check.toc is None and self._holds_a_selection():
            # A plain script of some tables: a whole-database --clean would leave the database with
            # those tables only, and a script cannot be cut down to a table-level --clean.
            raise UsageError(f"{plan.archive}: a plain SQL dump of a selection; --clean would replace the whole "
                             f"database '{plan.dbname}' with what it holds. Restore it with --create into a new "
                             "database, or dump the selection as a custom archive (its --clean replaces only "
                             "its tables)")
        return "tables" if (plan.tables or selection_archive) and check.toc is not None else "replace"

    def _unproven_whole(self, check: ArchiveCheck) -> tuple[str, frozenset[tuple[str, str]]] | None:
        """For a whole-database --clean of an archive without a manifest: its path and the tables it
        holds, which the target's are checked against (restore_target.check_no_table_lost)."""
        if self._manifest():
            return None
        if check.toc is None:  # a plain script: its CREATE TABLE lines
            return (str(self.plan.archive), script_relations(self.plan.archive))
        namespaces = schema_names(check.toc)
        names = (entry_name(entry, namespaces) for entry in check.toc.entries if entry.desc in RELATION_DESCS)
        return (str(self.plan.archive), frozenset((name.schema, name.name) for name in names if name is not None))

    async def _selected_entries(self, check: ArchiveCheck, mode: str) -> set[int] | None:
        """The archive entries to restore (None: all): restore_selection.py, or a data-only
        archive's tables (restore_data.py)."""
        if mode == "data":
            included = await self.in_thread(self._plan_data_load, check)
            for warning in self._data_load.warnings if self._data_load else []:
                self.log(warning, level="warning")
            return included
        if check.toc is None:
            return None
        choice = await self.in_thread(choose_entries, self.plan, check.toc, self._manifest(), mode)
        for line, level in choice.log:
            self.log(line, level=level)
        self._table_clean, self._came_along = choice.table_clean, choice.came_along
        return None if choice.included is None else self._selecting(choice.included)

    def _selecting(self, included: set[int]) -> set[int]:
        self._progress().select(included)
        return included

    def _plan_data_load(self, check: ArchiveCheck) -> set[int] | None:
        """A data-only archive's load (restore_data.py); the entries to load (None: all)."""
        self._data_load, self._plain_script, included = plan_rows_load(self.plan, check.toc, self._manifest())
        return self._selecting(included) if included is not None else None

    def _plan_large_objects(self, script: Path) -> ScriptContents:
        """The large objects the rows' script creates, checked against the target's; what the script holds."""
        assert self._data_load is not None
        found = self._plain_script if self._plain_script is not None else scan_script(script)
        check_large_objects(self.plan, self._data_load, found)
        return found

    def _write_list(self, check: ArchiveCheck, included: set[int] | None) -> Path | None:
        if check.toc is None or included is None:
            return None
        assert self._workdir is not None
        list_file = self._workdir / "restore.list"
        write_list(check.toc, included, list_file, attach_last=self._table_clean is not None)
        return list_file
