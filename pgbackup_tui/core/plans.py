"""Dump and restore plans, and the exact argv they become. Pure: no I/O here.

A plan is what the user asked for (from the CLI or a dialog). `validate()` refuses combinations
pg_dump/pg_restore would reject half-way, with a line that says what to do instead; for a dump
with an explicit output it also looks at that path (output_names.py: looks, creates nothing). The argv
builders take what the job found out at run time (tools, output path, relations to leave out).
Passwords never appear: connections go in as a password-free conninfo (`--dbname=`), the
password travels in the child's environment (Target.child_env).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .defaults import check_compress, compress_argument, is_compressed
from .errors import UsageError
from .identifiers import QualifiedName, in_encoding

if TYPE_CHECKING:  # only for annotations: keeps `import plans` (and the CLI's start) free of psycopg
    from .connect import Target
    from .pgtools import ClientTools

DumpFormat = Literal["custom", "directory", "tar", "plain"]
FORMATS: tuple[str, ...] = ("custom", "directory", "tar", "plain")
FORMAT_FLAG = {"custom": "c", "directory": "d", "tar": "t", "plain": "p"}
FORMAT_EXTENSION = {"custom": ".dump", "directory": ".dir", "tar": ".tar", "plain": ".sql"}
PARTIAL_SUFFIX = ".partial"
# PostgreSQL keeps NAMEDATALEN - 1 bytes of a name and cuts a longer one silently (also the
# database name of a connection): a longer --db would reach another database than the one named.
MAX_NAME_BYTES = 63
TEMPLATE_DATABASES = ("template0", "template1")


def check_database_name(dbname: str, option: str = "--db") -> None:
    """Refuse a database name no database can have: empty, with a NUL, longer than 63 bytes (UTF-8)."""
    if not dbname:
        raise UsageError(f"{option} is empty: name the database")
    if "\0" in dbname:
        raise UsageError(f"{option}: a database name cannot contain a NUL character")
    if "=" in dbname or "://" in dbname:
        from .server_profile import hidden_password  # here: server_profile imports psycopg, which plans stays free of

        if hidden_password(dbname):
            raise UsageError(f"{option} holds a connection string with a password; name only the database and "
                             "give the password in ~/.pgpass or PGPASSWORD (argv and logs are visible)")
    size = len(dbname.encode("utf-8", errors="surrogateescape"))
    if size > MAX_NAME_BYTES:
        shown = dbname if len(dbname) <= 40 else dbname[:40] + "…"
        raise UsageError(f"{option} {shown!r} is {size} bytes long; PostgreSQL names are at most {MAX_NAME_BYTES} "
                         "bytes (the server would silently cut it to another name)")


@dataclass(frozen=True)
class DumpPlan:
    """One pg_dump of one database, whole or a selection of tables/schemas."""

    target: Target
    dbname: str
    format: DumpFormat = "custom"
    tables: tuple[QualifiedName, ...] = ()
    schemas: tuple[str, ...] = ()
    exclude_tables: tuple[QualifiedName, ...] = ()
    jobs: int | None = None  # None: directory format from the cores and the server, else 1 (defaults.py)
    compress: int | str | None = None  # a gzip level, METHOD[:LEVEL]; None: the measured default (defaults.py)
    schema_only: bool = False
    data_only: bool = False
    no_owner: bool = False
    no_privileges: bool = False
    output: Path | None = None
    # An exported snapshot (pg_export_snapshot()) pg_dump reads in (--snapshot): csv export's schema
    # is dumped in the snapshot its COPYs read, after its locks, so that the two always agree.
    snapshot: str | None = None

    @property
    def is_selection(self) -> bool:
        """True when only some tables/schemas are dumped: what they depend on must come along."""
        return bool(self.tables or self.schemas)

    def validate(self) -> None:
        """Refuse what pg_dump would refuse half-way, a database name that cannot exist, and an
        --output that cannot be written (checked on disk: nothing is created)."""
        check_database_name(self.dbname)
        if self.format not in FORMATS:
            raise UsageError(f"unknown format {self.format!r}; pick one of {', '.join(FORMATS)}")
        if self.jobs is not None and self.jobs < 1:
            raise UsageError("--jobs must be 1 or more")
        if self.jobs is not None and self.jobs > 1 and self.format != "directory":
            raise UsageError(
                f"--jobs {self.jobs} needs --format directory (pg_dump writes in parallel only into a directory)"
            )
        if self.compress is not None:
            check_compress(self.compress)
        if is_compressed(self.compress) and self.compress is not None and self.format == "tar":
            raise UsageError("the tar format cannot be compressed; use --format custom or directory with --compress")
        if is_compressed(self.compress) and self.compress is not None and self.format == "plain":
            raise UsageError(
                "--compress with --format plain is not supported; "
                "use custom or directory, which compress and restore selectively"
            )
        if self.schema_only and self.data_only:
            raise UsageError("--schema-only and --data-only exclude each other; pick one")
        if self.is_selection and self.data_only:
            raise UsageError(
                "--data-only with --table/--schema is not supported (a selection's dump carries what its tables "
                "need, which rows alone cannot); dump the selection without --data-only (its schema is small), or "
                "the whole database with --data-only and load some tables' rows with `restore --table`"
            )
        overlap = set(self.tables) & set(self.exclude_tables)
        if overlap:
            raise UsageError(f"{sorted(overlap)[0]} is both selected and excluded")
        if self.output is not None:
            from .output_names import check_output_location  # here: output_names imports this module

            check_output_location(Path(self.output).expanduser().absolute())


@dataclass(frozen=True)
class RestorePlan:
    """One restore of an archive into one database."""

    archive: Path
    target: Target
    dbname: str
    create: bool = False
    clean: bool = False
    jobs: int | None = None  # None: parallel where the archive and the target allow it (RestoreJob)
    single_transaction: bool = False
    no_owner: bool = False
    no_privileges: bool = False  # pg_restore --no-privileges: without the archive's GRANTs and REVOKEs
    tables: tuple[QualifiedName, ...] = ()
    allow_older_server: bool = False  # restore an archive from a newer pg_dump into an older server anyway
    drill: bool = False  # a backups drill's restore: it has no --allow-older-server to offer
    keep_old: bool = False  # a whole-database --clean keeps the replaced database under another name
    dry_run: bool = False  # check everything and say what would be done; change nothing
    # A cluster set's member (cluster_restore.py only), restored as the cluster had it: template1's
    # into template1 (empty), as pg_dumpall's file puts its contents there (a restore the user
    # names is refused it), and into an existing database (postgres) with the archive's own owner,
    # settings, comment and grants, which pg_restore without --create leaves out.
    as_set_member: bool = False

    def validate(self, archive_format: str | None = None) -> None:
        """Refuse what pg_restore would refuse half-way. `archive_format` once it is known."""
        check_database_name(self.dbname)
        if self.dbname in TEMPLATE_DATABASES and not (self.dbname == "template1" and self.as_set_member):
            raise UsageError(
                f"--db {self.dbname}: restoring into a template database is refused (template1 is copied into "
                "every new database, template0 must stay pristine and takes no connections); "
                "restore into another database, e.g. with --create")
        jobs = self.jobs or 1  # None (chosen at the start) is never more than the archive allows
        if self.jobs is not None and self.jobs < 1:
            raise UsageError("--jobs must be 1 or more")
        if jobs > 1 and self.single_transaction:
            raise UsageError(
                "--jobs and --single-transaction exclude each other (a parallel restore uses several sessions)")
        if self.create and self.clean:
            raise UsageError("--create restores into a new database, so --clean has nothing to clean; pick one")
        if self.keep_old and not self.clean:
            raise UsageError("--keep-old goes with --clean (it keeps the database a --clean replaces)")
        if self.keep_old and self.tables:
            raise UsageError("--keep-old applies to a --clean of the whole database, not to --table")
        if archive_format == "plain":
            if jobs > 1:
                raise UsageError("a plain SQL dump is restored by psql, one statement at a time: drop --jobs")
            if self.tables:
                raise UsageError(
                    "a plain SQL dump cannot be restored selectively; use a custom, directory or tar archive")
            if self.no_owner:
                raise UsageError("a plain SQL dump has its owners written in; dump with --no-owner instead")
            if self.no_privileges:
                raise UsageError("a plain SQL dump has its grants written in; dump with --no-privileges instead")
        if archive_format == "tar" and jobs > 1:
            raise UsageError("pg_restore cannot restore a tar archive in parallel; drop --jobs or use custom/directory")


def utc_stamp(now: datetime | None = None) -> str:
    """A sortable, filename-safe UTC timestamp: 20261122T073200Z."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def safe_path_part(text: str) -> str:
    """A server or database name as one folder name (no slashes, no leading dots)."""
    cleaned = "".join(c if (c.isalnum() or c in "._-") else "_" for c in text).lstrip(".")
    return cleaned or "_"


