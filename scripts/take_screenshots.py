"""Take the README's screenshots from the real app on a real sandbox cluster (run by hand).

    make screenshots        # or: .venv/bin/python scripts/take_screenshots.py [--rows N]

Writes screenshots/main.svg, backup_dialog.svg, running_job.svg, backups.svg and restore_dialog.svg. The app
is driven by keys through Textual's Pilot, as a user would drive it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "screenshots"
SIZE = (110, 32)


async def wait_until(pilot, condition, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("the app never reached the expected state")
        await pilot.pause(0.1)


async def cursor_to(pilot, tree, wanted: str) -> None:
    """Move the tree cursor to the first line whose text contains `wanted`."""
    tree.focus()
    await pilot.press("home")
    for _ in range(60):
        node = tree.cursor_node
        if node is not None and wanted in tree.describe(node.data).plain:
            return
        await pilot.press("down")
    raise RuntimeError(f"no tree line contains {wanted!r}")


async def open_node(pilot, tree, wanted: str) -> None:
    await cursor_to(pilot, tree, wanted)
    await pilot.press("enter")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.3)


async def shoot(rows: int) -> None:
    from pgbackup_tui.core.config import Config, save_config
    from pgbackup_tui.core.server_profile import ServerProfile
    from pgbackup_tui.core.sandbox import Sandbox
    from pgbackup_tui.ui.app import PgBackupApp

    OUT.mkdir(exist_ok=True)
    with Sandbox() as sandbox:
        print(f"loading the sample ({rows} rows)...", file=sys.stderr)
        sandbox.load_sample("shop", wide_rows=rows)
        home = Path(tempfile.mkdtemp(prefix="pgbackup-shots-"))
        os.environ["PGBACKUP_TUI_HOME"] = str(home)
        save_config(Config(servers={"demo": ServerProfile(name="demo", host=str(sandbox.socket_dir),
                                                          port=sandbox.port, user=sandbox.superuser)}))
        app = PgBackupApp()
        async with app.run_test(size=SIZE) as pilot:
            tree = app.server_tree
            await app.workers.wait_for_complete()
            await pilot.pause(0.5)
            await open_node(pilot, tree, "demo")
            await open_node(pilot, tree, "shop")
            await open_node(pilot, tree, "Sales & Ops")
            await cursor_to(pilot, tree, "Order Items")
            await pilot.press("space")
            await cursor_to(pilot, tree, "customers")
            await pilot.press("space")
            await pilot.pause(0.3)
            app.save_screenshot("main.svg", str(OUT))

            await pilot.press("b")
            await wait_until(pilot, lambda: "--exclude-table" in _screen_text(app))
            await pilot.pause(0.3)
            app.save_screenshot("backup_dialog.svg", str(OUT))
            await pilot.press("escape")
            await pilot.pause(0.2)

            # A whole-database backup, caught while it copies the big table.
            await cursor_to(pilot, tree, "Sales & Ops")
            await pilot.press("space")  # clear the selection: back up the focused database
            await pilot.press("space")
            await cursor_to(pilot, tree, "shop")
            await pilot.press("b")
            await wait_until(pilot, lambda: "pg_dump" in _screen_text(app))
            await pilot.press("enter")
            await wait_until(pilot, lambda: bool(app.jobs))
            job = app.jobs[-1]
            await wait_until(pilot, lambda: any("public.events" in text for text, _ in app.jobs_pane.log_lines(job))
                             or job.state.is_final, timeout=120)
            await pilot.pause(1.0)
            app.save_screenshot("running_job.svg", str(OUT))
            if job.state.is_final:
                print("warning: the job finished before the shot; use more --rows", file=sys.stderr)
            await wait_until(pilot, lambda: job.state.is_final, timeout=300)
            await pilot.pause(0.5)

            await pilot.press("3")  # Backups tab
            await pilot.pause(0.5)
            pane = app.backups_pane
            await wait_until(pilot, lambda: bool(pane.rows))
            pane.query_one("DataTable").focus()
            await pilot.pause(0.2)
            await pilot.press("v")  # verify the new backup: its badge turns to verified
            await wait_until(pilot, lambda: pane.rows[0].status == "verified", timeout=300)
            await pilot.pause(0.5)
            app.save_screenshot("backups.svg", str(OUT))
            await pilot.press("r")
            await wait_until(pilot, lambda: "_restored" in _screen_text(app))
            await pilot.pause(0.5)
            app.save_screenshot("restore_dialog.svg", str(OUT))
            await pilot.press("escape")
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('*.svg')))} in {OUT}", file=sys.stderr)


def _screen_text(app) -> str:
    """What the screen shows now, as SVG text: enough to wait for markers without spaces."""
    return app.export_screenshot()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_500_000, help="rows in the sample's wide table")
    args = parser.parse_args()
    asyncio.run(shoot(args.rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
