"""``candlecast sweep --space FILE.json|yaml --trials N [--parallel K] [--pruner NAME [--prune-above X]]
[--ray-address ADDR] [--json]``.

The sweep runs on a server like every job: the one given with ``--connect``, else the app's or ``candlecast serve``'s
running on this data folder, else one started in this process for the sweep (stopped at the end). The request is
validated here first (``trainer.sweep_space.SweepRequest``), so a bad space is one line and exit 2 before anything
runs. While it runs, a progress bar (stderr) shows trials done, the best objective so far and the ETA; at the end
it prints the best options, their inner objective, the same objective once on the final untouched test period and
that job's verdicts (``--json``: ``GET /sweeps/{id}`` as JSON). Ctrl-C stops the sweep. Exit 0 when it completed,
1 when it failed or was stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trainer.cli_common import UserError
from trainer.config import error_message
from trainer.sweep_space import PRUNER_NAMES, SweepRequest

#: Seconds between two looks at the sweep.
POLL_S = 1.0


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``candlecast sweep``."""
    parser.add_argument("--space", metavar="FILE", required=True,
                        help="JSON or YAML: {space: {field: {choices: [...]} | {low, high, log?, step?}}, base?, "
                        "objective?, sampler?} (docs/API.md, POST /sweeps)")
    parser.add_argument("--trials", type=int, default=None, help="trials to run (default: the file's, else 8)")
    parser.add_argument("--parallel", type=int, default=None, help="trials at once (default: the file's, else 1)")
    parser.add_argument("--pruner", choices=PRUNER_NAMES, default=None,
                        help="stop hopeless trials after a fold: median (default), threshold (with --prune-above) or "
                        "none")
    parser.add_argument("--prune-above", metavar="X", type=float, default=None,
                        help="with --pruner threshold: a trial whose fold objective is above X stops")
    parser.add_argument("--ray-address", metavar="ADDR", default=None,
                        help="run the trials on this Ray cluster (host:port or ray://host:10001; docs/scale-out.md)")
    parser.add_argument("--connect", metavar="URL", default=None,
                        help="use the server at URL (default: the one on this data folder, else one started here)")
    parser.add_argument("--json", action="store_true", help="print the finished sweep as JSON")


def read_request(args: argparse.Namespace) -> SweepRequest:
    """The ``SweepRequest`` of ``--space`` with the flags on top; ``UserError`` naming the file and the field."""
    path = Path(args.space)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    yaml_file = path.suffix.lower() in (".yaml", ".yml")
    try:
        data = _load_yaml(text) if yaml_file else json.loads(text)
    except ValueError as exc:
        raise UserError(f"{path}: not valid {'YAML' if yaml_file else 'JSON'}: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected an object with a 'space', got {type(data).__name__}")
    flags = {"trials": args.trials, "parallel": args.parallel, "ray_address": args.ray_address,
             "pruner": args.pruner, "prune_above": args.prune_above}
    given = {k: v for k, v in flags.items() if v is not None}
    data.update(given)
    try:
        return SweepRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = error_message(first)
        # Blame what the user wrote: the flag when the refused field came from one, else the file.
        field = str(first["loc"][0]) if first["loc"] else message.split(":")[0]  # a model check names its field
        pruning = {"pruner", "prune_above"}
        if field in given:
            source = "--" + field.replace("_", "-")
        elif field in pruning and given.keys() & pruning:
            source = "--pruner/--prune-above"
        else:
            source = str(path)
        raise UserError(f"{source}: {where + ': ' if where else ''}{message}") from None


def _load_yaml(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    """``candlecast sweep``: see the module doc."""
    import requests  # here: ``candlecast --help`` stays fast

    request = read_request(args)
    handle, url = _server(args.connect)
    session = requests.Session()
    try:
        answer = session.post(f"{url}/sweeps", json=request.model_dump(mode="json", exclude_none=True), timeout=60)
        if answer.status_code != 202:
            raise UserError(f"the server refused the sweep ({answer.status_code}): {_detail(answer)}")
        sweep_id = answer.json()["sweep_id"]
        try:
            sweep = _follow(session, url, sweep_id, quiet=args.json)
        except KeyboardInterrupt:
            session.post(f"{url}/sweeps/{sweep_id}/stop", timeout=30)
            print(f"candlecast: sweep {sweep_id} stopped", file=sys.stderr)
            return 130
        print(json.dumps(sweep, indent=2) if args.json else summary(sweep))
        return 0 if sweep["status"] == "completed" else 1
    except requests.RequestException as exc:
        raise UserError(f"lost the server at {url}: {exc}") from None
    finally:
        session.close()
        if handle is not None:
            handle.shutdown()


def _server(connect: str | None) -> tuple[Any, str]:
    """``(handle or None, base URL)``: the server to use (see the module doc)."""
    if connect:
        return None, connect.rstrip("/")
    from embedded_server.serve import DataFolderInUse, ServerError, start_server

    try:
        handle = start_server(port=0)
    except DataFolderInUse as busy:
        if busy.url is None:
            raise UserError(str(busy)) from None
        return None, busy.url
    except ServerError as exc:
        raise UserError(str(exc)) from None
    return handle, handle.url


def _detail(response: Any) -> str:
    try:
        return str(response.json().get("detail") or response.text)
    except ValueError:
        return response.text.strip()[:300]


def _follow(session: Any, url: str, sweep_id: str, quiet: bool) -> dict[str, Any]:
    """Poll the sweep until it ends, with a progress bar of trials done, best so far and ETA (tqdm's)."""
    from tqdm import tqdm

    bar = None
    while True:
        sweep = session.get(f"{url}/sweeps/{sweep_id}", timeout=30).json()
        if bar is None:
            bar = tqdm(total=sweep["total"], desc=f"sweep {sweep_id}", unit="trial", disable=quiet, file=sys.stderr)
        best = sweep["best"]
        if sweep["done"] != bar.n:  # redraw only on news: a log file gets one line per finished trial
            text = f"best {sweep['request']['objective']} {best['value']:.5f} (trial {best['trial']})" if best else ""
            bar.set_postfix_str(text, refresh=False)
            bar.update(sweep["done"] - bar.n)
        if sweep["status"] != "running":
            bar.close()
            return sweep
        time.sleep(POLL_S)


def summary(sweep: dict[str, Any]) -> str:
    """What ``candlecast sweep`` prints at the end: the outcome, the best options and both of their scores."""
    objective = sweep["request"]["objective"]
    states = [t["state"] for t in sweep["trials"]]
    lines = [
        f"sweep {sweep['sweep_id']} {sweep['status']}: {len(states)} trials "
        f"({states.count('complete')} complete, {states.count('pruned')} pruned, {states.count('failed')} failed)"
    ]
    if sweep.get("error"):
        lines.append(f"error: {sweep['error']}")
    final = sweep.get("final")
    if final:
        options = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in final["best_params"].items())
        lines.append(f"best: trial {final['best_trial']}: {options}")
        lines.append(f"  {objective} on the inner walk-forward (what the search saw): {final['best_value']:.5f}")
        if final["final_value"] is not None:
            lines.append(f"  {objective} on the final untouched test period (scored once, job "
                         f"{final['final_job_id']}): {final['final_value']:.5f}")
        else:
            lines.append(f"  final test period: not scored ({final['final_error']})")
        headline = (final.get("verdicts") or {}).get("headline") or {}
        for part in ("direction", "distribution"):
            if headline.get(part):
                lines.append(f"  {headline[part]['text']}")
    return "\n".join(lines)
