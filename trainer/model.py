"""The forecaster network, its loss, and the training loop (MODEL.md, "Model and loss"). Worker-side: imports torch.

The default model is a small MLP over the flattened window of scaled features; ``gru`` runs a GRU over the
window's bars instead (``NETWORKS``, one entry per name of ``trainer.names.MODEL_KINDS``). Its distribution head gives,
in *standardised* return units (``(y - y_mean) / y_std`` of the training block), a location ``mu``, a scale
``sigma = softplus(.) + SIGMA_FLOOR`` and, for Student-t, degrees of freedom ``nu = NU_MIN + softplus(.)``.
The loss is the negative log-likelihood of the chosen family; an optional direction head (logit of P(r > 0))
adds binary cross-entropy (``p_up_source="head"``).

Batches are drawn by batched tensor indexing: the scaled (n_bars, F) feature matrix and the labels live on the
device once, and a batch of windows is ``x[t[:, None] + offsets]`` — no per-sample ``DataLoader``. The optimiser is AdamW (``WEIGHT_DECAY``).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainer.names import DISTRIBUTIONS
#: Smallest scale, in standardised units (1/1000 of the training returns' standard deviation).
SIGMA_FLOOR = 1e-3
#: Smallest Student-t degrees of freedom: above 2 the variance is finite.
NU_MIN = 2.0
#: Epochs without a better validation loss before training stops (the best weights are restored); the job's
#: value is ``TrainingConfig.patience``.
PATIENCE = 3
#: AdamW's decoupled weight decay; the job's value is ``TrainingConfig.weight_decay`` (docs/model.md).
WEIGHT_DECAY = 1.0
#: Samples per forward pass when evaluating (no gradients, so larger than a training batch).
EVAL_BATCH = 8192


class TrainingStopped(Exception):
    """Raised between batches when the caller asked the job to stop."""


@dataclass(frozen=True)
class ModelArgs:
    """Everything needed to rebuild the network (stored in ``model.pt``)."""

    lookback: int
    n_features: int
    family: str
    direction_head: bool
    hidden: int = 64
    layers: int = 2
    dropout: float = 0.5
    kind: str = "mlp"
    #: Feature columns fed for every bar of the window; the others only for the window's last bar.
    #: None = every column for every bar.
    window_columns: tuple[int, ...] | None = None

    def to_dict(self) -> dict:
        """JSON-safe form."""
        return asdict(self)


@dataclass
class Output:
    """One forward pass, each (B,) float: ``mu`` and ``sigma`` standardised, ``nu`` (Student-t only), ``logit``
    of the direction head (only when it exists)."""

    mu: torch.Tensor
    sigma: torch.Tensor
    nu: torch.Tensor | None = None
    logit: torch.Tensor | None = None


def _check_family(args: ModelArgs) -> None:
    if args.family not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {args.family!r} (expected one of {', '.join(DISTRIBUTIONS)})")


class _Forecaster(nn.Module):
    """What every network shares: the distribution head (and the optional direction head) that turns a
    (B, width) representation into an ``Output``, and the split of the feature columns into those fed for every
    bar of the window (``window_index``) and those fed for its last bar only (``last_index``)."""

    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        _check_family(args)
        self.args = args
        every = tuple(range(args.n_features))
        window = every if args.window_columns is None else tuple(args.window_columns)
        last_only = tuple(c for c in every if c not in window)
        self.register_buffer("window_index", torch.tensor(window, dtype=torch.long), persistent=False)
        self.register_buffer("last_index", torch.tensor(last_only, dtype=torch.long), persistent=False)

    def _init_heads(self, width: int) -> None:
        self.dist_head = nn.Linear(width, 3 if self.args.family == "student_t" else 2)
        self.direction_head = nn.Linear(width, 1) if self.args.direction_head else None

    def _output(self, h: torch.Tensor) -> Output:
        raw = self.dist_head(h)
        out = Output(mu=raw[:, 0], sigma=F.softplus(raw[:, 1]) + SIGMA_FLOOR)
        if self.args.family == "student_t":
            out.nu = NU_MIN + F.softplus(raw[:, 2])
        if self.direction_head is not None:
            out.logit = self.direction_head(h)[:, 0]
        return out


class MLPForecaster(_Forecaster):
    """MLP over a (B, lookback, n_features) window → ``Output``. Hidden layers: Linear → GELU → Dropout."""

    def __init__(self, args: ModelArgs) -> None:
        super().__init__(args)
        width = args.lookback * len(self.window_index) + len(self.last_index)
        body: list[nn.Module] = []
        for _ in range(args.layers):
            body += [nn.Linear(width, args.hidden), nn.GELU(), nn.Dropout(args.dropout)]
            width = args.hidden
        self.body = nn.Sequential(*body)
        self._init_heads(width)

    def forward(self, x: torch.Tensor) -> Output:
        flat = torch.cat([x[:, :, self.window_index].flatten(1), x[:, -1, self.last_index]], dim=1)
        return self._output(self.body(flat))


class GRUForecaster(_Forecaster):
    """GRU over the window's bars (the ``window_columns`` of each bar), its last hidden state joined with the
    last bar's other columns → Dropout → ``Output``. ``layers`` stacked GRU layers of ``hidden`` units."""

    def __init__(self, args: ModelArgs) -> None:
        super().__init__(args)
        self.gru = nn.GRU(len(self.window_index), args.hidden, num_layers=args.layers, batch_first=True)
        self.dropout = nn.Dropout(args.dropout)
        self._init_heads(args.hidden + len(self.last_index))

    def forward(self, x: torch.Tensor) -> Output:
        _, hidden = self.gru(x[:, :, self.window_index])
        return self._output(self.dropout(torch.cat([hidden[-1], x[:, -1, self.last_index]], dim=1)))