def server_folder(server_label: str) -> str:
    """A server's folder under backups/. An IPv6 host's label is bracketed ('[::1]:5432') since
    labels are; its brackets are left out here so that its backups stay in the folder they had."""
    return safe_path_part(server_label.replace("[", "").replace("]", ""))


def default_output_path(backups_root: Path, server_label: str, dbname: str, fmt: str, stamp: str) -> Path:
    """backups/<server>/<db>/<UTC timestamp>.<ext>"""
    return backups_root / server_folder(server_label) / safe_path_part(dbname) / f"{stamp}{FORMAT_EXTENSION[fmt]}"


def partial_path(final: Path) -> Path:
    return final.with_name(final.name + PARTIAL_SUFFIX)


def dump_argv(
    plan: DumpPlan,
    tools: ClientTools,
    output: Path,
    *,
    fmt: str | None = None,
    exclude_relations: tuple[QualifiedName | str, ...] = (),
    exclude_data: tuple[QualifiedName, ...] = (),
    name_codec: str = "utf-8",
) -> list[str]:
    """pg_dump's argv for `plan`, writing to `output` in `fmt` (default: the plan's format).
    Names are written for a pg_dump whose client encoding is `name_codec` (server_text.dump_encoding).

    A selection (tables/schemas) is dumped as "everything except the other relations", given
    here as `exclude_relations`, so that the schemas, types, functions and extensions the
    selection depends on are in the archive; the job then keeps only what is needed (toc_closure.py).
    Those are names, or ready pg_dump patterns (str) that cover many names at once (exclusion.py).
    """
    fmt = fmt or plan.format
    argv = [tools.pg_dump, f"--dbname={plan.target.conninfo(plan.dbname)}", f"--format={FORMAT_FLAG[fmt]}",
            f"--file={output}", "--verbose"]
    if plan.jobs is not None and plan.jobs > 1:
        argv.append(f"--jobs={plan.jobs}")
    if plan.compress is not None and fmt in ("custom", "directory"):
        argv.append(f"--compress={compress_argument(plan.compress, tools.major)}")
    if plan.schema_only:
        argv.append("--schema-only")
    if plan.data_only:
        argv.append("--data-only")
    if plan.no_owner:
        argv.append("--no-owner")
    if plan.no_privileges:
        argv.append("--no-privileges")
    if plan.snapshot is not None:
        argv.append(f"--snapshot={plan.snapshot}")
    if plan.is_selection:
        argv.append("--no-blobs")  # as with pg_dump -t / -n: large objects belong to no table
        excluded = exclude_relations
    else:
        excluded = plan.exclude_tables
    for relation in excluded:
        pattern = relation.pattern if isinstance(relation, QualifiedName) else relation
        argv.append(f"--exclude-table={in_encoding(pattern, name_codec)}")
    for table in exclude_data:
        argv.append(f"--exclude-table-data={in_encoding(table.pattern, name_codec)}")
    return argv


