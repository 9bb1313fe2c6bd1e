"""The default p_up: a shrunk, gated stack of gradient boosting, an AR logit and the network (docs/model.md).

On the bars before the default job's first test block (``benchmarks/model_choices.py``) and in the job's own
verdicts (docs/benchmarks.md), the direction signal of hourly returns is small and mostly in the last few
returns, the volatility and the time of day; gradient boosting on lagged features (the ``gbm`` baseline) finds
more of it than the network's CDF, whose p_up is worse than climatology there. So p_up is

    p_up = sigmoid(w_gbm · logit(p_bag) + w_ar · logit(p_ar) + w_net · logit(p_net))

- ``p_bag``: the mean p_up of ``BAGS`` ``HistGradientBoostingClassifier`` fits (``GBM_PARAMS`` of the baseline,
  each with its own seed drawing ``MAX_FEATURES`` of the features per split), on the ``gbm`` inputs of
  ``trainer.direction_baselines``; by default one fit on all features, i.e. the ``gbm`` baseline's model (a bag of
  5 was not better by nested validation, ``benchmarks/model_choices.py``);
- ``p_ar``: an L2 logistic regression on the last three one-bar returns (the ``logit_ar3`` inputs);
- ``p_net``: the network's raw p_up (its CDF at 0, or its direction head).

Fitting, inside one fold's pre-test samples only (nothing of the test block): the components (one boosted
model in place of a bag, to save time) are fitted on the train + validation blocks and score the calibration
block out of sample. There

- a **gate** keeps the stack only when the boosted model's log loss beats the base rate with a Diebold–Mariano
  t below ``GATE_T`` (0 at h = 1: lower at all; ``GATE_T_MULTI_BAR`` = -1 for h > 1; HAC errors with ``hac_lags(h)``) on all the out-of-sample evidence there is before the
  test block: this calibration block plus the earlier folds' test blocks (``evidence``, prequential: a short
  first block alone has little power); otherwise p_up is the base rate: no signal, no claim. The base rate is
  the history's up-frequency shrunk towards 0.5 (``base_rate``): at long horizons few labels are independent;
- the weights w are the maximum a-posteriori logistic fit with a Gaussian prior centred on the boosted model
  alone (w = (1, 0, 0)) worth ``PRIOR_SAMPLES`` samples: shrinkage where the block is short. There is no free
  intercept (``INTERCEPT``): the base rate comes from the components, fitted on far more bars. For h > 1 the weights are fitted on every
  h-th bar only (non-overlapping labels).

Then the components are refitted on all pre-test samples (train, validation and calibration: the history the
baselines get) and the fitted weights are kept. The deployable model (``refit_direction``) refits the
components on all the job's samples and keeps the last fold's weights, gated on all the folds' test evidence. The fitted scikit-learn models are exported to plain arrays
(``Trees``, ``Linear``) and every prediction, at training time and from a saved model, runs through the same
numpy code, so saved models need no pickle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special
from threadpoolctl import threadpool_limits

from trainer.direction_baselines import GBM_PARAMS, direction_inputs
from trainer.verdicts import diebold_mariano, hac_lags

#: Boosted fits averaged (each ~1 s on 50k hourly samples, one thread). One, with the ``gbm`` baseline's settings:
#: a bag of 5 with feature subsampling was not better by nested validation (benchmarks/model_choices.py).
BAGS = 1
#: Share of the features each split of a boosted tree may use (1.0: all, as the ``gbm`` baseline).
MAX_FEATURES = 1.0
#: The stack is kept only when the boosted model's out-of-sample log loss beats the base rate's with DM t below this:
#: at all (t < 0) was better by nested validation than t < -1 or t < -2 (benchmarks/model_choices.py).
GATE_T = 0.0
#: The same threshold for h > 1, where the evidence is thinner (h-bar labels overlap): t < -1 was better by nested
#: validation at h = 4 than t < 0 and the same at h = 24 (benchmarks/model_choices.py --horizon 4|24).
GATE_T_MULTI_BAR = -1.0
#: Strength of the prior that centres the stack on the boosted model(s) alone, in samples' worth of information.
PRIOR_SAMPLES = 1000.0
#: A free intercept in the stack's weights (off: its base rate comes from the components, fitted on far more bars;
#: an intercept was not better by nested validation, benchmarks/model_choices.py).
INTERCEPT = False
#: Strength of the Beta prior at 0.5 that the base rate (p_up when the gate is closed) is shrunk towards, in
#: non-overlapping samples (``base_rate``): 100 was better by nested validation at h = 24 than none, 1,000 or
#: 0.5 itself (benchmarks/model_choices.py --horizon 24); at h = 1 it moves p_up by less than 0.001.
BASE_RATE_PRIOR = 100.0
#: p_up is kept inside (CLIP, 1 - CLIP) so logits stay finite.
CLIP = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    return special.logit(np.clip(p, CLIP, 1 - CLIP))


def log_loss(p: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Per-bar log loss of p_up ``p`` against outcomes ``up`` (both (n,)), in nats."""
    p = np.clip(p, CLIP, 1 - CLIP)
    return -(up * np.log(p) + (1 - up) * np.log1p(-p))


