#!/usr/bin/env bash
# Copied from ../shared/bench/dns-peers.sh (the team's shared harness); changed to
# take a second candidate (candidate2: CANDIDATE2_ADDR, CANDIDATE2_CMD, started like
# CANDIDATE_CMD), so that bench/dns.sh interleaves evac weighted and static with the peers;
# any further peer NAME started by PEER_CMD_NAME on PEER_ADDR_NAME (NAME with - as _);
# dnsperf -v for latency percentiles (DP_VERBOSE); a query file of the caller's (QUERY_FILE,
# QUERY_BINARY=1 for dnsperf -B: wire-format queries, e.g. each with its own ECS option);
# DP_DO_PEERS: peers asked with DO set (dnsperf -D), each checked first to sign its answer
# (dig +dnssec svc1 A must carry an RRSIG over A, or the run fails).
# dns-peers.sh - side-by-side authoritative DNS throughput on loopback (dnsperf).
#
# Peers (each skipped, with a note, when its binary env var is unset or missing):
#   knot        KNOTD=/usr/sbin/knotd               127.0.0.1:5301
#   nsd         NSD=/usr/sbin/nsd                   127.0.0.1:5302
#   coredns     COREDNS=/path/to/coredns            127.0.0.1:5303  (file plugin)
#   coredns-lb  COREDNS (same binary)               127.0.0.1:5304  (file + loadbalance)
#   pdns        PDNS_SERVER=/usr/sbin/pdns_server   127.0.0.1:5305  (bind backend, static zone)
#   pdns-lua    PDNS_SERVER (same binary)           127.0.0.1:5306  (bind backend, every svcN is a
#                                                   LUA "A pickwrandom(...)" record, 50/30/20 weights;
#                                                   enable-lua-records=shared: one Lua state per thread)
#   pdns-lua-fresh  PDNS_SERVER                     127.0.0.1:5308  (same, enable-lua-records=yes, the
#                                                   default: a fresh Lua state per evaluation)
#   gomiekg     GOMIEKG=/path/to/probe              127.0.0.1:5307  (a bare github.com/miekg/dns map
#                                                   server; invoked as: $GOMIEKG -addr IP:PORT -zone FILE)
#   candidate   CANDIDATE_ADDR=host:port            the server under test (UDP), see below
#
# Candidate: set CANDIDATE_ADDR. Either
#   CANDIDATE_CMD='...'  a command line this script starts (under taskset in pinned mode) and
#                        stops; it gets ZONE_FILE (this run's zone) and CANDIDATE_ADDR in its env, or
#   CANDIDATE_PID=N      an already-running server that this script only re-pins
#                        (taskset -a -p; note a Go server sized GOMAXPROCS at its start), or
#   neither              an already-running server, used as is (no pinning, no CPU accounting).
# It must serve the zone this script writes ($WORKDIR/zones/example.com.zone).
#
# Other knobs (defaults in brackets):
#   WORKDIR [$TMPDIR/dns-peers]   configs, zone, query file, logs, results.tsv
#   MODES ["pinned unpinned"]      pinned: server on SERVER_CPU [0], dnsperf on CLIENT_CPU [1],
#                                  server threads/sockets = 1; unpinned: no taskset, threads = nproc.
#                                  Server on cpu 0 because knotd 3.2 pins UDP worker i to online cpu
#                                  i itself (overriding taskset); the script warns when any server
#                                  thread ends up outside SERVER_CPU.
#   PEERS ["knot nsd coredns coredns-lb pdns pdns-lua pdns-lua-fresh gomiekg candidate"]
#   REPS [3]  DURATION [15] s per run  WARMUP [3] s per peer per mode (not counted)
#   DP_CLIENTS [8] (-c)  DP_THREADS [1] (-T)  DP_OUTSTANDING [200] (-q)  DP_MAXQPS [] (-Q, empty = no cap)
#   NAMES [100] svc0..svc{NAMES-1}, 3 A records each (10.1/10.2/10.3.x.y = regions a/b/c)
#   DNSPERF [dnsperf in PATH]  DIG [dig in PATH]
#   COREDNS_MULTISOCKET [auto]     auto: "multisocket <threads>" when threads > 1 (unpinned), 0: never
#
# Order: for each mode, all peers are started, warmed, then runs interleave
# (A B C ... A B C ...) REPS times; then they are stopped.
# Output: per-run rows in $WORKDIR/results.tsv and a median table on stdout:
#   QPS, avg latency, lost %, server CPU % (utime+stime of the server's process tree over
#   the run / wall time), client CPU %, QPS per server core (QPS / server CPU fraction),
#   and QPS ratios to knot and coredns of the same mode.
set -uo pipefail

