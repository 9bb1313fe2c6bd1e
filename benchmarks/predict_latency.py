"""``POST /jobs/{id}/predict`` for the latest candle, once the model is loaded (goal: <= 200 ms), and the server's
memory meanwhile (goal: <= 150 MiB; torch stays in the predictor process).

Starts a real ``candlecast serve`` (no warm spare), trains a small real job on the bundled BTCUSDT 1 h candles,
asks once for its forecast (this starts the predictor process: torch import, not counted), then times 50 more
requests for the latest candle and 20 for the latest 100. Reads the server's peak resident memory (``VmHWM``) and
whether torch is mapped into it (``/proc/<pid>/maps``, Linux), and the predictor's memory for contrast.

Run: ``.venv/bin/python benchmarks/predict_latency.py``. Figures go in ``docs/benchmarks.md`` ("Server").
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import requests
from _serve import rss_mib, serve

GOAL_MS = 200.0
GOAL_MIB = 150.0
JOB = {"epochs": 1, "cv_folds": 1, "lookback": 16}


def timed(session: requests.Session, url: str, body: dict, n: int) -> list[float]:
    """Milliseconds of ``n`` POSTs of ``body`` to ``url`` (each must answer 200)."""
    out = []
    for _ in range(n):
        started = time.perf_counter()
        resp = session.post(url, json=body, timeout=120)
        out.append((time.perf_counter() - started) * 1000)
        resp.raise_for_status()
    return out


def main() -> None:
    with serve(warm_worker=False) as (proc, url, _home), requests.Session() as session:
        job_id = session.post(url + "/start_training", json=JOB, timeout=30).json()["job_id"]
        while (status := session.get(f"{url}/jobs/{job_id}", timeout=30).json()["status"]) not in (
                "completed", "failed", "stopped"):
            time.sleep(0.2)
        if status != "completed":
            raise SystemExit(f"the job {status}")
        predict = f"{url}/jobs/{job_id}/predict"
        first = timed(session, predict, {}, 1)[0]
        latest = timed(session, predict, {}, 50)
        hundred = timed(session, predict, {"last": 100}, 20)
        peak = rss_mib(proc.pid, "VmHWM")
        torch_loaded = "torch" in Path(f"/proc/{proc.pid}/maps").read_text()
        predictor = [p for p in Path(f"/proc/{proc.pid}/task").glob("*/children")]
        children = {int(c) for p in predictor for c in p.read_text().split()}
        predictor_mib = max((rss_mib(pid) for pid in children), default=float("nan"))

    median = statistics.median(latest)
    p95 = sorted(latest)[int(0.95 * len(latest)) - 1]
    print(f"first request (starts the predictor process): {first:.0f} ms")
    print(f"latest candle, 50 requests: median {median:.1f} ms, p95 {p95:.1f} ms (goal <= {GOAL_MS:.0f} ms; "
          f"ratio {median / GOAL_MS:.2f})")
    print(f"latest 100 candles, 20 requests: median {statistics.median(hundred):.1f} ms")
    print(f"server peak RSS {peak:.1f} MiB (goal <= {GOAL_MIB:.0f}; ratio {peak / GOAL_MIB:.2f}); torch mapped in "
          f"the server: {torch_loaded}; predictor process {predictor_mib:.0f} MiB")
    if torch_loaded or median > GOAL_MS or peak > GOAL_MIB:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