@dataclass(frozen=True)
class Trees:
    """A fitted binary ``HistGradientBoostingClassifier`` as plain arrays: ``baseline`` (raw score before the
    trees) and, per tree, its nodes' ``feature``, ``threshold``, ``missing_left``, ``left``, ``right``,
    ``is_leaf`` and ``value`` (int64 / float64 / bool arrays, node 0 the root). Numerical splits only."""

    baseline: float
    trees: tuple[dict[str, np.ndarray], ...]

    FIELDS = {"feature": ("feature_idx", np.int64), "threshold": ("num_threshold", np.float64),
              "missing_left": ("missing_go_to_left", bool), "left": ("left", np.int64),
              "right": ("right", np.int64), "is_leaf": ("is_leaf", bool), "value": ("value", np.float64)}

    @classmethod
    def from_sklearn(cls, model: Any) -> Trees:  # a fitted sklearn HistGradientBoostingClassifier
        """Export a fitted binary model (scikit-learn's tree predictors' node arrays, pinned version)."""
        trees = []
        for (predictor,) in model._predictors:
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise ValueError("direction: categorical splits are not exported")
            trees.append({name: nodes[field].astype(dtype) for name, (field, dtype) in cls.FIELDS.items()})
        return cls(float(np.asarray(model._baseline_prediction).ravel()[0]), tuple(trees))

    def raw(self, x: np.ndarray) -> np.ndarray:
        """Raw scores (log-odds) of the rows of ``x`` ((m, F) float64): baseline + the reached leaf of every
        tree, added in tree order (as scikit-learn does, so the sums are the same)."""
        out = np.full(x.shape[0], self.baseline)
        rows = np.arange(x.shape[0])
        for tree in self.trees:
            node = np.zeros(x.shape[0], dtype=np.int64)
            while True:
                inner = ~tree["is_leaf"][node]
                if not inner.any():
                    break
                value = x[rows, tree["feature"][node]]
                go_left = np.where(np.isnan(value), tree["missing_left"][node], value <= tree["threshold"][node])
                node = np.where(inner, np.where(go_left, tree["left"][node], tree["right"][node]), node)
            out += tree["value"][node]
        return out

    def to_dict(self) -> dict:
        return {"baseline": self.baseline, "trees": [{k: v.tolist() for k, v in t.items()} for t in self.trees]}

    @classmethod
    def from_dict(cls, data: dict) -> Trees:
        trees = tuple({k: np.asarray(t[k], dtype=dtype) for k, (_, dtype) in cls.FIELDS.items()}
                      for t in data["trees"])
        return cls(float(data["baseline"]), trees)


@dataclass(frozen=True)
class Linear:
    """A standardised logistic regression as arrays: logit = intercept + coef · (x - mean) / scale."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logit(self, x: np.ndarray) -> np.ndarray:
        return self.intercept + ((x - self.mean) / self.scale) @ self.coef

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept}

    @classmethod
    def from_dict(cls, data: dict) -> Linear:
        return cls(*(np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "coef")),
                   float(data["intercept"]))


@dataclass(frozen=True)
class Components:
    """The fitted components: the boosted trees (``BAGS`` fits) and the AR logit."""

    bags: tuple[Trees, ...]
    ar: Linear

    def logits(self, inputs: dict[str, np.ndarray], p_net: np.ndarray) -> np.ndarray:
        """(m, 3) logits of gbm (bag mean), ar and net for ``direction_inputs`` rows and the network's p_up."""
        p_bag = np.mean([special.expit(t.raw(inputs["gbm"])) for t in self.bags], axis=0)
        return np.column_stack([_logit(p_bag), self.ar.logit(inputs["logit_ar3"]), _logit(p_net)])


