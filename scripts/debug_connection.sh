#!/usr/bin/env bash
# When training "doesn't start": checks the local Candlecast server step by step and says which step failed.
#
#   bash scripts/debug_connection.sh [--host 127.0.0.1] [--port 8000] [--token TOKEN]
#
# Steps: 1 something listens on host:port; 2 GET / is Candlecast's health answer with status "ok";
# 3 /ws upgrades (HTTP 101) and sends the "hello" message; 4 the last 50 lines of backend.log (GET /status/log_tail);
# 5 the running, starting and queued jobs. When another program answers on the port, steps 3-5 are skipped.
# Plain curl does the HTTP; Python's websocket client (from the app's .venv, or any python3 that has it) also
# reads the hello when available, and Python pretty-prints the JSON.
# Exit status: 0 only when every step is healthy; 1 when a step failed (named in the last lines); 2 bad usage.
# --port defaults to $CANDLECAST_PORT, else 8000 (the app's default).
set -uo pipefail

host=127.0.0.1
port=${CANDLECAST_PORT:-8000}
token=
usage() { sed -n '4p' "$0" | sed 's/^# *//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --host) host=${2:?--host needs a value}; shift 2 ;;
    --port) port=${2:?--port needs a value}; shift 2 ;;
    --token) token=${2:?--token needs a value}; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "debug_connection: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$port" in ''|*[!0-9]*) echo "debug_connection: --port must be a number, got '$port'" >&2; exit 2 ;; esac
command -v curl >/dev/null || { echo "debug_connection: curl is needed (apt-get install curl)" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
py=
for candidate in "$root/.venv/bin/python" python3; do
  if command -v "$candidate" >/dev/null 2>&1; then py=$candidate; break; fi
done
case "$host" in *:*) hostport="[$host]:$port" ;; *) hostport="$host:$port" ;; esac
base="http://$hostport"
auth=()
[ -n "$token" ] && auth=(-H "Authorization: Bearer $token")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failed=()   # "step: what to try" for each failed step
ok() { echo "  ok: $*"; }
fail() { echo "  FAILED: $1"; failed+=("$2"); }

