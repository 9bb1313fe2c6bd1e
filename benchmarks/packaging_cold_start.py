"""Cold start of the built executable: seconds from launch to the first HTTP answer of ``serve --port 0``.

    .venv/bin/python benchmarks/packaging_cold_start.py dist/candlecast/candlecast dist/onefile/candlecast [--runs 3]

Each run launches ``EXE serve --port 0`` with a fresh ``CANDLECAST_HOME`` and ``TMPDIR`` (so onefile unpacks
itself every time, as it does for a user), polls its output for the address, then ``GET /`` every 10 ms until a
200, and stops it with SIGTERM. "Cold" means a new process each time; the file cache is whatever the machine has
(not dropped). ``--source`` adds ``python -m desktop_app.cli serve`` from the checkout for comparison. Prints
every run, the median per program, and the ratio of each median to the first program's.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from trainer.processes import end_process

ROOT = Path(__file__).resolve().parent.parent
ADDRESS = re.compile(rb"(http://127\.0\.0\.1:\d+)")


def first_answer(argv: list[str], timeout: float = 120) -> float:
    """Seconds from ``Popen(argv)`` to the first 200 from ``GET /`` (the address read from its output)."""
    with tempfile.TemporaryDirectory(prefix="candlecast-start-") as work:
        env = {k: v for k, v in os.environ.items() if k != "CANDLECAST_PORT"}
        env |= {"CANDLECAST_HOME": str(Path(work) / "home"), "TMPDIR": work}
        if argv[0] == sys.executable:  # from source: find the packages whatever the current directory
            env["PYTHONPATH"] = str(ROOT)
        output = Path(work) / "out"
        with open(output, "wb") as sink:
            started = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=work)
        try:
            url = None
            while time.perf_counter() - started < timeout:
                if proc.poll() is not None:
                    raise RuntimeError(f"{argv[0]} exited with {proc.returncode}: {output.read_text()[-500:]}")
                if url is None:
                    found = ADDRESS.search(output.read_bytes())
                    url = found.group(1).decode() if found else None
                if url is not None:
                    try:
                        if requests.get(url + "/", timeout=5).status_code == 200:
                            return time.perf_counter() - started
                    except requests.ConnectionError:
                        pass
                time.sleep(0.01)
            raise RuntimeError(f"{argv[0]}: no answer within {timeout} s")
        finally:
            end_process(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exes", nargs="+", type=Path, help="built executables to time")
    parser.add_argument("--runs", type=int, default=3, help="launches per program (the median is reported)")
    parser.add_argument("--source", action="store_true", help="also time `python -m desktop_app.cli serve` from source")
    args = parser.parse_args()
    programs = [(str(exe), [str(exe.resolve()), "serve", "--port", "0"]) for exe in args.exes]
    if args.source:
        programs.append(("source (python -m desktop_app.cli)", [sys.executable, "-m", "desktop_app.cli", "serve", "--port", "0"]))
    medians = []
    for name, argv in programs:
        runs = [first_answer(argv) for _ in range(args.runs)]
        medians.append(statistics.median(runs))
        print(f"{name}: median {medians[-1]:.2f} s to the first HTTP answer; runs {', '.join(f'{r:.2f}' for r in runs)}")
    for (name, _), median in zip(programs[1:], medians[1:]):
        print(f"{name} / {programs[0][0]}: {median / medians[0]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
