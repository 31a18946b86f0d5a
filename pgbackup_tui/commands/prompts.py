"""The CLI's prompts on a terminal (a password, a notification URL): masked, and ended cleanly.

getpass leaves its prompt's line open when the input ends there (Ctrl-D, or a script whose input
ran out: EOFError) or when Ctrl-C interrupts it: the error or "cancelled" that follows would be
printed after the prompt, on the same line (and EOFError, let through, was a traceback).
"""

from __future__ import annotations

import getpass
import sys


def ask_hidden(prompt: str) -> str | None:
    """What was typed at `prompt` (not echoed), or None when the input ended there (Ctrl-D): the
    caller says what was not given, as one line. Ctrl-C raises KeyboardInterrupt as anywhere else
    (the CLI says "cancelled", exit 130), the prompt's line ended first."""
    try:
        return getpass.getpass(prompt)
    except EOFError:
        print(file=sys.stderr)
        return None
    except KeyboardInterrupt:
        print(file=sys.stderr)
        raise