# GET PATH into $work/body; sets $code (HTTP status, 000 = no answer), $ctype (Content-Type) and $curl_rc.
get() {
  local answer
  answer=$(curl -sS --max-time 10 "${auth[@]+"${auth[@]}"}" -o "$work/body" -w '%{http_code} %{content_type}' \
    "$base$1" 2>"$work/err")
  curl_rc=$?
  code=${answer%% *}
  ctype=${answer#* }
  [ "$ctype" = "$answer" ] && ctype=
}

# The first $2 characters of file $1 on one line (an error body may be multi-line HTML).
one_line() { tr -s '\r\n\t' '   ' <"$1" | head -c "$2"; }

# Prints a JSON file in a readable form; $1 = file, $2 = what to print (health, lines, jobs).
show_json() {
  if [ -z "$py" ]; then cat "$1"; echo; return; fi
  "$py" - "$1" "$2" <<'PY'
import json, sys
data = json.load(open(sys.argv[1], encoding="utf-8"))
what = sys.argv[2]
if what == "health":
    jobs = data.get("jobs", {})
    print(f"  {data.get('app')} {data.get('version')}, pid {data.get('pid')}, up {data.get('uptime_s')} s, "
          f"jobs running {jobs.get('running')}, queued {jobs.get('queued')}")
elif what == "lines":
    for line in data.get("lines", []):
        print(f"  | {line}")
    if not data.get("lines"):
        print("  (backend.log is empty or not written yet)")
elif what == "jobs":
    for job in data.get("jobs", []):
        worker = "no worker yet" if job.get("pid") is None else f"pid {job['pid']}"
        print(f"  {job.get('job_id')}  {job.get('status'):<9}  created {job.get('created_at')}  {worker}")
PY
}

# Field of the JSON in $work/body: health status/app, or the count of jobs; empty when it is not our JSON.
json_field() {
  if [ -z "$py" ]; then
    grep -o "\"$1\": *\"[^\"]*\"" "$work/body" | head -1 | sed 's/.*: *"\(.*\)"/\1/'
    return
  fi
  "$py" -c 'import json, sys
try:
    value = json.load(open(sys.argv[1], encoding="utf-8")).get(sys.argv[2], "")
except (ValueError, AttributeError):
    value = ""
print(value if not isinstance(value, list) else len(value))' "$work/body" "$1"
}

echo "Checking the Candlecast server at $base"

echo "1. something listens on $hostport"
get /
if [ "$curl_rc" -eq 7 ] || [ "$curl_rc" -eq 6 ] || [ "$curl_rc" -eq 28 ] || [ "$code" = 000 ]; then
  reason=$(tr -d '\r' <"$work/err" | tail -1)
  fail "nothing answers on $hostport (${reason:-curl exit $curl_rc})" \
    "step 1 (listening): no server on $hostport. Start the app, or run 'candlecast serve --port $port', and use the port it prints ('Candlecast server on http://...'); the port comes from --port, CANDLECAST_PORT or config.json ('port'). If the app is open, its window's status bar shows the server address; 'ss -ltnp' lists what listens where."
  listening=no
else
  ok "the port answers HTTP"
  listening=yes
fi

foreign=no
if [ "$listening" = yes ]; then
  echo "2. GET / is healthy"
  status=$(json_field status); app=$(json_field app)
  if [ "$code" = 200 ] && [ "$status" = ok ] && [ "$app" = candlecast ]; then
    ok "status ok"
    show_json "$work/body" health
  elif [ "$code" = 401 ] || [ "$code" = 403 ]; then
    fail "GET / answered $code: $(one_line "$work/body" 200)" \
      "step 2 (health): the server refused us ($code). It wants a token (pass --token, the value of 'token' in config.json) or refused the Host name; use --host 127.0.0.1."
  elif [ "$app" != candlecast ]; then
    fail "something answers on $hostport, but it is not Candlecast (HTTP $code${ctype:+, $ctype})" \
      "step 2 (health): another program uses port $port, so the app cannot be reached there. Find it with 'ss -ltnp | grep :$port' and stop it, or start Candlecast on another port ('candlecast serve --port 0' prints the one it picks) and check that one."
    foreign=yes
  else
    fail "GET / answered $code with status '$status'" \
      "step 2 (health): the server is unwell; the backend.log lines below show why. Restart the app; if it persists, report them."
  fi

fi

if [ "$foreign" = yes ]; then
  echo "3-5. skipped: they ask Candlecast, and another program answers on $hostport"
elif [ "$listening" = yes ]; then
  echo "3. /ws upgrades and sends hello"
  key=$(head -c 16 /dev/urandom | base64)
  ws_query=
  [ -n "$token" ] && ws_query="?token=$token"
  curl -sS -i -N --http1.1 --max-time 3 "${auth[@]+"${auth[@]}"}" \
    -H "Connection: Upgrade" -H "Upgrade: websocket" -H "Sec-WebSocket-Version: 13" -H "Sec-WebSocket-Key: $key" \
    -o "$work/ws" "$base/ws$ws_query" 2>/dev/null
  upgrade=$(head -1 "$work/ws" | tr -d '\r')
  if [[ "$upgrade" != *" 101"* ]]; then
    fail "the WebSocket handshake got '${upgrade:-no answer}' instead of 101 Switching Protocols" \
      "step 3 (websocket): /ws does not upgrade. A proxy, VPN or security tool between you and $hostport may block WebSocket; set NO_PROXY=127.0.0.1,localhost and retry. The GUI falls back to polling, so training can still run."
  else
    hello=
    if [ -n "$py" ] && "$py" -c 'import websocket' 2>/dev/null; then
      hello=$("$py" - "ws://$hostport/ws$ws_query" <<'PY' 2>&1
import json, sys
import websocket
ws = websocket.create_connection(sys.argv[1], timeout=5)
try:
    print(json.loads(ws.recv()).get("type"))
finally:
    ws.close()
PY
)
      how="websocket-client"
    else
      grep -q '"type": *"hello"' "$work/ws" && hello=hello
      how="curl"
    fi
    if [ "$hello" = hello ]; then
      ok "101 Switching Protocols, then hello (read with $how)"
    else
      fail "the WebSocket upgraded but sent no hello (${hello:-nothing} via $how)" \
        "step 3 (websocket): the connection opens but no hello arrives; the backend.log lines below should say why. Restart the app."
    fi
  fi

  echo "4. the last 50 lines of backend.log (GET /status/log_tail?n=50)"
  get "/status/log_tail?n=50"
  if [ "$code" = 200 ]; then
    show_json "$work/body" lines
  else
    fail "GET /status/log_tail answered $code" \
      "step 4 (log): the server cannot show its log; read backend.log in the app's log folder directly."
  fi

  echo "5. running, starting and queued jobs"
  total=0
  listed=yes
  for state in running starting queued; do
    get "/jobs?status=$state&limit=50"
    if [ "$code" != 200 ]; then
      fail "GET /jobs?status=$state answered $code" "step 5 (jobs): the job list is unavailable; see the backend.log lines above."
      listed=no
      break
    fi
    count=$(json_field jobs)
    [ "$state" = running ] && running=${count:-0}
    [ "$state" = queued ] && queued=${count:-0}
    total=$(( total + ${count:-0} ))
    show_json "$work/body" jobs
  done
  [ "$listed" = yes ] && [ "$total" -eq 0 ] && echo "  (no job is running, starting or queued)"
  if [ "${queued:-0}" -gt 0 ] && [ "${running:-0}" -eq 0 ]; then
    echo "  note: jobs wait in the queue and none runs: is max_concurrent_jobs 0 in config.json? A stopped job frees the slot."
  fi
fi

echo
if [ ${#failed[@]} -eq 0 ]; then
  echo "All checks passed: the server on $hostport is healthy. If a job still does not start, its own log is at GET /jobs/<job_id>/log."
  exit 0
fi
if [ "$listening" = no ]; then
  echo "Verdict: no server runs on $hostport."
elif [ "$foreign" = yes ]; then
  echo "Verdict: another program, not Candlecast, holds $hostport; the later checks were skipped."
else
  echo "Verdict: Candlecast answers on $hostport, but ${#failed[@]} check(s) failed."
fi
echo "What failed, and what to try:"
for item in "${failed[@]}"; do echo "- $item"; done
exit 1
