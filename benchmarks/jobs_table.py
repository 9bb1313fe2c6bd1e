"""The Jobs tab's table with 1,000 jobs: building its rows once, refilling them with a new list, and a sort by a
column (what a click on its header does), each on the render thread.

Builds the real ``JobsView`` in a Dear PyGui context (no window is shown: the cost measured is making and filling
the widgets; the "why it ended" texts stay whole, as cutting them needs the drawn column's width), feeds it a
``JobsListed`` of 1,000 jobs shaped like ``GET /jobs?include=metrics`` through the real controller, then a second
list (a refresh), then sorts by CRPS skill (a click on its name in the header); 5 rounds of the last two.

Run: ``.venv/bin/python benchmarks/jobs_table.py``. Figures go in ``docs/benchmarks.md`` ("Server", issue 13).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import dearpygui.dearpygui as dpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from desktop_app import controller  # noqa: E402
from desktop_app import messages as m  # noqa: E402

JOBS = 1000
FIGURES = {"direction": "beats_some", "distribution": "beats_all", "crps_skill_garch": 0.01,
           "brier_skill_conditional": -0.01, "log_loss_skill_conditional": -0.005, "ece": 0.01,
           "best_conditional": "gbm", "accuracy": 0.51, "crps": 0.003, "n": 1000}


def job_list(seed: int) -> tuple[dict, ...]:
    """A fresh list of ``JOBS`` jobs (every fifth failed), skills varying with ``seed``."""
    return tuple({
        "job_id": f"20261203-{i:06d}", "status": "failed" if i % 5 == 0 else "completed", "symbol": "BTCUSDT",
        "timeframe": "1h", "horizon": 1, "model": "MLPForecaster student_t", "duration_s": 12.0 + i,
        "error": "the worker exited with code 1" if i % 5 == 0 else None, "created_at": "2026-12-03T06:00:00Z",
        "metrics": {**FIGURES, "crps_skill_garch": ((i * 7919 + seed) % 1000) / 1e5},
    } for i in range(JOBS))


def ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def main() -> None:
    dpg.create_context()
    from desktop_app.views.jobs_view import JobsView  # after the context: the view imports its theme

    with dpg.window():
        view = JobsView(lambda *a, **k: None, lambda: None)
    state, _ = controller.initial()
    new, _ = controller.update(state, m.JobsListed(now=1.0, jobs=job_list(0)))
    started = time.perf_counter()
    view.render(new, state)
    build = ms(started)
    refills, sorts = [], []
    for round_ in range(1, 6):
        state, (new, _) = new, controller.update(new, m.JobsListed(now=1.0 + round_, jobs=job_list(round_)))
        started = time.perf_counter()
        view.render(new, state)
        refills.append(ms(started))
        started = time.perf_counter()
        view._sort_clicked(None, None, "crps_skill_garch")  # a click on its name: ascending, then descending
        sorts.append(ms(started))
    dpg.destroy_context()
    print(f"{JOBS} jobs: build the rows {build:.0f} ms (once); refill with a new list: median "
          f"{statistics.median(refills):.0f} ms; sort by a column: median {statistics.median(sorts):.0f} ms")


if __name__ == "__main__":
    main()
