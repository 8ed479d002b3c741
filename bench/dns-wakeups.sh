#!/usr/bin/env bash
# dns-wakeups.sh - where a UDP server's reply latency goes, per wake-up: Knot and one or
# more evac binaries (`evac dnsbench`, the weighted zone of bench/dns.sh) at one offered
# load (dnsperf -Q), server pinned to cpu 0, dnsperf to cpu 1, rounds interleaved. For
# each run: dnsperf's latency (average, p50, p90, p99, p99.9 from dnsperf -v), and from
# 2 s of scheduler and system-call tracepoints (perf record -a) in the middle of the run,
# per wake-up of a server thread that then read datagrams:
#   wake>cpu   from the kernel waking the thread (sched_waking) to it running (sched_switch):
#              the idle cpu's wake-up, or a wait behind whatever else ran on cpu 0;
#   cpu>recv   from running to its first recvmmsg returning datagrams (Knot: epoll_wait
#              returns, recvmmsg; evac: the Go scheduler runs the reader goroutine);
#   recv>sent  from that recvmmsg to the first sendmmsg done (the answers of the batch);
#   tail       from the last sendmmsg to going off cpu (evac: the recvmmsg that finds the
#              socket empty, and the scheduler parking in epoll_pwait);
# and the server's wake-ups that read nothing (other threads: Go's sysmon, spinning Ms),
# and what was running on cpu 0 when a wake-up waited more than 15 µs for the cpu.
#
#   EVACS="/path/old/evac /path/new/evac" bench/dns-wakeups.sh
#
# An evac entry may be a script that sets the environment and execs evac (the pid must
# stay the server's). Before each run it waits (up to QUIET s) for a second with both cpus
# under 12% busy, and it reports per run the server's CPU and cpu 0's other busy share
# (softirq work and other processes: well above ~10, the run waited for the cpu), then
# medians over the rounds. Knobs: RATES ["50000"; 0 = no -Q, dnsperf's limit] SECS [5]
# ROUNDS [2] TRACE [1; 0: latency only, no perf] QUIET [20] WORKDIR [$TMPDIR/evac-dns-wakeups].
# Needs dnsperf, knotd, dig, perf (linux-perf; not with TRACE=0); root. Binds
# 127.0.0.1:5381-5389: run it under the team's lock. Results: docs/benchmarks.md, "At a
# fixed load".
set -euo pipefail
cd "$(dirname "$0")/.."
: "${EVACS:?set EVACS to one or more evac binaries}"
RATES=${RATES:-${RATE:-50000}} SECS=${SECS:-5} ROUNDS=${ROUNDS:-2} TRACE=${TRACE:-1} QUIET=${QUIET:-20}
W=${WORKDIR:-${TMPDIR:-/tmp}/evac-dns-wakeups}
BASE_PORT=5381 . bench/knot-evac-servers.sh
EV=sched:sched_waking,sched:sched_switch,syscalls:sys_exit_recvmmsg,syscalls:sys_exit_sendmmsg
busy() { awk '/^cpu[01] /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat | paste -sd' '; } # USER_HZ ticks
quiet() { # wait up to QUIET s for a second with both cpus under 12% busy (other engineers' jobs)
  local i a0 a1 b0 b1
  for ((i = 0; i < QUIET; i++)); do
    read -r a0 a1 <<<"$(busy)"; sleep 1; read -r b0 b1 <<<"$(busy)"
    [ $((b0 - a0)) -lt 12 ] && [ $((b1 - a1)) -lt 12 ] && return 0
  done
  return 0
}
ptime() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; } # utime + stime
RES=$W/results.tsv
: > "$RES"
echo "# rates $RATES qps (0: dnsperf's limit), $SECS s per run, $ROUNDS rounds; load average $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$TRACE" = 1 ] && echo "# per wake-up, µs: p50/p90/p99 (mean)"
hz=$(getconf CLK_TCK)
for ((r = 1; r <= ROUNDS; r++)); do
 for rate in $RATES; do
  for n in "${names[@]}"; do
    q=(); [ "$rate" != 0 ] && q=(-Q "$rate")
    quiet
    p=${PIDS[$n]} w0=$(date +%s.%N) t0=$(ptime "${PIDS[$n]}"); read -r c0 _ <<<"$(busy)"
    taskset -c 1 dnsperf -s 127.0.0.1 -p "${PORT[$n]}" -d "$W/queries.txt" -l "$SECS" -c 8 -q 200 "${q[@]}" -v \
      >"$W/dp-$n-$rate-$r.txt" 2>&1 & dp=$!
    load=$(cut -d' ' -f1 /proc/loadavg)
    if [ "$TRACE" = 1 ]; then
      sleep $(((SECS - 2) / 2))
      perf record -q -a -e "$EV" -o "$W/perf-$n-$rate-$r.data" -- sleep 2 >/dev/null 2>&1
    fi
    wait $dp
    t1=$(ptime "$p"); read -r c1 _ <<<"$(busy)"
    wall=$(awk -v a="$w0" -v b="$(date +%s.%N)" 'BEGIN{print b - a}')
    srv=$(awk -v a="$t0" -v b="$t1" -v w="$wall" -v hz="$hz" 'BEGIN{printf "%.0f", (b - a) / hz / w * 100}')
    # cpu 0's busy share beyond the server's process time: softirq work and other processes
    oth=$(awk -v a="$c0" -v b="$c1" -v w="$wall" -v hz="$hz" -v s="$srv" 'BEGIN{printf "%.0f", (b - a) / hz / w * 100 - s}')
    qps=$(awk '/Queries per second:/{printf "%.0f", $4}' "$W/dp-$n-$rate-$r.txt")
    lat=$(awk '/^> / && $2 != "T" {us = int($NF * 1e6 + 0.5); h[us]++; n++; s += us; if (us > mx) mx = us}
      END {split("0.5 0.9 0.99 0.999", q, " "); k = 1; c = 0
        for (u = 0; u <= mx && k <= 4; u++) {c += h[u]; while (k <= 4 && c >= q[k] * n) {r[k] = u; k++}}
        printf "%.0f %d %d %d %d", s / n, r[1], r[2], r[3], r[4]}' "$W/dp-$n-$rate-$r.txt")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$rate" "$r" "$qps" "$(tr ' ' '\t' <<<"$lat")" "$srv" "$oth" "$load" >> "$RES"
    read -r avg p50 p90 p99 p999 <<<"$lat"
    printf '%-6s %6s r%d %6s qps  avg %s p50 %s p90 %s p99 %s p99.9 %s us  srv %s%%  cpu0 other %s%%  load %s\n' \
      "$n" "$rate" "$r" "$qps" "$avg" "$p50" "$p90" "$p99" "$p999" "$srv" "$oth" "$load"
    [ "$TRACE" = 1 ] || continue
    perf script -i "$W/perf-$n-$rate-$r.data" -F comm,pid,tid,cpu,time,event,trace 2>/dev/null |
      awk -v tgid="${PIDS[$n]}" -v secs=2 '
      function kv(s, key,   i, a, m) { m = split(s, a, " "); for (i = 1; i <= m; i++) if (index(a[i], key "=") == 1) return substr(a[i], length(key) + 2); return "" }
      function hex(s,   i, v) { v = 0; s = tolower(substr(s, 3)); for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return v }
      function pct(arr, cnt, p,   i, h, u, mx, c) {
        # a histogram in whole µs (mawk has no sort)
        mx = 0; for (i = 1; i <= cnt; i++) { u = int(arr[i] + 0.5); if (u < 0) u = 0; h[u]++; if (u > mx) mx = u }
        c = 0; for (u = 0; u <= mx; u++) { c += h[u]; if (c >= p * cnt) return u }
        return mx }
      function mean(arr, cnt,   i, s) { s = 0; for (i = 1; i <= cnt; i++) s += arr[i]; return cnt ? s / cnt : 0 }
      function show(name, arr) { printf "  %-10s %4.0f/%4.0f/%5.0f (%5.1f)", name, pct(arr, nc, .5), pct(arr, nc, .9), pct(arr, nc, .99), mean(arr, nc) }
      {
        # fields: comm (may hold spaces) pid/tid [cpu] time: event: trace
        for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\/[0-9]+$/) break
        split($i, pt, "/"); pid = pt[1] + 0; tid = pt[2] + 0
        t = $(i + 2); sub(/:$/, "", t); t *= 1e6; ev = $(i + 3); sub(/:$/, "", ev)
        rest = ""; for (j = i + 4; j <= NF; j++) rest = rest " " $j
        if (pid == tgid) mine[tid] = 1
        if (ev == "sched:sched_waking") {
          w = kv(rest, "pid") + 0
          if (w in mine || kv(rest, "comm") ~ /^(knotd|evac)/) waking[w] = t
        } else if (ev == "sched:sched_switch") {
          prev = kv(rest, "prev_pid") + 0; next_ = kv(rest, "next_pid") + 0
          if (prev in on) {
            if (got[prev] > 0 && sent1[prev] != "") {
              nc++; wc[nc] = in_[prev] - wt[prev]; cr[nc] = recv1[prev] - in_[prev]
              rs[nc] = sent1[prev] - recv1[prev]; tl[nc] = t - sentN[prev]
              dg += got[prev]; nr += rc[prev]; ns += sc[prev]
              if (wc[nc] > 15) slow[pcomm[prev]]++
            } else empty++
            delete on[prev]
          }
          if ((next_ in mine) && (next_ in waking)) {
            on[next_] = 1; wt[next_] = waking[next_]; in_[next_] = t; delete waking[next_]
            got[next_] = 0; rc[next_] = 0; sc[next_] = 0; recv1[next_] = ""; sent1[next_] = ""
            pcomm[next_] = kv(rest, "prev_comm")
          }
        } else if (pid == tgid && (tid in on)) {
          v = $NF; v = (v ~ /^0x/) ? hex(v) : v + 0
          if (ev == "syscalls:sys_exit_recvmmsg") {
            rc[tid]++
            if (v > 0 && v < 1024) { got[tid] += v; if (recv1[tid] == "") recv1[tid] = t }
          } else if (ev == "syscalls:sys_exit_sendmmsg") {
            sc[tid]++; if (sent1[tid] == "") sent1[tid] = t; sentN[tid] = t
          }
        }
      }
      END {
        if (!nc) { print "  no wake-ups seen"; exit }
        printf "  wake-ups %d/s, datagrams %.1f, recvmmsg %.2f, sendmmsg %.2f per wake-up; wake-ups reading nothing %d/s\n", nc / secs, dg / nc, nr / nc, ns / nc, empty / secs
        show("wake>cpu", wc); show("cpu>recv", cr); show("recv>sent", rs); show("tail", tl); printf "\n"
        s = ""; for (c in slow) s = s sprintf(" %s:%d", c, slow[c]); if (s != "") print "  waited >15 µs for cpu 0 behind:" s
      }'
  done
 done
done
# medians over rounds, (min-max)
echo "# medians over $ROUNDS rounds (min-max); µs; per-run rows: $RES (server rate round qps avg p50 p90 p99 p99.9 srv% cpu0-other% load)"
awk -F'\t' '
  function med(s,   a, n, i, j, t) { n = split(s, a, " ")
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return sprintf("%s (%s-%s)", (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2), a[1], a[n]) }
  { k = $1 "\t" $2; if (!(k in seen)) { seen[k] = 1; order[++no] = k }
    for (c = 4; c <= 12; c++) v[k, c] = v[k, c] " " $c }
  END { printf "%-6s %6s %-22s %-16s %-16s %-18s %-18s %-14s %-14s %s\n", "server", "rate", "qps", "avg", "p50", "p99", "p99.9", "srv%", "cpu0 other%", "load"
    for (i = 1; i <= no; i++) { k = order[i]; split(k, kk, "\t")
      printf "%-6s %6s %-22s %-16s %-16s %-18s %-18s %-14s %-14s %s\n", kk[1], kk[2], med(v[k, 4]), med(v[k, 5]), med(v[k, 6]), med(v[k, 8]), med(v[k, 9]), med(v[k, 10]), med(v[k, 11]), med(v[k, 12]) } }' "$RES"
