"""A follower's log lines, one LogLine each or a chunk in one LogLines (the TUI's way): the same
lines, levels and order, a partial line held back until its end is written (issue 15, point 3)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from pgbackup_tui.core import job_follow, job_store
from pgbackup_tui.core.job_follow import JobFollower, LogLines
from pgbackup_tui.core.jobs import JobEvent, LogLine, classify_line

STAMP = "2026-01-01T00:00:00Z "


def follower(folder: Path, log: Path) -> JobFollower:
    record = job_store.JobRecord(id="j1", folder=folder, spec={"kind": "dump", "title": "t"},
                                 state={"state": "running", "log_path": str(log)})
    return JobFollower(record)


def test_batched_and_per_line_listeners_get_the_same_lines_and_levels(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    texts = ['$ pg_dump --verbose -d "shop"', 'pg_dump: dumping contents of table "public.error_log"',
             "pg_dump: warning: could not read it", "pg_dump: error: query failed: ERROR:  no", "FATAL: gone",
             "", "déjà vu: ünïcode ✓", "pg_dump: reading tables"]
    log.write_bytes("".join(f"{STAMP}{text}\n" for text in texts).encode() + f"{STAMP}half a li".encode())
    job = follower(tmp_path, log)
    single: list[tuple[str, str]] = []
    batches: list[LogLines] = []

    def one(event: JobEvent) -> None:
        if isinstance(event, LogLine):
            single.append((event.text, event.level))

    def many(event: JobEvent | LogLines) -> None:
        if isinstance(event, LogLines):
            batches.append(event)

    job.subscribe(one)
    job.subscribe_batched(many)
    while job.read_log_chunk():
        pass
    expected = [(text, "command" if text.startswith("$ ") else classify_line(text)) for text in texts]
    assert single == expected
    assert [line for batch in batches for line in batch.lines] == expected
    assert len(batches) == 1 and batches[0].job_id == "j1"
    assert [level for _, level in expected][1:5] == ["info", "warning", "error", "error"]

    with open(log, "ab") as handle:  # the partial line's end, then lines with nothing to look into
        handle.write(f"ne\n{STAMP}pg_dump: reading indexes\n".encode())
    job.unsubscribe(one)
    while job.read_log_chunk():
        pass
    assert batches[-1].lines == (("half a line", "info"), ("pg_dump: reading indexes", "info"))
    assert len(single) == len(texts)  # unsubscribed: nothing more


def test_an_unchanged_state_is_not_parsed_again_but_is_read_within_a_second(tmp_path: Path, monkeypatch) -> None:
    """poll() parses state.json only when its inode, mtime or size changed (the runner writes it at
    most 4 times a second, a front polls 10), and anyway every STATE_REREAD_S, so that a change
    that kept all three (two writes between polls, a reused inode) shows within that time."""
    now = [1000.0]
    monkeypatch.setattr(job_follow.time, "monotonic", lambda: now[0])  # the follower's clock, moved by hand
    log = tmp_path / "job.log"
    log.write_bytes(b"")
    state_file = tmp_path / job_store.STATE
    job_store.write_json(state_file, {"state": "running", "log_path": str(log), "title": "first"})
    job = follower(tmp_path, log)
    job.poll()
    assert job._state["title"] == "first"
    stat = state_file.stat()
    with open(state_file, "r+b") as handle:  # the same inode and size, then its mtime put back
        text = handle.read().replace(b'"first"', b'"other"')
        handle.seek(0)
        handle.write(text)
    os.utime(state_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    now[0] += job_follow.STATE_REREAD_S / 2
    job.poll()
    assert job._state["title"] == "first", "an unchanged look was parsed again"
    now[0] += job_follow.STATE_REREAD_S
    job.poll()
    assert job._state["title"] == "other", "not read again after STATE_REREAD_S"
    job_store.write_json(state_file, {"state": "succeeded", "log_path": str(log), "title": "done"})
    job.poll()  # a new file (the runner's way): read at once
    assert job._state["title"] == "done"


def test_a_job_that_ended_before_the_first_poll_says_its_progress_before_its_last_lines(tmp_path: Path) -> None:
    """The progress was emitted after the log lines read in the same poll: a dump that failed before
    the front first looked (a full disk, in under a second) ended `--progress plain` with its first
    snapshot ("progress: 0% schema 0 B/104.5 MB 0/17 tables"), below the line saying how it ended (QA)."""
    from pgbackup_tui.core.jobs import ProgressUpdated
    from pgbackup_tui.core.progress import ProgressSnapshot

    log = tmp_path / "job.log"
    log.write_text(f"{STAMP}pg_dump: error: could not write to output file: No space left on device\n"
                   f"{STAMP}pg_dump failed (exit 1): the disk is full\n")
    snapshot = ProgressSnapshot(elapsed_s=0.1, phase="schema", percent=0.0, bytes_done=0, bytes_total=10,
                                rows_done=0, tables_done=0, tables_total=3)
    job_store.write_json(tmp_path / job_store.STATE, {
        "state": "failed", "exit_code": 1, "message": "pg_dump failed (exit 1): the disk is full",
        "log_path": str(log), "progress": dataclasses.asdict(snapshot)})
    job = follower(tmp_path, log)
    said: list[str] = []
    job.subscribe(lambda event: said.append(
        "progress" if isinstance(event, ProgressUpdated) else event.text if isinstance(event, LogLine) else ""))
    job.poll()
    assert [s for s in said if s][-1] == "pg_dump failed (exit 1): the disk is full", said
    assert "progress" in said, said