WORKDIR=${WORKDIR:-${TMPDIR:-/tmp}/dns-peers}
KNOTD=${KNOTD:-}
NSD=${NSD:-}
COREDNS=${COREDNS:-}
PDNS_SERVER=${PDNS_SERVER:-}
GOMIEKG=${GOMIEKG:-}
CANDIDATE_ADDR=${CANDIDATE_ADDR:-}
CANDIDATE_CMD=${CANDIDATE_CMD:-}
CANDIDATE_PID=${CANDIDATE_PID:-}
CANDIDATE2_ADDR=${CANDIDATE2_ADDR:-}
CANDIDATE2_CMD=${CANDIDATE2_CMD:-}
DNSPERF=${DNSPERF:-$(command -v dnsperf || true)}
DIG=${DIG:-$(command -v dig || true)}
MODES=${MODES:-"pinned unpinned"}
PEERS=${PEERS:-"knot nsd coredns coredns-lb pdns pdns-lua pdns-lua-fresh gomiekg candidate"}
REPS=${REPS:-3}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
DP_CLIENTS=${DP_CLIENTS:-8}
DP_THREADS=${DP_THREADS:-1}
DP_OUTSTANDING=${DP_OUTSTANDING:-200}
DP_MAXQPS=${DP_MAXQPS:-}
DP_TIMEOUT=${DP_TIMEOUT:-5}
# 1: dnsperf -v, one line per answer with its latency, for p50/p99/p99.9 (costs dnsperf
# some CPU: every server is measured so; 0 = off, then only the average is reported)
DP_VERBOSE=${DP_VERBOSE:-1}
QUERY_FILE=${QUERY_FILE:-}
DP_DO_PEERS=${DP_DO_PEERS:-}
QUERY_BINARY=${QUERY_BINARY:-0}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
NAMES=${NAMES:-100}
NCPU=$(nproc)
CLK_TCK=$(getconf CLK_TCK)

ZONE=$WORKDIR/zones/example.com.zone
LUAZONE=$WORKDIR/zones/example.com.lua.zone
QF=${QUERY_FILE:-$WORKDIR/queries.txt}
RES=$WORKDIR/results.tsv
LOGS=$WORKDIR/logs

die() { echo "dns-peers: $*" >&2; exit 1; }
note() { echo "# $*" >&2; }

port_of() {
  case $1 in
    knot) echo 5301;; nsd) echo 5302;; coredns) echo 5303;; coredns-lb) echo 5304;;
    pdns) echo 5305;; pdns-lua) echo 5306;; gomiekg) echo 5307;; pdns-lua-fresh) echo 5308;;
    candidate) echo "${CANDIDATE_ADDR##*:}";;
    candidate2) echo "${CANDIDATE2_ADDR##*:}";;
    *) local a; a=$(extra_addr "$1"); echo "${a##*:}";;
  esac
}
# PEER_ADDR_NAME / PEER_CMD_NAME of a further peer NAME (- in NAME as _)
extra_addr() { local v="PEER_ADDR_${1//-/_}"; echo "${!v:-}"; }
extra_cmd() { local v="PEER_CMD_${1//-/_}"; echo "${!v:-}"; }
host_of() {
  case $1 in
    candidate) echo "${CANDIDATE_ADDR%:*}";;
    candidate2) echo "${CANDIDATE2_ADDR%:*}";;
    knot|nsd|coredns|coredns-lb|pdns|pdns-lua|pdns-lua-fresh|gomiekg) echo 127.0.0.1;;
    *) local a; a=$(extra_addr "$1"); echo "${a%:*}";;
  esac
}

