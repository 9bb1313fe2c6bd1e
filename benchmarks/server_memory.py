"""Memory of the server process while a training job runs (goal: <= 150 MiB; torch never in the server).

Starts a real ``candlecast serve``, samples its resident memory (``/proc/<pid>/status``, Linux) idle, then every
50 ms while a small real job trains in its worker process, and reads the peak (``VmHWM``). Also checks that no
torch library is mapped into the server (``/proc/<pid>/maps``), and reports the worker's peak for contrast.

Run: ``.venv/bin/python benchmarks/server_memory.py``. Figures go in ``docs/benchmarks.md`` ("Server").
"""

from __future__ import annotations

import time
from pathlib import Path

import requests
from _serve import rss_mib, serve

GOAL_MIB = 150.0
JOB = {"epochs": 3, "cv_folds": 2, "lookback": 16}


def main() -> None:
    with serve() as (proc, url, _home), requests.Session() as session:
        idle = rss_mib(proc.pid)
        body = session.post(url + "/start_training", json=JOB, timeout=30).json()
        job_url, worker_peak, samples = f"{url}/jobs/{body['job_id']}", 0.0, []
        while True:
            samples.append(rss_mib(proc.pid))
            try:
                worker_peak = max(worker_peak, rss_mib(body["expected_pid"], "VmHWM"))
            except (FileNotFoundError, ProcessLookupError, KeyError):
                pass
            status = session.get(job_url, timeout=30).json()["status"]
            if status in ("completed", "failed", "stopped"):
                break
            time.sleep(0.05)
        peak = rss_mib(proc.pid, "VmHWM")
        torch_loaded = "torch" in Path(f"/proc/{proc.pid}/maps").read_text()
    print(f"server RSS (goal: <= {GOAL_MIB:.0f} MiB while a job runs); job {status}")
    print(f"idle {idle:6.1f} MiB  during job: max sampled {max(samples):6.1f} MiB  peak (VmHWM) {peak:6.1f} MiB  "
          f"peak/goal {peak / GOAL_MIB:.2f}")  # fmt: skip
    print(f"worker peak {worker_peak:6.1f} MiB (for contrast); torch mapped in the server: {torch_loaded}")
    if torch_loaded or status != "completed":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
