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