have_peer() {
  local b=
  case $1 in
    knot) b=$KNOTD;; nsd) b=$NSD;; coredns|coredns-lb) b=$COREDNS;;
    pdns|pdns-lua|pdns-lua-fresh) b=$PDNS_SERVER;; gomiekg) b=$GOMIEKG;;
    candidate) [ -n "$CANDIDATE_ADDR" ]; return;;
    candidate2) [ -n "$CANDIDATE2_ADDR" ] && [ -n "$CANDIDATE2_CMD" ]; return;;
    *) [ -n "$(extra_addr "$1")" ] && [ -n "$(extra_cmd "$1")" ]; return;;
  esac
  [ -n "$b" ] && [ -x "$b" ]
}

# ---------------------------------------------------------------- setup
write_zone() {
  mkdir -p "$WORKDIR/zones" "$LOGS"
  local i x y
  {
    echo '$ORIGIN example.com.'
    echo '$TTL 300'
    echo '@ IN SOA ns1.example.com. hostmaster.example.com. 2024010101 3600 900 604800 300'
    echo '@ IN NS ns1.example.com.'
    echo 'ns1 IN A 127.0.0.1'
  } > "$ZONE"
  cp "$ZONE" "$LUAZONE"
  for ((i = 0; i < NAMES; i++)); do
    x=$((i / 256)); y=$((i % 256))
    printf 'svc%d IN A 10.1.%d.%d\nsvc%d IN A 10.2.%d.%d\nsvc%d IN A 10.3.%d.%d\n' \
      $i $x $y $i $x $y $i $x $y >> "$ZONE"
    printf "svc%d IN LUA A \"pickwrandom({{50,'10.1.%d.%d'},{30,'10.2.%d.%d'},{20,'10.3.%d.%d'}})\"\n" \
      $i $x $y $x $y $x $y >> "$LUAZONE"
  done
  # query file: each name 100 times (A), deterministic shuffle; dnsperf loops over it
  [ -n "$QUERY_FILE" ] && return 0   # the caller's
  for ((i = 0; i < NAMES; i++)); do
    for ((x = 0; x < 100; x++)); do echo "svc$i.example.com A"; done
  done | awk 'BEGIN{srand(42)} {print rand() "\t" $0}' | sort -k1,1 | cut -f2- > "$QF"
}

write_configs() { # $1 = mode
  local mode=$1 nt d
  if [ "$mode" = pinned ]; then nt=1; else nt=$NCPU; fi
  d=$WORKDIR/$mode
  mkdir -p "$d/knot" "$d/nsd" "$d/pdns" "$d/pdns-lua" "$d/pdns-lua-fresh"
  cat > "$d/knot.conf" <<EOF
server:
    listen: 127.0.0.1@5301
    rundir: $d/knot
    udp-workers: $nt
    tcp-workers: 1
    background-workers: 1
database:
    storage: $d/knot
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: $WORKDIR/zones
    zonefile-sync: -1
    journal-content: none
    semantic-checks: off
zone:
  - domain: example.com
    file: $ZONE
EOF
  cat > "$d/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@5302
    server-count: $nt
    reuseport: yes
    username: ""
    chroot: ""
    database: ""
    zonesdir: "$WORKDIR/zones"
    pidfile: "$d/nsd/nsd.pid"
    xfrdfile: "$d/nsd/xfrd.state"
    xfrdir: "$d/nsd"
    zonelistfile: "$d/nsd/zone.list"
    logfile: "$LOGS/nsd-$mode.log"
    verbosity: 0
    hide-version: yes
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: example.com
    zonefile: "$ZONE"
EOF
  local ms=""
  case ${COREDNS_MULTISOCKET:-auto} in
    auto) [ "$nt" -gt 1 ] && ms="multisocket $nt";;
    0|"") ;;
    *) ms="multisocket $COREDNS_MULTISOCKET";;
  esac
  cat > "$d/Corefile" <<EOF
