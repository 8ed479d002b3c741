#!/usr/bin/env bash
# dns-ab.sh - two evac binaries' DNS answer paths against each other under dnsperf,
# alternating runs (bench/dns-peers.sh with candidate = BEFORE, candidate2 = AFTER),
# on the weighted zone of bench/dns.sh: to see whether a change costs queries per second.
#
#   BEFORE=/path/to/old/evac AFTER=/path/to/new/evac bench/dns-ab.sh
#
# Knobs: DURATION [10] REPS [3] WORKDIR [$TMPDIR/evac-dns-ab]. Needs dnsperf. Run on a
# quiet machine: the harness's oth% says how much else competed for the cpus.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BEFORE:?set BEFORE to the old evac binary}" "${AFTER:?set AFTER to the new evac binary}"
export WORKDIR=${WORKDIR:-${TMPDIR:-/tmp}/evac-dns-ab} DURATION=${DURATION:-10} REPS=${REPS:-3} WARMUP=3 MODES=pinned
mkdir -p "$WORKDIR"
{
  printf 'zone: example.com.\nttl: 300\nnameservers: {ns1: 127.0.0.1}\n'
  printf 'regions: [{name: a}, {name: b}, {name: c}]\nservices:\n'
  for ((i = 0; i < 100; i++)); do
    x=$((i / 256)); y=$((i % 256))
    printf '  - {name: svc%d, policy: weighted, endpoints: {a: [10.1.%d.%d], b: [10.2.%d.%d], c: [10.3.%d.%d]}}\n' \
      "$i" "$x" "$y" "$x" "$y" "$x" "$y"
  done
} > "$WORKDIR/weighted.yaml"
export CANDIDATE_ADDR=127.0.0.1:5320 CANDIDATE2_ADDR=127.0.0.1:5321
export CANDIDATE_CMD="$BEFORE dnsbench --config $WORKDIR/weighted.yaml --addr $CANDIDATE_ADDR --weights 50,30,20 --log-level warn"
export CANDIDATE2_CMD="$AFTER dnsbench --config $WORKDIR/weighted.yaml --addr $CANDIDATE2_ADDR --weights 50,30,20 --log-level warn"
PEERS="candidate candidate2" bench/dns-peers.sh run
