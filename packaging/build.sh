#!/usr/bin/env bash
# Builds the candlecast executable with PyInstaller (packaging/candlecast.spec), using the project's .venv.
#   bash packaging/build.sh             onedir:  dist/candlecast/candlecast  (the default; starts fast)
#   bash packaging/build.sh --onefile   onefile: dist/onefile/candlecast     (one file; unpacks itself per launch)
#   --no-slim                           keep everything slimming drops (only to measure what it saves)
# Sets up .venv first when needed (scripts/bootstrap.sh installs the `build` extra, which holds PyInstaller).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

kind=onedir
spec_args=()
for arg in "$@"; do
  case "$arg" in
    --onefile) kind=onefile; spec_args+=(--onefile) ;;
    --no-slim) spec_args+=(--no-slim) ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown option $arg (use --onefile, --no-slim)" >&2; exit 2 ;;
  esac
done
[[ " ${spec_args[*]-} " == *" --no-slim "* ]] && kind="$kind-noslim"

bash scripts/bootstrap.sh
# Each kind has its own work and output folders, so the two builds never overwrite each other's files.
case "$kind" in
  onedir) dist=dist ;;
  *) dist="dist/$kind" ;;
esac
start=$(date +%s)
# torch's own hook imports every torch submodule to list them; their DeprecationWarnings are noise here.
export PYTHONWARNINGS=ignore::DeprecationWarning
.venv/bin/pyinstaller --noconfirm --log-level WARN \
  --distpath "$dist" --workpath "build/$kind" \
  packaging/candlecast.spec -- ${spec_args[@]+"${spec_args[@]}"}

if [ -d "$dist/candlecast" ]; then exe="$dist/candlecast/candlecast"; else exe="$dist/candlecast"; fi
[ -x "$exe" ] || { echo "build.sh: PyInstaller finished but $exe is missing" >&2; exit 1; }
echo "built $exe ($kind, $(du -sh "$dist/candlecast" | cut -f1), $(( $(date +%s) - start )) s)"
