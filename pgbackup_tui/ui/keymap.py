"""The user's keymap (`[keymap]` in config.toml) as the app's texts need it.

Textual applies a keymap to the bindings (footer, help list, keys) but not to the sentences
that name a key ("space checks a table", "press a to add one"): those ask `key_name` here, so a
remapped key is named as remapped. An id that no binding has would be ignored by Textual without
a word: `unknown_ids` finds them so that the app can say which.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping

from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode


def _subclasses(cls: type) -> Iterator[type]:
    subclasses: list[type] = cls.__subclasses__()
    for sub in subclasses:
        yield sub
        yield from _subclasses(sub)


def known_bindings() -> dict[str, Binding]:
    """Every binding with an id, of every widget, screen and app class loaded (ours and Textual's)."""
    found: dict[str, Binding] = {}
    for cls in [DOMNode, *_subclasses(DOMNode)]:
        for binding in cls.__dict__.get("BINDINGS", ()):
            if isinstance(binding, Binding) and binding.id:
                found.setdefault(binding.id, binding)
    return found


def unknown_ids(keymap: Mapping[str, str]) -> list[str]:
    """The ids in `keymap` that no binding has, sorted."""
    known = known_bindings()
    return sorted(binding_id for binding_id in keymap if binding_id not in known)


def describe_unknown(unknown: list[str]) -> str:
    """One line naming the ids that were ignored, with the nearest known id for a typo."""
    known = sorted(known_bindings())
    parts = []
    for binding_id in unknown:
        close = difflib.get_close_matches(binding_id, known, n=1)
        parts.append(f'"{binding_id}"' + (f' (did you mean "{close[0]}"?)' if close else ""))
    noun = "id" if len(unknown) == 1 else "ids"
    return f"config.toml [keymap]: no key has the {noun} {', '.join(parts)}; ignored"


def key_name(app: App, binding_id: str, keymap: Mapping[str, str] | None = None) -> str:
    """How the footer names the key of `binding_id` now: remapped (first key) or the default."""
    binding = known_bindings().get(binding_id)
    if binding is None:
        return binding_id
    keymap = keymap if keymap is not None else getattr(app, "user_keymap", {})
    keys = keymap.get(binding_id)
    if keys:
        binding = binding.with_key(key=keys.split(",")[0].strip(), key_display=None)
    return app.get_key_display(Binding(binding.key.split(",")[0].strip(), "", key_display=binding.key_display))
