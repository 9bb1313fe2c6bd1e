"""Honest verdicts: is the model's score really better than each baseline's, on the very same test bars?

For a score with per-bar losses L_model[t] and L_base[t] (lower is better) over the pooled test bars in time
order (the folds' test blocks are consecutive), the per-bar difference d[t] = L_model[t] - L_base[t] gives:

- the Diebold–Mariano test (Diebold & Mariano 1995, "Comparing predictive accuracy", JBES 13(3)): t = mean(d) /
  its Newey–West (HAC, Bartlett kernel; Newey & West 1987, Econometrica 55(3)) standard error, from statsmodels:
  ``OLS(d, 1).fit(cov_type="HAC", cov_kwds={"maxlags": L})`` with L = ``hac_lags(h)`` = max(10, 2h) (forecasts
  h bars ahead overlap, so d is autocorrelated up to lag h - 1 at least); p: two-sided, normal. t < 0: the
  model's loss is lower.
- skill = 1 - mean(L_model) / mean(L_base) (> 0: the model is better; for the non-negative scores
  ``SKILL_SCORES``, not NLL, which is reported as mean(d) in nats) and its 95 % interval from a stationary
  block bootstrap (Politis & Romano 1994, JASA 89(428); ``arch.bootstrap.StationaryBootstrap``, percentile
  interval, mean block length ``block_length(h)`` = max(10, 2h) >= h, ``BOOTSTRAP_REPS`` resamples, seeded: the
  same job gives the same interval). The interval of mean(d) comes from the same resamples.
- a verdict at the 5 % level (``LEVEL``): "better" (p < 0.05, t < 0), "worse" (p < 0.05, t > 0) or
  "no_difference".

Accuracy is tested as its loss, the 0/1 error, against the majority rule; the model's accuracy gets its HAC
standard error next to the majority rate. Two headline verdicts sum up (``trainer.scoreboard.HEADLINE_SCORES``):
the distribution on CRPS against the distribution baselines, p_up on log loss against every baseline with a
probability (accuracy against the majority rule): "beats_all", "beats_some" or "beats_none" of them,
significantly at 5 %, or "no_skill": it beats some but not climatology (``REFERENCE``; a baseline fitting noise
is worse than climatology), or its p_up is one constant per fold (a base rate, which may beat climatology's
frequency by its shrinkage but carries no direction signal). Each test stands alone (no correction
for testing several baselines).

``verdicts(model_losses, baseline_losses, horizon, seed)`` is the whole computation; ``job_verdicts`` feeds it
a job's forecasts.
"""

from __future__ import annotations

import math

import numpy as np
from threadpoolctl import threadpool_limits

from trainer.distributions import Forecast
from trainer.metrics import finite_or_none, per_bar_losses
from trainer.scoreboard import BASELINE_NAMES, HEADLINE_SCORES, P_UP_SCORES, SCORE_LABELS, SKILL_SCORES, baseline

LEVEL = 0.05
#: The no-skill forecast: a model not significantly better than it has no skill, whatever else it beats.
REFERENCE = "climatology"
BOOTSTRAP_REPS = 1000
CONFIDENCE = 0.95


#: Per headline: what forecast a fold when its gate let the model through, and what when not (docs/model.md).
GATE_FALLBACKS = {
    "direction": ("p_up from the stack", "the base rate"),
    "distribution": ("the network's distribution", "an unconditional fit of the history"),
}


def hac_lags(horizon: int) -> int:
    """Newey–West truncation lag for h-bar forecasts: max(10, 2h)."""
    return max(10, 2 * int(horizon))


def block_length(horizon: int) -> int:
    """Mean block length of the stationary bootstrap: max(10, 2h), at least the horizon (the same window of
    dependence as the HAC lags)."""
    return hac_lags(horizon)


def _hac_ols(values: np.ndarray, maxlags: int):
    """statsmodels' OLS of ``values`` on a constant with a Newey–West HAC covariance (its fitted results)."""
    # Imported here, not at the top: statsmodels takes about a second to import, and a worker imports this module
    # before it may report training.started; the verdicts run only at the end of a job.
    from statsmodels.regression.linear_model import OLS

    return OLS(values, np.ones_like(values)).fit(cov_type="HAC", cov_kwds={"maxlags": maxlags})


