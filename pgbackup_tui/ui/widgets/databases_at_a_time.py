"""The "Databases at a time" field of the dialogs that run a cluster set's databases side by side
(dumpall_dialog.py's set, cluster_restore_dialog.py's): its label, its input and what a count
below 1 says, in one place. Written in each, the words had only to drift apart.

The dialogs say it in their own words: plan.validate would say --jobs, a flag they have not.
"""

from __future__ import annotations

from collections.abc import Iterator

from textual.widget import Widget
from textual.widgets import Input, Label

LABEL = "Databases at a time"
TOO_FEW = f"{LABEL}: 1 or more"


def databases_at_a_time(value: str, input_id: str, *, gap: str = " ") -> Iterator[Widget]:
    """The label (after `gap`, the space that parts it from the field before it on its row) and
    the input, for a dialog's compose to yield from."""
    yield Label(f"{gap}{LABEL}", classes="field-label")
    yield Input(value=value, restrict=r"[0-9]*", max_length=2, compact=True, id=input_id)


def count_of(field: Input) -> int:
    """The count typed in `field`; 1 when it is empty (a count below 1 is TOO_FEW's)."""
    return int(field.value.strip() or "1")
