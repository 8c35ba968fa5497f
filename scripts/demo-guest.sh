#!/bin/sh
# The demo's part on a kernel with io_uring filters (run by scripts/demo, in the 7.x VM when the host lacks
# them): example workloads under `ringfence run` with the web-client Plan. Each workload logs its requests.
# Usage: demo-guest.sh OUT_DIR (holds web-client.plan.json; the logs are written there)
set -u
out="$1"
cd "$(dirname "$0")/.."
py="$PWD/.venv/bin/python"
rf="$PWD/.venv/bin/ringfence"
plan="$out/web-client.plan.json"
w=examples/workloads

echo "kernel: $(uname -r)"
echo
echo "\$ ringfence run --plan web-client.plan.json --dry-run -- true"
"$rf" run --plan "$plan" --dry-run -- true

echo
echo "an echo server on 127.0.0.1:443, outside the sandbox"
"$py" "$w/echo.py" server 443 > "$out/server.txt" 2>&1 &
server=$!
tries=0
until grep -q listening "$out/server.txt" 2>/dev/null; do  # Python starts slowly under an emulated CPU
  tries=$((tries + 1))
  if [ "$tries" -gt 240 ]; then echo "the echo server did not start:"; cat "$out/server.txt"; exit 1; fi
  sleep 0.5
done

step() {  # step NAME -- COMMAND...: run COMMAND under the Plan, logging its requests to NAME.jsonl
  name="$1"; shift 2
  echo
  echo "\$ ringfence run --plan web-client.plan.json -- python $*"
  RINGFENCE_REQUEST_LOG="$out/$name.jsonl" "$rf" run --plan "$plan" -- "$py" "$@"
  echo "exit status: $?"
}
step 1-client-to-the-proxy -- "$w/echo.py" client 443 "hello through the sandbox"
step 2-client-to-another-port -- "$w/echo.py" client 8080 "this port is not allowed"
step 3-read-a-config-file -- "$w/reader.py" /etc/hostname
step 4-create-a-file -- "$w/reader.py" --create "$out/created.txt"
kill "$server" 2>/dev/null || true
