#!/usr/bin/env bash
# The whole test suite: sets up .venv if needed, then runs pytest (extra arguments go to pytest).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/bootstrap.sh"
cd "$root"
exec .venv/bin/python -m pytest "$@"