#: The network of each model kind (``trainer.names.MODEL_KINDS``).
NETWORKS: dict[str, type[nn.Module]] = {"mlp": MLPForecaster, "gru": GRUForecaster}


def build_model(args: ModelArgs) -> nn.Module:
    """The network for ``args`` (``args.kind`` one of ``NETWORKS``); ValueError for an unknown kind or family."""
    if args.kind not in NETWORKS:
        raise ValueError(f"unknown model kind {args.kind!r} (expected one of {', '.join(NETWORKS)})")
    return NETWORKS[args.kind](args)


def nll(family: str, out: Output, y: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood per sample, (B,), of standardised labels ``y`` (B,) under ``out``.

    Closed forms (z = (y - mu) / sigma): Gaussian ½log 2π + log σ + ½z²; Laplace log 2σ + |z|; Student-t
    −[lnΓ((ν+1)/2) − lnΓ(ν/2) − ½ln(νπ) − ln σ − (ν+1)/2 · ln(1 + z²/ν)] (the location-scale densities, e.g.
    scipy.stats ``norm``, ``laplace``, ``t``).
    """
    z = (y - out.mu) / out.sigma
    log_sigma = torch.log(out.sigma)
    if family == "gaussian":
        return 0.5 * math.log(2 * math.pi) + log_sigma + 0.5 * z * z
    if family == "laplace":
        return math.log(2.0) + log_sigma + z.abs()
    if family == "student_t":
        nu = out.nu
        return (
            torch.lgamma(nu / 2)
            - torch.lgamma((nu + 1) / 2)
            + 0.5 * torch.log(nu * math.pi)
            + log_sigma
            + (nu + 1) / 2 * torch.log1p(z * z / nu)
        )
    raise ValueError(f"unknown distribution {family!r}")


def loss_terms(model: nn.Module, x: torch.Tensor, y: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """Per-sample loss (B,): NLL of ``y`` plus, with a direction head, BCE of ``up`` (B,) float 0/1."""
    out = model(x)
    loss = nll(model.args.family, out, y)
    if out.logit is not None:
        loss = loss + F.binary_cross_entropy_with_logits(out.logit, up, reduction="none")
    return loss


def select_device(requested: str) -> torch.device:
    """``auto`` → CUDA if available, then MPS, else CPU; ``cuda``/``mps`` must exist (``ValueError`` if not)."""
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if requested == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if requested == "cuda" and not cuda:
        raise ValueError("device 'cuda' was requested but this machine has no usable CUDA GPU (use auto or cpu)")
    if requested == "mps" and not mps:
        raise ValueError("device 'mps' was requested but Apple MPS is not available here (use auto or cpu)")
    return torch.device(requested)


def configure_torch(seed: int, device: torch.device) -> None:
    """Seed every generator and make kernels deterministic; on CPU use ``cpu_threads()`` intra-op threads.

    ``CUBLAS_WORKSPACE_CONFIG`` is set before CUDA starts because deterministic cuBLAS needs it. On CUDA/MPS
    a kernel without a deterministic version only warns (MODEL.md promises determinism on CPU).
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads())


def cpu_threads() -> int:
    """Intra-op threads for this small model: ``CANDLECAST_TORCH_THREADS`` if set, else 1.

    One thread is the measured best on a shared 2-core machine (docs/benchmarks.md): the matrices are small,
    so extra threads mostly add synchronisation, and oversubscribed cores were measured 5–13× slower.
    """
    value = os.environ.get("CANDLECAST_TORCH_THREADS", "")
    return max(1, int(value)) if value.isdigit() else 1


