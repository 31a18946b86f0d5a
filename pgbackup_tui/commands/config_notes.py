"""What the commands that change config.toml say about it once written."""

from __future__ import annotations

import sys
from pathlib import Path

from ..core.config import Config
from ..core.identifiers import printable


def written(config: Config) -> Path:
    """Where `config` was written (save_config), after saying on stderr where a DBA's comments in
    the file it replaced were kept."""
    note = config.comments_note()
    if note:
        print(printable(f"pgbackup-tui: {note}"), file=sys.stderr)
    assert config.path is not None  # set by save_config
    return config.path
