#!/usr/bin/env bash
# dns-syscalls.sh - where a UDP server's time goes per query: Knot and one or more evac
# binaries (`evac dnsbench`, the weighted zone of bench/dns.sh) at the same offered load
# (dnsperf -Q), server pinned to cpu 0, dnsperf to cpu 1, rounds interleaved; for each
# run: latency (average, p50, p90, p99, p99.9 from dnsperf -v), the server's CPU, and
# per query the server's system calls and context switches (perf stat tracepoints on
# the server's threads).
#
#   EVACS="/path/old/evac /path/new/evac" bench/dns-syscalls.sh
#
# Knobs: RATE [40000] SECS [4] ROUNDS [2] WORKDIR [$TMPDIR/evac-dns-syscalls]. Needs
# dnsperf, knotd, perf (linux-perf), dig; root. Binds 127.0.0.1:5391-5399: run it under
# the team's lock.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${EVACS:?set EVACS to one or more evac binaries}"
RATE=${RATE:-40000} SECS=${SECS:-4} ROUNDS=${ROUNDS:-2}
W=${WORKDIR:-${TMPDIR:-/tmp}/evac-dns-syscalls}
BASE_PORT=5391 . bench/knot-evac-servers.sh
EV=syscalls:sys_enter_recvmmsg,syscalls:sys_enter_sendmmsg,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex,syscalls:sys_enter_nanosleep,sched:sched_switch
echo "# rate $RATE qps, $SECS s per run, $ROUNDS rounds; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= ROUNDS; r++)); do
  for n in "${names[@]}"; do
    p=${PIDS[$n]}
    t0=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' /proc/$p/stat)
    perf stat -x, -o "$W/perf-$n-$r.txt" -e "$EV" -p "$p" -- taskset -c 1 dnsperf -s 127.0.0.1 -p "${PORT[$n]}" \
      -d "$W/queries.txt" -l "$SECS" -c 8 -q 200 -Q "$RATE" -v >"$W/dp-$n-$r.txt" 2>&1
    t1=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' /proc/$p/stat)
    q=$(awk '/Queries completed:/{print $3}' "$W/dp-$n-$r.txt")
    lat=$(awk '/^> / && $2 != "T" {us = int($NF * 1e6 + 0.5); h[us]++; n++; s += us; if (us > mx) mx = us}
      END {split("0.5 0.9 0.99 0.999", q, " "); k = 1; c = 0
        for (u = 0; u <= mx && k <= 4; u++) {c += h[u]; while (k <= 4 && c >= q[k] * n) {r[k] = u; k++}}
        printf "avg %.0f p50 %d p90 %d p99 %d p99.9 %d us", s / n, r[1], r[2], r[3], r[4]}' "$W/dp-$n-$r.txt")
    per=$(awk -F, -v q="$q" '/syscalls|sched/ {split($3, a, ":"); sub(/sys_enter_/, "", a[2]); printf "%s %.3f  ", a[2], $1 / q}' "$W/perf-$n-$r.txt")
    printf '%-6s r%d %6s qps  %s  cpu %s%%  per query: %s load %s\n' "$n" "$r" \
      "$(awk '/Queries per second:/{printf "%.0f", $4}' "$W/dp-$n-$r.txt")" "$lat" \
      "$(awk -v a="$t0" -v b="$t1" -v s="$SECS" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.0f", (b - a) / hz / s * 100}')" \
      "$per" "$(cut -d' ' -f1 /proc/loadavg)"
  done
done
