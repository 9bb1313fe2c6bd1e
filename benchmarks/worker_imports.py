"""The worker's start (issue "Fast and light", goal 5): what a cold worker imports before it can load the data
and say ``training.started``, per top-level package, against everything the default job imports by its end.

A cold worker (no warm spare, or ``candlecast train``) imports ``trainer.worker``, then ``trainer.train`` once the
config is good (``trainer.worker.run_worker``); modules that only some stages or jobs need (``arch`` for the
GARCH baseline and the verdicts' bootstrap, ``statsmodels``, ``scipy.signal``, scikit-learn's estimators and
metrics, matplotlib for the report)
are imported inside the functions that use them. Each round starts two fresh interpreters with ``-X importtime``,
taking turns so both see the same load:

- **start**: ``import trainer.worker, trainer.train`` (the worker before its data load);
- **whole job**: the same plus ``trainer.worker.LATER_IMPORTS``, the modules the default job imports later (what
  the start cost when they were imported at the top of the trainer's modules).

Run: ``.venv/bin/python benchmarks/worker_imports.py [--rounds 3]``. Prints the median wall time of each and their
ratio, the top packages of the start by import time (``-X importtime`` self times summed per top-level package),
and whether any of ``LATER_IMPORTS`` is still imported at start. Figures go in ``docs/benchmarks.md`` ("Server").
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from trainer.worker import LATER_IMPORTS

ROOT = Path(__file__).resolve().parents[1]
START = "import trainer.worker, trainer.train"
LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s+(\s*)(\S+)")


def one_run(code: str) -> tuple[float, dict[str, float], set[str]]:
    """Wall seconds of a fresh ``python -X importtime -c code``, self seconds per top-level package, modules."""
    wrapped = f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", wrapped], cwd=ROOT, capture_output=True, text=True, check=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    per_package: dict[str, float] = defaultdict(float)
    modules = set()
    for match in LINE.finditer(done.stderr):
        name = match.group(4)
        modules.add(name)
        per_package[name.split(".")[0]] += int(match.group(1)) / 1e6
    return float(done.stdout.strip().splitlines()[-1]), per_package, modules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="fresh interpreters per variant (default 3)")
    parser.add_argument("--top", type=int, default=10, help="packages listed (default 10)")
    args = parser.parse_args(argv)
    whole = START + "".join(f"; import {name}" for name in LATER_IMPORTS)
    start_s, whole_s, packages = [], [], defaultdict(list)
    at_start: set[str] = set()
    for _ in range(args.rounds):
        seconds, per_package, modules = one_run(START)
        start_s.append(seconds)
        at_start |= modules
        for name, value in per_package.items():
            packages[name].append(value)
        whole_s.append(one_run(whole)[0])
    start, job = statistics.median(start_s), statistics.median(whole_s)
    print(f"worker start imports ({START}): median {start:.2f} s  "
          f"({', '.join(f'{s:.2f}' for s in start_s)}; {args.rounds} fresh interpreters)")
    print(f"the same + what the default job imports later: median {job:.2f} s  ({', '.join(f'{s:.2f}' for s in whole_s)})")
    print(f"start / whole job: {start / job:.2f}   (the difference, {job - start:.2f} s, comes after training.started, "
          "in the stages that use those modules)")
    print(f"top packages at start (median self time of -X importtime, summed per package; total {sum(statistics.median(v) for v in packages.values()):.2f} s):")
    for name, values in sorted(packages.items(), key=lambda item: -statistics.median(item[1]))[: args.top]:
        print(f"  {name:<18} {statistics.median(values):6.2f} s")
    eager = sorted(name for name in LATER_IMPORTS if name in at_start)
    print(f"imported at start although only later stages need them: {', '.join(eager) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
