"""The predictor process: ``python -m trainer.predictor`` (frozen: ``candlecast predictor``), the worker-side
process that answers the server's forecast, fingerprint, comparison and sweep importance requests, so torch,
scikit-learn and Optuna's importance evaluators never enter the server process.

Protocol, one JSON object per line: the server writes requests on stdin, ``{"id", "op": "predict", "job_dir",
"request"}`` (``trainer.forecasting.forecast``) or ``{"id", "op": "fingerprint", "config"}``
(``trainer.forecasting.current_fingerprint``) or ``{"id", "op": "compare", "job_dirs"}``
(``trainer.comparison.compare_jobs``) or ``{"id", "op": "importance", "journal", "study"}`` (a sweep's parameter
importance, its Optuna journal file read only: ``trainer.sweep_importance.param_importances``); the process answers
each on stdout, in order, with ``{"id", "ok": true, "result"}`` or ``{"id", "ok": false, "status", "detail", "loc"?}``
(``status``: the HTTP status of the refusal, 500 for an unexpected fault, whose traceback goes to stderr). It imports
torch and the trainer before the first request, then stays up, so a forecast costs the prediction alone. EOF on
stdin ends it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from trainer.worker import take_stdout

log = logging.getLogger("trainer.predictor")


def answer(message: dict[str, Any]) -> dict[str, Any]:
    """The answer to one request line (module doc)."""
    from trainer.comparison import ComparisonRefused, compare_jobs
    from trainer.forecasting import ForecastRefused, current_fingerprint, forecast
    from trainer.sweep_importance import param_importances

    ident = message.get("id")
    try:
        if message.get("op") == "predict":
            result = forecast(Path(message["job_dir"]), message.get("request") or {})
        elif message.get("op") == "fingerprint":
            result = current_fingerprint(message["config"])
        elif message.get("op") == "compare":
            result = compare_jobs([Path(d) for d in message["job_dirs"]])
        elif message.get("op") == "importance":
            result = param_importances(Path(message["journal"]), message["study"])
        else:
            return {"id": ident, "ok": False, "status": 400, "detail": f"unknown op {message.get('op')!r}"}
    except ForecastRefused as exc:
        return {"id": ident, "ok": False, "status": exc.status, "detail": str(exc), "loc": exc.loc}
    except ComparisonRefused as exc:
        return {"id": ident, "ok": False, "status": 409, "detail": str(exc)}
    except Exception as exc:  # a fault answers this request only; the process serves the next one
        log.exception("predictor request %s failed", ident)
        return {"id": ident, "ok": False, "status": 500, "detail": f"{type(exc).__name__}: {exc}"}
    return {"id": ident, "ok": True, "result": result}


def run(args: argparse.Namespace | None = None) -> int:
    """Serve requests from stdin until EOF (module doc); returns 0."""
    out = take_stdout()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import torch

    import trainer.comparison  # noqa: F401  (torch and the trainer load before the first request)
    import trainer.forecasting  # noqa: F401
    import trainer.train  # noqa: F401

    # One forecast is a few hundred rows through a small network: one thread halves its latency on a busy 2-core
    # machine (more threads only wait for each other and for the training worker).
    torch.set_num_threads(1)

    log.info("predictor ready")
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            message = json.loads(line)
            reply = answer(message) if isinstance(message, dict) else {"id": None, "ok": False, "status": 400,
                                                                        "detail": "a request is a JSON object"}
        except ValueError:
            reply = {"id": None, "ok": False, "status": 400, "detail": "a request line is not JSON"}
        out.write(json.dumps(reply, allow_nan=False) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(run())