def diebold_mariano(d: np.ndarray, maxlags: int) -> tuple[float | None, float | None, float]:
    """(t, p, se) of mean(d) = 0 for per-bar loss differences ``d`` ((n,) float64): OLS of d on a constant with a
    Newey–West HAC covariance (statsmodels, ``maxlags``), two-sided normal p. A d with no variation gives t and
    p None when its mean is 0 (the forecasts score the same), else t = ±inf and p = 0."""
    d = np.asarray(d, dtype=np.float64)
    if np.ptp(d) == 0:
        mean = float(d[0])
        return (None, None, 0.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0, 0.0)
    fit = _hac_ols(d, maxlags)
    return float(fit.tvalues[0]), float(fit.pvalues[0]), float(fit.bse[0])


def hac_mean(values: np.ndarray, maxlags: int) -> tuple[float, float]:
    """(mean, HAC standard error of the mean) of ``values`` ((n,) float64), as in ``diebold_mariano``."""
    values = np.asarray(values, dtype=np.float64)
    if np.ptp(values) == 0:
        return float(values[0]), 0.0
    fit = _hac_ols(values, maxlags)
    return float(fit.params[0]), float(fit.bse[0])


def _bootstrap(model: dict[str, np.ndarray], pairs: list[tuple[str, np.ndarray]], block: int, seed: int,
               reps: int) -> tuple[np.ndarray, np.ndarray]:
    """Percentile intervals (2, k) of the skill and (2, k) of mean(d) of the k (score, baseline losses) pairs,
    from one stationary bootstrap of the bars (every pair resampled with the same blocks).

    arch draws the resampled bar positions. A resample is a chain of runs of consecutive bars, so its column sums
    are sums of prefix-sum differences over the runs: the same numbers as summing the gathered rows, at a small
    fraction of the cost (a job has ~20 columns of ~50,000 bars and 1,000 resamples)."""
    scores = sorted({score for score, _ in pairs})
    columns = np.column_stack([model[s] for s in scores] + [losses for _, losses in pairs])
    n, k = columns.shape[0], len(pairs)
    which = np.array([scores.index(score) for score, _ in pairs])
    prefix = np.vstack([np.zeros(columns.shape[1]), np.cumsum(columns, axis=0)])
    from arch.bootstrap import StationaryBootstrap  # lazy like statsmodels (``_hac_ols``): arch imports slowly

    bs = StationaryBootstrap(block, np.arange(n), seed=seed)
    means = np.empty((reps, columns.shape[1]))
    for r, (data, _) in enumerate(bs.bootstrap(reps)):
        index = data[0]
        first = np.flatnonzero(np.r_[True, np.diff(index) != 1])  # where each run of consecutive bars starts
        last = np.r_[first[1:], n] - 1
        means[r] = (prefix[index[last] + 1] - prefix[index[first]]).sum(axis=0) / n
    model_mean, base_mean = means[:, which], means[:, len(scores):]
    with np.errstate(divide="ignore", invalid="ignore"):
        skill = 1 - model_mean / base_mean
    tails = [100 * (1 - CONFIDENCE) / 2, 100 * (1 + CONFIDENCE) / 2]
    return np.percentile(skill, tails, axis=0), np.percentile(model_mean - base_mean, tails, axis=0)


def dm_verdict(t: float | None, p: float | None, level: float) -> str:
    """The verdict word of a Diebold–Mariano test of model minus reference losses (docs/metrics.md): ``"better"``
    (t < 0, p < ``level``), ``"worse"`` (t > 0, p < ``level``), else ``"no_difference"`` (also when ``t`` or
    ``p`` is None: too few bars to test)."""
    if t is None or p is None or p >= level:
        return "no_difference"
    return "better" if t < 0 else "worse"


def _describe(name: str) -> str:
    return baseline(name).description if name in BASELINE_NAMES else name


def _label(name: str) -> str:
    return baseline(name).label if name in BASELINE_NAMES else name


