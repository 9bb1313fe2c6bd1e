"""Candlecast's embedded server: the local REST/WebSocket API of API.md (Flask + flask-sock).

Importing this package starts nothing: ``app.create_app`` builds the Flask app, ``serve.start_server`` binds a
port and runs it in a background thread. torch is never imported here (workers are separate processes).
"""
