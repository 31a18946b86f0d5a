"""A schedule's hooks, run as real shell commands (core/notify.run_hook)."""

from __future__ import annotations

import time
from pathlib import Path

from pgbackup_tui.core.notify import Outcome, run_hook


def test_a_hook_that_leaves_a_process_in_the_background_ends_when_its_shell_does(tmp_path):
    """The run waited for the background process's end of the pipes until the 120 s timeout, then
    said the hook had been stopped, when it had ended at once (QA)."""
    started = time.monotonic()
    said = run_hook(f"sleep 30 & echo $! > {tmp_path / 'pid'}; echo started", Outcome(schedule="s", status="succeeded"))
    assert said is None and time.monotonic() - started < 10
    assert (tmp_path / "pid").read_text().strip().isdigit()


def test_a_failing_hook_says_its_last_line(tmp_path):
    said = run_hook("echo first; echo 'the last word' >&2; exit 3", Outcome(schedule="s", status="failed"))
    assert said == "the hook exited 3: the last word"


def test_a_hook_gets_its_own_variables_and_none_of_our_secrets(tmp_path, monkeypatch):
    """PGPASSWORD (the run's password, a prompt's passed on to `run`) and the notification URLs
    given by environment reached every hook (QA)."""
    monkeypatch.setenv("PGPASSWORD", "s3cret-pw")
    monkeypatch.setenv("PGBACKUP_TUI_NOTIFY_OPS", "json://user:TOKEN123@127.0.0.1/hook")
    out = tmp_path / "env.txt"
    said = run_hook(f"env > {out}", Outcome(schedule="nightly", status="failed", error="boom", job_id="j1"))
    assert said is None
    seen = dict(line.split("=", 1) for line in Path(out).read_text().splitlines() if "=" in line)
    assert "PGPASSWORD" not in seen and not any(k.startswith("PGBACKUP_TUI_NOTIFY_") for k in seen)
    assert "s3cret-pw" not in out.read_text() and "TOKEN123" not in out.read_text()
    assert (seen["PGBACKUP_TUI_SCHEDULE"], seen["PGBACKUP_TUI_STATUS"], seen["PGBACKUP_TUI_ERROR"]) == (
        "nightly", "failed", "boom")
