"""What is written to descriptor 2 while the TUI runs (libpq's own warnings) stays off the screen
Textual draws there: each distinct line said once, kept for the terminal after (stray_output.py).
The TUI in tmux with a group-readable PGPASSFILE: test_e2e_tmux.py."""

from __future__ import annotations

import os
import subprocess
import sys

from pgbackup_tui.ui.stray_output import MAX_LINES, StrayOutput

WARNING = 'WARNING: password file "/home/dba/.pgpass" has group or world access'


def test_lines_written_to_descriptor_2_are_said_once_and_printed_after(capfd):
    told: list[str] = []
    with StrayOutput() as stray:
        before = stray.listen(told.append)
        print("drawn", file=sys.stderr, flush=True)  # Python's stderr: the terminal, as Textual's
        for _ in range(3):  # libpq: every connection
            os.write(2, (WARNING + "\n").encode())
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('a child said it\\n')"], check=True)
        for n in range(MAX_LINES + 5):
            os.write(2, f"flood {n}\n".encode())
        os.write(2, b"")
    assert before == []
    assert told[:2] == [WARNING, "a child said it"] and len(told) == MAX_LINES, told
    err = capfd.readouterr().err
    lines = err.splitlines()
    assert lines[0] == "drawn" and lines.count(WARNING) == 1 and "a child said it" in lines, err
    assert lines[-1] == "pgbackup-tui: 7 more line(s) written to stderr while the TUI ran were left out", err
