"""Shared fixtures. Every test runs with CANDLECAST_HOME in a temp dir: nothing touches the real user folders."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Set before any test module imports app code, and inherited by every subprocess a test starts.
os.environ["CANDLECAST_HOME"] = tempfile.mkdtemp(prefix="candlecast-test-home-")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def candlecast_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh CANDLECAST_HOME for each test (config, data and logs under it)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CANDLECAST_HOME", str(home))
    return home


# Server fixtures (tests/server_fixtures.py): make_app, app, client, live_server.
from server_fixtures import app, client, live_server, make_app  # noqa: E402,F401