def _t_text(t: float | None, p: float | None, verdict: str) -> str:
    t_part = "t undefined (identical scores)" if t is None else f"t = {t:+.1f}"
    if verdict == "no_difference" and p is not None:
        return f"{t_part}, p = {p:.2f}"
    return t_part


def sentence(name: str, score: str, test: dict, p_up_constant: bool = False) -> str:
    """The verdict in words, e.g. "better than GARCH(1,1)-t on CRPS (skill +0.80 %, 95 % CI +0.60 to +1.00 %,
    t = -11.2)"; accuracy in percentage points of accuracy. With ``p_up_constant`` (the model's p_up and this
    baseline's are each one constant per fold) a significant verdict on a p_up score says that it measures where
    the test blocks' up-rate fell between two near-constant forecasts, not direction skill."""
    verdict = test["verdict"]
    lead = {"better": "better than", "worse": "worse than", "no_difference": "no significant difference from"}[verdict]
    if score == "accuracy":
        low, high = test["diff_ci_high"], test["diff_ci_low"]  # accuracy = 1 - error: the signs flip
        detail = (f"accuracy {1 - test['model']:.2%} vs {1 - test['baseline']:.2%}, "
                  f"{-test['diff'] * 100:+.2f} points, 95 % CI "
                  f"{_pct(None if low is None else -low)} to {_pct(None if high is None else -high)} points")
    elif test["skill"] is None:
        detail = (f"difference {test['diff']:+.4f} per bar, 95 % CI {_fixed(test['diff_ci_low'])} to "
                  f"{_fixed(test['diff_ci_high'])}")
    else:
        detail = f"skill {_pct(test['skill'])} %, 95 % CI {_pct(test['ci_low'])} to {_pct(test['ci_high'])} %"
    statistic = _t_text(test["t"], test["p"], verdict)
    text = f"{lead} {_describe(name)} on {SCORE_LABELS.get(score, score)} ({detail}, {statistic})"
    if p_up_constant and score in P_UP_SCORES and verdict != "no_difference":
        text += "; p_up is one constant per fold (a base rate): this tells where the test up-rate fell, not skill"
    return text


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100 + 0.0:+.2f}"  # + 0.0: -0.0 reads "+0.00", not "-0.00"


def _fixed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.4f}"


def headline(kind: str, tests: dict[str, dict[str, dict]], level: float = LEVEL,
             p_up_constant: bool = False, used: tuple[int, int] | None = None) -> dict | None:
    """The headline verdict ``kind`` ("direction" or "distribution") over the baselines in ``tests`` that
    ``HEADLINE_SCORES[kind]`` judges it on: ``outcome``, the baselines it is ``better_than`` / ``no_difference`` /
    ``worse_than``, and ``text``. ``outcome`` is "beats_all", "beats_some", "beats_none", or "no_skill" when it
    beats some but not ``REFERENCE`` (the no-skill forecast: beating a baseline that fits noise is no skill) or,
    for the direction, when ``p_up_constant`` (one p_up per fold: a base rate, no direction signal, whatever it
    beats). ``used``: (folds, of how many) whose test block the model's own forecast scored, not its gate's
    fallback (``GATE_FALLBACKS``); the text says so when that is not every fold. None when no baseline applies."""
    judged = {name: score for name, score in HEADLINE_SCORES[kind].items() if score in tests.get(name, {})}
    if not judged:
        return None
    groups: dict[str, list[str]] = {"better": [], "no_difference": [], "worse": []}
    for name, score in judged.items():
        groups[tests[name][score]["verdict"]].append(name)
    n, better = len(judged), groups["better"]
    constant = kind == "direction" and p_up_constant
    if not better:
        outcome = "beats_none"
    elif constant or (REFERENCE in judged and REFERENCE not in better):
        outcome = "no_skill"
    else:
        outcome = "beats_all" if len(better) == n else "beats_some"
    subject = "Direction (p_up)" if kind == "direction" else "Distribution"
    on = "log loss (accuracy vs the majority rule)" if kind == "direction" else "CRPS"
    labels = lambda names: ", ".join(_label(x) for x in names)  # noqa: E731
    beats = f"beats {len(better)} of {n} baselines on {on} at {level:.0%} ({labels(better)})"
    if outcome == "beats_all":
        text = f"{subject}: beats all {n} baselines on {on}, significantly at {level:.0%}"
    elif outcome == "beats_some":
        text = f"{subject}: {beats}"
    elif outcome == "no_skill":
        why = ("p_up is one constant per fold, a base rate: no direction signal" if constant
               else f"not better than {_label(REFERENCE)}")
        text = f"{subject}: no significant skill ({why}); {beats}"
    else:
        text = f"{subject}: no significant skill; beats none of the {n} baselines on {on} at {level:.0%}"
    if groups["worse"]:
        text += f"; worse than {labels(groups['worse'])}"
    if groups["no_difference"] and outcome != "beats_all":
        text += f"; no significant difference from {labels(groups['no_difference'])}"
    if used is not None and used[0] < used[1]:
        what, fallback = GATE_FALLBACKS[kind]
        folds = "fold" if used[1] == 1 else "folds"
        text += f"; {what} in {used[0]} of {used[1]} {folds} ({fallback} {'in the others' if used[0] else 'in all'})"
    return {
        "outcome": outcome, "better_than": better, "no_difference": groups["no_difference"],
        "worse_than": groups["worse"], "scores": judged, "text": text,
    }


