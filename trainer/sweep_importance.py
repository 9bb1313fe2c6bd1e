"""Parameter importance of a sweep (``GET /sweeps/{sweep_id}/importance``, the Sweeps tab): each searched option's
share of the variance of the objective over the sweep's complete trials, by Optuna's fANOVA evaluator
(``optuna.importance.FanovaImportanceEvaluator``: Hutter, Hoos & Leyton-Brown 2014, "An efficient approach for
assessing hyperparameter importance", a random forest of parameters → objective, its functional ANOVA), normalised
by ``optuna.importance.get_param_importances`` to sum to 1.

Worker-side: the forest is scikit-learn's, which the server process never loads; the server reaches this through
the predictor process (``trainer.predictor``'s ``importance`` op). The study is only read: its journal file is
replayed as it stands (Optuna's journal reader skips a line the server is still appending).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

#: The forest's seed: the same trials always give the same importances.
SEED = 0
#: Below this many complete trials the answer carries a caveat: a forest fitted to a handful of points can rank the
#: options by the chance spread of a few values (a stated rule of thumb, not a test; the shares still sum to 1).
ROUGH_BELOW = 10
EVALUATOR = "fanova"


def param_importances(journal: Path, study_name: str) -> dict[str, Any]:
    """Importances of the study ``study_name`` in the Optuna journal file ``journal``.

    Returns ``{"evaluator": "fanova", "complete_trials": int, "importances": {param: float}, "note": str | None}``:
    ``importances`` holds the parameters that took more than one value among the complete trials, most important
    first, summing to 1. Where there is nothing to apportion it is ``{}`` and ``note`` says why (no journal or study
    yet, fewer than 2 complete trials, no parameter varied, every value the same); with one varying parameter it is
    ``{that: 1.0}`` and ``note`` says that this holds by construction; shares apportioned from fewer than
    ``ROUGH_BELOW`` complete trials come with the note ``from N complete trials; rough below 10 (…)``. Raises
    ``ValueError`` for an unreadable journal.
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    answer: dict[str, Any] = {"evaluator": EVALUATOR, "complete_trials": 0, "importances": {}, "note": None}
    if not journal.is_file():  # the backend would create it: this side only reads
        return {**answer, "note": "no trial has completed yet"}
    storage = JournalStorage(JournalFileBackend(str(journal)))
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # the journal exists, the study is not in it yet
        return {**answer, "note": "no trial has completed yet"}
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    answer["complete_trials"] = len(complete)
    if len(complete) < 2:
        return {**answer, "note": f"importance needs at least 2 complete trials ({len(complete)} so far)"}
    names = sorted({name for trial in complete for name in trial.params})
    varying = [name for name in names if len({repr(t.params.get(name)) for t in complete}) > 1]
    if not varying:
        return {**answer, "note": "no searched option took more than one value among the complete trials"}
    values = [float(t.value) for t in complete]
    if max(values) - min(values) <= 1e-12 * max(1.0, abs(values[0])):
        return {**answer, "note": "every complete trial has the same objective value: no option explains any of it"}
    if len(varying) == 1:
        note = f"only {varying[0]} varied among the complete trials, so it carries all the importance by construction"
        return {**answer, "importances": {varying[0]: 1.0}, "note": note}
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=SEED)
    found = optuna.importance.get_param_importances(study, evaluator=evaluator, params=varying)
    importances = {name: float(value) for name, value in found.items()}
    if not all(math.isfinite(v) for v in importances.values()):  # every tree drew equal values (JSON has no NaN)
        return {**answer, "note": "the objective values vary too little for fANOVA to apportion them"}
    if len(complete) < ROUGH_BELOW:
        note = (f"from {len(complete)} complete trials; rough below {ROUGH_BELOW} (a forest on so few points can "
                "rank the options by chance)")
        return {**answer, "importances": importances, "note": note}
    return {**answer, "importances": importances}
