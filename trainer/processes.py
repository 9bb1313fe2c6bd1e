"""Ending a child process the one way every caller wants: a signal, a bounded wait, then SIGKILL.

Standard library only, so tests, benchmarks and the packaging smoke test share it with the product.
"""

from __future__ import annotations

import signal
import subprocess


def end_process(proc: subprocess.Popen, grace_s: float = 60.0, sig: int = signal.SIGTERM) -> tuple[int, bool]:
    """Send ``sig`` to ``proc`` (if it still runs), wait up to ``grace_s`` seconds, then SIGKILL and reap it.

    Returns ``(exit code, killed)``: ``killed`` is True when ``proc`` ignored ``sig`` for ``grace_s`` and had to be
    killed (callers that expect a clean exit turn that into their own error). Never raises for a process that
    already ended.
    """
    if proc.poll() is not None:
        return proc.returncode, False
    proc.send_signal(sig)
    try:
        return proc.wait(grace_s), False
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(), True
