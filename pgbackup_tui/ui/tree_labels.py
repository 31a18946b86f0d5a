"""The server tree's lines: a name, then its figures (version, size, rows), fitted to the width.

A line is built as parts: the check mark and the name, which are never dropped, then figures,
each with a rank. When the line is too long for the tree, the figures go first, least useful
first; only then is the name cut (with an ellipsis). Figures that fit stand at the right edge,
so that they form a column apart from the names (`actor  ~200 rows`, never `actor~200 rows`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text

from ..core.formatting import human_bytes
from ..core.identifiers import one_line
from .selection import Checks
from .tree_entries import (
    FAILED,
    LOADING,
    DatabaseEntry,
    HintEntry,
    MoreEntry,
    NodeEntry,
    SchemaEntry,
    ServerEntry,
    TableEntry,
    short_reason,
    table_marks,
)

GAP = 2  # spaces between a name and its figures, at the least
MIN_CUT = 6  # an error cut shorter than this says nothing: it is left out


@dataclass(frozen=True)
class Figure:
    """One figure after the name; the highest `drop_rank` goes first when space is short."""

    text: str
    style: Style
    drop_rank: int = 0
    cut: bool = False  # an error: cut short (the Details tab has it whole) rather than left out


@dataclass(frozen=True)
class Line:
    head: Text  # check mark and name: always shown (the name is cut only as a last resort)
    figures: tuple[Figure, ...] = ()

    def plain(self) -> Text:
        """The whole line, figures after two spaces (what tests and the Details tab read)."""
        text = self.head.copy()
        for figure in self.figures:
            text.append("  " + figure.text, figure.style)
        return text

    def fit(self, width: int) -> Text:
        """The line in `width` cells: figures dropped by rank until they fit, right-aligned."""
        figures = list(self.figures)
        while figures:
            tail = _join(figures)
            room = width - self.head.cell_len - tail.cell_len
            if room >= GAP:
                line = self.head.copy()
                line.append(" " * room)
                line.append_text(tail)
                return line
            if all(figure.cut for figure in figures) and room + tail.cell_len >= GAP + MIN_CUT:
                tail.truncate(room + tail.cell_len - GAP, overflow="ellipsis")
                line = self.head.copy()
                line.append(" " * GAP)
                line.append_text(tail)
                return line
            figures.remove(max(figures, key=lambda figure: figure.drop_rank))
        line = self.head.copy()
        line.truncate(max(1, width), overflow="ellipsis")
        return line


def _join(figures: list[Figure]) -> Text:
    text = Text()
    for index, figure in enumerate(figures):
        text.append(("  " if index else "") + figure.text, figure.style)
    return text


def describe_entry(data: NodeEntry | None, checks: Checks, style: Callable[[str], Style]) -> Line:
    """The parts of a node's line; `style(part)` gives the theme's style of a part (muted, error…)."""
    muted, error, ok, mark = (style(name) for name in ("muted", "error", "ok", "mark"))
    head = Text(no_wrap=True, overflow="ellipsis")
    figures: list[Figure] = []
    if isinstance(data, ServerEntry):
        head.append(data.name, Style(bold=True))
        if data.status == LOADING:
            figures.append(Figure("connecting…", muted))
        elif data.status == FAILED and data.error:
            figures.append(Figure(short_reason(data.error, data.name), error, cut=True))
        elif data.snapshot is not None:
            info = data.snapshot.info
            figures.append(Figure(f"PostgreSQL {info.version.split()[0]}", ok, 1))
            if info.in_recovery:
                figures.append(Figure("standby", mark))
    elif isinstance(data, DatabaseEntry):
        _append_check(head, checks.database_mark(data.key), style)
        head.append(one_line(data.info.name))
        if not data.info.allow_connections:
            figures.append(Figure("no connections", muted))
        elif data.status == FAILED and data.error:
            figures.append(Figure(short_reason(data.error, data.server), error, cut=True))
        else:
            figures.append(Figure(human_bytes(data.info.size_bytes), muted))
    elif isinstance(data, SchemaEntry):
        _append_check(head, checks.tables_mark((data.server, data.dbname), data.tables), style)
        size = sum(t.total_bytes for t in data.tables if t.parent is None)
        count = len(data.tables)
        head.append(one_line(data.info.name))
        figures.append(Figure(f"{count} table{'s' if count != 1 else ''}", muted, 1))
        figures.append(Figure(human_bytes(size), muted, 2))
    elif isinstance(data, TableEntry):
        table = data.info
        checked = checks.tables_mark((data.server, data.dbname), (data.info,)) == "x"
        _append_check(head, "x" if checked else " ", style)
        head.append(one_line(table.name))  # a name with a line break: one tree line still
        rows = "row" if table.estimated_rows == 1 else "rows"
        figures.append(Figure(f"{'~' if table.rows_known else '≥'}{table.estimated_rows:,} {rows}", muted, 1))
        figures.append(Figure(human_bytes(table.total_bytes), muted, 3))
        figures.extend(Figure(kind_mark, mark, 2) for kind_mark in table_marks(table))
    elif isinstance(data, HintEntry):
        head.append(data.text, error if data.is_error else muted + Style(italic=True))
    elif isinstance(data, MoreEntry):
        head.append(f"… {data.left:,} more table{'s' if data.left != 1 else ''}", muted + Style(italic=True))
        figures.append(Figure(f"enter: next {min(data.page, data.left):,}", muted, 1))
    return Line(head, tuple(figures))


def _append_check(text: Text, state: str, style: Callable[[str], Style]) -> None:
    text.append(f"[{state}] ", style("check") if state != " " else Style())
