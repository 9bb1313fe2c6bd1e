"""Parameter importance of a sweep (issue 14's Sweeps tab): Optuna's fANOVA over the complete trials of a real
journal-file study, computed worker-side (``trainer.sweep_importance``, the predictor's ``importance`` op) and served
as ``GET /sweeps/{sweep_id}/importance``. The studies are written here with synthetic trials: no training runs."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState, create_trial
from werkzeug.serving import make_server

from server_fixtures import assert_problem
from desktop_app import messages as m
from desktop_app.api_client import ApiClient
from desktop_app.runtime import Runtime
from embedded_server.sweep_schemas import SweepImportance
from trainer.sweep_importance import ROUGH_BELOW, param_importances
from trainer.sweep_space import SweepRequest

SWEEP_ID = "sw-20260101-000000-abc123"
DISTRIBUTIONS = {
    "learning_rate": FloatDistribution(1e-4, 1e-2, log=True),
    "distribution": CategoricalDistribution(["gaussian", "laplace"]),
    "lookback": IntDistribution(8, 64),
}


def _objective(params: dict[str, Any]) -> float:
    """A log loss that the learning rate drives (a bowl around 1e-3), the others barely."""
    return 0.69 + (math.log10(params["learning_rate"]) + 3) ** 2 + 0.002 * (params["distribution"] == "laplace") \
        + 1e-5 * params["lookback"]


def _write_study(journal: Path, n_complete: int, vary: tuple[str, ...] = tuple(DISTRIBUTIONS),
                 value: Any = _objective) -> None:
    """A study named ``SWEEP_ID`` in ``journal`` with ``n_complete`` complete trials (plus a failed and a pruned one,
    which must not count); options not in ``vary`` keep one value."""
    rng = np.random.default_rng(7)
    journal.parent.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(study_name=SWEEP_ID, storage=JournalStorage(JournalFileBackend(str(journal))),
                                load_if_exists=True)
    fixed = {"learning_rate": 1e-3, "distribution": "gaussian", "lookback": 16}
    for k in range(n_complete + 2):
        params = {
            "learning_rate": float(10 ** rng.uniform(-4, -2)) if "learning_rate" in vary else fixed["learning_rate"],
            "distribution": str(rng.choice(["gaussian", "laplace"])) if "distribution" in vary else "gaussian",
            "lookback": int(rng.integers(8, 65)) if "lookback" in vary else fixed["lookback"],
        }
        state = TrialState.COMPLETE if k < n_complete else (TrialState.FAIL, TrialState.PRUNED)[k - n_complete]
        study.add_trial(create_trial(params=params, distributions=DISTRIBUTIONS, state=state,
                                     value=value(params) if state is TrialState.COMPLETE else None))


def test_importances_sum_to_one_and_the_driving_option_comes_first(tmp_path: Path) -> None:
    journal = tmp_path / "study.journal"
    _write_study(journal, 16)
    written = journal.read_bytes()
    answer = param_importances(journal, SWEEP_ID)
    assert answer["evaluator"] == "fanova" and answer["complete_trials"] == 16 and answer["note"] is None
    shares = answer["importances"]
    assert set(shares) == set(DISTRIBUTIONS)
    assert list(shares)[0] == "learning_rate" and shares["learning_rate"] > 0.8, shares
    assert math.isclose(sum(shares.values()), 1.0, rel_tol=1e-9) and all(v >= 0 for v in shares.values())
    assert param_importances(journal, SWEEP_ID) == answer  # seeded: the same trials, the same answer
    assert journal.read_bytes() == written and not list(tmp_path.glob("*.lock"))  # read only: nothing written


def test_shares_from_few_complete_trials_say_they_are_rough(tmp_path: Path) -> None:
    journal = tmp_path / "study.journal"
    _write_study(journal, ROUGH_BELOW - 1)
    answer = param_importances(journal, SWEEP_ID)
    assert set(answer["importances"]) == set(DISTRIBUTIONS)  # still apportioned, with the caveat beside the shares
    assert answer["note"].startswith(f"from {ROUGH_BELOW - 1} complete trials; rough below {ROUGH_BELOW} "), answer
    _write_study(journal, 1)  # one more complete trial (the study is appended to): the caveat goes
    answer = param_importances(journal, SWEEP_ID)
    assert answer["complete_trials"] == ROUGH_BELOW and answer["note"] is None


def test_nothing_to_apportion_is_an_explained_empty_answer(tmp_path: Path) -> None:
    missing = tmp_path / "sweeps" / SWEEP_ID / "study.journal"
    none_yet = param_importances(missing, SWEEP_ID)
    assert (none_yet["importances"], none_yet["complete_trials"], none_yet["note"]) == ({}, 0, "no trial has "
                                                                                            "completed yet")
    assert not missing.exists()  # only read: the journal is not created

    one = tmp_path / "one.journal"
    _write_study(one, 1)
    answer = param_importances(one, SWEEP_ID)
    assert answer["importances"] == {} and answer["complete_trials"] == 1
    assert answer["note"] == "importance needs at least 2 complete trials (1 so far)"

    single = tmp_path / "single.journal"
    _write_study(single, 6, vary=("lookback",))
    answer = param_importances(single, SWEEP_ID)
    assert answer["importances"] == {"lookback": 1.0} and "only lookback varied" in answer["note"]

    fixed = tmp_path / "fixed.journal"
    _write_study(fixed, 4, vary=())
    assert param_importances(fixed, SWEEP_ID)["note"].startswith("no searched option took more than one value")

    flat = tmp_path / "flat.journal"
    _write_study(flat, 5, value=lambda params: 0.69)
    answer = param_importances(flat, SWEEP_ID)
    assert answer["importances"] == {} and answer["note"].startswith("every complete trial has the same")


@contextmanager
def _served(app: Any) -> Iterator[str]:
    """``app`` on a loopback port (a real HTTP server in a thread); yields its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["BIND_PORT"] = server.server_port  # as ``serve`` does: the Host check names the bound port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def test_the_route_answers_through_the_real_predictor_process(app: Any, client: Any) -> None:
    assert_problem(client.get("/sweeps/sw-20260101-000000-abcdef/importance"), 404)
    services = app.extensions["candlecast"]
    services.sweeps.store.create(SWEEP_ID, SweepRequest(space={"lookback": {"low": 8, "high": 64}}).model_dump(
        mode="json"), None)

    empty = client.get(f"/sweeps/{SWEEP_ID}/importance")  # the sweep has no study yet
    assert empty.status_code == 200, empty.get_data(as_text=True)
    body = empty.get_json()
    assert set(body) == set(SweepImportance.model_fields)
    assert (body["sweep_id"], body["objective"], body["importances"], body["complete_trials"]) == (
        SWEEP_ID, "log_loss", {}, 0)
    assert body["note"] == "no trial has completed yet"

    _write_study(services.sweeps.journal(SWEEP_ID), 5)
    rough = client.get(f"/sweeps/{SWEEP_ID}/importance").get_json()
    assert rough["importances"] and rough["note"].startswith("from 5 complete trials; rough below 10"), rough
    _write_study(services.sweeps.journal(SWEEP_ID), 7)  # appended: 12 complete trials
    resp = client.get(f"/sweeps/{SWEEP_ID}/importance")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["complete_trials"] == 12 and body["evaluator"] == "fanova" and body["note"] is None
    assert max(body["importances"], key=body["importances"].get) == "learning_rate"
    assert math.isclose(sum(body["importances"].values()), 1.0, rel_tol=1e-9)
    assert body["importances"] == param_importances(services.sweeps.journal(SWEEP_ID), SWEEP_ID)["importances"]

    with _served(app) as url:  # the GUI's runtime turns the answer (or a refusal) into its one message
        runtime = Runtime(ApiClient(url), lambda message: None, lambda config: None, clock=lambda: 5.0)
        assert runtime.outcome(m.LoadSweepImportance(SWEEP_ID)) == m.SweepImportanceLoaded(5.0, SWEEP_ID, body)
        unknown = runtime.outcome(m.LoadSweepImportance("sw-20260101-000000-abcdef"))
        assert unknown.importance is None and unknown.problem and "no sweep" in unknown.problem.line()
        runtime.shutdown()

    services.predictor.close()  # a predictor that cannot answer: 503, not a traceback
    assert "shutting down" in assert_problem(client.get(f"/sweeps/{SWEEP_ID}/importance"), 503)["detail"]
