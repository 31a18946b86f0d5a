"""Keep what others write straight to the terminal's stderr off the TUI's screen.

Textual draws on stderr. libpq writes some warnings itself, to file descriptor 2, past Python:
a group-readable ~/.pgpass (or PGPASSFILE) made every connection the app opened (the tree, a
dialog's check) print 'WARNING: password file "…" has group or world access; …' over the drawn
screen, wherever the cursor last was, and it stayed there until that part was redrawn. A child
process started with an inherited stderr would do the same.

While the TUI runs, StrayOutput gives Textual (and Python's sys.stderr, whose text Textual
captures anyway) a private copy of the terminal, and points descriptor 2 at a pipe. A thread reads
the pipe and hands each distinct line to a callback (the app says it once, as a toast); when the
app is gone the descriptor is put back and the lines are printed to the terminal, so that nothing
said is lost. Headless commands never use this: there libpq's warning goes to stderr as before.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

STDERR_FD = 2
MAX_LINES = 20  # distinct lines said (and kept for the terminal); more are counted


class StrayOutput:
    """Context manager: descriptor 2 diverted into a pipe (see the module docstring); `said` the
    distinct lines, in order."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self.left_out = 0  # distinct lines past MAX_LINES
        self._on_line: Callable[[str], object] | None = None
        self._lock = threading.Lock()
        self._terminal_fd = -1
        self._terminal: TextIO | None = None
        self._saved: tuple[object, TextIO] = (None, sys.stderr)
        self._reader: threading.Thread | None = None

    def __enter__(self) -> StrayOutput:
        original = sys.__stderr__
        if original is None:
            return self
        sys.stderr.flush()
        self._terminal_fd = os.dup(STDERR_FD)  # not inherited by children (os.dup's default)
        self._terminal = open(self._terminal_fd, "w", encoding=original.encoding, errors=original.errors,
                              closefd=False, buffering=1)  # line-buffered, as Python's own stderr
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, STDERR_FD)  # dup2 makes 2 inheritable: a child's stderr still ends up here
        os.close(write_fd)
        self._saved = (sys.__stderr__, sys.stderr)
        sys.__stderr__ = self._terminal  # type: ignore[misc]  # Textual's driver takes it when it starts
        sys.stderr = self._terminal
        self._reader = threading.Thread(target=self._read, args=(read_fd,), name="stray-output", daemon=True)
        self._reader.start()
        return self

    def listen(self, on_line: Callable[[str], object]) -> list[str]:
        """Call `on_line(line)` (from the reader thread) for each new distinct line from now on;
        returns those said before, none lost or told twice in between."""
        with self._lock:
            self._on_line = on_line
            return list(self.said)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._terminal is None:
            return
        self._terminal.flush()
        sys.__stderr__ = self._saved[0]  # type: ignore[misc,assignment]
        sys.stderr = self._saved[1]
        # Closing our end of the pipe: the reader sees its end unless a child still holds it (then
        # it stays a daemon thread, reading until that child goes).
        os.dup2(self._terminal_fd, STDERR_FD)
        if self._reader is not None:
            self._reader.join(timeout=0.5)
        self._terminal.close()
        os.close(self._terminal_fd)
        self._terminal = None
        with self._lock:
            said = list(self.said)
        for line in said:
            print(line, file=sys.stderr)
        if self.left_out:
            print(f"pgbackup-tui: {self.left_out} more line(s) written to stderr while the TUI ran were left out",
                  file=sys.stderr)

    def _read(self, read_fd: int) -> None:
        with open(read_fd, "rb") as pipe:
            for raw in pipe:
                line = raw.decode("utf-8", "replace").rstrip()
                if not line:
                    continue
                with self._lock:
                    if line in self.said:
                        continue
                    if len(self.said) >= MAX_LINES:  # a flood: neither a toast each nor all of it kept
                        self.left_out += 1
                        continue
                    self.said.append(line)
                    on_line = self._on_line
                if on_line is not None:
                    on_line(line)
