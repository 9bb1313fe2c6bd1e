"""Fan-out of one event to many WebSocket clients (goal: 200 clients, the last receives within 100 ms, none lost).

A real ``candlecast serve`` holds every job queued (``max_concurrent_jobs=0``), so each ``POST /start_training``
publishes exactly two events (``job.status`` queued, the server's ``training.started``) and starts no worker.
``--clients`` websocket-client connections (one thread each, in this process) record when each event arrives;
a round's latency is from just before the POST to the moment the *last* client has the round's second event.

Run: ``.venv/bin/python benchmarks/ws_broadcast.py [--clients 200] [--rounds 30]``. Prints the median and worst
round and the ratio to the goal, and fails if any client missed or reordered a seq. Figures go in
``docs/benchmarks.md`` ("Server").
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

import requests
import websocket
from _serve import serve

GOAL_MS = 100.0


class Client(threading.Thread):
    """One WebSocket client: records ``seq → perf_counter()`` of every event until ``expected`` have arrived."""

    def __init__(self, url: str, expected: int) -> None:
        super().__init__(daemon=True)
        self.ws = websocket.create_connection(url, timeout=120)
        self.hello = json.loads(self.ws.recv())
        self.expected = expected
        self.arrivals: dict[int, float] = {}
        self.order: list[int] = []

    def run(self) -> None:
        while len(self.order) < self.expected:
            message = json.loads(self.ws.recv())
            if message["type"] in ("ping", "pong"):
                continue
            self.arrivals[message["seq"]] = time.perf_counter()
            self.order.append(message["seq"])
        self.ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with serve(max_concurrent_jobs=0) as (_, url, _home), requests.Session() as session:
        ws_url = url.replace("http://", "ws://") + "/ws"
        clients = [Client(ws_url, 2 * args.rounds) for _ in range(args.clients)]
        for client in clients:
            client.start()
        base = clients[0].hello["seq"]
        latencies = []
        for round_ in range(args.rounds):
            last_seq = base + 2 * (round_ + 1)
            sent = time.perf_counter()
            session.post(url + "/start_training", json={"epochs": 1}, timeout=30).raise_for_status()
            while not all(last_seq in c.arrivals for c in clients):
                time.sleep(0.0005)
            latencies.append((max(c.arrivals[last_seq] for c in clients) - sent) * 1000)
        for client in clients:
            client.join(30)
        expected = list(range(base + 1, base + 2 * args.rounds + 1))
        lost = sum(client.order != expected for client in clients)
    print(f"{args.clients} WebSocket clients, {args.rounds} rounds of 2 events (goal: last client <= {GOAL_MS:.0f} ms)")
    print(f"last-client latency: median {statistics.median(latencies):6.1f} ms  worst {max(latencies):6.1f} ms  "
          f"median/goal {statistics.median(latencies) / GOAL_MS:.2f}")  # fmt: skip
    print(f"clients that missed or reordered an event: {lost}")
    if lost:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
