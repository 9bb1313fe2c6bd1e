"""Candlecast trainer: data, features, walk-forward CV, the forecaster, calibration, metrics and the worker.

Only ``trainer.config``, ``trainer.events`` and ``trainer.paths`` are light (no torch, numpy or pandas):
the server and the GUI import those and nothing else from here.
"""

__version__ = "0.1.0"
