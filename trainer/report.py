"""A job's human-readable results: PNG plots + ``report.html`` (matplotlib, Agg) and the CLI summary table.

Plots: ``reliability.png`` (pooled p_up reliability diagram, calibrated and raw, one line when they are equal,
beside the GARCH baseline), ``pit.png`` (PIT histograms of the model and the baselines; flat = calibrated
distribution) and ``loss_curves.png`` (training and validation loss per epoch, one line pair per fold). Every file is written
atomically.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: the worker and CI are headless
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from trainer.atomic import atomic_write_bytes, atomic_write_text  # noqa: E402
from trainer.config import TrainingConfig  # noqa: E402
from trainer.metrics import reliability_table  # noqa: E402
from trainer.scoreboard import BASELINES, DISTRIBUTION_BASELINES, SCORE_LABELS, SUMMARY_ROWS  # noqa: E402

PLOTS = ("reliability.png", "pit.png", "loss_curves.png")


def _fmt(value: Any, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


def _save(fig: plt.Figure, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def reliability_series(metrics: dict, predictions: pd.DataFrame) -> list[tuple[str, dict]]:
    """The reliability diagram's lines as (legend label, reliability table): the model calibrated and raw, as one
    line labelled ``model (calibrated = raw)`` when every calibrated p_up equals its raw one (the default ``abs``
    calibration with the direction stack leaves p_up as it is: two lines would be drawn one on top of the other),
    then the GARCH baseline."""
    pooled = metrics["pooled"]
    calibrated = pooled["model"]["reliability"]
    if np.array_equal(predictions["p_up"].to_numpy(), predictions["p_up_raw"].to_numpy()):
        series = [("model (calibrated = raw)", calibrated)]
    else:
        outcome = predictions["y"].to_numpy() > 0
        raw = reliability_table(predictions["p_up_raw"].to_numpy(), outcome)
        series = [("model (calibrated)", calibrated), ("model (raw)", raw)]
    return series + [(name, pooled["baselines"][name]["reliability"]) for name in ("garch",)
                     if name in pooled["baselines"]]


def plot_reliability(metrics: dict, predictions: pd.DataFrame, path: Path) -> None:
    """Reliability diagram of pooled p_up: observed up-frequency against mean p_up per quantile bin
    (``reliability_series``)."""
    fig, ax = plt.subplots(figsize=(5, 5))
    series = reliability_series(metrics, predictions)
    values = [v for _, table in series for v in (*table["p_mean"], *table["freq"])]
    low, high = min(values + [0.45]), max(values + [0.55])
    ax.plot([low, high], [low, high], color="grey", lw=1, ls="--", label="perfect")
    for label, table in series:
        ax.plot(table["p_mean"], table["freq"], marker="o", ms=4, label=label)
    ax.set(xlabel="mean predicted P(up)", ylabel="observed up frequency", title="Reliability (10 quantile bins)")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_pit(metrics: dict, path: Path) -> None:
    """PIT histograms (10 bins, fractions) of the model and the baselines; a flat line at 0.1 is ideal."""
    pooled = metrics["pooled"]
    fig, ax = plt.subplots(figsize=(6, 4))
    centres = (np.arange(10) + 0.5) / 10
    ax.bar(centres, pooled["model"]["pit_hist"], width=0.1, alpha=0.6, edgecolor="black", label="model")
    for name in DISTRIBUTION_BASELINES:
        if name in pooled["baselines"]:
            ax.step(centres, pooled["baselines"][name]["pit_hist"], where="mid", label=name)
    ax.axhline(0.1, color="grey", ls="--", lw=1, label="uniform")
    ax.set(xlabel="PIT value", ylabel="fraction of test bars", title="PIT histogram (pooled test bars)")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_loss_curves(metrics: dict, path: Path) -> None:
    """Training (solid) and validation (dashed) loss per epoch for every fold (mean NLL, standardised units)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for entry in metrics["folds"]:
        history = entry.get("history", {})
        epochs = np.arange(1, len(history.get("train_loss", [])) + 1)
        line = ax.plot(epochs, history.get("train_loss", []), label=f"fold {entry['fold']} train")[0]
        ax.plot(epochs, history.get("val_loss", []), ls="--", color=line.get_color(), label=f"fold {entry['fold']} val")
    ax.set(xlabel="epoch", ylabel="loss per sample", title="Loss curves")
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)


def _baselines(pooled: dict) -> list:
    """The registered baselines present in a pooled block, in the registry's order."""
    return [b for b in BASELINES if b.name in pooled["baselines"]]


