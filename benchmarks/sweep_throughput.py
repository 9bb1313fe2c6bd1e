"""Sweep throughput: trials per minute of a fixed tiny space run locally and on a two-node Ray cluster on this
machine (loopback), and the per-trial overhead of a Ray trial against a local one (the median of each trial job's
created → finished time, as a ratio). Both runs: 4 trials, 2 at once, pruning off, the same seed, each on a fresh
``candlecast serve --port 0`` with ``max_concurrent_jobs: 2`` and no warm spare.

    .venv/bin/python benchmarks/sweep_throughput.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _serve import serve  # noqa: E402
from ray_cluster import RAY_ENV, two_node_cluster  # noqa: E402

TRIALS = 4
BODY = {
    "space": {
        "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
        "distribution": {"choices": ["gaussian", "laplace"]},
    },
    "base": {"epochs": 1, "cv_folds": 2, "lookback": 8, "batch_size": 512},
    "trials": TRIALS, "parallel": 2, "pruner": "none", "seed": 1,
}


def _seconds(start: str, end: str) -> float:
    def parse(iso: str) -> datetime:
        return datetime.fromisoformat(iso.replace("Z", "+00:00"))

    return (parse(end) - parse(start)).total_seconds()


def run(ray_address: str | None) -> dict[str, float]:
    """One sweep; returns trials per minute (first trial created → last trial finished) and the median trial time."""
    with serve(max_concurrent_jobs=2, warm_worker=False, start_timeout_s=900) as (_, url, _home):
        body = {**BODY, **({"ray_address": ray_address} if ray_address else {})}
        sweep_id = requests.post(f"{url}/sweeps", json=body, timeout=60).json()["sweep_id"]
        while (sweep := requests.get(f"{url}/sweeps/{sweep_id}", timeout=60).json())["done"] < TRIALS:
            assert sweep["status"] == "running", sweep
            time.sleep(1)
        jobs = [requests.get(f"{url}/jobs/{t['job_id']}", timeout=60).json() for t in sweep["trials"]]
        assert all(j["status"] == "completed" for j in jobs), [j["status"] for j in jobs]
        requests.post(f"{url}/sweeps/{sweep_id}/stop", timeout=60)  # the final scoring is not part of the figure
        span = _seconds(min(j["created_at"] for j in jobs), max(j["finished_at"] for j in jobs))
        per_trial = statistics.median(_seconds(j["created_at"], j["finished_at"]) for j in jobs)
        nodes = len({t["node_id"] for t in sweep["trials"]})
        return {"trials_per_min": TRIALS / span * 60, "trial_s": per_trial, "nodes": nodes}


def main() -> None:
    local = run(None)
    os.environ.update(RAY_ENV)  # the server's job workers are drivers of the loopback cluster
    with two_node_cluster() as cluster:
        ray = run(cluster.address)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print("| executor | trials/min | median trial job s | nodes used |")
    print("|---|---|---|---|")
    print(f"| local (2 at once) | {local['trials_per_min']:.2f} | {local['trial_s']:.1f} | - |")
    print(f"| Ray, 2 nodes × 1 CPU | {ray['trials_per_min']:.2f} | {ray['trial_s']:.1f} | {ray['nodes']} |")
    print(f"Ray per-trial time / local: {ray['trial_s'] / local['trial_s']:.2f}")


if __name__ == "__main__":
    main()