def verdicts(
    model_losses: dict[str, np.ndarray],
    baseline_losses: dict[str, dict[str, np.ndarray]],
    horizon: int,
    seed: int,
    reps: int = BOOTSTRAP_REPS,
    level: float = LEVEL,
    p_up_constant: bool = False,
    used: dict[str, tuple[int, int] | None] | None = None,
    constant_baselines: frozenset[str] = frozenset(),
) -> dict:
    """Test the model against every baseline on every score both have (module doc).

    ``model_losses``: score -> (n,) float64 per-bar losses of the model (``metrics.per_bar_losses`` keys:
    crps, nll, log_loss, brier, accuracy = 0/1 error), bars in time order; ``baseline_losses``: baseline name ->
    score -> (n,) losses on the same bars (only the scores a baseline is tested on); ``horizon``: h in bars;
    ``seed``: the bootstrap's seed; ``p_up_constant``: the model's p_up is one constant per fold, ``used``: per
    headline kind, (folds the model's own forecast scored, folds) (both ``headline``); ``constant_baselines``:
    the baselines whose p_up is one constant per fold too (``sentence``).

    Returns a JSON-ready dict: ``level``, ``hac_lags``, ``block_length``, ``bootstrap_reps``, ``seed``, ``n``;
    ``tests``: name -> score -> {model, baseline (mean losses), diff (mean d), diff_ci_low, diff_ci_high, t, p,
    skill, ci_low, ci_high, verdict, text}; ``accuracy``: {model, hac_se, majority_rate (if a "majority"
    baseline is given)}; ``headline``: {direction, distribution} (see ``headline``).
    Raises ValueError when the arrays differ in length or hold non-finite values.
    """
    n = len(next(iter(model_losses.values())))
    for name, values in [("model", v) for v in model_losses.values()] + [
        (b, v) for b, scores in baseline_losses.items() for v in scores.values()
    ]:
        values = np.asarray(values)
        if values.shape != (n,) or not np.isfinite(values).all():
            raise ValueError(f"verdicts: the per-bar losses of {name} must be {n} finite values, got {values.shape}")
    maxlags, block = hac_lags(horizon), block_length(horizon)
    pairs = [(b, s) for b, scores in baseline_losses.items() for s in scores if s in model_losses]
    skill_ci, diff_ci = _bootstrap(model_losses, [(s, baseline_losses[b][s]) for b, s in pairs], block, seed, reps)
    tests: dict[str, dict[str, dict]] = {}
    for j, (name, score) in enumerate(pairs):
        model, base = np.asarray(model_losses[score]), np.asarray(baseline_losses[name][score])
        t, p, _ = diebold_mariano(model - base, maxlags)
        model_mean, base_mean = float(model.mean()), float(base.mean())
        test = {
            "model": model_mean, "baseline": base_mean, "diff": model_mean - base_mean,
            "diff_ci_low": finite_or_none(diff_ci[0, j]), "diff_ci_high": finite_or_none(diff_ci[1, j]),
            "t": finite_or_none(t) if t is not None else None, "p": p,
            "skill": finite_or_none(1 - model_mean / base_mean) if score in SKILL_SCORES and base_mean > 0 else None,
            "ci_low": finite_or_none(skill_ci[0, j]) if score in SKILL_SCORES else None,
            "ci_high": finite_or_none(skill_ci[1, j]) if score in SKILL_SCORES else None,
            "verdict": dm_verdict(t, p, level),
        }
        test["text"] = sentence(name, score, test, p_up_constant and name in constant_baselines)
        tests.setdefault(name, {})[score] = test
    out = {
        "level": level, "hac_lags": maxlags, "block_length": block, "bootstrap_reps": reps, "seed": seed, "n": n,
        "tests": tests,
        "headline": {kind: headline(kind, tests, level, p_up_constant, (used or {}).get(kind))
                     for kind in ("direction", "distribution")},
    }
    if "accuracy" in model_losses:
        error, se = hac_mean(model_losses["accuracy"], maxlags)
        out["accuracy"] = {"model": 1 - error, "hac_se": se}
        if "accuracy" in baseline_losses.get("majority", {}):
            out["accuracy"]["majority_rate"] = 1 - float(np.mean(baseline_losses["majority"]["accuracy"]))
    return out


