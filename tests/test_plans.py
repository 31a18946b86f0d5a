"""Dump and restore plans: refusals before anything runs, and the exact argv they become."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pgbackup_tui.core.connect import Target, target_from_dsn
from pgbackup_tui.core.errors import UsageError
from pgbackup_tui.core.identifiers import QualifiedName, parse_qualified_name
from pgbackup_tui.core.pgtools import ClientTools, find_client_tools
from pgbackup_tui.core.plans import (
    FORMATS,
    DumpPlan,
    RestorePlan,
    default_output_path,
    dump_argv,
    partial_path,
    psql_restore_argv,
    restore_argv,
    safe_path_part,
    shell_preview,
    utc_stamp,
)

SECRET = "s3cr3t-Pa55"
DSN_WITH_PASSWORD = f"host=h user=u password={SECRET} dbname=d"


@pytest.fixture(scope="module")
def tools() -> ClientTools:
    """Real client tools (any installed major): the argv builders resolve real paths."""
    return find_client_tools(10)


@pytest.fixture
def target() -> Target:
    return target_from_dsn(DSN_WITH_PASSWORD)


def dump_plan(target: Target, **options: Any) -> DumpPlan:
    return DumpPlan(target=target, dbname="shop", **options)


def restore_plan(target: Target, **options: Any) -> RestorePlan:
    return RestorePlan(archive=Path("/backups/shop.dump"), target=target, dbname="shop_copy", **options)


# -- refusals -------------------------------------------------------------------------------------

ITEMS = (QualifiedName("public", "orders"),)

DUMP_REFUSALS: dict[str, tuple[dict[str, Any], str]] = {
    "jobs with custom": ({"jobs": 2, "format": "custom"}, "--format directory"),
    "jobs with tar": ({"jobs": 4, "format": "tar"}, "--format directory"),
    "jobs with plain": ({"jobs": 2, "format": "plain"}, "--format directory"),
    "jobs zero": ({"jobs": 0, "format": "directory"}, "--jobs"),
    "compress with tar": ({"compress": 5, "format": "tar"}, "tar"),
    "compress with plain": ({"compress": 5, "format": "plain"}, "plain"),
    "compress out of range": ({"compress": 10}, "0 to 9"),
    "unknown format": ({"format": "zip"}, "zip"),
    "schema-only and data-only": ({"schema_only": True, "data_only": True}, "--schema-only and --data-only"),
    "table and data-only": ({"tables": ITEMS, "data_only": True}, "restore --table"),
    "schema and data-only": ({"schemas": ("inventory",), "data_only": True}, "--data-only"),
    "selected and excluded": ({"tables": ITEMS, "exclude_tables": ITEMS}, "public.orders"),
}


@pytest.mark.parametrize("case", sorted(DUMP_REFUSALS))
def test_dump_plan_refusals(target: Target, case: str) -> None:
    options, fragment = DUMP_REFUSALS[case]
    with pytest.raises(UsageError) as caught:
        dump_plan(target, **options).validate()
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("options", [
    {},
    {"format": "directory", "jobs": 4, "compress": 9},
    {"format": "tar", "compress": 0},
    {"format": "plain"},
    {"tables": ITEMS, "schema_only": True},
    {"data_only": True},
    {"schemas": ("inventory",), "exclude_tables": ITEMS},
])
def test_dump_plan_accepts_sensible_combinations(target: Target, options: dict) -> None:
    dump_plan(target, **options).validate()


RESTORE_REFUSALS: dict[str, tuple[dict[str, Any], str | None, str]] = {
    "jobs and single-transaction": ({"jobs": 2, "single_transaction": True}, None, "--single-transaction"),
    "create and clean": ({"create": True, "clean": True}, None, "--clean"),
    "jobs zero": ({"jobs": 0}, None, "--jobs"),
    "plain with jobs": ({"jobs": 2}, "plain", "--jobs"),
    "keep-old without clean": ({"keep_old": True}, None, "--keep-old"),
    "keep-old with tables": ({"keep_old": True, "clean": True, "tables": ITEMS}, None, "--keep-old"),
    "plain with tables": ({"tables": ITEMS}, "plain", "selectively"),
    "plain with no-owner": ({"no_owner": True}, "plain", "--no-owner"),
    "tar with jobs": ({"jobs": 2}, "tar", "tar"),
}


@pytest.mark.parametrize("case", sorted(RESTORE_REFUSALS))
def test_restore_plan_refusals(target: Target, case: str) -> None:
    options, archive_format, fragment = RESTORE_REFUSALS[case]
    with pytest.raises(UsageError) as caught:
        restore_plan(target, **options).validate(archive_format=archive_format)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("options", "archive_format"), [
    ({"jobs": 4}, "custom"),
    ({"jobs": 4, "clean": True}, "directory"),
    ({"single_transaction": True, "create": True}, "tar"),
    ({"create": True, "single_transaction": True}, "plain"),
    ({"tables": ITEMS, "no_owner": True}, "custom"),
    ({"jobs": 2}, None),  # format not known yet: only the generic checks apply
])
def test_restore_plan_accepts_sensible_combinations(target: Target, options: dict, archive_format: str | None) -> None:
    restore_plan(target, **options).validate(archive_format=archive_format)


# -- argv -----------------------------------------------------------------------------------------

def test_target_from_dsn_keeps_the_password_out_of_the_conninfo(target: Target) -> None:
    assert target.password == SECRET
    assert SECRET not in target.conninfo("shop")
    assert SECRET not in repr(target)
    assert target.child_env()["PGPASSWORD"] == SECRET


@pytest.mark.parametrize("fmt", FORMATS)
def test_dump_argv_never_contains_the_password(target: Target, tools: ClientTools, tmp_path: Path, fmt: str) -> None:
    plan = dump_plan(target, format=fmt, tables=ITEMS, no_owner=True)
    argv = dump_argv(plan, tools, tmp_path / "out", exclude_relations=(QualifiedName("public", "x"),))
    assert not any(SECRET in arg for arg in argv)
    assert SECRET not in shell_preview(argv)
    assert "password" not in " ".join(argv)


def test_restore_and_psql_argv_never_contain_the_password(target: Target, tools: ClientTools, tmp_path: Path) -> None:
    plan = restore_plan(target, clean=True, tables=ITEMS)
    for argv in (restore_argv(plan, tools, list_file=tmp_path / "l"), psql_restore_argv(plan, tools)):
        assert not any(SECRET in arg for arg in argv)
        assert "password" not in " ".join(argv)


def test_a_dsn_with_the_ssl_key_password_is_refused_before_any_argv_exists() -> None:
    """sslpassword has no environment variable in libpq, so it could only travel in argv: refuse it."""
    with pytest.raises(UsageError) as caught:
        target_from_dsn(f"host=h user=u sslcert=c sslkey=k sslpassword={SECRET} dbname=d")
    assert "sslpassword" in str(caught.value) and SECRET not in str(caught.value)


def test_dump_argv_shape(target: Target, tools: ClientTools, tmp_path: Path) -> None:
    output = tmp_path / "with space" / "shop.dir.partial"
    plan = dump_plan(target, format="directory", jobs=3, compress=6, schema_only=True,
                     no_owner=True, no_privileges=True)
    argv = dump_argv(plan, tools, output)
    assert argv[0] == tools.pg_dump
    assert argv[1].startswith("--dbname=")
    conninfo = argv[1].removeprefix("--dbname=")
    assert "host=h" in conninfo and "user=u" in conninfo and "dbname=shop" in conninfo
    assert f"--file={output}" in argv
    for flag in ("--format=d", "--jobs=3", "--compress=6", "--schema-only", "--no-owner",
                 "--no-privileges", "--verbose"):
        assert flag in argv
    assert "--data-only" not in argv
    # The preview is what a user can paste into a shell: it splits back into the same argv.
    assert shlex.split(shell_preview(argv)) == argv


@pytest.mark.parametrize(("fmt", "flag"), [("custom", "c"), ("directory", "d"), ("tar", "t"), ("plain", "p")])
def test_dump_argv_format_flags(target: Target, tools: ClientTools, tmp_path: Path, fmt: str, flag: str) -> None:
    argv = dump_argv(dump_plan(target, format=fmt, compress=3 if fmt in ("custom", "directory") else None),
                     tools, tmp_path / "o")
    assert f"--format={flag}" in argv
    assert ("--compress=3" in argv) == (fmt in ("custom", "directory"))
    # The job may run a plain selection as custom first: `fmt` overrides the plan's format.
    assert "--format=c" in dump_argv(dump_plan(target, format=fmt), tools, tmp_path / "o", fmt="custom")


def test_exclude_tables_become_exact_patterns(target: Target, tools: ClientTools, tmp_path: Path) -> None:
    excluded = tuple(parse_qualified_name(t) for t in ('public."star*name"', '"Sales & Ops"."Order Items"',
                                                        'public."quote""name"'))
    argv = dump_argv(dump_plan(target, exclude_tables=excluded), tools, tmp_path / "o")
    patterns = [arg.removeprefix("--exclude-table=") for arg in argv if arg.startswith("--exclude-table=")]
    assert patterns == ['"public"."star*name"', '"Sales & Ops"."Order Items"', '"public"."quote""name"']
    assert not any(arg.startswith(("-t", "--table", "-n", "--schema=")) for arg in argv)


def test_selection_is_dumped_as_everything_but_the_other_relations(target: Target, tools: ClientTools,
                                                                    tmp_path: Path) -> None:
    others = (QualifiedName("public", "starxname"), QualifiedName("dot", "name"))
    plan = dump_plan(target, tables=(QualifiedName("public", "star*name"),))
    argv = dump_argv(plan, tools, tmp_path / "o", exclude_relations=others)
    patterns = [arg.removeprefix("--exclude-table=") for arg in argv if arg.startswith("--exclude-table=")]
    assert patterns == ['"public"."starxname"', '"dot"."name"']
    assert not any("star*name" in arg for arg in argv)  # the selection itself is never a pattern


def test_restore_argv_shape(target: Target, tools: ClientTools, tmp_path: Path) -> None:
    plan = restore_plan(target, clean=True, jobs=4, no_owner=True)
    argv = restore_argv(plan, tools, list_file=tmp_path / "sel.list")
    assert argv[0] == tools.pg_restore
    assert "dbname=shop_copy" in argv[1]
    assert {"--jobs=4", "--no-owner", f"--use-list={tmp_path / 'sel.list'}"} <= set(argv)
    # --clean never reaches pg_restore: a whole database is restored beside the target and swapped
    # in, a table-level clean runs our own drops in psql's one transaction (restore_clean.py).
    assert "--clean" not in argv and "--if-exists" not in argv
    assert argv[-1] == "/backups/shop.dump"
    assert "--single-transaction" not in argv
    argv = psql_restore_argv(restore_plan(target, single_transaction=True), tools)
    assert argv[0] == tools.psql
    assert {"--set=ON_ERROR_STOP=1", "--single-transaction", "--file=/backups/shop.dump", "--no-psqlrc"} <= set(argv)


# -- output paths ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("fmt", "ext"),
                         [("custom", ".dump"), ("directory", ".dir"), ("tar", ".tar"), ("plain", ".sql")])
def test_default_output_path_layout(tmp_path: Path, fmt: str, ext: str) -> None:
    root = tmp_path / "backups"
    path = default_output_path(root, "prod", "shop", fmt, "20261122T073200Z")
    assert path == root / "prod" / "shop" / f"20261122T073200Z{ext}"


@pytest.mark.parametrize(("label", "folder"), [
    ("db1:5432", "db1_5432"),
    ("a/b", "a_b"),
    ("../../etc", "_.._etc"),
    ("..", "_"),
    (".hidden", "hidden"),
    ("Sales & Ops", "Sales___Ops"),
    ("café", "café"),
    ("", "_"),
])
def test_unsafe_server_labels_become_one_safe_folder(tmp_path: Path, label: str, folder: str) -> None:
    assert safe_path_part(label) == folder
    root = tmp_path / "backups"
    path = default_output_path(root, label, "shop/../x", "custom", "20261122T073200Z")
    assert path.parent.parent == root / folder
    assert path.parent.name == "shop_.._x"
    assert path.resolve().is_relative_to(root.resolve())
    assert len(path.relative_to(root).parts) == 3


def test_utc_stamp_is_utc_and_sortable() -> None:
    assert utc_stamp(datetime(2026, 11, 22, 7, 32, 0, tzinfo=UTC)) == "20261122T073200Z"
    plus_two = timezone(timedelta(hours=2))
    assert utc_stamp(datetime(2026, 1, 1, 1, 0, 5, tzinfo=plus_two)) == "20251231T230005Z"
    stamp = utc_stamp()
    assert len(stamp) == 16 and stamp.endswith("Z") and stamp[8] == "T"


def test_partial_path_is_next_to_the_final_one(tmp_path: Path) -> None:
    final = tmp_path / "20261122T073200Z.dir"
    assert partial_path(final) == tmp_path / "20261122T073200Z.dir.partial"
