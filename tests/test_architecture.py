"""The dependency rules of ARCHITECTURE.md, as import-linter contracts (``[tool.importlinter]`` in pyproject.toml).

import-linter reads every import statement, also those inside functions, so a lower layer that imports a higher
one lazily is caught too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([str(lint), "--no-cache"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_no_module_imports_another_modules_private_names() -> None:
    """A name with a leading underscore is its module's own: another module that needs it gets a public,
    documented name instead (``from x import _helper`` couples the two behind the reader's back)."""
    import ast

    offenders = []
    for package in ("trainer", "embedded_server", "desktop_app"):
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
                    "trainer", "embedded_server", "desktop_app"
                ):
                    private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                    offenders += [f"{path.relative_to(REPO_ROOT)}: from {node.module} import {n}" for n in private]
    assert not offenders, offenders
