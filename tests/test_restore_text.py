"""The restore dialog's summary says what the restore job will do (core/restore.py decides it)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.identifiers import QualifiedName
from pgbackup_tui.core.plans import RestorePlan
from pgbackup_tui.ui.restore_text import restore_summary

TARGET = target_from_dsn("host=db.example port=5432 user=dba dbname=postgres")


def plan(**options) -> RestorePlan:
    return RestorePlan(archive=Path("/backups/shop.dump"), target=TARGET, dbname="shop", **options)


def test_a_clean_of_a_selection_s_archive_is_a_table_level_clean_in_one_transaction() -> None:
    """A backup of selected tables with --clean drops and recreates those tables (one transaction,
    one job), it does not replace the database: the words must not say it does."""
    said = restore_summary(plan(clean=True), "custom", selection_archive=True)
    assert said.startswith("dropping and recreating the archive's tables of shop"), said
    assert "one transaction" in said and "replacing the database" not in said
    assert "parallel" not in said and "one pg_restore job" in said
    # The commands it runs: pg_restore writes the tables' SQL, psql runs it after the drops.
    assert "pg_restore --file=SCRIPT" in said and "psql --single-transaction" in said
    assert "--dbname=" not in said.split("psql")[0]  # pg_restore itself does not touch the database


def test_a_clean_of_named_tables_is_table_level_too() -> None:
    said = restore_summary(plan(clean=True, tables=(QualifiedName("public", "orders"),)), "custom")
    assert said.startswith("dropping and recreating 1 table(s) of shop"), said
    assert "replacing the database" not in said


def test_a_whole_database_clean_still_says_it_replaces_the_database() -> None:
    said = restore_summary(plan(clean=True), "custom")
    assert said.startswith("replacing the database shop"), said
    # The command is pg_restore's into the database beside it, as core/restore.py runs it: never
    # --dbname of the target itself, which it does not write to.
    assert "pg_restore --exit-on-error '--dbname=dbname=pgbackup_new_… " in said, said
    assert "dbname=shop" not in said
    assert "dbname=pgbackup_new_… " in restore_summary(plan(clean=True), "plain")
    assert "dbname=shop " in restore_summary(plan(create=True), "custom")


def test_a_plain_file_in_one_transaction_is_said_fed_through_a_pipe() -> None:
    """The job feeds psql a plain file through a pipe with --single-transaction (core/restore.py): the
    dialog's command said psql read the file itself (--file=PATH)."""
    plain = RestorePlan(archive=Path("/backups/shop.sql"), target=TARGET, dbname="shop", single_transaction=True)
    said = restore_summary(plain, "plain")
    assert "--file=- --single-transaction" in said and "--file=/backups/shop.sql" not in said, said
    assert "(the job feeds it the file, its large objects' BEGIN/COMMIT left out)" in said, said
    assert "(one psql session: a plain SQL dump runs one statement at a time" in said and "pg_restore" not in said, said
    assert "--file=/backups/shop.sql" in restore_summary(replace(plain, single_transaction=False), "plain")