example.com:5303 {
    bind 127.0.0.1
    $ms
    file $ZONE
}
example.com:5304 {
    bind 127.0.0.1
    $ms
    file $ZONE
    loadbalance
}
EOF
  local p z port lua
  for p in pdns pdns-lua pdns-lua-fresh; do
    case $p in
      pdns) z=$ZONE; port=5305; lua=no;;
      pdns-lua) z=$LUAZONE; port=5306; lua=shared;;
      pdns-lua-fresh) z=$LUAZONE; port=5308; lua=yes;;
    esac
    echo "zone \"example.com\" { type master; file \"$z\"; };" > "$d/$p/named.conf"
    cat > "$d/$p/pdns.conf" <<EOF
launch=bind
bind-config=$d/$p/named.conf
bind-check-interval=0
local-address=127.0.0.1:$port
socket-dir=$d/$p
guardian=no
daemon=no
disable-syslog=yes
loglevel=3
webserver=no
api=no
security-poll-suffix=
receiver-threads=$nt
distributor-threads=$nt
reuseport=yes
enable-lua-records=$lua
EOF
  done
}

# ---------------------------------------------------------------- processes
declare -A PID
start_peer() { # peer mode
  local peer=$1 mode=$2 d=$WORKDIR/$2 pre=() log=$LOGS/$1-$2.log
  [ "$mode" = pinned ] && pre=(taskset -c "$SERVER_CPU")
  case $peer in
    knot) setsid "${pre[@]}" "$KNOTD" -c "$d/knot.conf" >"$log" 2>&1 & PID[$peer]=$! ;;
    nsd) setsid "${pre[@]}" "$NSD" -d -c "$d/nsd.conf" >"$log" 2>&1 & PID[$peer]=$! ;;
    coredns) setsid "${pre[@]}" "$COREDNS" -quiet -conf "$d/Corefile" >"$log" 2>&1 & PID[$peer]=$!
             PID[coredns-lb]=${PID[$peer]} ;;
    coredns-lb) [ -n "${PID[coredns]:-}" ] && return 0
             setsid "${pre[@]}" "$COREDNS" -quiet -conf "$d/Corefile" >"$log" 2>&1 & PID[$peer]=$!
             PID[coredns]=${PID[$peer]} ;;
    pdns|pdns-lua|pdns-lua-fresh) setsid "${pre[@]}" "$PDNS_SERVER" --config-dir="$d/$peer" >"$log" 2>&1 & PID[$peer]=$! ;;
    gomiekg) setsid "${pre[@]}" "$GOMIEKG" -addr 127.0.0.1:5307 -zone "$ZONE" >"$log" 2>&1 & PID[$peer]=$! ;;
    candidate2)
      ZONE_FILE=$ZONE CANDIDATE_ADDR=$CANDIDATE2_ADDR setsid "${pre[@]}" bash -c "exec $CANDIDATE2_CMD" >"$log" 2>&1 &
      PID[$peer]=$! ;;
    knot|nsd|coredns|coredns-lb|pdns|pdns-lua|pdns-lua-fresh|gomiekg|candidate) ;;
    *) ZONE_FILE=$ZONE PEER_ADDR=$(extra_addr "$peer") setsid "${pre[@]}" bash -c "exec $(extra_cmd "$peer")" >"$log" 2>&1 &
      PID[$peer]=$! ;;
  esac
  case $peer in
    candidate)
      if [ -n "$CANDIDATE_CMD" ]; then
        ZONE_FILE=$ZONE CANDIDATE_ADDR=$CANDIDATE_ADDR setsid "${pre[@]}" bash -c "exec $CANDIDATE_CMD" >"$log" 2>&1 &
        PID[$peer]=$!
      elif [ -n "$CANDIDATE_PID" ]; then
        PID[$peer]=$CANDIDATE_PID
        local cpus=$SERVER_CPU q
        [ "$mode" = pinned ] || cpus="0-$((NCPU - 1))"
        for q in $(tree_pids "$CANDIDATE_PID"); do taskset -a -p -c "$cpus" "$q" >/dev/null; done
      else
        PID[$peer]=""
      fi ;;
  esac
}

