#!/usr/bin/env bash
# dns.sh - evac's authoritative DNS against Knot, NSD, PowerDNS (static and LUA
# pickwrandom), a bare miekg/dns map server (bench/dnsmap) and, with COREDNS set,
# CoreDNS, under dnsperf on loopback: server pinned to one core, dnsperf to the other.
#
# It drives bench/dns-peers.sh (a copy of the team's shared harness, with a second
# candidate) once, every server interleaved, with evac (`evac dnsbench`) twice:
#   candidate:  svc0..svc99 as weighted services over 3 regions with weights 50/30/20
#               (one region's address per answer, chosen per client subnet);
#   candidate2: the same names with the `all` policy (the 3 addresses of every
#               answer, as the peers' zone has them),
# and prints qps, latency, loss and the ratios evac/peer for both.
#
# Knobs: DURATION [10] REPS [2] WARMUP [3] MODES [pinned] WORKDIR [$TMPDIR/evac-dns-bench]
#        COREDNS=/path/to/coredns (skipped when unset), PEERS (peers of run 1).
# Needs: dnsperf, dig, knotd, nsd, pdns_server (Debian: dnsperf bind9-dnsutils knot nsd
#        pdns-server pdns-backend-bind), Go. Run as root on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export WORKDIR=${WORKDIR:-${TMPDIR:-/tmp}/evac-dns-bench}
export DURATION=${DURATION:-10} REPS=${REPS:-2} WARMUP=${WARMUP:-3} MODES=${MODES:-pinned}
export KNOTD=${KNOTD:-$(command -v knotd || true)} NSD=${NSD:-$(command -v nsd || true)}
export PDNS_SERVER=${PDNS_SERVER:-$(command -v pdns_server || true)} COREDNS=${COREDNS:-}
NAMES=100
mkdir -p "$WORKDIR"

go build -o "$WORKDIR/evac" ./cmd/evac
go build -o "$WORKDIR/dnsmap" ./bench/dnsmap
export GOMIEKG=$WORKDIR/dnsmap

# steering POLICY -> the steering config: svcN with 10.1/10.2/10.3.x.y in regions a/b/c,
# the addresses of the peers' zone (dns-peers.sh write_zone).
steering() {
  local i x y
  printf 'zone: example.com.\nttl: 300\nnameservers: {ns1: 127.0.0.1}\n'
  printf 'regions: [{name: a}, {name: b}, {name: c}]\nservices:\n'
  for ((i = 0; i < NAMES; i++)); do
    x=$((i / 256)); y=$((i % 256))
    printf '  - {name: svc%d, policy: %s, endpoints: {a: [10.1.%d.%d], b: [10.2.%d.%d], c: [10.3.%d.%d]}}\n' \
      "$i" "$1" "$x" "$y" "$x" "$y" "$x" "$y"
  done
}
steering weighted > "$WORKDIR/weighted.yaml"
steering all > "$WORKDIR/static.yaml"
"$WORKDIR/evac" validate "$WORKDIR/weighted.yaml" >/dev/null

export CANDIDATE_ADDR=127.0.0.1:5310
BASE=$WORKDIR
# Response-rate limiting off, as for the peers (dns-peers.sh sets NSD's rrl-ratelimit: 0).
cand() { echo "$BASE/evac dnsbench --config $BASE/$1.yaml --addr $CANDIDATE_ADDR --weights 50,30,20 --dns-rate-limit 0 --log-level warn"; }

export CANDIDATE2_ADDR=127.0.0.1:5311
cand2() { echo "$BASE/evac dnsbench --config $BASE/$1.yaml --addr $CANDIDATE2_ADDR --weights 50,30,20 --dns-rate-limit 0 --log-level warn"; }
PEERS=${PEERS:-"knot nsd coredns pdns pdns-lua gomiekg candidate candidate2"} \
  CANDIDATE_CMD=$(cand weighted) CANDIDATE2_CMD=$(cand2 static) bench/dns-peers.sh run

# ---------------------------------------------------------------- summary
median() { sort -g | awk '{v[NR] = $1} END{if (NR == 0) {print "NA"; exit} if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
col() { awk -F'\t' -v m="$2" -v p="$3" -v c="$4" '$1 == m && $2 == p && $c != "NA" {print $c}' "$1" | median; }
for mode in $MODES; do
  W=$WORKDIR/results.tsv
  ew=$(col "$W" "$mode" candidate 4); es=$(col "$W" "$mode" candidate2 4)
  printf '\n%s: server on cpu %s, dnsperf on cpu %s; medians of %s runs of %ss\n' "$mode" 0 1 "$REPS" "$DURATION"
  printf '%-22s %10s %8s %7s %12s %12s\n' server qps lat_ms lost% evacW/peer evacS/peer
  row() { # label file peer
    local q l lo
    q=$(col "$2" "$mode" "$3" 4); l=$(col "$2" "$mode" "$3" 5); lo=$(col "$2" "$mode" "$3" 6)
    [ "$q" = NA ] && return 0
    printf '%-22s %10.0f %8s %7s %12s %12s\n' "$1" "$q" "$l" "$lo" \
      "$(awk -v a="$ew" -v b="$q" 'BEGIN{if (b > 0 && a != "NA") printf "%.2f", a / b; else print "NA"}')" \
      "$(awk -v a="$es" -v b="$q" 'BEGIN{if (b > 0 && a != "NA") printf "%.2f", a / b; else print "NA"}')"
  }
  row "evac weighted" "$W" candidate
  row "evac static (all)" "$W" candidate2
  row "knot" "$W" knot
  row "nsd" "$W" nsd
  row "coredns file" "$W" coredns
  row "powerdns static" "$W" pdns
  row "powerdns LUA" "$W" pdns-lua
  row "miekg/dns map" "$W" gomiekg
  [ -z "$COREDNS" ] && echo "# coredns: not run (set COREDNS=/path/to/coredns)"
done
echo "# per-run rows: $WORKDIR/results.tsv"