def summary_rows(metrics: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the pooled summary: each metric for the model and every baseline, and which way is
    better (``trainer.scoreboard.SUMMARY_ROWS``)."""
    pooled = metrics["pooled"]
    bases = _baselines(pooled)
    header = ["metric", "model", *(b.name for b in bases), "better"]
    rows = []
    for row in SUMMARY_ROWS:
        rows.append(
            [row.label, _fmt(pooled["model"].get(row.key), row.fmt)]
            + [_fmt(pooled["baselines"][b.name].get(row.key), row.fmt) for b in bases]
            + [row.better_text]
        )
    for key, label in (("crps_skill", "CRPS skill vs"), ("brier_skill", "Brier skill vs")):
        rows.append([label, ""] + [_fmt(pooled["skill"][b.name].get(key), "{:+.4f}") for b in bases] + ["higher"])
    return header, rows


def headline_lines(metrics: dict) -> list[str]:
    """The headline verdicts (p_up, then the distribution) as sentences; empty for metrics without verdicts."""
    headline = metrics["pooled"].get("verdicts", {}).get("headline", {})
    return [f"{v['text']}." for v in (headline.get("direction"), headline.get("distribution")) if v]


def baseline_verdict_lines(metrics: dict) -> list[str]:
    """One line per baseline: the verdict on each score it is tested on, with t (``metrics.pooled.verdicts``)."""
    verdicts = metrics["pooled"].get("verdicts")
    if not verdicts:
        return []
    words = {"better": "better", "worse": "WORSE", "no_difference": "no difference"}
    width = max(len(b.label) for b in BASELINES)
    lines = []
    for b in _baselines(metrics["pooled"]):
        tests = verdicts["tests"].get(b.name, {})
        parts = [
            f"{SCORE_LABELS[score]} {words[t['verdict']]} (t {'n/a' if t['t'] is None else format(t['t'], '+.1f')})"
            for score, t in tests.items()
        ]
        lines.append(f"  vs {b.label.ljust(width)}  " + ", ".join(parts))
    accuracy = accuracy_line(metrics)
    return lines + ([f"  {accuracy}"] if accuracy else [])


def accuracy_line(metrics: dict) -> str | None:
    """The model's accuracy with its HAC standard error, next to the majority rate; None without verdicts."""
    accuracy = (metrics["pooled"].get("verdicts") or {}).get("accuracy")
    if not accuracy:
        return None
    majority = accuracy.get("majority_rate")
    return (f"accuracy {accuracy['model']:.2%} ± {accuracy['hac_se']:.2%} (HAC s.e.)"
            + (f", majority rate {majority:.2%}" if majority is not None else ""))


def trained_lines(metrics: dict, config: TrainingConfig) -> list[str]:
    """What was trained and on which test bars, in two lines."""
    folds = metrics["folds"]
    network = metrics.get("network") or {}
    net = f"{network['class']} ({network['parameters']:,} parameters)" if network else "the network"
    period = f"{folds[0]['test']['start'][:16]} to {folds[-1]['test']['end'][:16]} UTC" if folds else "no test bars"
    return [
        f"Trained: {config.symbol} {config.timeframe}, horizon {config.forecast_horizon} bar"
        f"{'s' if config.forecast_horizon != 1 else ''}, {config.distribution} distribution, {net} on "
        f"{config.lookback}-bar windows, p_up from {config.p_up_source}, calibration {config.calibration_method}, "
        f"seed {config.seed}",
        f"Tested: {period}, {metrics['pooled']['n']:,} bars in {len(folds)} walk-forward fold(s); "
        f"device {metrics['device']}, {metrics['duration_s']:.1f} s",
    ]


def fold_forecast(fold: dict, config: TrainingConfig) -> str:
    """What forecast the fold's test block, from its ``gates`` (docs/metrics.md): p_up from the stack or, when its
    gate fell back, the base rate (without a stack, ``config.p_up_source``: the predictive CDF or the direction
    head); the distribution from the network or, when its gate fell back, an unconditional fit of the history.
    ``—`` for a fold without gates (older metrics)."""
    gates = fold.get("gates")
    if not gates:
        return "—"
    direction = gates["direction"]
    p_up = config.p_up_source if direction is None else ("stack" if direction["stack"] else "base rate")
    distribution = "network" if gates["distribution"]["network"] else "unconditional fit"
    return f"p_up: {p_up}; distribution: {distribution}"


def data_line(metrics: dict) -> str | None:
    """The dataset the job trained on, from ``metrics["provenance"]["dataset"]`` (``trainer.provenance``): id, rows,
    first and last open time and the first 12 hex digits of its SHA-256; None without provenance."""
    dataset = (metrics.get("provenance") or {}).get("dataset")
    if not dataset:
        return None
    return (f"Data: {dataset['id']}, {dataset['rows']:,} candles, {dataset['first_open_time']} to "
            f"{dataset['last_open_time']}, SHA-256 {dataset['sha256'][:12]}…")


def summary_table(metrics: dict) -> str:
    """The pooled metrics beside the baselines as an aligned plain-text table."""
    header, rows = summary_rows(metrics)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    model = metrics["pooled"]["model"]
    title = f"Pooled over {metrics['pooled']['n']} test bars in {len(metrics['folds'])} fold(s); "
    if model.get("ece_raw") is not None and model.get("ece_raw") == model.get("ece"):
        title += "calibration left p_up as it was (ECE the same before)"
    else:
        title += f"ECE before calibration {_fmt(model.get('ece_raw'), '{:.4f}')}"
    return "\n".join([title, line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def summary_text(metrics: dict, config: TrainingConfig) -> str:
    """What ``candlecast train`` prints: the headline verdicts first, what was trained, the table, then the
    verdict against each baseline."""
    verdicts = baseline_verdict_lines(metrics)
    parts = [*headline_lines(metrics), "", *trained_lines(metrics, config), "", summary_table(metrics)]
    if verdicts:
        parts += ["", "Against each baseline (Diebold–Mariano, HAC; at 5 %):", *verdicts]
    return "\n".join(parts)


def render_html(metrics: dict, config: TrainingConfig) -> str:
    """``report.html``: the verdicts, what was trained, the summary table, per-fold figures and the plots."""
    header, rows = summary_rows(metrics)
    table = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    folds = "".join(
        f"<tr><td>{f['fold']}</td><td>{html.escape(f['train']['start'][:10])} → {html.escape(f['train']['end'][:10])}"
        f"</td><td>{html.escape(f['test']['start'][:10])} → {html.escape(f['test']['end'][:10])}</td>"
        f"<td>{f['test']['n']}</td><td>{f['epochs_run']}</td><td>{_fmt(f['model'].get('crps'), '{:.6f}')}</td>"
        f"<td>{_fmt(f['skill'].get('climatology', {}).get('crps_skill'), '{:+.4f}')}</td>"
        f"<td>{_fmt(f['model'].get('accuracy'), '{:.4f}')}</td><td>{_fmt(f['model'].get('ece'), '{:.4f}')}</td>"
        f"<td>{html.escape(fold_forecast(f, config))}</td></tr>"
        for f in metrics["folds"]
    )
    settings = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in config.model_dump().items()
    )
    images = "".join(f'<p><img src="{name}" alt="{name}"></p>' for name in PLOTS)
    headlines = "".join(f"<p class=verdict>{html.escape(line)}</p>" for line in headline_lines(metrics))
    verdicts = metrics["pooled"].get("verdicts") or {}
    colours = {"better": "#1a7f37", "worse": "#c62828", "no_difference": "#555"}
    sentences = "".join(
        f'<li style="color:{colours[t["verdict"]]}">{html.escape(t["text"])}</li>'
        for b in _baselines(metrics["pooled"]) for t in verdicts.get("tests", {}).get(b.name, {}).values()
    )
    accuracy = f"<p>{html.escape(accuracy_line(metrics) or '')}</p>"
    method = (
        f"Diebold–Mariano t of the per-bar score difference (model − baseline; negative: the model is better) "
        f"with a Newey–West standard error ({verdicts.get('hac_lags')} lags); skill = 1 − model / baseline with a "
        f"95 % stationary block-bootstrap interval (mean block {verdicts.get('block_length')} bars, "
        f"{verdicts.get('bootstrap_reps')} resamples, seed {verdicts.get('seed')}); significance at 5 %. "
        f"Definitions: docs/metrics.md."
    ) if verdicts else ""
    lines = trained_lines(metrics, config) + [line for line in (data_line(metrics),) if line]
    trained = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Candlecast report — {html.escape(config.symbol)} {config.timeframe}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child{{text-align:left}}
.verdict{{font-size:1.2em;font-weight:bold}}</style></head>
<body><h1>{html.escape(config.symbol)} {config.timeframe}: {config.distribution}, horizon {config.forecast_horizon}</h1>
<h2>Verdicts</h2>{headlines}
{trained}
<h2>Against each baseline</h2><ul>{sentences}</ul>{accuracy}<p><small>{html.escape(method)}</small></p>
<h2>Pooled test metrics</h2><p>{html.escape(summary_table(metrics).splitlines()[0])}</p><table><tr>{table}</tr>{body}</table>
<h2>Folds</h2><table><tr><th>fold</th><th>train</th><th>test</th><th>test bars</th><th>epochs</th><th>CRPS</th>
<th>CRPS skill vs climatology</th><th>accuracy</th><th>ECE</th><th>forecast by</th></tr>{folds}</table>
<h2>Plots</h2>{images}
<h2>Configuration</h2><table>{settings}</table>
</body></html>
"""


def write_report(job_dir: Path, metrics: dict, config: TrainingConfig, predictions: pd.DataFrame) -> Path:
    """Write the three PNG plots and ``report.html`` into ``job_dir``; returns the report's path."""
    plot_reliability(metrics, predictions, job_dir / PLOTS[0])
    plot_pit(metrics, job_dir / PLOTS[1])
    plot_loss_curves(metrics, job_dir / PLOTS[2])
    return atomic_write_text(job_dir / "report.html", render_html(metrics, config))