stop_all() {
  local p pid
  for p in "${!PID[@]}"; do
    pid=${PID[$p]}
    [ -z "$pid" ] && continue
    [ "$p" = candidate ] && [ -z "$CANDIDATE_CMD" ] && continue   # not ours
    kill -TERM -- "-$pid" 2>/dev/null
  done
  sleep 1
  for p in "${!PID[@]}"; do
    pid=${PID[$p]}
    [ -z "$pid" ] && continue
    [ "$p" = candidate ] && [ -z "$CANDIDATE_CMD" ] && continue
    if kill -0 "$pid" 2>/dev/null; then sleep 2; kill -KILL -- "-$pid" 2>/dev/null; fi
    wait "$pid" 2>/dev/null
  done
  PID=()
}
trap 'stop_all' EXIT INT TERM

# "busy total" jiffies per cpu: prints cpu0busy cpu0total cpu1busy cpu1total ...
cpu_snap() { awk '/^cpu[0-9]/{t = 0; for (i = 2; i <= 9; i++) t += $i; printf "%d %d ", t - $5 - $6, t}' /proc/stat; }
# busy% per cpu between two snaps, as "b0/b1/..."
cpu_busy() { awk -v a="$1" -v b="$2" 'BEGIN{n = split(a, x, " "); split(b, y, " "); s = "";
  for (i = 1; i < n; i += 2) { dt = y[i + 1] - x[i + 1]; s = s (s == "" ? "" : "/") (dt > 0 ? sprintf("%.0f", (y[i] - x[i]) / dt * 100) : "NA") } print s}'; }

tree_pids() { # pid and all its descendants
  local c
  echo "$1"
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do tree_pids "$c"; done
}

# utime+stime (ticks) of pid and all its descendants
tree_ticks() {
  local pid=$1 t=0 c
  [ -z "$pid" ] && { echo 0; return; }
  if [ -r "/proc/$pid/stat" ]; then
    t=$(awk '{sub(/^.*\) /,""); print $12 + $13}' "/proc/$pid/stat" 2>/dev/null || echo 0)
  fi
  for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
    t=$((t + $(tree_ticks "$c")))
  done
  echo "${t:-0}"
}

check_affinity() { # warn when a thread of the peer's process tree may run outside SERVER_CPU
  local pid=${PID[$1]:-} t m
  [ -z "$pid" ] && return 0
  for t in /proc/"$pid"/task/* $(for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do echo /proc/"$c"/task/*; done); do
    m=$(taskset -c -p "${t##*/}" 2>/dev/null | awk '{print $NF}')
    [ -n "$m" ] && [ "$m" != "$SERVER_CPU" ] && note "WARNING $1 thread ${t##*/} ($(cat "$t"/comm 2>/dev/null)) affinity $m, not $SERVER_CPU"
  done
  return 0
}

wait_ready() { # peer -> 0 when it answers svc0 A
  local h p i out
  h=$(host_of "$1"); p=$(port_of "$1")
  for ((i = 0; i < 100; i++)); do
    out=$("$DIG" +short +time=1 +tries=1 @"$h" -p "$p" svc0.example.com A 2>/dev/null)
    echo "$out" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' && return 0
    sleep 0.2
  done
  return 1
}

do_peer() { case " $DP_DO_PEERS " in *" $1 "*) return 0;; esac; return 1; }

signs() { # peer -> 0 when its answer to svc1 A with DO carries an RRSIG over A
  local h p out
  h=$(host_of "$1"); p=$(port_of "$1")
  out=$("$DIG" +dnssec +norec +time=2 +tries=3 @"$h" -p "$p" svc1.example.com A 2>&1)
  echo "$out" | grep -Eq '^svc1\.example\.com\..*IN[[:space:]]+RRSIG[[:space:]]+A[[:space:]]' || {
    note "$1: no RRSIG over svc1 A with DO set:"; echo "$out" | sed 's/^/#   /' >&2; return 1; }
  echo "# signed $1: $(echo "$out" | grep -Ec 'IN[[:space:]]+RRSIG') RRSIG in the answer to svc1 A +dnssec ($(echo "$out" | sed -n 's/.*MSG SIZE  rcvd: \([0-9]*\).*/\1/p') bytes)" >&2
}