def job_verdicts(model: Forecast, baselines: dict[str, Forecast | np.ndarray], y: np.ndarray, horizon: int,
                 seed: int, fold_lengths: list[int] | None = None, fold_gates: list[dict] | None = None) -> dict:
    """``verdicts`` of a job's pooled test forecasts: the model's ``Forecast``, each registered baseline's
    ``Forecast`` (distribution) or p_up array (direction), the outcomes ``y`` ((n,) forward log returns, time
    order), ``fold_lengths``: the bars of each fold's test block in order (default: one block), to tell a p_up
    that is one constant per fold; ``fold_gates``: each fold's ``metrics.json`` ``gates`` entry (default: none
    known). Each baseline is tested on the scores ``trainer.scoreboard`` lists for it."""
    model_losses = per_bar_losses(y, model.p_up, model)
    baseline_losses: dict[str, dict[str, np.ndarray]] = {}
    for name, forecast in baselines.items():
        if isinstance(forecast, Forecast):
            losses = per_bar_losses(y, forecast.p_up, forecast)
        else:
            losses = per_bar_losses(y, forecast)
        baseline_losses[name] = {s: losses[s] for s in baseline(name).scores}
    cuts = np.cumsum(fold_lengths or [len(y)])[:-1]
    constant_per_fold = lambda p: all(np.ptp(block) == 0 for block in np.split(p, cuts) if len(block))  # noqa: E731
    constant = constant_per_fold(model.p_up)
    constant_baselines = frozenset(
        name for name, forecast in baselines.items()
        if constant_per_fold(forecast.p_up if isinstance(forecast, Forecast) else np.asarray(forecast)))
    used = None
    if fold_gates:
        stacks = [g["direction"]["stack"] for g in fold_gates if g["direction"] is not None]
        used = {"direction": (sum(stacks), len(stacks)) if stacks else None,
                "distribution": (sum(g["distribution"]["network"] for g in fold_gates), len(fold_gates))}
    with threadpool_limits(1):  # small BLAS products: extra threads only wait for a core (see direction_baselines)
        return verdicts(model_losses, baseline_losses, horizon, seed, p_up_constant=constant, used=used,
                        constant_baselines=constant_baselines)


def compact(result: dict) -> dict:
    """The short form ``training.completed`` carries: the two headlines (outcome and text) and, per baseline
    and score, the verdict word with t and p."""
    return {
        "headline": {k: (None if v is None else {"outcome": v["outcome"], "text": v["text"]})
                     for k, v in result["headline"].items()},
        "tests": {name: {score: {"verdict": test["verdict"], "t": test["t"], "p": test["p"], "skill": test["skill"]}
                         for score, test in scores.items()} for name, scores in result["tests"].items()},
    }
