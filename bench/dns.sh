#!/usr/bin/env bash
# dns.sh - evac's authoritative DNS against Knot, NSD, PowerDNS (static, LUA pickwrandom,
# LUA pickclosest), gdnsd (geoip plugin), a bare miekg/dns map server (bench/dnsmap) and,
# with COREDNS set, CoreDNS, under dnsperf on loopback: server pinned to one core,
# dnsperf to the other.
#
# It drives bench/dns-peers.sh (a copy of the team's shared harness, with more
# candidates) in three phases, each interleaving its servers (A B C ... A B C ...):
#
# 1. saturated: every server as fast as dnsperf can ask (-c 8 -q 200), evac
#    (`evac dnsbench`) twice:
#      candidate:  svc0..svc99 as weighted services over 3 regions with weights 50/30/20
#                  (one region's address per answer, chosen per client subnet);
#      candidate2: the same names with the `all` policy (the 3 addresses of every
#                  answer, as the peers' zone has them);
# 2. rate: the same zone at one offered load (dnsperf -Q LATENCY_QPS) for Knot, NSD and
#    evac weighted: latency with the load held equal, not at each server's own maximum;
# 3. nearest (inputs from bench/geodata): A queries from 10,000 networks, each with EDNS
#    Client Subnet (a wire-format query file, dnsperf -B), to
#      near-weighted: evac, the names as weighted services (the baseline);
#      near-nets:     evac, the names as `nearest` over a 10,000-prefix topology.nets;
#      near-geo:      evac, `nearest` by distance from a GeoIP database (mmdb) of the
#                     same networks, located regions, no nets;
#      pdns-closest:  PowerDNS LUA `pickclosest` (geoip backend, the same mmdb);
#      gdnsd-geoip:   gdnsd's geoip plugin with the same networks as a nets map.
#
# 4. signed (not in the default PHASES; PHASES=signed): DNSSEC online signing, the same zone,
#    servers pinned as in the other phases; dnsperf asks the signed servers with DO set (-D),
#    the unsigned ones without EDNS, as in phases 1-3:
#      candidate:        evac weighted, unsigned (the baseline);
#      evac-signed:      evac weighted, signed (`evac dnsbench --dnssec-keys`, one ECDSAP256SHA256
#                        CSK from `evac dnssec keygen`); target >= 0.9x the baseline;
#      evac-signed-all:  evac `all` policy, signed (the 3 addresses, as the peers' zone has them);
#      knot, knot-signed: Knot unsigned, and with automatic signing (dnssec-signing: on, a policy
#                        with ECDSAP256SHA256 and a CSK; the zone signed at load);
#      pdns, pdns-signed: PowerDNS (bind backend) unsigned, and with online signing (bind backend
#                        with a DNSSEC database, bind-dnssec-db, the zone secured with
#                        `pdnsutil secure-zone`: ECDSAP256SHA256 CSK, NSEC).
#    Before measuring, each signed server must answer svc1 A +dnssec with an RRSIG over A,
#    or the phase fails (bench/dns-peers.sh DP_DO_PEERS); so does a missing knotd or pdns_server.
#
# It prints qps, latency (average; p50, p99, p99.9 over every answer, from dnsperf -v),
# loss and ratios for each phase.
#
# Knobs: DURATION [10] REPS [2] WARMUP [3] MODES [pinned] WORKDIR [$TMPDIR/evac-dns-bench]
#        PHASES ["saturated rate nearest"], or any of them and signed LATENCY_QPS [50000] DP_VERBOSE [1]
#        COREDNS=/path/to/coredns (skipped when unset), PEERS (peers of phase 1).
# Needs: dnsperf, dig, knotd, nsd, pdns_server, gdnsd (Debian: dnsperf bind9-dnsutils knot
#        nsd pdns-server pdns-backend-bind pdns-backend-geoip gdnsd; the signed phase: knot,
#        pdns-server, pdns-backend-bind, whose bind-dnssec-db needs no other backend), Go. Run
#        as root on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export WORKDIR=${WORKDIR:-${TMPDIR:-/tmp}/evac-dns-bench}
export DURATION=${DURATION:-10} REPS=${REPS:-2} WARMUP=${WARMUP:-3} MODES=${MODES:-pinned}
export KNOTD=${KNOTD:-$(command -v knotd || true)} NSD=${NSD:-$(command -v nsd || true)}
export PDNS_SERVER=${PDNS_SERVER:-$(command -v pdns_server || true)} COREDNS=${COREDNS:-}
GDNSD=${GDNSD:-$(command -v gdnsd || true)}
PHASES=${PHASES:-"saturated rate nearest"}
LATENCY_QPS=${LATENCY_QPS:-50000}
NAMES=100
BASE=$WORKDIR
mkdir -p "$BASE"

