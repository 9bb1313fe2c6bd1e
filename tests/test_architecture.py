"""The dependency rules of ARCHITECTURE.md, checked on a fresh interpreter for each part.

torch is imported only in the worker; the light trainer modules import neither torch nor numpy/pandas; the server
never imports the GUI; the controller and the API client import neither Dear PyGui nor server code.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "numpy", "pandas", "dearpygui", "embedded_server", "desktop_app")

CASES = {
    "light trainer modules": (
        "import trainer.config, trainer.events, trainer.paths, trainer.atomic, trainer.data.catalog, trainer.scoreboard",
        set(),
    ),
    "server, serving /datasets": (
        "import embedded_server.serve, embedded_server.ws; from embedded_server.app import create_app; "
        "create_app().test_client().get('/datasets')",
        {"embedded_server"},
    ),
    "controller": ("import desktop_app.controller", {"desktop_app"}),
    "API client": ("import desktop_app.api_client", {"desktop_app"}),
    "command line parser": ("import desktop_app.cli; desktop_app.cli.build_parser()", {"desktop_app"}),
}


@pytest.mark.parametrize("part", CASES)
def test_each_part_imports_only_what_it_may(part: str) -> None:
    code, allowed = CASES[part]
    probe = f"{code}; import sys, json; print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert set(json.loads(out.stdout.splitlines()[-1])) <= allowed, out.stderr