def fit_components(inputs: dict[str, np.ndarray], up: np.ndarray, seed: int, bags: int | None = None) -> Components:
    """Fit ``bags`` (default ``BAGS``) boosted trees and the AR logit on ``direction_inputs`` rows and outcomes
    ``up`` ((m,) bool)."""
    # scikit-learn only once a model is fitted: a worker's start imports neither it nor its estimators
    # (trainer.worker.LATER_IMPORTS; predictions use the trees as arrays).
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    fitted = []
    with threadpool_limits(1):  # see trainer.direction_baselines.fit_models: one thread is the fastest here
        for b in range(BAGS if bags is None else bags):
            model = HistGradientBoostingClassifier(**GBM_PARAMS, max_features=MAX_FEATURES, random_state=seed + b)
            fitted.append(Trees.from_sklearn(model.fit(inputs["gbm"], up)))
        scaler = StandardScaler().fit(inputs["logit_ar3"])
        logistic = LogisticRegression().fit(scaler.transform(inputs["logit_ar3"]), up)
    ar = Linear(scaler.mean_.astype(np.float64), scaler.scale_.astype(np.float64),
                logistic.coef_[0].astype(np.float64), float(logistic.intercept_[0]))
    return Components(tuple(fitted), ar)


@dataclass(frozen=True)
class DirectionStack:
    """A fitted stack (module doc): ``components``, ``weights`` (3,) for gbm/ar/net logits (4: and an intercept), ``base_rate`` (the history's up-frequency, ``base_rate``), ``active`` (the gate passed) and the gate's ``gate_t``."""

    components: Components
    weights: np.ndarray
    base_rate: float
    active: bool
    gate_t: float | None

    def evidence(self, inputs: dict[str, np.ndarray], up: np.ndarray) -> np.ndarray:
        """Per-bar log loss of the boosted model(s) minus the base rate's, (m,), at ``direction_inputs`` rows with
        outcomes ``up``: what later folds' gates learn from (``fit_direction``'s ``evidence``)."""
        p_bag = np.mean([special.expit(t.raw(inputs["gbm"])) for t in self.components.bags], axis=0)
        return log_loss(p_bag, up) - log_loss(np.full(len(up), self.base_rate), up)

    def predict(self, inputs: dict[str, np.ndarray], p_net: np.ndarray) -> np.ndarray:
        """p_up, (m,) float64, for ``direction_inputs`` rows and the network's raw p_up (m,)."""
        if not self.active:
            return np.full(len(p_net), self.base_rate)
        return special.expit(_design(self.components.logits(inputs, p_net), len(self.weights)) @ self.weights)

    def to_dict(self) -> dict:
        """Plain JSON-able data (lists and floats), the inverse of ``from_dict``."""
        return {"bags": [t.to_dict() for t in self.components.bags], "ar": self.components.ar.to_dict(),
                "weights": self.weights.tolist(), "base_rate": self.base_rate,
                "active": self.active, "gate_t": self.gate_t}

    @classmethod
    def from_dict(cls, data: dict) -> DirectionStack:
        components = Components(tuple(Trees.from_dict(t) for t in data["bags"]), Linear.from_dict(data["ar"]))
        return cls(components, np.asarray(data["weights"], dtype=np.float64), float(data["base_rate"]),
                   bool(data["active"]), data["gate_t"])


def base_rate(up: np.ndarray, horizon: int) -> float:
    """The up-frequency of the outcomes ``up`` (n,) bool, shrunk towards 0.5: the posterior mean under a
    Beta(K/2, K/2) prior, K = ``BASE_RATE_PRIOR``, with the n labels counted as n / h independent samples
    (neighbouring h-bar labels share h - 1 bars, so the mean of n overlapping labels carries about the
    information of n / h: Hansen & Hodrick 1980, JPE, "Forward exchange rates as optimal predictors of future
    spot rates"). 0.5 is the martingale's P(up): a drift estimated from few independent returns is mostly noise."""
    n_independent = len(up) / horizon
    return float((np.sum(up) / horizon + 0.5 * BASE_RATE_PRIOR) / (n_independent + BASE_RATE_PRIOR))


