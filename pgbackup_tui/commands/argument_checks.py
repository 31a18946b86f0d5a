"""The command line's arguments checked before anything runs: paths that must not be empty, and
text that must be UTF-8 where it goes to libpq, PostgreSQL or config.toml (one line, exit 2)."""

from __future__ import annotations

import argparse
import os


# Arguments that name files, which may hold any bytes (a file name is not text to the kernel). Every
# other one goes to libpq, PostgreSQL or config.toml, which take UTF-8 only.
FILE_ARGUMENTS = frozenset({"archive", "bin_dir", "folder", "output", "path", "id"})
# Names of objects inside a database: a SQL_ASCII database's may hold any bytes, which our sessions and
# pg_dump take as they are (tests/test_encodings.py).
OBJECT_NAME_ARGUMENTS = frozenset({"table", "exclude_table", "schema", "time_column"})
# Commands that keep what they are given in config.toml (UTF-8 only): a server's bin_dir, a
# schedule's tables. A non-UTF-8 one was a traceback there (tomli_w).
SAVING_COMMANDS = frozenset({"servers", "schedule"})


def not_utf8(args: argparse.Namespace) -> str | None:
    """The line refusing an argument that is not UTF-8 (typed on a LATIN1 terminal, say: Python
    holds its bytes as surrogates), else None. It failed deep inside as a traceback (a conninfo, a
    TOML write) or an "internal error", exit 1."""
    for dest, value in vars(args).items():
        if dest == "given":  # a URL, which `schedule url` refuses itself, without repeating it
            continue
        if args.command not in SAVING_COMMANDS and (dest in FILE_ARGUMENTS or dest in OBJECT_NAME_ARGUMENTS):
            continue
        for text in value if isinstance(value, list) else [value]:
            if not isinstance(text, str) or not any("\udc80" <= char <= "\udcff" for char in text):
                continue
            name = "NAME" if dest == "name" else f"--{dest.replace('_', '-')}"  # the only positional of these
            # A DSN may hold a password: named, never shown.
            shown = "" if dest == "dsn" else f" '{os.fsencode(text).decode('utf-8', 'backslashreplace')}'"
            return (f"{name}{shown} is not UTF-8 (the terminal's or the script's encoding is another); it goes to "
                    "PostgreSQL or config.toml, which take UTF-8: give it in UTF-8")
    return None


def output_path(text: str) -> str:
    """--output's value: a path (empty was taken as "not given": the default place)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a path, or leave --output out for the backup dir")
    if text == "-":  # was a file named '-' in the current folder, its path printed as if all were well
        raise argparse.ArgumentTypeError("'-' is not standard output here: the backup is written to a file, "
                                         "checked and renamed into place; give its path")
    return text


def archive_path(text: str) -> str:
    """restore's ARCHIVE: empty is an error (Path("") is the current folder, which was read as a
    directory archive: "a directory but not a pg_dump directory archive", exit 1, a failed job)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give the archive's path (backups list shows them)")
    return text
