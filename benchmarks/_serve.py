"""Shared by the server benchmarks: run ``candlecast serve --port 0`` in a subprocess on a temp CANDLECAST_HOME."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from trainer.processes import end_process

REPO_ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def serve(**settings: object) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """Yield ``(process, base url, home)`` of a fresh server with ``settings`` in its config.json; SIGTERM after."""
    with tempfile.TemporaryDirectory(prefix="candlecast-bench-") as tmp:
        home = Path(tmp)
        (home / "config").mkdir()
        (home / "config" / "config.json").write_text(json.dumps({"schema_version": 2, **settings}))
        out = home / "serve.out"
        env = dict(os.environ, CANDLECAST_HOME=str(home), PYTHONUNBUFFERED="1")
        with open(out, "wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "desktop_app.cli", "serve", "--port", "0"], stdout=sink, stderr=subprocess.STDOUT,
                cwd=REPO_ROOT, env=env,
            )  # fmt: skip
        try:
            url = None
            for _ in range(600):
                found = re.search(r"http://127\.0\.0\.1:\d+", out.read_text(errors="replace"))
                if found and requests.get(found.group(0) + "/", timeout=5).ok:
                    url = found.group(0)
                    break
                if proc.poll() is not None:
                    raise RuntimeError(out.read_text())
                time.sleep(0.1)
            if url is None:
                raise RuntimeError("the server did not start: " + out.read_text())
            yield proc, url, home
        finally:
            end_process(proc)


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of ``pid`` from ``/proc/<pid>/status`` (Linux), in MiB; ``VmHWM`` gives the peak."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)
