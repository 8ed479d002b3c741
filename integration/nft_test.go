package integration

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

// nftPartition is a private nftables table (inet evac_test_<pid>_<n>) dropping
// traffic between pairs of subnets on lo, in the INPUT hook only (a drop in
// OUTPUT would make UDP sendto fail, which no real partition does). It is
// removed in t.Cleanup.
type nftPartition struct {
	t     *testing.T
	table string
}

// needNFT skips (or, under CI=true, fails) when nftables cannot be used.
// It installs nothing.
func needNFT(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root for nftables"
	} else if _, err := exec.LookPath("nft"); err != nil {
		why = "needs the nft command (apt-get install nftables; `make test` installs it)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and this test %s", why)
	}
	t.Skip(why)
}

var nftTables atomic.Int64

func newPartition(t *testing.T) *nftPartition {
	t.Helper()
	needNFT(t)
	// One table per test: tests in parallel must not flush each other's cuts.
	p := &nftPartition{t: t, table: fmt.Sprintf("evac_test_%d_%d", os.Getpid(), nftTables.Add(1))}
	_ = exec.Command("nft", "delete", "table", "inet", p.table).Run() // a leftover of ours
	p.nft(fmt.Sprintf(`table inet %s {
  set pairs { type ipv4_addr . ipv4_addr; flags interval; }
  chain input { type filter hook input priority -10; policy accept;
    iif "lo" ip saddr . ip daddr @pairs counter drop
  }
}`, p.table))
	t.Cleanup(func() {
		if out, err := exec.Command("nft", "delete", "table", "inet", p.table).CombinedOutput(); err != nil {
			t.Errorf("remove nft table %s: %v: %s", p.table, err, out)
		}
	})
	return p
}

func (p *nftPartition) nft(script string) {
	p.t.Helper()
	runNFT(p.t, script)
}

// runNFT runs an nft script, failing the test on error.
func runNFT(t *testing.T, script string) {
	t.Helper()
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s\n%s", err, out, script)
	}
}

// Cut drops traffic between a and b (CIDRs), both ways.
func (p *nftPartition) Cut(a, b string) {
	p.t.Helper()
	p.nft(fmt.Sprintf("add element inet %s pairs { %s . %s, %s . %s }", p.table, a, b, b, a))
	p.t.Logf("partition: cut %s <-> %s", a, b)
}

// Heal removes every cut.
func (p *nftPartition) Heal() {
	p.t.Helper()
	p.nft(fmt.Sprintf("flush set inet %s pairs", p.table))
	p.t.Logf("partition: healed")
}
