"""``GET /status/log_tail?n=200`` on ever bigger ``backend.log`` files (goal: <= 20 ms on 1 GiB, flat in size).

Writes logs of 1 MiB, 10 MiB, 100 MiB and 1 GiB of realistic lines into a temp ``CANDLECAST_HOME`` and times the
endpoint through the in-process app (routing, the tail read from the end, JSON). The tail seeks from the end,
so its time should not grow with the file.

Run: ``.venv/bin/python benchmarks/log_tail.py [--repeat 50] [--max-mib 1024]``. Prints the median and p95 per
size and the ratio to the goal. Figures go in ``docs/benchmarks.md`` ("Server").
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

GOAL_MS = 20.0
LINE = (
    "2024-05-01T12:00:00.123Z INFO embedded_server.worker [job=20240501-120000-abcdef] {i:09d} epoch 3/20 loss 0.9817\n"
)


def fill(path: Path, mib: int) -> None:
    """Make ``path`` exactly ``mib`` MiB of log lines (a 1 MiB block written repeatedly)."""
    block = "".join(LINE.format(i=i) for i in range(20_000)).encode()
    block = block[: block.rindex(b"\n", 0, 1024 * 1024) + 1]
    with open(path, "wb") as handle:
        written = 0
        while written + len(block) <= mib * 1024 * 1024:
            handle.write(block)
            written += len(block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--max-mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="candlecast-bench-") as home:
        os.environ["CANDLECAST_HOME"] = home
        from embedded_server.app import close_app, create_app
        from embedded_server.services import EXTENSION
        from embedded_server.settings import AppSettings

        app = create_app(settings=AppSettings(max_concurrent_jobs=0, log_level="ERROR"))
        client, path = app.test_client(), app.extensions[EXTENSION].log_path
        print(f"GET /status/log_tail?n=200 (goal: <= {GOAL_MS:.0f} ms, flat in file size)")
        for mib in [m for m in (1, 10, 100, 1024) if m <= args.max_mib]:
            fill(path, mib)
            samples = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                resp = client.get("/status/log_tail?n=200")
                samples.append((time.perf_counter() - start) * 1000)
                assert resp.status_code == 200 and resp.get_json()["count"] == 200
            samples.sort()
            median, p95 = statistics.median(samples), samples[round(0.95 * len(samples)) - 1]
            print(f"{path.stat().st_size / 2**20:7.0f} MiB  median {median:6.2f} ms  p95 {p95:6.2f} ms  "
                  f"median/goal {median / GOAL_MS:.2f}")  # fmt: skip
        close_app(app)


if __name__ == "__main__":
    main()
