"""Candlecast desktop app: the ``candlecast`` command line, the controller, the API client and the views."""
