"""The names a user picks from, one registry each (issue 10, "Names"): calibration methods, distribution families,
model kinds and p_up sources. Adding one is one entry here plus its implementation, which the owning module keys by
these names (``trainer.calibration``, ``trainer.distributions``, ``trainer.model``, ``trainer.train``); tests check
that every name has exactly one implementation.

Light on purpose (standard library only): ``trainer.config`` builds its request schema from these tuples, and the
server and GUI import that cheaply.
"""

from __future__ import annotations

#: Post-hoc calibration methods (docs/model.md, "Calibration").
CALIBRATION_METHODS: tuple[str, ...] = ("abs", "mle", "crps", "isotonic", "platt", "temperature", "none")
#: Families of the predictive distribution of the forward log return.
DISTRIBUTIONS: tuple[str, ...] = ("gaussian", "student_t", "laplace")
#: Networks that forecast the distribution (``trainer.model``).
MODEL_KINDS: tuple[str, ...] = ("mlp", "gru")
#: Where p_up comes from: the direction stack (``trainer.direction``), the predictive CDF, or a direction head.
P_UP_SOURCES: tuple[str, ...] = ("stack", "cdf", "head")
