package metrics

import (
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// The query types and response codes with their own series; others are
// counted as "other".
var (
	dnsQtypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeTXT, dns.TypeSOA, dns.TypeNS,
		dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR}
	dnsRcodes = []int{dns.RcodeSuccess, dns.RcodeFormatError, dns.RcodeServerFailure, dns.RcodeNameError,
		dns.RcodeNotImplemented, dns.RcodeRefused, dns.RcodeBadVers}
)

const (
	nQtypes = 10 // len(dnsQtypes) + other
	nRcodes = 8  // len(dnsRcodes) + other
)

// dnsCounters holds one counter per (qtype, rcode), resolved up front so a
// reply costs two small lookups and an atomic add.
type dnsCounters struct {
	c      [nQtypes][nRcodes]prometheus.Counter
	qindex map[uint16]int
	rindex [24]int8 // rcode -> index+1; 0 is other
}

func (d *dnsCounters) init(vec *prometheus.CounterVec) {
	d.qindex = make(map[uint16]int, len(dnsQtypes))
	for i, q := range dnsQtypes {
		d.qindex[q] = i
	}
	for i, r := range dnsRcodes {
		d.rindex[r] = int8(i + 1)
	}
	for qi := range nQtypes {
		qn := "other"
		if qi < len(dnsQtypes) {
			qn = dns.TypeToString[dnsQtypes[qi]]
		}
		for ri := range nRcodes {
			rn := "other"
			if ri < len(dnsRcodes) {
				rn = dns.RcodeToString[dnsRcodes[ri]]
			}
			d.c[qi][ri] = vec.WithLabelValues(qn, rn)
		}
	}
}

func (d *dnsCounters) inc(qtype uint16, rcode int) {
	qi, ok := d.qindex[qtype]
	if !ok {
		qi = nQtypes - 1
	}
	ri := nRcodes - 1
	if rcode >= 0 && rcode < len(d.rindex) && d.rindex[rcode] > 0 {
		ri = int(d.rindex[rcode]) - 1
	}
	d.c[qi][ri].Inc()
}

// DNSObserver is the dnsserver.Config.Observer of this controller: it
// counts one reply and records its latency, without allocating.
func (m *Metrics) DNSObserver() func(qtype uint16, rcode int, d time.Duration) {
	return func(qtype uint16, rcode int, d time.Duration) {
		m.dns.inc(qtype, rcode)
		m.dnsDuration.Observe(d.Seconds())
	}
}
