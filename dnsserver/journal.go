package dnsserver

import (
	"github.com/miekg/dns"
)

// The IXFR journal (RFC 1995): the differences of the transferred zone
// between consecutive versions this server built, so that a secondary
// a few changes behind gets the changes instead of the whole zone, as
// with Knot's journal.
//
// Where it comes from: nothing is sent over the network or stored for it.
// Every time Update installs a new view, the view's transfer records (the
// very records an AXFR sends: a weighted or nearest service with the
// addresses of every serving region) are compared with the previous
// view's, and the difference is appended to the previous view's journal.
// The zone's content at a serial is a function of the replicated state at
// that Raft index, so every controller and edge that built both versions
// holds the same difference for them; which versions a server built
// depends on which states it saw (Update may skip states applied in a
// burst, and a restarted server or one that installed a snapshot starts
// with an empty journal). A secondary whose serial the journal does not
// reach gets the whole zone (an AXFR-style IXFR), which is always correct.
//
// Bounds: at most Config.IXFRJournal changes (DefaultJournalSize), and
// never more records than a full transfer: like BIND's max-ixfr-ratio of
// 100%, differences that would make an IXFR longer than the zone are
// dropped (the oldest first), since the whole zone would be the shorter
// answer. So the journal holds at most about one zone's worth of records.
//
// It is immutable and belongs to the view it ends at (view.journal): a
// query loads one view and gets the journal of exactly that version.
// Signed transfers (xfrsign.go) put the RRSIG and NSEC records in the
// view's transfer records, so they are diffed like any other: a re-signed
// RRset is one more deletion and addition, and a re-sign (a new serial,
// every RRSIG new) one change, or none when it would be longer than the
// zone (the whole zone answers then).

// DefaultJournalSize is how many zone changes the IXFR journal keeps by
// default (`evac server --dns-ixfr-journal`).
const DefaultJournalSize = 100

// delta is one change of the transferred zone, from the version whose SOA
// is from to the one whose SOA is to (the next version this server
// built). Its records belong to the views and are never modified.
type delta struct {
	from, to *dns.SOA
	del, add []dns.RR
}

// records is how many records the delta adds to an IXFR: its two SOAs,
// deletions and additions.
func (d *delta) records() int { return 2 + len(d.del) + len(d.add) }

// journal is the immutable list of changes leading to one view's version,
// oldest first: deltas[i].to.Serial == deltas[i+1].from.Serial, and the
// last delta ends at the view's serial.
type journal struct {
	deltas  []delta
	records int // sum of the deltas' records()
}

// since returns the changes from a client at serial to the view's version
// (oldest first), or false when the journal does not reach back to serial.
func (j *journal) since(serial uint32) ([]delta, bool) {
	if j == nil {
		return nil, false
	}
	for i := range j.deltas {
		if j.deltas[i].from.Serial == serial {
			return j.deltas[i:], true
		}
	}
	return nil, false
}

// nextJournal returns the journal of next, the view that replaces prev
// (nil: none), keeping at most size changes (size <= 0: no journal).
// A new zone, or a serial not newer than prev's (RFC 1982 arithmetic),
// starts an empty journal: the versions would not follow one another.
func nextJournal(prev, next *view, size int) *journal {
	if size <= 0 || prev == nil || prev.zone != next.zone {
		return nil
	}
	del, add := diffRecords(prev.axfr[1:], next.axfr[1:])
	if int32(next.serial-prev.serial) <= 0 {
		if len(del) == 0 && len(add) == 0 && next.serial == prev.serial {
			return prev.journal // the same version rebuilt
		}
		return nil
	}
	d := delta{from: prev.soa[0].(*dns.SOA), to: next.soa[0].(*dns.SOA), del: del, add: add}
	var old []delta
	if prev.journal != nil {
		old = prev.journal.deltas
	}
	// An IXFR is its opening and closing SOAs plus the deltas; a full
	// transfer is the zone plus the closing SOA. Keep the newest deltas
	// while the first would give the shorter answer.
	budget := len(next.axfr) + 1 - 2
	keep, total := 0, d.records()
	if total > budget {
		return nil
	}
	for i := len(old) - 1; i >= 0 && keep+1 < size; i-- {
		if total+old[i].records() > budget {
			break
		}
		total += old[i].records()
		keep++
	}
	deltas := make([]delta, 0, keep+1)
	deltas = append(append(deltas, old[len(old)-keep:]...), d)
	return &journal{deltas: deltas, records: total}
}

// diffRecords returns the records of old missing from cur (deletions) and
// those of cur missing from old (additions), each in its list's order and
// without repeats. Records compare by their wire form (owner, type, class,
// TTL, data; names in the zone's lower case): a changed TTL is a deletion
// and an addition.
func diffRecords(old, cur []dns.RR) (del, add []dns.RR) {
	// A one-record message packed without compression: the record's wire
	// form after the 12-byte header. (dns.PackRR would do, but it writes
	// the record's Rdlength: the records are shared with queries.)
	var m dns.Msg
	var one [1]dns.RR
	buf := make([]byte, 512)
	key := func(rr dns.RR) []byte {
		one[0] = rr
		m.Answer = one[:]
		out, err := m.PackBuffer(buf)
		if err != nil {
			return []byte(rr.String()) // cannot happen for a record of a view
		}
		buf = out[:cap(out)] // grown for a long record: keep it
		return out[headerLen:]
	}
	inOld := make(map[string]bool, len(old))
	for _, rr := range old {
		inOld[string(key(rr))] = true
	}
	inCur := make(map[string]bool, len(cur))
	for _, rr := range cur {
		k := key(rr)
		if !inCur[string(k)] && !inOld[string(k)] {
			add = append(add, rr)
		}
		inCur[string(k)] = true
	}
	for _, rr := range old {
		k := key(rr)
		if !inCur[string(k)] {
			del = append(del, rr)
			inCur[string(k)] = true // once
		}
	}
	return del, add
}

// ixfrRecords is the IXFR answer (RFC 1995 section 4) for the changes
// deltas leading to soa: our SOA, then per change the old SOA, the
// deletions, the new SOA and the additions, and our SOA again.
func ixfrRecords(soa dns.RR, deltas []delta) []dns.RR {
	n := 2
	for i := range deltas {
		n += deltas[i].records()
	}
	out := make([]dns.RR, 0, n)
	out = append(out, soa)
	for _, d := range deltas {
		out = append(out, d.from)
		out = append(out, d.del...)
		out = append(out, d.to)
		out = append(out, d.add...)
	}
	return append(out, soa)
}
