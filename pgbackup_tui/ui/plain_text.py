"""Names (databases, tables, files) as plain text for the places Textual reads as markup.

A border title, a Label's update and a SelectionList's str prompt go through Textual's markup
parser: a database named "[/]x" raised MarkupError (the app ended with a traceback on `b`), one
named "[red]t[/red]" read "t". A Content is shown as it is; one_line keeps a line break in a name
from cutting the title (Textual keeps a border title's first line only).
"""

from __future__ import annotations

from textual.content import Content

from ..core.identifiers import one_line


def plain(text: str) -> Content:
    """`text` shown as it is, never markup, on one line."""
    return Content(one_line(text))
