"""The engine never imports the UI: `pgbackup_tui.core` must load without textual or ui/.

Checked two ways: by importing every core module in a fresh interpreter and looking at
sys.modules (catches indirect imports), and by reading every core file's import statements
(catches imports hidden in functions that the first check would not execute).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pgbackup_tui.core

CORE_DIR = Path(pgbackup_tui.core.__file__).parent
FORBIDDEN = ("textual", "pgbackup_tui.ui")

# Imports every module under pgbackup_tui.core, plus any extra modules given as arguments, then
# prints the modules it imported and the forbidden ones that got loaded.
PROBE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import pgbackup_tui.core as core
    imported = []
    for info in pkgutil.walk_packages(core.__path__, core.__name__ + "."):
        importlib.import_module(info.name)
        imported.append(info.name)
    for extra in sys.argv[1:]:
        importlib.import_module(extra)
    forbidden = sorted(name for name in sys.modules
                       if any(name == f or name.startswith(f + ".") for f in %r))
    print(json.dumps({"imported": imported, "forbidden": forbidden}))
    """
) % (FORBIDDEN,)


def probe(*extra_modules: str) -> dict[str, list[str]]:
    result = subprocess.run([sys.executable, "-c", PROBE, *extra_modules], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_core_imports_neither_textual_nor_ui() -> None:
    report = probe()
    expected = {f"pgbackup_tui.core.{path.stem}" for path in CORE_DIR.glob("*.py") if path.stem != "__init__"}
    assert expected <= set(report["imported"])  # the walk really covered every module
    assert {"pgbackup_tui.core.config", "pgbackup_tui.core.toc", "pgbackup_tui.core.jobs"} <= expected
    assert report["forbidden"] == []


def test_probe_detects_a_forbidden_import() -> None:
    """Control: the same probe does see textual once something imports it."""
    assert "textual" in probe("textual")["forbidden"]


def _imported_modules(path: Path) -> list[str]:
    """Absolute names of everything `path` imports (relative imports resolved against core)."""
    package = "pgbackup_tui.core"
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.append(module)
            names.extend(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_no_core_file_imports_textual_or_ui() -> None:
    files = sorted(CORE_DIR.rglob("*.py"))
    assert len(files) > 10
    offenders = [
        f"{path.relative_to(CORE_DIR)}: {name}"
        for path in files
        for name in _imported_modules(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    ]
    assert offenders == []


def test_import_scanner_resolves_relative_imports(tmp_path: Path) -> None:
    """Control: `from ..ui import x` and `import textual` in a core file would be caught."""
    sample = tmp_path / "sample.py"
    sample.write_text("from ..ui import app\nimport textual.widgets\nfrom .config import load_config\n")
    names = _imported_modules(sample)
    assert "pgbackup_tui.ui.app" in names
    assert "textual.widgets" in names
    assert "pgbackup_tui.core.config" in names
