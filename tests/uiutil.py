"""Helpers for the Pilot tests: drive the server tree with keys, as a user would."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot
from textual.widgets.tree import TreeNode

from pgbackup_tui.core.config import Config, save_config
from pgbackup_tui.core.server_profile import ServerProfile
from pgbackup_tui.core.sandbox import Sandbox
from pgbackup_tui.ui.widgets.server_tree import ServerTree


def socket_profile(sandbox: Sandbox, name: str = "sandbox") -> ServerProfile:
    """A profile that reaches the sandbox over its Unix socket (trusted: no password)."""
    return ServerProfile(name=name, host=str(sandbox.socket_dir), port=sandbox.port, user=sandbox.superuser)


def write_config(*profiles: ServerProfile) -> None:
    save_config(Config(servers={profile.name: profile for profile in profiles}))


def node_text(tree: ServerTree, node: TreeNode) -> str:
    """The node's line as the user reads it (check mark, name, sizes, errors)."""
    return tree.describe(node.data).plain


async def wait_until(condition: Callable[[], object], timeout: float = 60.0) -> None:
    """Let the app's event loop run until `condition()` holds; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def settle(pilot: Pilot) -> None:
    """Let workers finish and their messages land."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def move_to(pilot: Pilot, tree: ServerTree, wanted: Callable[[str], bool]) -> TreeNode:
    """Move the cursor with up/down presses to the first visible line that satisfies `wanted`."""
    tree.focus()
    lines = [tree.get_node_at_line(i) for i in range(tree.last_line + 1)]
    target = next((i for i, node in enumerate(lines) if node is not None and wanted(node_text(tree, node))), None)
    if target is None:
        raise AssertionError(f"no tree line matched; lines: {[node_text(tree, n) for n in lines if n]}")
    if tree.cursor_line < 0:
        await pilot.press("home")
    step = "down" if target > tree.cursor_line else "up"
    await pilot.press(*[step] * abs(target - tree.cursor_line))
    assert tree.cursor_line == target
    node = tree.cursor_node
    assert node is not None
    return node


async def open_line(pilot: Pilot, tree: ServerTree, wanted: Callable[[str], bool]) -> TreeNode:
    """Move to a line and open it with enter, then wait for its children to load."""
    node = await move_to(pilot, tree, wanted)
    await pilot.press("enter")
    await settle(pilot)
    return node
