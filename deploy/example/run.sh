#!/usr/bin/env bash
# A production-shaped evac on one machine: 3 controllers and 2 agents in each
# of 3 regions, on loopback, with TLS on the admin API and on Raft, an
# encrypted gossip pool and bearer tokens.
#
#   deploy/example/run.sh          generate certificates, keys, tokens and
#                                  configs (once), start everything
#   deploy/example/run.sh stop     stop everything it started
#   deploy/example/run.sh clean    stop, then remove the example's directory
#
# Everything lives in $EVAC_EXAMPLE_DIR (default /tmp/evac-example): tls/,
# gossip.key, tokens.yaml (hashes only) and tokens.txt (the tokens, mode 0600),
# agent-keys/ (each agent's own key, enrolled on the controllers), *.yaml
# configs, data/, logs/ and pids/.
#
# Needs: openssl, and python3 for the three stand-in regional backends the
# agents check (kill one to watch its region being evacuated). The binary is
# $EVAC_BIN, else `evac` on PATH, else built from this repository.
#
# Addresses (chosen not to collide with `evac dev`):
#   controllers c1..c3   127.0.19.1-3   raft :7300 (TLS)  gossip :7946
#                                       admin API https://127.0.19.N:8443  DNS :5353
#   region i's agents    127.0.2i.1-2   gossip :7946; its backend 127.0.2i.100:8000
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${EVAC_EXAMPLE_DIR:-/tmp/evac-example}"
regions=(us-east us-west eu-west)
endpoints=("192.0.2.11, 192.0.2.12" "198.51.100.11, 198.51.100.12" "203.0.113.11, 203.0.113.12")

stop() { # SIGTERM in order: controllers, agents, backends; each group up to 30 s
  local total=0 group pids pid f
  for group in 'c[0-9]*' '*-a[0-9]*' 'backend-*'; do
    pids=()
    for f in "$dir"/pids/$group.pid; do
      [ -e "$f" ] || continue
      pid="$(cat "$f")"
      if kill -0 "$pid" 2>/dev/null && kill -TERM "$pid"; then pids+=("$pid"); fi
      rm -f "$f"
    done
    for _ in $(seq 1 60); do
      local alive=0
      for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      [ "$alive" = 0 ] && break
      sleep 0.5
    done
    total=$((total + ${#pids[@]}))
  done
  echo "stopped $total processes"
}

case "${1:-start}" in
  stop) stop; exit 0 ;;
  clean) [ -d "$dir/pids" ] && stop; rm -rf "$dir"; echo "removed $dir"; exit 0 ;;
  start) ;;
  *) echo "usage: $0 [start|stop|clean]" >&2; exit 2 ;;
esac

for tool in openssl python3; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is needed" >&2; exit 1; }
done
evac="${EVAC_BIN:-}"
if [ -z "$evac" ]; then
  if command -v evac >/dev/null; then
    evac="$(command -v evac)"
  else
    echo "building evac..."
    (cd "$root" && CGO_ENABLED=0 go build -o "$root/bin/evac" ./cmd/evac)
    evac="$root/bin/evac"
  fi
fi
if [ -n "$(ls "$dir"/pids/*.pid 2>/dev/null)" ]; then
  echo "$0: already running (pids in $dir/pids); run '$0 stop' first" >&2
  exit 1
fi
mkdir -p "$dir"/{tls,data,logs,pids}
chmod 700 "$dir"
cd "$dir"

