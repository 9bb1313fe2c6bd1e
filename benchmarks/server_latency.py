"""Latency of ``POST /start_training`` against a real ``candlecast serve`` (goal: median <= 20 ms).

Two paths are timed from a client in this process (requests, keep-alive session):
- **queued**: one long job occupies the only worker slot, then ``--queued`` requests each create a job, write its
  folder and config, store it and publish two events (the common path of a busy server);
- **start now**: ``--starts`` requests that each find the slot free, so the request also spawns the worker
  process (``expected_pid``); each job is stopped before the next request.

Run: ``.venv/bin/python benchmarks/server_latency.py [--queued 200] [--starts 5]``. Prints median / p95 in ms
and the ratio to the goal. Figures go in ``docs/benchmarks.md`` ("Server").
"""

from __future__ import annotations

import argparse
import statistics
import time

import requests
from _serve import serve

GOAL_MS = 20.0
LONG_JOB = {"epochs": 1000, "cv_folds": 2, "lookback": 8}


def timed_post(session: requests.Session, url: str, body: dict) -> tuple[float, dict]:
    start = time.perf_counter()
    resp = session.post(url + "/start_training", json=body, timeout=30)
    elapsed = (time.perf_counter() - start) * 1000
    resp.raise_for_status()
    return elapsed, resp.json()


def wait_idle(session: requests.Session, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while session.get(url + "/", timeout=10).json()["jobs"]["running"] and time.monotonic() < deadline:
        time.sleep(0.05)


def report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    median, p95 = statistics.median(ordered), ordered[max(0, round(0.95 * len(ordered)) - 1)]
    print(f"{name:10s} n={len(samples):4d}  median {median:6.2f} ms  p95 {p95:6.2f} ms  max {ordered[-1]:6.2f} ms  "
          f"median/goal {median / GOAL_MS:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queued", type=int, default=200)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    with serve(max_concurrent_jobs=1, stop_grace_s=1) as (_, url, _home), requests.Session() as session:
        session.get(url + "/", timeout=10)  # open the keep-alive connection
        starts = []
        for _ in range(args.starts):
            elapsed, body = timed_post(session, url, LONG_JOB)
            assert body["expected_pid"], body
            starts.append(elapsed)
            session.post(f"{url}/jobs/{body['job_id']}/stop", timeout=10)
            wait_idle(session, url)
        timed_post(session, url, LONG_JOB)  # occupies the slot
        queued = [timed_post(session, url, {"epochs": 1})[0] for _ in range(args.queued)]
    print(f"POST /start_training latency (goal: median <= {GOAL_MS:.0f} ms)")
    report("queued", queued)
    report("start now", starts)


if __name__ == "__main__":
    main()