sanity() { # peer mode -> one line
  local h p out n aa st
  h=$(host_of "$1"); p=$(port_of "$1")
  out=$("$DIG" +norec +time=2 +tries=3 @"$h" -p "$p" svc1.example.com A 2>&1)
  n=$(echo "$out" | awk '/^svc1\.example\.com\..*IN[ \t]+A[ \t]/{c++} END{print c+0}')
  st=$(echo "$out" | sed -n 's/.*status: \([A-Z]*\).*/\1/p')
  aa=$(echo "$out" | grep -q 'flags:.* aa' && echo aa || echo no-aa)
  echo "# sanity $2 $1: svc1 A -> $n answers, $st, $aa"
}

run_dnsperf() { # peer mode rep secs -> appends results row (unless rep=warm)
  local peer=$1 mode=$2 rep=$3 secs=$4 h p pre=() out t0 t1 s0 s1 tf
  h=$(host_of "$peer"); p=$(port_of "$peer")
  [ "$mode" = pinned ] && pre=(taskset -c "$CLIENT_CPU")
  out=$LOGS/dnsperf-$mode-$peer-$rep.txt
  tf=$LOGS/.time
  local args=(-s "$h" -p "$p" -d "$QF" -l "$secs" -c "$DP_CLIENTS" -T "$DP_THREADS" -q "$DP_OUTSTANDING" -t "$DP_TIMEOUT")
  [ -n "$DP_MAXQPS" ] && args+=(-Q "$DP_MAXQPS")
  [ "$QUERY_BINARY" = 1 ] && args+=(-B)
  do_peer "$peer" && args+=(-D)
  [ "$DP_VERBOSE" = 1 ] && args+=(-v)
  local c0 c1
  s0=$(tree_ticks "${PID[$peer]:-}"); c0=$(cpu_snap); t0=$(date +%s.%N)
  { TIMEFORMAT='%U %S'; time "${pre[@]}" "$DNSPERF" "${args[@]}" >"$out" 2>&1; } 2>"$tf"
  t1=$(date +%s.%N); c1=$(cpu_snap); s1=$(tree_ticks "${PID[$peer]:-}")
  [ "$rep" = warm ] && return 0
  local qps lat lost noerr ccpu scpu
  qps=$(awk '/Queries per second:/{print $4}' "$out")
  lat=$(awk '/Average Latency \(s\):/{printf "%.3f", $4 * 1000}' "$out")
  lost=$(awk '/Queries lost:/{gsub(/[()%]/, "", $4); print $4}' "$out")
  local pct="NA NA NA"
  [ "$DP_VERBOSE" = 1 ] && pct=$(percentiles "$out")
  local p50 p99 p999; read -r p50 p99 p999 <<<"$pct"
  noerr=$(awk '/Response codes:/{for (i = 1; i <= NF; i++) if ($i == "NOERROR") {v = $(i + 2); gsub(/[()%,]/, "", v); print v}}' "$out")
  ccpu=$(awk -v w="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b - a}')" '{printf "%.0f", ($1 + $2) / w * 100}' "$tf")
  if [ -n "${PID[$peer]:-}" ]; then
    scpu=$(awk -v a="$s0" -v b="$s1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" \
      'BEGIN{printf "%.0f", (b - a) / hz / (t1 - t0) * 100}')
  else scpu=NA; fi
  local busy other; busy=$(cpu_busy "$c0" "$c1")
  # other = all-cpu busy minus server and dnsperf process CPU: kernel softirq work not charged to
  # either process (a few %, grows with QPS) plus anything else running; a high value flags contention
  other=$(awk -v b="$busy" -v s="$scpu" -v c="$ccpu" 'BEGIN{if (s == "NA") {print "NA"; exit}
    n = split(b, x, "/"); t = 0; for (i = 1; i <= n; i++) t += x[i]; printf "%.0f", t - s - c}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$peer" "$rep" "${qps:-0}" "${lat:-NA}" \
    "${lost:-NA}" "${noerr:-NA}" "$scpu" "$ccpu" "$busy" "$other" "$p50" "$p99" "$p999" >> "$RES"
  printf '# %-8s %-10s rep %s: %10.0f qps  %s ms (p50 %s p99 %s p99.9 %s)  lost %s%%  NOERROR %s%%  srv %s%%  cli %s%%  cpu-busy %s%%  other %s%%\n' \
    "$mode" "$peer" "$rep" "${qps:-0}" "${lat:-NA}" "$p50" "$p99" "$p999" "${lost:-NA}" "${noerr:-NA}" "$scpu" "$ccpu" "$busy" "$other" >&2
  [ "$DP_VERBOSE" = 1 ] && { grep -v '^> ' "$out" > "$out.tmp"; mv "$out.tmp" "$out"; }
  return 0
}