def restore_argv(
    plan: RestorePlan,
    tools: ClientTools | None,
    *,
    list_file: Path | None = None,
) -> list[str]:
    """pg_restore's argv into plan.dbname (created beforehand by the job when --create).
    Without `tools` the program is named bare, for a preview before the tools are chosen."""
    program = tools.pg_restore if tools is not None else "pg_restore"
    argv = [program, f"--dbname={plan.target.conninfo(plan.dbname)}", "--verbose"]
    if plan.jobs is not None and plan.jobs > 1:
        argv.append(f"--jobs={plan.jobs}")
    if plan.single_transaction:
        argv.append("--single-transaction")
    if plan.no_owner:
        argv.append("--no-owner")
    if plan.no_privileges:
        argv.append("--no-privileges")
    if list_file is not None:
        argv.append(f"--use-list={list_file}")
    argv.append(str(plan.archive))
    return argv


def restore_script_argv(plan: RestorePlan, tools: ClientTools, list_file: Path | None, script: Path) -> list[str]:
    """pg_restore writing the selected entries (all without `list_file`) as SQL, for psql to run in
    one transaction after the drops of a table-level --clean (restore_clean.py) or the emptying of a
    data-only archive's tables (restore_data.py)."""
    argv = [tools.pg_restore, f"--file={script}"]
    if list_file is not None:
        argv.append(f"--use-list={list_file}")
    if plan.no_owner:
        argv.append("--no-owner")
    if plan.no_privileges:
        argv.append("--no-privileges")
    argv.append(str(plan.archive))
    return argv


def psql_files_argv(plan: RestorePlan, tools: ClientTools, files: list[Path]) -> list[str]:
    """psql running `files` in order as one transaction, stopping at the first error."""
    argv = [tools.psql, f"--dbname={plan.target.conninfo(plan.dbname)}", "--no-psqlrc", "--quiet",
            "--set=ON_ERROR_STOP=1", "--echo-errors", "--single-transaction"]
    argv += [f"--file={path}" for path in files]
    return argv


def psql_restore_argv(plan: RestorePlan, tools: ClientTools | None) -> list[str]:
    """psql's argv to run a plain SQL dump, stopping at the first error."""
    program = tools.psql if tools is not None else "psql"
    argv = [program, f"--dbname={plan.target.conninfo(plan.dbname)}", "--no-psqlrc", "--quiet",
            "--set=ON_ERROR_STOP=1", "--echo-errors", f"--file={plan.archive}"]
    if plan.single_transaction:
        argv.append("--single-transaction")
    return argv


def restore_command(
    plan: RestorePlan,
    archive_format: str,
    tools: ClientTools | None = None,
    *,
    list_file: Path | None = None,
) -> list[str]:
    """The command that restores `plan`: psql for a plain SQL dump, pg_restore for the rest."""
    if archive_format == "plain":
        return psql_restore_argv(plan, tools)
    return restore_argv(plan, tools, list_file=list_file)


def fed_through_a_pipe(argv: list[str]) -> list[str]:
    """psql's `argv` reading its script from stdin (--file=-), where the job feeds it the file
    changed on the way (lines left out); the preview says the same."""
    return ["--file=-" if arg.startswith("--file=") else arg for arg in argv]


def shell_preview(argv: list[str]) -> str:
    """The command as a user would type it (for the TUI's preview and the job log)."""
    return shlex.join(argv)
