"""``trainer.processes.end_process``: the one terminate → wait → kill of tests, benchmarks and the smoke test."""

from __future__ import annotations

import signal
import subprocess
import sys

from trainer.processes import end_process


def test_a_process_that_exits_on_sigterm_is_not_killed() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    code, killed = end_process(proc, grace_s=30)
    assert (code, killed) == (-signal.SIGTERM, False)


def test_a_process_that_ignores_the_signal_is_killed_after_the_grace() -> None:
    ignore = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", ignore], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    code, killed = end_process(proc, grace_s=0.5)
    assert (code, killed) == (-signal.SIGKILL, True)
    proc.stdout.close()


def test_a_process_that_already_ended_is_left_alone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    assert end_process(proc) == (3, False)
