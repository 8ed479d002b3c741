package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Third-party secondaries of an evac server, each TSIG-authenticated with
// its own key, taking NOTIFY from evac and serving the zone, with zone
// transfers out to loopback (so a test can compare their copy with evac's).

// secondaryKey is a secondary's TSIG key.
type secondaryKey struct {
	name, alg, secret string // "knot-key.", "hmac-sha256", base64
}

// secondarySpec is what every secondary's config needs: where it listens,
// the address its transfers and NOTIFY answers leave from, its key, and
// evac's DNS address (its primary).
type secondarySpec struct {
	dir    string // its own directory (created)
	listen string // ip:port
	source string // ip of its transfers (and, for NSD and Knot, its listener)
	key    secondaryKey
	evac   string // ip:port
}

func (s secondarySpec) mkdir(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

func writeConf(t *testing.T, path, conf string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startKnot runs knotd as a secondary and returns its log's path.
func startKnot(t *testing.T, knotd string, s secondarySpec) string {
	t.Helper()
	s.mkdir(t)
	host, port, _ := strings.Cut(s.listen, ":")
	ehost, eport, _ := strings.Cut(s.evac, ":")
	conf := filepath.Join(s.dir, "knot.conf")
	writeConf(t, conf, fmt.Sprintf(`server:
    listen: %[1]s@%[2]s
    rundir: %[3]s
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: %[3]s
key:
  - id: %[4]s
    algorithm: %[5]s
    secret: %[6]s
remote:
  - id: evac
    address: %[7]s@%[8]s
    via: %[1]s
    key: %[4]s
acl:
  - id: notify_from_evac
    address: %[7]s
    key: %[4]s
    action: notify
  - id: transfer_out
    address: 127.0.0.0/8
    action: transfer
template:
  - id: default
    storage: %[3]s
zone:
  - domain: example.com
    master: evac
    acl: [notify_from_evac, transfer_out]
`, host, port, s.dir, s.key.name, s.key.alg, s.key.secret, ehost, eport))
	logPath := filepath.Join(s.dir, "knotd.log")
	daemon(t, logPath, knotd, "-c", conf)
	return logPath
}

// startBIND runs named as a secondary in the foreground and returns its
// log's path. named listens only on the addresses of an interface (lo has
// 127.0.0.1 alone): s.listen must be on 127.0.0.1; it sends from s.source.
func startBIND(t *testing.T, named string, s secondarySpec) string {
	t.Helper()
	s.mkdir(t)
	_, port, _ := strings.Cut(s.listen, ":")
	ehost, eport, _ := strings.Cut(s.evac, ":")
	conf := filepath.Join(s.dir, "named.conf")
	writeConf(t, conf, fmt.Sprintf(`options {
    directory "%[1]s";
    pid-file "%[1]s/named.pid";
    session-keyfile "%[1]s/session.key";
    managed-keys-directory "%[1]s";
    listen-on port %[2]s { 127.0.0.1; };
    listen-on-v6 { none; };
    transfer-source %[3]s;
    notify-source %[3]s;
    query-source address %[3]s;
    recursion no;
    notify no;
    dnssec-validation no;
};
controls { };
key "%[4]s" { algorithm %[5]s; secret "%[6]s"; };
server %[7]s { keys { "%[4]s"; }; };
zone "example.com" {
    type secondary;
    primaries port %[8]s { %[7]s key "%[4]s"; };
    file "%[1]s/example.com.db";
    allow-notify { key "%[4]s"; };
    allow-transfer { 127.0.0.0/8; };
};
`, s.dir, port, s.source, s.key.name, s.key.alg, s.key.secret, ehost, eport))
	logPath := filepath.Join(s.dir, "named.log")
	daemon(t, logPath, named, "-g", "-4", "-c", conf)
	return logPath
}

// startNSD runs nsd as a secondary in the foreground and returns its
// log's path.
func startNSD(t *testing.T, nsd string, s secondarySpec) string {
	t.Helper()
	s.mkdir(t)
	host, port, _ := strings.Cut(s.listen, ":")
	ehost, eport, _ := strings.Cut(s.evac, ":")
	conf := filepath.Join(s.dir, "nsd.conf")
	logPath := filepath.Join(s.dir, "nsd.log")
	writeConf(t, conf, fmt.Sprintf(`server:
    ip-address: %[2]s
    port: %[3]s
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "%[1]s"
    database: ""
    pidfile: "%[1]s/nsd.pid"
    xfrdfile: "%[1]s/xfrd.state"
    zonelistfile: "%[1]s/zone.list"
    xfrdir: "%[1]s"
    logfile: "%[9]s"
    verbosity: 2
    server-count: 1
    reuseport: no
remote-control:
    control-enable: no
key:
    name: "%[4]s"
    algorithm: %[5]s
    secret: "%[6]s"
zone:
    name: example.com
    zonefile: "%[1]s/example.com.zone"
    allow-notify: %[7]s %[4]s
    request-xfr: %[7]s@%[8]s %[4]s
    provide-xfr: 127.0.0.0/8 NOKEY
    outgoing-interface: %[2]s
`, s.dir, host, port, s.key.name, s.key.alg, s.key.secret, ehost, eport, logPath))
	daemon(t, filepath.Join(s.dir, "nsd.out"), nsd, "-d", "-c", conf)
	return logPath
}

// transferZone AXFRs example.com from server, from the address from, and
// returns its records in presentation form, sorted, the closing SOA left
// out, and its serial.
func transferZone(server, from string) ([]string, uint32, error) {
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", server)
	if err != nil {
		return nil, 0, err
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeAXFR)
	tr := &dns.Transfer{Conn: &dns.Conn{Conn: c}, ReadTimeout: 5 * time.Second}
	ch, err := tr.In(m, server)
	if err != nil {
		return nil, 0, err
	}
	var rrs []string
	var serial uint32
	for env := range ch {
		if env.Error != nil {
			return nil, 0, env.Error
		}
		for _, rr := range env.RR {
			if soa, ok := rr.(*dns.SOA); ok && serial == 0 {
				serial = soa.Serial
			}
			rrs = append(rrs, rr.String())
		}
	}
	if len(rrs) < 2 {
		return nil, 0, fmt.Errorf("AXFR of %d records", len(rrs))
	}
	rrs = rrs[:len(rrs)-1]
	sort.Strings(rrs)
	return rrs, serial, nil
}
