"""A child's stderr line that a quoted name with a line break cut in two, joined back.

pg_dump and pg_restore quote a name as SQL does, line break and all: a table named "t<LF>x" made
`pg_dump: dumping contents of table "public.t` and `x"` two lines of the job's log (and of the
TUI's log pane, and of a failure's telling line), the second one meaningless alone. A quoted name
holds its double quotes in pairs (a quote inside one is doubled), so a line with an odd number of
them ends inside a name: it is held, and the lines after it are joined to it, the line break
written as \\n (identifiers.one_line's way), once the quotes pair up again. Where they do not
within MAX_PARTS lines (a stray quote in a COPY context line), the lines go on as they came.
"""

from __future__ import annotations

MAX_PARTS = 4  # a name with up to 3 line breaks; more is left as it came
BREAK = "\\n"


class NameBreakJoiner:
    """Feed it a child's lines, one at a time; it gives back the lines to log (see the module)."""

    def __init__(self) -> None:
        self._held: list[str] = []

    @property
    def holding(self) -> bool:
        """Whether a line is held, waiting for the rest of its name."""
        return bool(self._held)

    def feed(self, line: str) -> list[str]:
        """The lines ready to log after `line`: none while a name is open, else one or more."""
        if not self._held:
            if line.count('"') % 2 == 0:
                return [line]
            self._held = [line]
            return []
        self._held.append(line)
        if sum(part.count('"') for part in self._held) % 2 == 0:
            joined, self._held = BREAK.join(self._held), []
            return [joined]
        if len(self._held) >= MAX_PARTS:
            return self.flush()
        return []

    def flush(self) -> list[str]:
        """The lines held, as they came (the child ended, or went quiet with a name still open)."""
        held, self._held = self._held, []
        return held
