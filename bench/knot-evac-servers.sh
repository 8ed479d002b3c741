# bench/knot-evac-servers.sh - sourced by dns-syscalls.sh and dns-wakeups.sh: in $W, the
# zone and query file of bench/dns-peers.sh and the weighted steering of bench/dns.sh;
# then Knot on 127.0.0.1:$BASE_PORT and each binary of $EVACS (`evac dnsbench`) on the
# next ports, all pinned to cpu 0, each answering before this returns. Sets names
# (knot evac1 ...), PORT and PIDS by name, and a trap that stops them on exit.
mkdir -p "$W"
# the zone and query file of bench/dns-peers.sh, and the weighted steering of bench/dns.sh
WORKDIR=$W bench/dns-peers.sh setup >/dev/null
{
  printf 'zone: example.com.\nttl: 300\nnameservers: {ns1: 127.0.0.1}\n'
  printf 'regions: [{name: a}, {name: b}, {name: c}]\nservices:\n'
  for ((i = 0; i < 100; i++)); do
    printf '  - {name: svc%d, policy: weighted, endpoints: {a: [10.1.0.%d], b: [10.2.0.%d], c: [10.3.0.%d]}}\n' $i $i $i $i
  done
} > "$W/weighted.yaml"
cat > "$W/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$BASE_PORT
    rundir: $W
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: $W
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: $W
    zonefile-sync: -1
    journal-content: none
    semantic-checks: off
zone:
  - domain: example.com
    file: $W/zones/example.com.zone
EOF
declare -A PORT PIDS
names=(knot)
PORT[knot]=$BASE_PORT
setsid taskset -c 0 knotd -c "$W/knot.conf" >"$W/knot.log" 2>&1 & PIDS[knot]=$!
port=$BASE_PORT k=0
for e in $EVACS; do
  port=$((port + 1)) k=$((k + 1)); n=evac$k; names+=("$n"); PORT[$n]=$port
  echo "# $n = $e" >&2
  setsid taskset -c 0 "$e" dnsbench --config "$W/weighted.yaml" --addr 127.0.0.1:$port --weights 50,30,20 \
    --dns-rate-limit 0 --log-level warn >"$W/$n.log" 2>&1 & PIDS[$n]=$!
done
trap 'for n in "${names[@]}"; do kill -- -"${PIDS[$n]}" 2>/dev/null || true; done' EXIT
for n in "${names[@]}"; do
  for ((i = 0; i < 50; i++)); do dig +short +time=1 +tries=1 @127.0.0.1 -p "${PORT[$n]}" svc0.example.com A >/dev/null 2>&1 && break; sleep 0.2; done
done
