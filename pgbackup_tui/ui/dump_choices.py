"""The backup dialog's choices (fast, small, custom) and what its compression and jobs fields mean.

The presets and their measured effect come from core/defaults.py; this module only says how a
preset fills the dialog's fields, whether the fields still describe a preset once the user edits
them, and how the fields read back into a DumpPlan's `compress` and `jobs`. What needs pg_dump
or the server (which methods this pg_dump has, the presets, the connections free) is worked out
once, in the dialog's worker: `resolve_choices`; everything else here is pure and instant.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import psycopg

from ..core.defaults import (
    Preset,
    free_connections,
    is_compressed,
    parallel_jobs,
    parse_compress,
    presets,
    supports,
    usable_cores,
)
from ..core.client_ssl import over_ssl
from ..core.connect import Target, connect
from ..core.errors import PgBackupError, UsageError
from ..core.identifiers import QualifiedName, one_line
from ..core.pgtools import ClientTools

CUSTOM = "custom"
CHOICES = ("fast", "small", CUSTOM)
PROBED_METHODS = ("lz4", "zstd")  # gzip and none every pg_dump has
CUSTOM_EFFECT = "pick the format, compression and jobs yourself"
NAMES_SHOWN = 3  # tables named in the dialog's selection line; more are counted
COMPRESS_HELP = "0-9 (a gzip level), gzip|lz4|zstd[:LEVEL] or none; empty: the measured default"
JOBS_HELP = ("parallel pg_dump workers (directory format only); "
             "empty: one per core, within the server's free connections")
# Formats whose archives pg_dump can compress, and the one it can write in parallel.
COMPRESSIBLE_FORMATS = ("custom", "directory")
PARALLEL_FORMAT = "directory"


@dataclass(frozen=True)
class Choices:
    """What the dialog's worker worked out for the choices and the defaults it shows."""

    presets: dict[str, Preset]  # by name: fast, small, custom
    methods: frozenset[str]  # compression methods this pg_dump has (gzip and none always)
    parallel_jobs: int  # what a directory dump with no jobs given runs with, at this moment

    @property
    def fast_compress(self) -> int | str | None:
        return self.presets["fast"].compress


def server_connections(target: Target, dbname: str) -> tuple[int | None, bool]:
    """The server's free connections (None when it cannot be asked now: the job asks again), and
    whether our session reached it over SSL (then the job's pg_dump must speak SSL: client_ssl)."""
    try:
        with connect(target, dbname) as conn:
            return free_connections(conn), over_ssl(conn)
    except (PgBackupError, psycopg.Error):
        return None, False


def resolve_choices(tools: ClientTools, free: int | None) -> Choices:
    """Blocking (pg_dump probes): the presets, the methods, the parallel default for `free` connections."""
    methods = frozenset({"gzip", "none"} | {method for method in PROBED_METHODS if supports(tools, method)})
    return Choices({preset.name: preset for preset in presets(tools)}, methods, parallel_jobs(usable_cores(), free))


def compress_text(spec: int | str | None) -> str:
    """A compression spec as the field shows it ('' for None)."""
    return "" if spec is None else str(spec)


def preset_fields(preset: Preset, choices: Choices) -> tuple[str, str, str]:
    """(format, compression, jobs) fields for a preset. Fast leaves compression empty: the
    measured default, which the field's placeholder names."""
    compress = "" if preset.compress == choices.fast_compress else compress_text(preset.compress)
    return preset.format, compress, "" if preset.jobs is None else str(preset.jobs)


def matching_choice(fields: tuple[str, str, str], choices: Choices | None) -> str | None:
    """The preset the fields describe (None: none of them, i.e. custom). Before the presets are
    known only the dialog's initial fields (custom format, nothing typed) are taken for fast."""
    if choices is None:
        return "fast" if fields == ("custom", "", "") else None
    for name in CHOICES[:-1]:
        preset = choices.presets.get(name)
        if preset is not None and fields in (preset_fields(preset, choices),
                                             (preset.format, compress_text(preset.compress), "")):
            return name
    return None


def effect_text(name: str, choices: Choices | None) -> str:
    """The line under the choice: the preset's expected effect (measured), or what custom means."""
    if name == CUSTOM:
        return CUSTOM_EFFECT
    if choices is None or name not in choices.presets:
        return "working out what this pg_dump offers…"
    return choices.presets[name].effect


def read_compress(text: str, fmt: str, choices: Choices | None) -> int | str | None:
    """The compression field as a plan's `compress`: what parse_compress accepts; empty: the
    measured default for a format that compresses (so that the preview shows it), else None.
    A method this pg_dump does not have is refused here rather than when the job starts."""
    text = text.strip()
    if not text:
        return choices.fast_compress if choices is not None and fmt in COMPRESSIBLE_FORMATS else None
    spec = parse_compress(text)
    method = "gzip" if isinstance(spec, int) else spec.partition(":")[0]
    if choices is not None and method not in choices.methods:
        raise UsageError(f"this pg_dump cannot compress with {method}; it has {', '.join(sorted(choices.methods))}")
    return spec


def read_jobs(text: str, fmt: str, choices: Choices | None) -> int | None:
    """The jobs field as a plan's `jobs`: a number; empty: for the directory format the parallel
    default shown in the preview (cores and the server's free connections), else None (one job)."""
    text = text.strip()
    if text:
        return int(text)
    if fmt == PARALLEL_FORMAT and choices is not None:
        return choices.parallel_jobs
    return None


def compress_problem(fmt: str, compress: int | str | None) -> str | None:
    """Why a compression typed in a dialog does not go with its format, in the dialog's words (the
    plan's check names --compress and --format, flags a TUI user has not); None when it does."""
    if compress is None or fmt in COMPRESSIBLE_FORMATS or not is_compressed(compress):
        return None
    return (f"Compression: a {fmt} dump is not compressed; empty the field, or pick the custom or directory "
            "format, which compress and restore selectively")


def multiline_command(argv: list[str]) -> str:
    """The argv as a shell command, one argument per line with `\\` continuations.

    Same quoting as plans.shell_preview (shlex), so it pastes into a shell as is; one argument
    per line because a table selection can carry dozens of --exclude-table arguments.
    """
    return " \\\n    ".join(shlex.quote(arg) for arg in argv)


def describe_selection(dbname: str, tables: tuple[QualifiedName, ...]) -> str:
    """'whole database shop' or '2 tables selected in shop: public.a, public.b' (names as the tree
    shows them: a line break in one as \\n, not a line of its own in the dialog)."""
    if not tables:
        return f"whole database {one_line(dbname)}"
    noun = "table" if len(tables) == 1 else "tables"
    names = ", ".join(one_line(str(name)) for name in tables[:NAMES_SHOWN])
    more = f" and {len(tables) - NAMES_SHOWN} more" if len(tables) > NAMES_SHOWN else ""
    return f"{len(tables)} {noun} selected in {one_line(dbname)}: {names}{more}"
