#!/usr/bin/env bash
# devfail.sh — the issue-2 check, literally: start `evac dev`, then `evac dev fail
# REGION` and time until the last controller's DNS stops returning that region
# (probing 30 client subnets on each of the 3 DNS servers with dig), TRIES times,
# rotating regions (each is healed and restored in between).
# Needs dig (Debian: dnsutils). Usage: bench/devfail.sh [TRIES]
set -euo pipefail
TRIES=${1:-5}
cd "$(dirname "$0")/.."
make -s build
EVAC=./bin/evac
command -v dig >/dev/null || { echo "dig not found (apt-get install dnsutils)"; exit 2; }
BATCH=$(mktemp)
$EVAC dev >/tmp/evac-devfail.log 2>&1 &
DEV=$!
trap 'kill $DEV 2>/dev/null; wait $DEV 2>/dev/null; rm -f "$BATCH"' EXIT
until $EVAC status >/dev/null 2>&1 && [ "$($EVAC regions -o json | grep -c '"health": 1')" = 3 ]; do sleep 0.5; done
declare -A NET=([us-east]=192.0.2. [us-west]=198.51.100. [eu-west]=203.0.113.)
for p in 5353 5354 5355; do
  for i in $(seq 1 30); do echo "@127.0.0.1 -p $p api.example.com +short +tries=1 +time=1 +subnet=10.$i.0.0/24"; done
done >"$BATCH"
answers() { # how many of the 90 probes (30 subnets x 3 controllers) still name $1's endpoints
  dig -f "$BATCH" | grep -c "^${NET[$1]}" || true
}
REGIONS=(us-east us-west eu-west)
for t in $(seq 1 "$TRIES"); do
  r=${REGIONS[$(( (t-1) % 3 ))]}
  start=$(date +%s.%N)
  $EVAC dev fail "$r" >/dev/null
  while [ "$(answers "$r")" != 0 ]; do :; done
  end=$(date +%s.%N)
  printf 'try %d %-8s out of every controller'"'"'s answers after %.2f s\n' "$t" "$r" "$(echo "$end - $start" | bc)"
  $EVAC dev heal "$r" >/dev/null
  until $EVAC regions -o json | tr -d ' \n' | grep -q "\"name\":\"$r\",\"state\":\"evacuated\""; do sleep 0.5; done
  until $EVAC restore "$r" --reason "devfail.sh: next try" --ramp 100 >/dev/null 2>&1; do sleep 1; done
  until [ "$(answers "$r")" -gt 0 ]; do sleep 0.5; done
  sleep 3
done
