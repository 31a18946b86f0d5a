"""An archive path that is neither a file nor a folder (a FIFO) is refused before anything runs:
opening it would block the command (or a runner) for good, past any Ctrl-C."""

from __future__ import annotations

import os

from cliutil import run_cli


def test_a_fifo_as_the_archive_is_refused_at_once(sandbox, home, tmp_path):
    fifo = tmp_path / "fifo.dump"
    os.mkfifo(fifo)
    for extra in ([], ["--dry-run"]):
        result = run_cli("restore", str(fifo), "--dsn", sandbox.dsn(), "--db", "never_made", "--create", *extra,
                         timeout=30)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [
            f"pgbackup-tui: error: {fifo}: not a regular file or a directory (an archive is one of those)"]
