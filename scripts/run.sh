#!/usr/bin/env bash
# The main job: sets up .venv if needed, then runs `candlecast` (the app; headless training without a display).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/bootstrap.sh"
exec "$root/.venv/bin/candlecast" "$@"