@dataclass
class EpochStats:
    """One finished epoch: mean training and validation loss per sample, speed and learning rate; ``final``:
    ``fit`` stops after this epoch (the last allowed one, or early stopping ran out of patience)."""

    epoch: int
    train_loss: float
    val_loss: float
    samples_per_s: float
    lr: float
    final: bool = False


@dataclass
class FitResult:
    """Outcome of ``fit``: epochs actually run, the best validation loss and its epoch, and the history."""

    epochs_run: int
    best_val_loss: float
    best_epoch: int
    history: list[EpochStats] = field(default_factory=list)


def _sum_dtype(device: torch.device) -> torch.dtype:
    """Loss sums stay on the device (no sync per batch) in float64, except on MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def _windows(x: torch.Tensor, positions: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    return x[positions[:, None] + offsets]


@torch.no_grad()
def mean_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, up: torch.Tensor, positions: torch.Tensor) -> float:
    """Mean per-sample loss over ``positions`` in eval mode (dropout off)."""
    model.eval()
    offsets = torch.arange(-model.args.lookback + 1, 1, device=x.device)
    dtype = _sum_dtype(x.device)
    total = torch.zeros((), dtype=dtype, device=x.device)
    for start in range(0, len(positions), EVAL_BATCH):
        t = positions[start : start + EVAL_BATCH]
        total += loss_terms(model, _windows(x, t, offsets), y[t], up[t]).sum(dtype=dtype)
    model.train()
    return float(total) / max(1, len(positions))


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    up: torch.Tensor,
    train_positions: torch.Tensor,
    val_positions: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    patience: int = PATIENCE,
    weight_decay: float = WEIGHT_DECAY,
    on_epoch: Callable[[EpochStats], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FitResult:
    """Train ``model`` with AdamW on NLL (+BCE) and early stopping on the validation loss; restore the best weights.

    ``x``: (n_bars, F) float32 scaled features; ``y``: (n_bars,) float32 standardised labels; ``up``: (n_bars,)
    float32 1.0 where the raw label is > 0; all on the model's device. ``*_positions``: int64 bar positions of
    the samples (windows end there). Shuffling uses a CPU generator seeded with ``seed``, so the batch order is
    the same on every device. ``should_stop`` is checked before every batch; when it returns true,
    ``TrainingStopped`` is raised. ``on_epoch`` receives each epoch's ``EpochStats``.
    """
    device = x.device
    offsets = torch.arange(-model.args.lookback + 1, 1, device=device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    best_loss, best_epoch, best_state = math.inf, 0, None
    result = FitResult(epochs_run=0, best_val_loss=math.inf, best_epoch=0)
    n = len(train_positions)
    model.train()
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        order = train_positions[torch.randperm(n, generator=generator).to(device)]
        total = torch.zeros((), dtype=_sum_dtype(device), device=device)
        for start in range(0, n, batch_size):
            if should_stop is not None and should_stop():
                raise TrainingStopped
            t = order[start : start + batch_size]
            loss = loss_terms(model, _windows(x, t, offsets), y[t], up[t])
            optimiser.zero_grad(set_to_none=True)
            loss.mean().backward()
            optimiser.step()
            total += loss.detach().sum(dtype=total.dtype)
        train_loss = float(total) / n
        val_loss = mean_loss(model, x, y, up, val_positions)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise FloatingPointError(
                f"the loss became non-finite in epoch {epoch} (train {train_loss}, validation {val_loss}); "
                f"try a lower learning_rate"
            )
        samples_per_s = n / max(time.perf_counter() - started, 1e-9)
        if val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        # Decided before on_epoch so that progress reporting knows the fold ends here (early stopping).
        final = epoch == epochs or epoch - best_epoch >= patience
        stats = EpochStats(epoch, train_loss, val_loss, samples_per_s, learning_rate, final)
        result.history.append(stats)
        result.epochs_run = epoch
        if on_epoch is not None:
            on_epoch(stats)
        if final:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    result.best_val_loss, result.best_epoch = best_loss, best_epoch
    return result


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, positions: torch.Tensor) -> dict[str, np.ndarray]:
    """Forecasts at ``positions`` in standardised units: ``{"mu", "sigma", "nu"?, "logit"?}`` → (m,) float64."""
    model.eval()
    offsets = torch.arange(-model.args.lookback + 1, 1, device=x.device)
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(positions), EVAL_BATCH):
        out = model(_windows(x, positions[start : start + EVAL_BATCH], offsets))
        for name in ("mu", "sigma", "nu", "logit"):
            value = getattr(out, name)
            if value is not None:
                parts.setdefault(name, []).append(value.cpu().double().numpy())
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}