go build -o "$BASE/evac" ./cmd/evac
go build -o "$BASE/dnsmap" ./bench/dnsmap
go build -o "$BASE/geodata" ./bench/geodata
export GOMIEKG=$BASE/dnsmap

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
steering weighted > "$BASE/weighted.yaml"
steering all > "$BASE/static.yaml"
"$BASE/evac" validate "$BASE/weighted.yaml" >/dev/null

# Response-rate limiting off, as for the peers (dns-peers.sh sets NSD's rrl-ratelimit: 0).
evacd() { # config addr [more flags]
  echo "$BASE/evac dnsbench --config $1 --addr $2 --weights 50,30,20 --dns-rate-limit 0 --log-level warn ${3:-}"
}
export CANDIDATE_ADDR=127.0.0.1:5310 CANDIDATE2_ADDR=127.0.0.1:5311
export CANDIDATE_CMD CANDIDATE2_CMD
CANDIDATE_CMD=$(evacd "$BASE/weighted.yaml" $CANDIDATE_ADDR)
CANDIDATE2_CMD=$(evacd "$BASE/static.yaml" $CANDIDATE2_ADDR)

has() { case " $PHASES " in *" $1 "*) return 0;; esac; return 1; }
if has saturated; then
  WORKDIR=$BASE/saturated PEERS=${PEERS:-"knot nsd coredns pdns pdns-lua gomiekg candidate candidate2"} \
    bench/dns-peers.sh run
fi
if has rate; then
  WORKDIR=$BASE/rate PEERS="knot nsd candidate" DP_MAXQPS=$LATENCY_QPS bench/dns-peers.sh run
fi
if has nearest; then
  G=$BASE/geo
  "$BASE/geodata" -out "$G" -nets 10000 -names "$NAMES" -gdnsd-port 5309
  "$BASE/evac" validate "$G/nearest-nets.yaml" >/dev/null
  "$BASE/evac" validate "$G/nearest-geo.yaml" >/dev/null
  mkdir -p "$G/pdns"
  echo "domains: []" > "$G/pdns/geo-zones.yaml"
  echo "zone \"example.com\" { type master; file \"$G/pdns-closest.zone\"; };" > "$G/pdns/named.conf"
  cat > "$G/pdns/pdns.conf" <<EOF
launch=bind,geoip
bind-config=$G/pdns/named.conf
bind-check-interval=0
geoip-database-files=mmdb:$G/geo.mmdb
geoip-zones-file=$G/pdns/geo-zones.yaml
edns-subnet-processing=yes
enable-lua-records=shared
local-address=127.0.0.1:5312
socket-dir=$G/pdns
guardian=no
daemon=no
disable-syslog=yes
loglevel=3
webserver=no
api=no
security-poll-suffix=
receiver-threads=1
distributor-threads=1
reuseport=yes
EOF
  export PEER_ADDR_near_weighted=127.0.0.1:5313 PEER_ADDR_near_nets=127.0.0.1:5314 PEER_ADDR_near_geo=127.0.0.1:5315
  export PEER_CMD_near_weighted PEER_CMD_near_nets PEER_CMD_near_geo PEER_ADDR_pdns_closest PEER_CMD_pdns_closest
  export PEER_ADDR_gdnsd_geoip PEER_CMD_gdnsd_geoip
  PEER_CMD_near_weighted=$(evacd "$G/weighted.yaml" $PEER_ADDR_near_weighted)
  PEER_CMD_near_nets=$(evacd "$G/nearest-nets.yaml" $PEER_ADDR_near_nets)
  PEER_CMD_near_geo=$(evacd "$G/nearest-geo.yaml" $PEER_ADDR_near_geo "--geoip-db $G/geo.mmdb")
  np="near-weighted near-nets near-geo"
  if [ -n "$PDNS_SERVER" ] && compgen -G "/usr/lib/*/pdns/libgeoipbackend.so" >/dev/null; then
    PEER_ADDR_pdns_closest=127.0.0.1:5312 PEER_CMD_pdns_closest="$PDNS_SERVER --config-dir=$G/pdns"
    np+=" pdns-closest"
  else
    echo "# pdns-closest: not run (needs pdns_server with its geoip backend: pdns-backend-geoip)"
  fi
  if [ -n "$GDNSD" ]; then
    PEER_ADDR_gdnsd_geoip=127.0.0.1:5309 PEER_CMD_gdnsd_geoip="$GDNSD -c $G/gdnsd start"
    np+=" gdnsd-geoip"
  else
    echo "# gdnsd-geoip: not run (no gdnsd)"
  fi
  WORKDIR=$BASE/nearest PEERS=$np QUERY_FILE=$G/queries.bin QUERY_BINARY=1 bench/dns-peers.sh run
