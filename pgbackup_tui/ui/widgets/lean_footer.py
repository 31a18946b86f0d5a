"""The app's Footer, without the leak of Textual issue #6666 (open; Textual 8.2.8 has it).

Footer builds its keys again each time the bindings change (a row highlighted, a job finished).
Each FooterKey it makes watches the footer's `compact` (data_bind), and that watcher entry, which
holds the key, stays on the footer until `compact` changes, which it never does here: measured,
81 FooterKeys were kept per finished dump of the benchmark (scripts/bench_tui.py), each with its
styles and render caches (its RSS per finished dump went from +5.2 to +3.6 MB without them). Here
the entries of closed keys are dropped after each rebuild, as Textual itself does when the watched
value changes.
"""

from __future__ import annotations

from textual.widgets import Footer


class LeanFooter(Footer):
    """A Footer that lets go of the keys it replaced."""

    async def recompose(self) -> None:
        await super().recompose()
        drop_closed_watchers(self)


def drop_closed_watchers(node: object) -> int:
    """Drop the watch/data_bind entries of closed widgets from `node`; how many were dropped."""
    watchers = getattr(node, "__watchers", None)  # where Textual keeps them (reactive.py `_watch`)
    dropped = 0
    if isinstance(watchers, dict):
        for entries in watchers.values():
            kept = [(watcher, callback) for watcher, callback in entries if not watcher._closing]
            dropped += len(entries) - len(kept)
            entries[:] = kept
    return dropped