# p50 p99 p99.9 in ms of the answers in dnsperf -v output (lines "> RCODE name type latency_s";
# timeouts, "> T ...", are not answers): a histogram in whole microseconds, nearest rank.
percentiles() {
  awk '/^> / && $2 != "T" && $2 != "I" {us = int($NF * 1e6 + 0.5); h[us]++; n++; if (us > mx) mx = us}
    END {if (n == 0) {print "NA NA NA"; exit}
      split("0.5 0.99 0.999", q, " "); k = 1; c = 0
      for (u = 0; u <= mx && k <= 3; u++) {c += h[u]; while (k <= 3 && c >= q[k] * n) {r[k] = u; k++}}
      printf "%.3f %.3f %.3f\n", r[1] / 1000, r[2] / 1000, r[3] / 1000}' "$1"
}

# ---------------------------------------------------------------- report
median() { sort -g | awk '{v[NR] = $1} END{if (NR == 0) {print "NA"; exit} if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
col() { awk -F'\t' -v m="$1" -v p="$2" -v c="$3" '$1 == m && $2 == p && $c != "NA" {print $c}' "$RES"; }
qpc() { awk -F'\t' -v m="$1" -v p="$2" '$1 == m && $2 == p && $8 != "NA" && $8 > 0 {print $4 / ($8 / 100)}' "$RES"; }

bcol() { # median busy% of cpu index $3 (0-based) from column 10 "b0/b1/..."
  awk -F'\t' -v m="$1" -v p="$2" -v i="$3" '$1 == m && $2 == p {split($10, b, "/"); if (b[i + 1] != "" && b[i + 1] != "NA") print b[i + 1]}' "$RES" | median
}

report() {
  local mode peer q l lo s c e k cd rk rc busy i o
  printf '\n%-8s %-14s %10s %8s %7s %7s %7s %6s %5s %5s %-9s %5s %11s %6s %8s %2s\n' mode peer medianQPS lat_ms p50_ms p99_ms p999_ms lost% srv% cli% cpubusy% oth% QPS/srvcore xKnot xCoreDNS n
  for mode in $MODES; do
    k=$(col "$mode" knot 4 | median); cd=$(col "$mode" coredns 4 | median)
    for peer in $PEERS; do
      [ -z "$(col "$mode" "$peer" 4)" ] && continue
      q=$(col "$mode" "$peer" 4 | median); l=$(col "$mode" "$peer" 5 | median)
      lo=$(col "$mode" "$peer" 6 | median); s=$(col "$mode" "$peer" 8 | median)
      c=$(col "$mode" "$peer" 9 | median); e=$(qpc "$mode" "$peer" | median)
      busy=""; for ((i = 0; i < NCPU; i++)); do busy+="${busy:+/}$(bcol "$mode" "$peer" $i)"; done
      rk=$(awk -v a="$q" -v b="$k" 'BEGIN{if (b + 0 > 0) printf "%.2f", a / b; else print "NA"}')
      rc=$(awk -v a="$q" -v b="$cd" 'BEGIN{if (b + 0 > 0) printf "%.2f", a / b; else print "NA"}')
      o=$(col "$mode" "$peer" 11 | sort -g | tail -1)
      printf '%-8s %-14s %10.0f %8.3f %7s %7s %7s %6.2f %5.0f %5.0f %-9s %5s %11s %6s %8s %2s\n' "$mode" "$peer" "$q" "$l" \
        "$(col "$mode" "$peer" 12 | median)" "$(col "$mode" "$peer" 13 | median)" "$(col "$mode" "$peer" 14 | median)" "$lo" "$s" "$c" "$busy" "${o:-NA}" \
        "$(awk -v e="$e" 'BEGIN{if (e == "NA") print e; else printf "%.0f", e}')" "$rk" "$rc" "$(col "$mode" "$peer" 4 | wc -l)"
    done
  done
  echo "# medians over runs; lat_ms = dnsperf average latency; p50/p99/p999_ms = percentiles of every answer's"
  echo "# latency (dnsperf -v; NA with DP_VERBOSE=0); srv%/cli% = process CPU (utime+stime) of the"
  echo "# server tree / dnsperf over the run (100 = one core); cpubusy% = busy share of cpu0/cpu1 (incl. softirq);"
  echo "# oth% = MAX over runs of (cpu busy sum - srv% - cli%): unattributed kernel work + other processes;"
  echo "#   well above ~15 means something else competed for the cpus: rerun on a quiet machine."
  echo "# QPS/srvcore = QPS / (srv%/100), per-run then median; xKnot/xCoreDNS = medianQPS ratio, same mode."
}

# ---------------------------------------------------------------- main
main() {
  [ -x "$DNSPERF" ] || die "dnsperf not found (set DNSPERF)"
  [ -x "$DIG" ] || die "dig not found (set DIG)"
  local active=() p mode rep
  for p in $PEERS; do
    if have_peer "$p"; then active+=("$p"); else note "skipping $p (binary/address not set)"; fi
  done
  [ ${#active[@]} -gt 0 ] || die "no peers to run"
  write_zone
  : > "$RES"
  note "versions:"
  [ -n "$KNOTD" ] && note "  $("$KNOTD" --version 2>&1 | head -1)"
  [ -n "$NSD" ] && note "  $("$NSD" -v 2>&1 | head -1)"
  [ -n "$COREDNS" ] && note "  $("$COREDNS" -version 2>&1 | tr '\n' ' ')"
  [ -n "$PDNS_SERVER" ] && note "  $("$PDNS_SERVER" --version 2>&1 | grep -o 'PowerDNS Authoritative Server [0-9.]*')"
  note "  dnsperf $("$DNSPERF" -h 2>&1 | awk '/^Version/{print $2}')"
  note "dnsperf -c $DP_CLIENTS -T $DP_THREADS -q $DP_OUTSTANDING ${DP_MAXQPS:+-Q $DP_MAXQPS} -l $DURATION; reps $REPS; modes $MODES; cpus $NCPU"
  for mode in $MODES; do
    write_configs "$mode"
    for p in "${active[@]}"; do start_peer "$p" "$mode"; done
    for p in "${active[@]}"; do
      if ! wait_ready "$p"; then
        do_peer "$p" && die "$p (DP_DO_PEERS) did not answer in $mode mode; see $LOGS/$p-$mode.log"
        note "$p did not answer in $mode mode; see $LOGS/$p-$mode.log"; continue
      fi
      sanity "$p" "$mode" >&2
      if do_peer "$p" && ! signs "$p"; then die "$p does not sign (DP_DO_PEERS); see $LOGS/$p-$mode.log"; fi
      [ "$mode" = pinned ] && check_affinity "$p"
      run_dnsperf "$p" "$mode" warm "$WARMUP"
    done
    for ((rep = 1; rep <= REPS; rep++)); do
      for p in "${active[@]}"; do run_dnsperf "$p" "$mode" "$rep" "$DURATION"; done
    done
    stop_all
  done
  ACTIVE_PEERS="${active[*]}"
  PEERS=$ACTIVE_PEERS
  report
  note "per-run rows: $RES (mode peer rep qps lat_ms lost% noerror% srv_proc_cpu% cli_proc_cpu% cpu0/cpu1..busy% other% p50_ms p99_ms p999_ms)"
}

case ${1:-run} in
  run) main ;;
  report) PEERS=${PEERS}; report ;;
  setup) write_zone; for m in $MODES; do write_configs "$m"; done; echo "$WORKDIR" ;;
  *) sed -n '2,54p' "$0"; exit 2 ;;
esac