fi
if has signed; then
  S=$BASE/signed
  [ -n "$KNOTD" ] && [ -n "$PDNS_SERVER" ] && command -v pdnsutil >/dev/null ||
    { echo "dns.sh: the signed phase needs knotd, pdns_server and pdnsutil" >&2; exit 1; }
  rm -rf "$S"
  # the zone dns-peers.sh serves ($S/zones/example.com.zone, written again identically when it
  # runs), for pdnsutil to secure and Knot to sign
  WORKDIR=$S MODES=pinned bench/dns-peers.sh setup >/dev/null
  Z=$S/zones/example.com.zone
  "$BASE/evac" dnssec keygen --dir "$S/evac-keys" --zone example.com >/dev/null
  mkdir -p "$S/knot-signed/db" "$S/pdns-signed"
  cat > "$S/knot-signed/knot.conf" <<EOF
server:
    listen: 127.0.0.1@5317
    rundir: $S/knot-signed
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: $S/knot-signed/db
log:
  - target: stderr
    any: warning
policy:
  - id: ecdsa
    algorithm: ecdsap256sha256
    single-type-signing: on
template:
  - id: default
    storage: $S/knot-signed
    zonefile-sync: -1
    zonefile-load: difference-no-serial
    journal-content: all
    semantic-checks: off
zone:
  - domain: example.com
    file: $Z
    dnssec-signing: on
    dnssec-policy: ecdsa
EOF
  echo "zone \"example.com\" { type master; file \"$Z\"; };" > "$S/pdns-signed/named.conf"
  cat > "$S/pdns-signed/pdns.conf" <<EOF
launch=bind
bind-config=$S/pdns-signed/named.conf
bind-dnssec-db=$S/pdns-signed/dnssec.db
bind-check-interval=0
local-address=127.0.0.1:5316
socket-dir=$S/pdns-signed
guardian=no
daemon=no
disable-syslog=yes
loglevel=3
webserver=no
api=no
security-poll-suffix=
receiver-threads=1
distributor-threads=1
reuseport=yes
EOF
  pdnsutil --config-dir="$S/pdns-signed" create-bind-db "$S/pdns-signed/dnssec.db" >/dev/null 2>&1
  pdnsutil --config-dir="$S/pdns-signed" secure-zone example.com >"$S/pdns-signed/secure-zone.log" 2>&1 ||
    { cat "$S/pdns-signed/secure-zone.log" >&2; exit 1; }
  export PEER_ADDR_evac_signed=127.0.0.1:5318 PEER_ADDR_evac_signed_all=127.0.0.1:5319
  export PEER_ADDR_knot_signed=127.0.0.1:5317 PEER_ADDR_pdns_signed=127.0.0.1:5316
  export PEER_CMD_evac_signed PEER_CMD_evac_signed_all PEER_CMD_knot_signed PEER_CMD_pdns_signed
  PEER_CMD_evac_signed=$(evacd "$BASE/weighted.yaml" $PEER_ADDR_evac_signed "--dnssec-keys $S/evac-keys")
  PEER_CMD_evac_signed_all=$(evacd "$BASE/static.yaml" $PEER_ADDR_evac_signed_all "--dnssec-keys $S/evac-keys")
  PEER_CMD_knot_signed="$KNOTD -c $S/knot-signed/knot.conf"
  PEER_CMD_pdns_signed="$PDNS_SERVER --config-dir=$S/pdns-signed"
  WORKDIR=$S MODES=pinned PEERS="candidate evac-signed evac-signed-all knot knot-signed pdns pdns-signed" \
    DP_DO_PEERS="evac-signed evac-signed-all knot-signed pdns-signed" bench/dns-peers.sh run
fi

