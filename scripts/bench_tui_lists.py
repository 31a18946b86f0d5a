"""bench_tui.py's Backups-tab case: the longest frame gap while a list of many backups shows.

One real dump of a small database (one table), copied to `count` backups with other names, ids
and times (each copy is its archive and its manifest: the catalog reads every manifest), under a
backups root of its own (another PGBACKUP_TUI_HOME). It runs in a process of its own, so that the
dumps measured before (their objects, their memory) do not weigh on its garbage collections.
The app is started with two servers, an unreachable one first (the cursor starts there: nothing
to list), the copies are made while it runs (so that no summary is kept yet), then a 10 ms timer
records the gaps between its ticks while the cursor moves to the sandbox server and the tab lists
its backups: read cold (every manifest parsed in the worker), then again warm (summaries kept),
then while the next page of rows is shown.

    .venv/bin/python scripts/bench_tui_lists.py DSN SOCKET_DIR PORT USER COUNT   (prints JSON)
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # uiutil: the Pilot tests' key helpers

from pgbackup_tui.core.server_profile import ServerProfile  # noqa: E402
from pgbackup_tui.core.paths import HOME_ENV  # noqa: E402
from pgbackup_tui.core.sandbox import Sandbox  # noqa: E402

GAP_TIMER_S = 0.01


def backups_list(sandbox: Sandbox, count: int) -> dict[str, float]:
    """Frame gaps (ms) while the Backups tab lists `count` backups of the sandbox: in a child process."""
    if "small" not in sandbox.psql("SELECT datname FROM pg_database").split():
        sandbox.create_database("small")
        sandbox.psql("CREATE TABLE one (id int); INSERT INTO one VALUES (1)", "small")
    child = subprocess.run([sys.executable, __file__, sandbox.dsn("small"), str(sandbox.socket_dir), str(sandbox.port),
                            sandbox.superuser, str(count)], capture_output=True, text=True, check=False, timeout=1800)
    if child.returncode != 0:
        raise RuntimeError(f"the Backups-tab case failed: {child.stderr[-2000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


async def longest_gap(app, action: Callable[[], Awaitable[None]], settle_s: float = 0.5) -> float:
    """The longest interval (ms) between the ticks of a 10 ms timer while `action` runs, and settle_s after."""
    ticks: list[float] = []
    timer = app.set_interval(GAP_TIMER_S, lambda: ticks.append(time.perf_counter()))
    await asyncio.sleep(0.3)
    started = time.perf_counter()
    await action()
    await asyncio.sleep(settle_s)
    timer.stop()
    ticks = [tick for tick in ticks if tick >= started - GAP_TIMER_S]
    return 1000 * max((later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False)), default=float("nan"))


def copy_backup(archive: Path, count: int) -> None:
    """`count` - 1 copies of `archive` and its manifest beside it, each with its own name, id and time."""
    manifest_of = lambda path: path.with_name(path.name + ".manifest.json")  # noqa: E731
    manifest = json.loads(manifest_of(archive).read_text())
    for number in range(count - 1):
        copy = archive.with_name(f"copy-{number:05}{archive.suffix}")
        shutil.copyfile(archive, copy)
        manifest.update(id=f"{number:08x}", finished_at=f"2030-01-{1 + number // 1440:02}T{number // 60 % 24:02}:"
                                                        f"{number % 60:02}:00+00:00")
        manifest_of(copy).write_text(json.dumps(manifest))


async def measure(dsn: str, sandbox_profile: ServerProfile, count: int) -> dict[str, float]:
    from textual.widgets import DataTable
    from uiutil import move_to, settle, write_config

    from pgbackup_tui.core.connect import target_from_dsn
    from pgbackup_tui.core.dump import DumpJob
    from pgbackup_tui.core.plans import DumpPlan
    from pgbackup_tui.ui.app import PgBackupApp
    from pgbackup_tui.ui.widgets.backups_pane import BackupsPane
    from pgbackup_tui.ui.widgets.server_tree import ServerTree

    figures: dict[str, float] = {}
    result = await DumpJob(DumpPlan(target=target_from_dsn(dsn, label="sandbox"), dbname="small",
                                    format="custom")).run()
    assert result.output_path is not None, result.message
    write_config(ServerProfile(name="aaa-unreachable", host="/nonexistent", port=5432, user="nobody"), sandbox_profile)
    app = PgBackupApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("3")  # the Backups tab
        await settle(pilot)
        started = time.perf_counter()
        copy_backup(result.output_path, count)
        figures["build_s"] = time.perf_counter() - started
        tree, pane = app.query_one(ServerTree), app.query_one(BackupsPane)
        table = pane.query_one(DataTable)

        async def show(which: str) -> None:
            await move_to(pilot, tree, lambda text: text.startswith("sandbox"))
            began = time.perf_counter()
            while len(pane.rows) < count or not table.row_count:
                await asyncio.sleep(0.01)
            figures[f"{which}_listed_s"] = time.perf_counter() - began

        figures["cold_gap_ms"] = await longest_gap(app, lambda: show("cold"))
        await move_to(pilot, tree, lambda text: text.startswith("aaa"))
        await settle(pilot)
        figures["warm_gap_ms"] = await longest_gap(app, lambda: show("warm"))
        figures["rows_shown"] = table.row_count

        async def next_page() -> None:
            table.focus()
            await pilot.press("ctrl+end", "enter")

        figures["next_page_gap_ms"] = await longest_gap(app, next_page)
        figures["rows_shown_after"] = table.row_count
    return figures


def main() -> int:
    dsn, socket_dir, port, user, count = sys.argv[1:6]
    with tempfile.TemporaryDirectory(prefix="bench-tui-backups-") as home:
        os.environ[HOME_ENV] = home
        profile = ServerProfile(name="sandbox", host=socket_dir, port=int(port), user=user)
        print(json.dumps(asyncio.run(measure(dsn, profile, int(count)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
