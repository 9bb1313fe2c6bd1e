"""A job's human-readable results: PNG plots + ``report.html`` (matplotlib, Agg) and the CLI summary table.

Plots: ``reliability.png`` (pooled p_up reliability diagram, calibrated and raw, beside the GARCH baseline),
``pit.png`` (PIT histograms of the model and the baselines; flat = calibrated distribution) and
``loss_curves.png`` (training and validation loss per epoch, one line pair per fold). Every file is written
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

PLOTS = ("reliability.png", "pit.png", "loss_curves.png")
BASELINES = ("climatology", "ewma", "garch")

#: Rows of the summary table: (metric key, label, format, "lower" or "higher" is better).
SUMMARY_ROWS = (
    ("crps", "CRPS", "{:.6f}", "lower"),
    ("nll", "NLL", "{:.4f}", "lower"),
    ("pit_ks", "PIT KS", "{:.4f}", "lower"),
    ("coverage_50", "coverage 50%", "{:.3f}", "0.50"),
    ("coverage_80", "coverage 80%", "{:.3f}", "0.80"),
    ("coverage_95", "coverage 95%", "{:.3f}", "0.95"),
    ("brier", "Brier", "{:.5f}", "lower"),
    ("log_loss", "log loss", "{:.5f}", "lower"),
    ("ece", "ECE", "{:.4f}", "lower"),
    ("calibration_in_the_large", "cal. in the large", "{:+.4f}", "0"),
    ("accuracy", "accuracy", "{:.4f}", "higher"),
    ("roc_auc", "ROC AUC", "{:.4f}", "higher"),
)


def _fmt(value: Any, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


def _save(fig: plt.Figure, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def plot_reliability(metrics: dict, predictions: pd.DataFrame, path: Path) -> None:
    """Reliability diagram of pooled p_up: observed up-frequency against mean p_up per quantile bin."""
    pooled = metrics["pooled"]
    outcome = predictions["y"].to_numpy() > 0
    raw = reliability_table(predictions["p_up_raw"].to_numpy(), outcome)
    fig, ax = plt.subplots(figsize=(5, 5))
    series = [("model (calibrated)", pooled["model"]["reliability"]), ("model (raw)", raw)]
    series += [(name, pooled["baselines"][name]["reliability"]) for name in ("garch",) if name in pooled["baselines"]]
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
    for name in BASELINES:
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


def summary_rows(metrics: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the pooled summary: each metric for the model and the three baselines."""
    pooled = metrics["pooled"]
    names = [n for n in BASELINES if n in pooled["baselines"]]
    header = ["metric", "model", *names, "better"]
    rows = []
    for key, label, pattern, better in SUMMARY_ROWS:
        rows.append(
            [label, _fmt(pooled["model"].get(key), pattern)]
            + [_fmt(pooled["baselines"][n].get(key), pattern) for n in names]
            + [better]
        )
    for key, label in (("crps_skill", "CRPS skill vs"), ("brier_skill", "Brier skill vs")):
        rows.append([label, ""] + [_fmt(pooled["skill"][n].get(key), "{:+.4f}") for n in names] + ["higher"])
    return header, rows


def summary_table(metrics: dict) -> str:
    """The pooled metrics beside the baselines as an aligned plain-text table (what ``candlecast train`` prints)."""
    header, rows = summary_rows(metrics)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    model = metrics["pooled"]["model"]
    title = (
        f"Pooled over {metrics['pooled']['n']} test bars in {len(metrics['folds'])} fold(s), "
        f"device {metrics['device']}, {metrics['duration_s']:.1f} s; ECE before calibration "
        f"{_fmt(model.get('ece_raw'), '{:.4f}')}"
    )
    return "\n".join([title, line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def render_html(metrics: dict, config: TrainingConfig) -> str:
    """``report.html``: the configuration, the summary table, per-fold figures and the three plots."""
    header, rows = summary_rows(metrics)
    table = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    folds = "".join(
        f"<tr><td>{f['fold']}</td><td>{html.escape(f['train']['start'][:10])} → {html.escape(f['train']['end'][:10])}"
        f"</td><td>{html.escape(f['test']['start'][:10])} → {html.escape(f['test']['end'][:10])}</td>"
        f"<td>{f['test']['n']}</td><td>{f['epochs_run']}</td><td>{_fmt(f['model'].get('crps'), '{:.6f}')}</td>"
        f"<td>{_fmt(f['skill'].get('climatology', {}).get('crps_skill'), '{:+.4f}')}</td>"
        f"<td>{_fmt(f['model'].get('accuracy'), '{:.4f}')}</td><td>{_fmt(f['model'].get('ece'), '{:.4f}')}</td></tr>"
        for f in metrics["folds"]
    )
    settings = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in config.model_dump().items()
    )
    images = "".join(f'<p><img src="{name}" alt="{name}"></p>' for name in PLOTS)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Candlecast report — {html.escape(config.symbol)} {config.timeframe}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child{{text-align:left}}</style></head>
<body><h1>{html.escape(config.symbol)} {config.timeframe}: {config.distribution}, horizon {config.forecast_horizon}</h1>
<p>{html.escape(summary_table(metrics).splitlines()[0])}</p>
<h2>Pooled test metrics</h2><table><tr>{table}</tr>{body}</table>
<h2>Folds</h2><table><tr><th>fold</th><th>train</th><th>test</th><th>test bars</th><th>epochs</th><th>CRPS</th>
<th>CRPS skill vs climatology</th><th>accuracy</th><th>ECE</th></tr>{folds}</table>
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