# ---------------------------------------------------------------- summary
median() { sort -g | awk '{v[NR] = $1} END{if (NR == 0) {print "NA"; exit} if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
col() { awk -F'\t' -v m="$2" -v p="$3" -v c="$4" '$1 == m && $2 == p && $c != "NA" {print $c}' "$1" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (b > 0 && a != "NA") printf "%.2f", a / b; else print "NA"}'; }
row() { # label file peer base1 [base2]: columns base/qps (INVERT=1: qps/base1)
  local q; q=$(col "$2" "$mode" "$3" 4)
  [ "$q" = NA ] || [ "$q" = 0 ] && return 0
  printf '%-26s %10.0f %7s %7s %7s %8s %6s %5s %11s %11s\n' "$1" "$q" "$(col "$2" "$mode" "$3" 5)" \
    "$(col "$2" "$mode" "$3" 12)" "$(col "$2" "$mode" "$3" 13)" "$(col "$2" "$mode" "$3" 14)" \
    "$(col "$2" "$mode" "$3" 6)" "$(col "$2" "$mode" "$3" 8)" \
    "$(if [ "${INVERT:-0}" = 1 ]; then ratio "$q" "$4"; else ratio "$4" "$q"; fi)" "$(ratio "${5:-NA}" "$q")"
}
head_row() { printf '%-26s %10s %7s %7s %7s %8s %6s %5s %11s %11s\n' server qps avg_ms p50_ms p99_ms p99.9_ms lost% srv% "$1" "$2"; }
for mode in $MODES; do
  printf '\n%s: server on cpu 0, dnsperf on cpu 1; medians of %s runs of %ss; latency in ms over every answer\n' "$mode" "$REPS" "$DURATION"
  W=$BASE/saturated/results.tsv
  if has saturated && [ -s "$W" ]; then
    ew=$(col "$W" "$mode" candidate 4); es=$(col "$W" "$mode" candidate2 4)
    echo "## saturated (dnsperf -c 8 -q 200, no rate cap)"
    head_row evacW/peer evacS/peer
    row "evac weighted" "$W" candidate "$ew" "$es"
    row "evac static (all)" "$W" candidate2 "$ew" "$es"
    row "knot" "$W" knot "$ew" "$es"
    row "nsd" "$W" nsd "$ew" "$es"
    row "coredns file" "$W" coredns "$ew" "$es"
    row "powerdns static" "$W" pdns "$ew" "$es"
    row "powerdns LUA" "$W" pdns-lua "$ew" "$es"
    row "miekg/dns map" "$W" gomiekg "$ew" "$es"
    [ -z "$COREDNS" ] && echo "# coredns: not run (set COREDNS=/path/to/coredns)"
  fi
  W=$BASE/rate/results.tsv
  if has rate && [ -s "$W" ]; then
    ew=$(col "$W" "$mode" candidate 4)
    echo "## rate (dnsperf -Q $LATENCY_QPS: the same offered load for every server)"
    head_row evacW/peer -
    row "evac weighted" "$W" candidate "$ew"
    row "knot" "$W" knot "$ew"
    row "nsd" "$W" nsd "$ew"
  fi
  W=$BASE/nearest/results.tsv
  if has nearest && [ -s "$W" ]; then
    ew=$(col "$W" "$mode" near-weighted 4)
    echo "## nearest (A queries with ECS from 10,000 networks, dnsperf -B; saturated)"
    head_row x_evacW -
    # the last column but one: the row's qps over evac weighted's (target for evac nearest: >= 0.9)
    rown() { INVERT=1 row "$1" "$W" "$2" "$ew"; }
    rown "evac weighted" near-weighted
    rown "evac nearest (10k nets)" near-nets
    rown "evac nearest (mmdb)" near-geo
    rown "powerdns LUA pickclosest" pdns-closest
    rown "gdnsd geoip (10k nets)" gdnsd-geoip
  fi
  W=$BASE/signed/results.tsv
  if has signed && [ "$mode" = pinned ] && [ -s "$W" ]; then
    eu=$(col "$W" "$mode" candidate 4); es=$(col "$W" "$mode" evac-signed 4)
    echo "## signed (DNSSEC, ECDSAP256SHA256; signed servers asked with DO, dnsperf -D; saturated)"
    head_row x_evacW evacSig/peer
    # the last column but one: qps over evac unsigned weighted's (target for evac signed: >= 0.9);
    # the last: evac signed weighted's qps over the row's (target against Knot and PowerDNS signed: > 1)
    rows() { INVERT=1 row "$1" "$W" "$2" "$eu" "$es"; }
    rows "evac weighted (unsigned)" candidate
    rows "evac weighted signed" evac-signed
    rows "evac all signed" evac-signed-all
    rows "knot (unsigned)" knot
    rows "knot signed" knot-signed
    rows "powerdns (unsigned)" pdns
    rows "powerdns signed" pdns-signed
  fi
done
echo "# per-run rows: $BASE/{saturated,rate,nearest,signed}/results.tsv"
