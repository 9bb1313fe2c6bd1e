"""Candle data: validation (``candles``), importers and the dataset store (``store``).

This package module stays light (no pandas) so the server can list datasets cheaply; import submodules.
"""
