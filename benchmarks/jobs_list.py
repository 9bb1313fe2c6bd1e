"""The Jobs tab with 1,000 jobs in the store (goal: it stays responsive): ``GET /jobs?include=metrics&limit=1000``
(what the GUI asks for) and the tab's per-column sort and cell texts of that list.

Trains one small real job with a real server, copies its ``metrics.json`` into 999 more completed jobs written
straight into that server's job store (SQLite), times the request (20 times) and, in this process,
``desktop_app.job_columns.sort_jobs`` over every column plus every cell's text (20 times). The table's Dear
PyGui rebuild needs a display and is not measured here.

Run: ``.venv/bin/python benchmarks/jobs_list.py``. Figures go in ``docs/benchmarks.md`` ("Server").
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import requests
from _serve import serve

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from desktop_app.job_columns import COLUMNS, sort_jobs  # noqa: E402
from embedded_server.job_states import JobStatus  # noqa: E402
from embedded_server.job_store import DB_NAME, JobStore, utc_now  # noqa: E402

JOBS = 1000
GOAL_MS = 100.0  # a list the user waits for without noticing, on the reference 2-core machine
JOB = {"epochs": 1, "cv_folds": 2, "lookback": 16}


def fill(home: Path, config: dict, metrics: dict) -> None:
    """Add ``JOBS - 1`` completed jobs with ``config`` and ``metrics`` to the store under ``home``."""
    store = JobStore(home / "data" / DB_NAME)
    for i in range(JOBS - 1):
        job_id = f"bench-{i:04d}"
        store.create_job(job_id, {**config, "seed": i}, None)
        for status in (JobStatus.STARTING, JobStatus.RUNNING):
            store.set_status(job_id, status)
        store.set_status(job_id, JobStatus.COMPLETED, finished_at=utc_now(), metrics=metrics)
    store.close()


def main() -> None:
    with serve(warm_worker=False) as (proc, url, home), requests.Session() as session:
        job_id = session.post(url + "/start_training", json=JOB, timeout=30).json()["job_id"]
        while (job := session.get(f"{url}/jobs/{job_id}", timeout=30).json())["status"] in (
                "queued", "starting", "running"):
            time.sleep(0.5)
        if job["status"] != "completed":
            raise SystemExit(f"the job {job['status']}")
        fill(home, job["config"], job["metrics"])  # a second connection to the server's store (SQLite WAL)
        times, listing = [], None
        for _ in range(20):
            started = time.perf_counter()
            listing = session.get(url + "/jobs", params={"include": "metrics", "limit": JOBS}, timeout=60).json()
            times.append((time.perf_counter() - started) * 1000)
    jobs = tuple(listing["jobs"])
    table = []
    for _ in range(20):
        started = time.perf_counter()
        for column in COLUMNS:
            ordered = sort_jobs(jobs, column.key, descending=True)
        cells = [[column.text(j) for column in COLUMNS] for j in ordered]
        table.append((time.perf_counter() - started) * 1000)
    median = statistics.median(times)
    print(f"{len(jobs)} jobs (metrics.json {len(json.dumps(job['metrics'])) / 1024:.0f} KiB each)")
    print(f"GET /jobs?include=metrics&limit={JOBS}: median {median:.0f} ms, max {max(times):.0f} ms "
          f"(goal <= {GOAL_MS:.0f} ms; ratio {median / GOAL_MS:.2f})")
    print(f"sort by each of {len(COLUMNS)} columns + {len(cells) * len(COLUMNS)} cell texts: "
          f"median {statistics.median(table):.1f} ms")


if __name__ == "__main__":
    main()
