"""Training-loop speed: the product's loop vs a bare PyTorch loop vs a per-sample DataLoader.

All three train the same network (the default MLP, Student-t head) on the same samples: the bundled BTCUSDT 1 h
candles, default lookback, the training block of the last walk-forward fold. Prints samples/s of each and the
ratios; the goal is product / bare >= 0.9 (the product's loop adds stop checks, loss bookkeeping and a
validation pass per epoch). Then times the product loop with 1 and 2 torch threads.

    .venv/bin/python benchmarks/train_loop.py [--epochs 3] [--loader-batches 40] [--rounds 3]

Speed varies with what else runs on the machine: compare ratios from one run, not absolute figures.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from trainer.config import TrainingConfig
from trainer.data.store import load_dataset
from trainer.features import FEATURE_NAMES, WINDOW_FEATURES, Scaler, build_samples
from trainer.model import ModelArgs, build_model, configure_torch, fit, loss_terms
from trainer.splits import walk_forward


def prepare(config: TrainingConfig):
    """Scaled features, labels and the train/validation positions of the last fold (as the job builds them)."""
    candles = load_dataset(config.symbol, config.timeframe).candles
    samples = build_samples(candles, config.timeframe, config.lookback, config.forecast_horizon)
    fold = walk_forward(samples.positions, config.forecast_horizon, config.cv_folds)[-1]
    scaler = Scaler.fit(samples, fold.train)
    x = torch.from_numpy(scaler.transform_features(samples.features))
    y = torch.from_numpy(((samples.y - scaler.y_mean) / scaler.y_std).astype(np.float32))
    up = torch.from_numpy((samples.y > 0).astype(np.float32))
    args = ModelArgs(
        lookback=config.lookback, n_features=len(FEATURE_NAMES), family=config.distribution, direction_head=False,
        window_columns=tuple(FEATURE_NAMES.index(n) for n in WINDOW_FEATURES),
    )
    return x, y, up, torch.from_numpy(fold.train), torch.from_numpy(fold.validation), args


def product_loop(data, config: TrainingConfig, epochs: int) -> float:
    """samples/s of ``trainer.model.fit`` (early stopping off: patience > epochs)."""
    x, y, up, train, val, args = data
    torch.manual_seed(0)
    model = build_model(args)
    started = time.perf_counter()
    fit(model, x, y, up, train, val, epochs=epochs, batch_size=config.batch_size,
        learning_rate=config.learning_rate, seed=0, patience=epochs + 1, should_stop=lambda: False)
    return epochs * len(train) / (time.perf_counter() - started)


def bare_loop(data, config: TrainingConfig, epochs: int) -> float:
    """samples/s of the shortest correct loop: batched tensor indexing, forward, backward, step."""
    x, y, up, train, _, args = data
    torch.manual_seed(0)
    model = build_model(args)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=1.0)
    offsets = torch.arange(-args.lookback + 1, 1)
    started = time.perf_counter()
    for _ in range(epochs):
        order = train[torch.randperm(len(train))]
        for start in range(0, len(order), config.batch_size):
            t = order[start : start + config.batch_size]
            loss = loss_terms(model, x[t[:, None] + offsets], y[t], up[t]).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return epochs * len(train) / (time.perf_counter() - started)


class WindowDataset(torch.utils.data.Dataset):
    """One sample per ``__getitem__``: the (lookback, F) window, its label and its up flag."""

    def __init__(self, x, y, up, positions, lookback):
        self.x, self.y, self.up, self.positions, self.lookback = x, y, up, positions, lookback

    def __len__(self):
        return len(self.positions)

    def __getitem__(self, i):
        t = int(self.positions[i])
        return self.x[t - self.lookback + 1 : t + 1], self.y[t], self.up[t]


def dataloader_loop(data, config: TrainingConfig, batches: int) -> float:
    """samples/s of the same training with a per-sample ``DataLoader`` (default collate, no workers)."""
    x, y, up, train, _, args = data
    torch.manual_seed(0)
    model = build_model(args)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=1.0)
    loader = torch.utils.data.DataLoader(
        WindowDataset(x, y, up, train, args.lookback), batch_size=config.batch_size, shuffle=True
    )
    seen = 0
    started = time.perf_counter()
    for i, (xb, yb, ub) in enumerate(loader):
        if i == batches:
            break
        loss = loss_terms(model, xb, yb, ub).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        seen += len(yb)
    return seen / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs for the product and bare loops")
    parser.add_argument("--loader-batches", type=int, default=40, help="batches for the (slow) DataLoader loop")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; the best of each is kept")
    options = parser.parse_args()
    config = TrainingConfig()
    configure_torch(0, torch.device("cpu"))
    data = prepare(config)
    print(f"{len(data[3])} training samples, lookback {config.lookback}, batch {config.batch_size}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    bare_loop(data, config, 1)  # warm-up: first-call allocations and kernel selection
    # Interleaved rounds, best of each: other processes on a shared machine only ever slow a run down.
    runs: dict[str, list[float]] = {"product": [], "bare": [], "loader": []}
    for _ in range(options.rounds):
        runs["product"].append(product_loop(data, config, options.epochs))
        runs["bare"].append(bare_loop(data, config, options.epochs))
        runs["loader"].append(dataloader_loop(data, config, options.loader_batches))
    product, bare, loader = (max(runs[k]) for k in ("product", "bare", "loader"))
    print(f"best of {options.rounds} rounds:")
    print(f"product loop      {product:10.0f} samples/s")
    print(f"bare loop         {bare:10.0f} samples/s")
    print(f"DataLoader loop   {loader:10.0f} samples/s")
    print(f"product / bare        {product / bare:6.2f}   (goal >= 0.9)")
    print(f"product / DataLoader  {product / loader:6.2f}")
    threads: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(options.rounds):
        for n in threads:
            torch.set_num_threads(n)
            threads[n].append(product_loop(data, config, options.epochs))
    for n, speeds in threads.items():
        print(f"product loop, {n} thread(s): {max(speeds):10.0f} samples/s")
    print(f"2 threads / 1 thread  {max(threads[2]) / max(threads[1]):6.2f}")

if __name__ == "__main__":
    main()