# ---- certificates: one CA; a certificate per controller, valid for its own
# address, used by the admin API and by Raft (mutual TLS between controllers).
# For Raft a peer's certificate must name a cluster member (its node id as a
# DNS SAN, or its Raft IP as an IP SAN: here both) and carry both serverAuth
# and clientAuth; keys must be mode 0600 (evac refuses wider ones).
if [ ! -e tls/ca.pem ]; then
  echo "generating the CA and the controllers' certificates in $dir/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj "/CN=evac example CA" -keyout tls/ca-key.pem -out tls/ca.pem 2>/dev/null
  for i in 1 2 3; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=c$i" \
      -keyout "tls/c$i-key.pem" -out "tls/c$i.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.19.%d,DNS:c%d,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' "$i" "$i" > "tls/c$i.ext"
    openssl x509 -req -in "tls/c$i.csr" -CA tls/ca.pem -CAkey tls/ca-key.pem -CAcreateserial \
      -days 365 -extfile "tls/c$i.ext" -out "tls/c$i.pem" 2>/dev/null
    rm -f "tls/c$i.csr" "tls/c$i.ext"
  done
  chmod 600 tls/*-key.pem
fi

# ---- gossip key and tokens (the tokens file holds SHA-256 hashes only).
[ -e gossip.key ] || { "$evac" keygen > gossip.key; chmod 600 gossip.key; }
if [ ! -e tokens.yaml ]; then
  echo "tokens:" > tokens.yaml
  : > tokens.txt
  chmod 600 tokens.txt
  for pair in admin:admin oncall:operator dashboard:viewer; do
    name="${pair%%:*}" role="${pair##*:}"
    tok="$(openssl rand -hex 24)"
    sum="$(printf '%s' "$tok" | openssl dgst -sha256 -r | cut -d' ' -f1)"
    echo "  - {name: $name, role: $role, sha256: $sum}" >> tokens.yaml
    echo "$name $role $tok" >> tokens.txt
  done
fi
admin_token="$(awk '$1 == "admin" {print $3}' tokens.txt)"

# ---- agent identities: each agent its own key pair (private key mode 0600,
# public key beside it), enrolled once the cluster is up (below).
mkdir -p agent-keys
chmod 700 agent-keys
for region in "${regions[@]}"; do
  for k in 1 2; do
    [ -e "agent-keys/$region-a$k.key" ] ||
      "$evac" agent keygen --out "agent-keys/$region-a$k.key" > "agent-keys/$region-a$k.pub"
  done
done

# ---- configs.
bootstrap="c1=127.0.19.1:7300,c2=127.0.19.2:7300,c3=127.0.19.3:7300"
seeds="127.0.19.1:7946, 127.0.19.2:7946, 127.0.19.3:7946"
for i in 1 2 3; do
  cat > "c$i.yaml" <<EOF
node_id: c$i
data_dir: $dir/data/c$i
raft_addr: 127.0.19.$i:7300
gossip_addr: 127.0.19.$i:7946
http_addr: 127.0.19.$i:8443
dns_addr: 127.0.19.$i:5353
bootstrap: $bootstrap
join: [$seeds]
gossip_key_file: $dir/gossip.key
EOF
done
for r in 0 1 2; do
  region="${regions[$r]}" net="127.0.2$((r + 1))"
  for k in 1 2; do
    cat > "$region-a$k.yaml" <<EOF
region: $region
node_name: $region-a$k
gossip_addr: $net.$k:7946
join: [$seeds]
gossip_key_file: $dir/gossip.key
key_file: $dir/agent-keys/$region-a$k.key
checks:
  - {name: http, service: api, type: http, target: "http://$net.100:8000/", interval: 2s, timeout: 1s, rise: 2, fall: 2}
EOF
  done
done
{
  echo "zone: example.com."
  echo "ttl: 30"
  echo "nameservers: {ns1: 192.0.2.53}"
  echo "regions:"
  for region in "${regions[@]}"; do echo "  - {name: $region, capacity: 100}"; done
  echo "services:"
  echo "  - name: api"
  echo "    policy: weighted"
  echo "    ttl: 30"
  echo "    endpoints:"
  for r in 0 1 2; do echo "      ${regions[$r]}: [${endpoints[$r]}]"; done
  echo "policy: {unhealthy_below: 0.5, detect_after: 20s, ramp: [50, 0], step_interval: 20s, mode: auto, max_evacuated: 1}"
} > steering.yaml

# ---- start.
start() { # name, then the command
  local name="$1"; shift
  "$@" >"logs/$name.log" 2>&1 &
  echo $! > "pids/$name.pid"
}
for r in 0 1 2; do
  net="127.0.2$((r + 1))"
  mkdir -p "backend-${regions[$r]}"
  echo "ok ${regions[$r]}" > "backend-${regions[$r]}/index.html"
  start "backend-${regions[$r]}" python3 -m http.server 8000 --bind "$net.100" --directory "backend-${regions[$r]}"
done
# The backends listen before any agent checks them (an agent's first checks
# only warm up, but a backend still starting is not a failure to report).
for r in 0 1 2; do
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.2$((r + 1)).100/8000") 2>/dev/null && break
    sleep 0.1
  done
done
for i in 1 2 3; do
  start "c$i" "$evac" server --config "c$i.yaml" \
    --tls-cert "tls/c$i.pem" --tls-key "tls/c$i-key.pem" \
    --raft-tls-cert "tls/c$i.pem" --raft-tls-key "tls/c$i-key.pem" --raft-tls-ca tls/ca.pem \
    --tokens-file tokens.yaml
done
for region in "${regions[@]}"; do
  for k in 1 2; do start "$region-a$k" "$evac" agent --config "$region-a$k.yaml"; done
done

# The CLI trusts the example CA through SSL_CERT_FILE (Go reads it on Linux).
export SSL_CERT_FILE="$dir/tls/ca.pem" EVAC_ADDR="https://127.0.19.1:8443" EVAC_TOKEN="$admin_token"
echo "waiting for the cluster..."
for _ in $(seq 1 60); do
  "$evac" status >/dev/null 2>&1 && break
  sleep 1
done
if ! "$evac" apply -f steering.yaml; then
  echo "$0: the cluster did not accept the steering config; logs in $dir/logs" >&2
  stop
  exit 1
fi

# ---- enrol the agents: from here on only their signed reports count
# (re-enrolling an agent with the same key changes nothing but the audit log).
for region in "${regions[@]}"; do
  for k in 1 2; do
    if ! "$evac" agent enroll "$region-a$k" --region "$region" --public-key "$(cat "agent-keys/$region-a$k.pub")" \
      --reason "deploy/example" >/dev/null; then
      echo "$0: enrolling agent $region-a$k failed; logs in $dir/logs" >&2
      stop
      exit 1
    fi
  done
done

cat <<EOF

evac example running in $dir
  controllers   https://127.0.19.1:8443  https://127.0.19.2:8443  https://127.0.19.3:8443
  dashboard     https://127.0.19.1:8443/ui   (sign in with a token from $dir/tokens.txt;
                the browser must trust $dir/tls/ca.pem)
  DNS           dig @127.0.19.1 -p 5353 api.example.com
  tokens        $dir/tokens.txt (admin, oncall: operator, dashboard: viewer)

Use the CLI:
  export SSL_CERT_FILE=$dir/tls/ca.pem EVAC_ADDR=https://127.0.19.1:8443 EVAC_TOKEN=\$(awk '\$1=="oncall"{print \$3}' $dir/tokens.txt)
  $evac regions
  $evac agents                                   # enrolled agents; enrolment is enforced
  kill \$(cat $dir/pids/backend-us-east.pid)     # us-east's backend dies: watch it evacuate
  $evac events --follow

Stop everything:  $0 stop        (and '$0 clean' removes $dir)
EOF
