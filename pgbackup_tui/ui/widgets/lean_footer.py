"""The app's Footer: rebuilt only when the keys it shows change, without the leak of Textual issue
#6666 (open; Textual 8.2.8 has it).

Footer builds its keys again each time the screen's bindings are updated (a row highlighted, a job
selected or finished, the focus moving), whether or not any key it shows changed. A rebuild
removes and mounts every key: a full relayout of the screen (measured: most of the 29 relayouts
of 3 short dumps in scripts/bench_tui.py --profile). Here the keys shown (key, label, action,
enabled, tooltip) are compared with the ones on screen first, and the footer is left as it is
when they are the same. When only keys' enabled states changed (a job starts: its cancel key lights
up; it ends: the key greys out), the keys on screen are greyed out or lit in place: a repaint, where
a rebuild cost two relayouts (the keys mounted, then measured).

Each FooterKey it makes watches the footer's `compact` (data_bind), and that watcher entry, which
holds the key, stays on the footer until `compact` changes, which it never does here: measured,
81 FooterKeys were kept per finished dump of the benchmark (scripts/bench_tui.py), each with its
styles and render caches (its RSS per finished dump went from +5.2 to +3.6 MB without them). Here
the entries of closed keys are dropped after each rebuild, as Textual itself does when the watched
value changes.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import cast

from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class LeanFooter(Footer):
    """A Footer rebuilt only when its keys change, that lets go of the keys it replaced."""

    rebuilds = 0  # how many times its keys were built again (each one a relayout of the screen)
    greyed_in_place = 0  # how many times only keys' enabled states changed (a repaint)
    _shown: Hashable = None  # what the keys on screen were built from

    async def recompose(self) -> None:
        shown = self.keys_to_show()
        if shown == self._shown and self.children:
            return  # the same keys: nothing to rebuild
        if self.children and same_keys_but_enabled(shown, self._shown):
            self._shown = shown
            self.greyed_in_place += 1
            self._set_enabled(shown)
            return
        self._shown = shown
        self.rebuilds += 1
        await super().recompose()
        drop_closed_watchers(self)

    def keys_to_show(self) -> Hashable:
        """What Footer.compose builds its keys from (its order too), as a value to compare."""
        if not self._bindings_ready:
            return None
        palette = self.app.COMMAND_PALETTE_BINDING
        keys = tuple(
            (key, binding.key_display, binding.description, binding.action, binding.group, enabled, tooltip)
            for key, (_node, binding, enabled, tooltip) in self.screen.active_bindings.items()
            if binding.show or key == palette)
        return keys, self.compact, self.show_command_palette


    def _set_enabled(self, shown: Hashable) -> None:
        """Grey out or light the keys on screen as `shown` says (Footer.compose gives a key the
        enabled state of the first binding shown for its action)."""
        keys, _compact, _palette = cast("tuple[tuple[tuple[object, ...], ...], object, object]", shown)
        enabled: dict[object, bool] = {}
        for key in keys:
            enabled.setdefault(key[ACTION], bool(key[ENABLED]))
        for footer_key in self.query(FooterKey):
            disabled = not enabled.get(footer_key.action, not footer_key._disabled)
            if footer_key._disabled != disabled:
                footer_key._disabled = disabled  # what a click reads (a bell when greyed out)
                footer_key.set_class(disabled, "-disabled")  # dim text: a repaint of the key, no layout


ACTION, ENABLED = 3, 5  # where keys_to_show puts a key's action and its enabled state


def same_keys_but_enabled(shown: Hashable, before: Hashable) -> bool:
    """Whether two keys_to_show() values differ at most in keys' enabled states."""
    if not isinstance(shown, tuple) or not isinstance(before, tuple):
        return False
    keys, *rest = shown
    old_keys, *old_rest = before
    if rest != old_rest or len(keys) != len(old_keys):
        return False
    return all(key[:ENABLED] + key[ENABLED + 1:] == old[:ENABLED] + old[ENABLED + 1:]
               for key, old in zip(keys, old_keys, strict=True))


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
