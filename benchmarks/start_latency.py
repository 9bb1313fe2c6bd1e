"""Start → confirmed (issue "Fast and light", goal 2): from ``POST /start_training`` to the worker's own
``training.started`` on the WebSocket, against a real ``candlecast serve``, with the warm spare worker
(``warm_worker: true``, the default) and without it (cold: the worker imports torch after the POST), side by side:
the two servers take turns, one tiny job each round, so both see the same machine load.

Run: ``.venv/bin/python benchmarks/start_latency.py [--jobs 5]``. Prints each median in seconds, warm / cold, and
warm against the 0.5 s goal. Figures go in ``docs/benchmarks.md`` ("Server").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time

import requests
import websocket
from _serve import serve

GOAL_S = 0.5
TINY_JOB = {"epochs": 1, "cv_folds": 1, "lookback": 8}


def wait_spare(url: str, timeout: float = 300) -> None:
    """Until the server's spare worker has finished its imports (``GET /``'s ``spare_worker.ready``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        spare = requests.get(url + "/", timeout=10).json()["spare_worker"]
        if spare is not None and spare["ready"]:
            return
        time.sleep(0.2)
    raise RuntimeError("no ready spare worker")


def one_start(url: str, warm: bool) -> float:
    """Seconds from the POST to the worker's training.started; waits for the job to finish after."""
    if warm:
        wait_spare(url)
    ws = websocket.create_connection(url.replace("http", "ws", 1) + "/ws", timeout=300)
    try:
        json.loads(ws.recv())  # hello
        started = time.perf_counter()
        job_id = requests.post(url + "/start_training", json=TINY_JOB, timeout=30).json()["job_id"]
        while True:
            event = json.loads(ws.recv())
            if event.get("job_id") == job_id and event["type"] == "training.started" and event.get("origin") == "worker":
                elapsed = time.perf_counter() - started
                break
        while not (event.get("job_id") == job_id and event["type"] == "job.status"
                   and event["status"] in ("completed", "failed", "stopped")):
            event = json.loads(ws.recv())
        return elapsed
    finally:
        ws.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5)
    args = parser.parse_args()
    cold, warm = [], []
    with contextlib.ExitStack() as stack:
        _, cold_url, _ = stack.enter_context(serve(warm_worker=False))
        _, warm_url, _ = stack.enter_context(serve(warm_worker=True))
        for round_ in range(args.jobs):
            cold.append(one_start(cold_url, warm=False))
            warm.append(one_start(warm_url, warm=True))
            print(f"job {round_ + 1}: cold {cold[-1]:.2f} s, warm {warm[-1]:.2f} s", flush=True)
    c, w = statistics.median(cold), statistics.median(warm)
    print(f"median POST -> worker training.started: cold {c:.2f} s, warm {w:.2f} s; warm / cold = {w / c:.2f}; "
          f"warm / goal {GOAL_S} s = {w / GOAL_S:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