def _design(z: np.ndarray, n_weights: int) -> np.ndarray:
    """The logits ``z`` (n, 3), with a column of ones when the weights hold an intercept (4 weights)."""
    return z if n_weights == z.shape[1] else np.column_stack([z, np.ones(len(z))])


def _fit_weights(z: np.ndarray, up: np.ndarray) -> np.ndarray:
    """MAP logistic weights w (3,), or (4,) with ``INTERCEPT``, on logits ``z`` (n, 3), prior N((1, 0, 0[, 0]),
    I / precision) whose precision is ``PRIOR_SAMPLES`` times the per-sample Fisher information of each column
    (0.25 E[z²])."""
    prior = np.array([1.0, 0.0, 0.0] + [0.0] * INTERCEPT)
    design = _design(z, len(prior))
    precision = PRIOR_SAMPLES * 0.25 * np.maximum(np.mean(design * design, axis=0), 1e-6)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        s = design @ theta
        loss = np.sum(np.logaddexp(0.0, s) - up * s) + 0.5 * np.sum(precision * (theta - prior) ** 2)
        grad = design.T @ (special.expit(s) - up) + precision * (theta - prior)
        return float(loss), grad

    return optimize.minimize(objective, prior, jac=True, method="L-BFGS-B").x


def fit_direction(
    features: np.ndarray, close: np.ndarray, segment: np.ndarray, y: np.ndarray,
    inner: np.ndarray, block: np.ndarray, p_net_block: np.ndarray, horizon: int, seed: int,
    evidence: np.ndarray | None = None,
) -> DirectionStack:
    """Fit the stack (module doc) from a fold's pre-test samples.

    ``features`` (n, F) bar features, ``close`` (n,), ``segment`` (n,), ``y`` (n,) forward log returns (the
    ``Samples`` arrays); ``inner``: int64 positions the components first learn from (train + validation);
    ``block``: the later positions that score them (the calibration block, purged from ``inner``);
    ``p_net_block``: the network's raw p_up there; ``horizon``: h; ``seed``: the boosted fits' seed;
    ``evidence``: earlier out-of-sample loss differences (``DirectionStack.evidence`` of earlier folds, on bars
    whose labels end before ``block``), in time order, pooled with this block's for the gate.
    Raises ValueError when a label of ``inner`` reaches ``block`` or one side holds one direction only.
    """
    if inner.max() + horizon >= block.min():
        raise ValueError("direction: a label of the inner fit reaches the block that scores it (look-ahead)")
    up_inner, up_block = y[inner] > 0, y[block] > 0
    if up_inner.all() or not up_inner.any():
        raise ValueError("direction: the training samples hold one direction only")
    inner_fit = fit_components(direction_inputs(features, close, segment, inner, horizon), up_inner, seed, bags=1)
    z = inner_fit.logits(direction_inputs(features, close, segment, block, horizon), p_net_block)
    d = log_loss(special.expit(z[:, 0]), up_block) - log_loss(np.full(len(block), base_rate(up_inner, horizon)), up_block)
    if evidence is not None:
        d = np.concatenate([evidence, d])
    thin = slice(None, None, horizon)  # non-overlapping labels for h > 1
    weights = _fit_weights(z[thin], up_block[thin].astype(np.float64))
    return refit_direction(weights, features, close, segment, y, np.concatenate([inner, block]), d, horizon, seed)


def refit_direction(
    weights: np.ndarray, features: np.ndarray, close: np.ndarray, segment: np.ndarray, y: np.ndarray,
    history: np.ndarray, evidence: np.ndarray, horizon: int, seed: int,
) -> DirectionStack:
    """The stack with ``weights`` (3,) and its components fitted on the ``history`` positions, gated on the
    out-of-sample ``evidence`` (per-bar log loss of the boosted model minus the base rate's, time order)."""
    gate_t = diebold_mariano(evidence, hac_lags(horizon))[0]
    up = y[history] > 0
    components = fit_components(direction_inputs(features, close, segment, history, horizon), up, seed)
    active = gate_t is not None and gate_t < (GATE_T if horizon == 1 else GATE_T_MULTI_BAR)
    return DirectionStack(components, np.asarray(weights, dtype=np.float64), base_rate(up, horizon), active,
                          None if gate_t is None else float(gate_t))
