# evac — see README.md. The two commands a new user runs: `make demo`, `make test`.
SHELL     := /bin/bash
GO        ?= go
BIN       := bin/evac
PKGS      := ./...
# Packages with unit and in-process cluster tests (everything but integration/).
UNIT_PKGS  = $(shell $(GO) list ./... | grep -v /integration)
STATICCHECK_VERSION := v0.8.2
# A release tag (v1.2.3) when HEAD has one; otherwise the commit, which evac
# version shows as the next release's -dev version plus the commit.
VERSION   ?= $(shell git describe --tags --match 'v[0-9]*' --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_TIME ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS   := -X github.com/evac-sh/evac/internal/buildinfo.Version=$(VERSION) -X github.com/evac-sh/evac/internal/buildinfo.BuildTime=$(BUILD_TIME) -X github.com/evac-sh/evac/internal/buildinfo.Revision=$(REVISION)

.PHONY: docker-context all build demo test test-unit test-integration dns-conformance chaos lint bench bench-dns bench-gossip fuzz deps clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/evac

# The build context of deploy/docker/Dockerfile: the static binary, the
# host's CA roots and an empty state directory, so `docker build` pulls nothing.
docker-context: build
	rm -rf bin/docker && mkdir -p bin/docker/data
	cp $(BIN) bin/docker/evac
	cp /etc/ssl/certs/ca-certificates.crt bin/docker/

# The whole system on loopback: 3 controllers, 2 agents in each of 3 regions.
demo: build
	./$(BIN) dev

# Everything: vet, unit and in-process cluster tests with -race, then the
# integration tests that start real evac processes (TestChaos among them: a
# 75 s chaos run, in parallel with the others; its checker's unit tests first).
# The DNS conformance suite (dns-conformance below) is part of it: its tests
# are among the unit packages' and integration/'s, run once each.
test: deps
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -run '^TestLint$$' ./controlplane/api/openapi/ # OpenAPI linter (kin-openapi + evac's rules): 0 warnings
	$(GO) test -race -count=1 -timeout 10m $(UNIT_PKGS)
	$(GO) test -run '^$$' -fuzz FuzzServeDNS -fuzztime 30s ./dnsserver/
	$(GO) test -race -count=1 ./integration/chaos/
	$(GO) test -count=1 -timeout 20m -parallel 6 -v ./integration/

# The DNS conformance suite (README, "Tests"): the protocol strictness cases
# (package dnsserver/conformance) on every in-process listener, TSIG, AXFR
# and IXFR with its journal; then against real `evac server` processes the
# same cases, and Knot, BIND and NSD as TSIG-authenticated secondaries taking
# 20 changes by IXFR (integration/tsig_test.go, knot_test.go). `make test`
# runs these tests among all the others.
DNS_CONFORMANCE_UNIT := ^(TestStrictness|TestECSEcho|TestCaseEcho|TestTruncatedNoPartialRRset|TestTruncation|TestMalformedQueries|TestOpcodes|TestEDNS|TestECS|TestAXFR.*|TestIXFR.*|TestJournal.*|TestTSIG|TestSignedNotify|TestNotify|TestCheckFails)$$
DNS_CONFORMANCE_INTEGRATION := ^(TestDNSConformance|TestTSIGSecondaries|TestKnotSecondary)$$
dns-conformance: deps
	$(GO) test -race -count=1 -run '$(DNS_CONFORMANCE_UNIT)' ./dnsserver/ ./dnsserver/conformance/
	$(GO) test -count=1 -timeout 10m -parallel 3 -v -run '$(DNS_CONFORMANCE_INTEGRATION)' ./integration/

test-unit:
	$(GO) test -race -count=1 $(UNIT_PKGS)

test-integration: build
	$(GO) test -count=1 -timeout 20m -parallel 6 -v ./integration/

# The chaos suite (docs/reliability.md): a nemesis against a real cluster for
# CHAOS_DURATION, then a checker; CHAOS_SEED=N reproduces a run's schedule.
CHAOS_DURATION ?= 10m
CHAOS_TIMEOUT  ?= 40m
chaos:
	CHAOS_DURATION=$(CHAOS_DURATION) $(GO) test -count=1 -timeout $(CHAOS_TIMEOUT) -run '^TestChaos$$' -v ./integration/

# Every fuzz target, package:function, each run for FUZZTIME (one
# `go test -fuzz` per target: Go fuzzes one target per run). FUZZTIME=10m
# make fuzz for longer; failures land in the package's testdata/fuzz.
FUZZTIME ?= 60s
FUZZ_TARGETS := \
	./dnsserver:FuzzServeDNS \
	./dnsserver:FuzzPathsAgree \
	./controlplane/state:FuzzParseConfig \
	./dnsserver/topology:FuzzLookup \
	./controlplane/state:FuzzApply \
	./controlplane/state:FuzzDrillCommands \
	./controlplane/api:FuzzDecodeStrict \
	./controlplane/api:FuzzHandler \
	./agent:FuzzAgentConfig \
	./gossip:FuzzDelegate \
	./runbooks:FuzzParseRunbook
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*} fn=$${t##*:}; echo "== $$fn in $$pkg for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# Debian packages some tests need; installed only when missing and when root.
# knot, knot-dnsutils: integration/knot_test.go, tsig_test.go, xfrsign_test.go; bind9, nsd: tsig_test.go;
# bind9 (bind9-utils: dnssec-verify): xfrsign_test.go; chromium: ui_test.go;
# unbound, bind9-dnsutils (delv): dnssec_test.go;
# openssl, python3: deploy_test.go; prometheus: agent/checks' prometheus check and kpi_test.go;
# prometheus-alertmanager: notify_test.go and the block_on tests; bind9-dnsutils (dig): tryit_test.go.
DEB_PKGS := nftables chromium knot knot-dnsutils bind9 bind9-dnsutils unbound nsd openssl python3 prometheus prometheus-alertmanager
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "warning: missing Debian packages:$$missing (run as root to install)"; fi; \
	fi

lint:
	gofmt -l . | (! grep .) || (echo "gofmt needed on the files above"; exit 1)
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(UNIT_PKGS)

# evac's DNS against Knot, NSD, PowerDNS, gdnsd (and CoreDNS with COREDNS=path) under
# dnsperf, with latency percentiles; nearest against PowerDNS pickclosest and gdnsd geoip;
# PHASES=signed: evac signed (DNSSEC) against evac unsigned, Knot automatic signing and
# PowerDNS online signing (bind backend with bind-dnssec-db: no further package).
# Needs the Debian packages dnsperf knot nsd pdns-server pdns-backend-bind
# pdns-backend-geoip gdnsd; see bench/dns.sh and docs/benchmarks.md.
bench-dns: build
	bench/dns.sh

# Gossip and health at scale (docs/benchmarks.md): N=100 and 300 over 5 regions,
# then N=1000, then N=1000 with changes left to the gossip flood alone
# (-direct=false). The 1,000 agents share this machine's cores, so their probes
# are relaxed (BENCH_GOSSIP_LARGE; docs/benchmarks.md says why). About 35 minutes;
# run it on a quiet machine.
BENCH_GOSSIP_LARGE ?= -probe-interval 5s -probe-timeout 3s -agents-heap-mib 12288 -join-timeout 8m
bench-gossip:
	$(GO) build -o bin/bench-gossip ./bench/gossip
	set -e; for n in 100 300; do GOMAXPROCS=$${GOMAXPROCS:-2} ./bin/bench-gossip -n $$n -regions 5 -repeats 20; done
	GOMAXPROCS=$${GOMAXPROCS:-2} ./bin/bench-gossip -n 1000 -regions 5 -repeats 20 $(BENCH_GOSSIP_LARGE)
	GOMAXPROCS=$${GOMAXPROCS:-2} ./bin/bench-gossip -n 1000 -regions 5 -repeats 20 -direct=false $(BENCH_GOSSIP_LARGE)

clean:
	rm -rf bin integration.log
