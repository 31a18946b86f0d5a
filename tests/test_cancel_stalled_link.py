"""A cancel on a link that stalled (tests/throttle_proxy.py holds every byte): the job ends in
seconds. pg_restore --jobs' leader left at its SIGTERM while its workers, blocked on the link,
lived on in its process group holding the job's stderr open; the escalation stopped at the
leader's end, so the job (and `jobs cancel`) waited a minute and more for them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from conftest import SAMPLE_DB
from pgbackup_tui.core.connect import target_from_dsn
from pgbackup_tui.core.dump import DumpJob
from pgbackup_tui.core.jobs import Job, JobState, LogLine
from pgbackup_tui.core.plans import DumpPlan, RestorePlan
from pgbackup_tui.core.restore import RestoreJob
from throttle_proxy import ThrottleProxy


def restoring(name: str) -> list[str]:
    """pg_restore processes alive (not zombies) restoring into database `name`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, NotADirectoryError):
            continue
        if "pg_restore" in stat and stat[stat.rfind(")") + 2] != "Z" and f"dbname={name}" in cmdline:
            found.append(cmdline)
    return found


async def test_a_parallel_restore_cancelled_on_a_stalled_link_ends_in_seconds(sandbox, home, fresh_db_name,
                                                                               tmp_path, monkeypatch):
    monkeypatch.setattr(Job, "CANCEL_GRACE_S", 1.0)
    dumped = await DumpJob(DumpPlan(target=target_from_dsn(sandbox.dsn(), label="sandbox"), dbname=SAMPLE_DB,
                                    format="custom", output=tmp_path / "shop.dump")).run()
    assert dumped.state == JobState.SUCCEEDED and dumped.output_path is not None, dumped.message
    with ThrottleProxy(sandbox.port, 4e6, lifetime_s=120) as proxy:
        target = target_from_dsn(f"host=127.0.0.1 port={proxy.port} user={sandbox.superuser} dbname=postgres "
                                 "connect_timeout=2", label="stalled").with_password(sandbox.password)
        job = RestoreJob(RestorePlan(archive=dumped.output_path, target=target, dbname=fresh_db_name, create=True,
                                     jobs=2))
        data = asyncio.Event()
        job.subscribe(lambda e: data.set() if isinstance(e, LogLine) and "TABLE DATA" in e.text else None)
        running = asyncio.ensure_future(job.run())
        await asyncio.wait_for(data.wait(), 60)
        while sum(c.bytes_up for c in proxy.connections) < 2_000_000:  # deep in the big table's COPY
            await asyncio.sleep(0.05)
        proxy.pause()  # every byte either way is held from now on: a link that stalled
        await asyncio.sleep(1)
        job.cancel()
        asked = time.monotonic()
        result = await asyncio.wait_for(running, 120)
        took = time.monotonic() - asked
        assert result.state == JobState.CANCELLED, result.message
        assert not restoring(fresh_db_name), "a pg_restore worker outlived the job"
        # SIGINT, SIGTERM and SIGKILL a second apart, then the drop's 2 s connect timeout on the stalled link.
        assert took < 15, f"the cancel took {took:.0f} s"
        proxy.resume()
