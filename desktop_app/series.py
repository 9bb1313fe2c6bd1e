"""Predictions (``GET /jobs/{id}/predictions?format=json``) reduced to what the "p_up over time" plot draws.

Pure Python on purpose (no numpy in the GUI process): the work is one pass over at most a few hundred thousand
rows, done on a background thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Most points per plotted line; more only costs frame time (a plot is ~1500 px wide).
MAX_POINTS = 4000


def rolling_window(n: int) -> int:
    """Bars in the rolling means: a week of 1 h bars (168) for long series, a tenth of a short one (≥ 5)."""
    return 168 if n >= 2000 else max(5, n // 10)


def reduce_predictions(rows: Iterable[Mapping[str, Any]], max_points: int = MAX_POINTS) -> dict[str, tuple[float, ...]]:
    """Rows ``{timestamp, fold, y, mu, sigma, p_up, p_up_raw}`` → plot series (equal-length float tuples).

    Keys: ``time`` (Unix seconds), ``p_up``, ``outcome`` (1.0 when the forward return ``y`` > 0, else 0.0),
    ``p_up_mean`` and ``up_rate`` (trailing means over ``rolling_window(n)`` bars: forecast vs. observed
    frequency), ``fold`` (fold number), and ``window`` (one value: the window length). The series start at the
    first full window (a mean over one bar is 0 or 1 and says nothing). Rows missing ``timestamp``, ``y`` or
    ``p_up`` are skipped. Long series are thinned to ``max_points`` by taking every k-th point after the rolling
    means are computed on all rows. Empty input gives ``{}``.
    """
    points = sorted(
        (float(r["timestamp"]), float(r["p_up"]), 1.0 if float(r["y"]) > 0 else 0.0, float(r.get("fold") or 0))
        for r in rows
        if r.get("timestamp") is not None and r.get("y") is not None and r.get("p_up") is not None
    )
    if not points:
        return {}
    n = len(points)
    window = rolling_window(n)
    p_mean: list[float] = []
    up_rate: list[float] = []
    sum_p = sum_up = 0.0
    for i, (_, p, up, _) in enumerate(points):
        sum_p += p
        sum_up += up
        if i >= window:
            sum_p -= points[i - window][1]
            sum_up -= points[i - window][2]
        count = min(i + 1, window)
        p_mean.append(sum_p / count)
        up_rate.append(sum_up / count)
    first = min(window, n) - 1
    step = max(1, -(-(n - first) // max_points))  # ceil(points / max_points)
    keep = range(first, n, step)
    return {
        "time": tuple(points[i][0] for i in keep),
        "p_up": tuple(points[i][1] for i in keep),
        "outcome": tuple(points[i][2] for i in keep),
        "fold": tuple(points[i][3] for i in keep),
        "p_up_mean": tuple(p_mean[i] for i in keep),
        "up_rate": tuple(up_rate[i] for i in keep),
        "window": (float(window),),
    }


#: Steps between labelled epochs on the loss plot's x axis: whole epochs only.
TICK_STEPS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000)


def loss_segments(points: Iterable[Any]) -> list[tuple[int, list[float], list[float], list[float]]]:
    """Loss points (``fold``, ``train_loss``, ``val_loss`` attributes, in arrival order) as one line per fold:
    ``[(fold, x, train, validation), …]`` where x counts epochs over all folds from 1, so each fold's curve
    starts where the previous one ended and no line joins a fold's last epoch to the next fold's first."""
    segments: list[tuple[int, list[float], list[float], list[float]]] = []
    for index, point in enumerate(points, start=1):
        if not segments or segments[-1][0] != point.fold:
            segments.append((point.fold, [], [], []))
        _, xs, train, val = segments[-1]
        xs.append(float(index))
        train.append(point.train_loss)
        val.append(point.val_loss)
    return segments


def epoch_ticks(last: int, most: int = 12) -> tuple[tuple[str, float], ...]:
    """Labelled ticks for an epoch axis running 1..``last``: whole numbers only, at most about ``most`` of them
    (1, 2, 3 … for a short run; 10, 20, 30 … for a long one)."""
    last = max(1, last)
    step = next((s for s in TICK_STEPS if last / s <= most), -(-last // most))
    first = 1 if step == 1 else step
    return tuple((str(n), float(n)) for n in range(first, last + 1, step)) or (("1", 1.0),)
