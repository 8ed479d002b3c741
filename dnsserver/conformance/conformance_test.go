package conformance

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestCheckFails: Check rejects each way a reply can break a case.
func TestCheckFails(t *testing.T) {
	cases, err := Cases("example.com.", "api.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Case{}
	for _, c := range cases {
		if c.Query == nil {
			t.Fatalf("%s: no query", c.Name)
		}
		byName[c.Name] = c
	}
	answer, notimp := byName["answer, dirty flags"], byName["unknown opcode, no question"]
	reply := func(c Case, edit func(m *dns.Msg), bits uint16) []byte {
		q := new(dns.Msg)
		if err := q.Unpack(c.Query); err != nil {
			q = &dns.Msg{MsgHdr: dns.MsgHdr{Id: binary.BigEndian.Uint16(c.Query), Opcode: c.Opcode}}
		}
		m := new(dns.Msg)
		m.SetRcode(q, c.Rcode)
		m.Question = m.Question[:min(len(m.Question), c.QD)]
		m.Authoritative = c.AA
		if c.AA {
			rr, _ := dns.NewRR("api.example.com. 30 IN A 192.0.2.1")
			m.Answer = []dns.RR{rr}
		}
		if edit != nil {
			edit(m)
		}
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		binary.BigEndian.PutUint16(b[2:], binary.BigEndian.Uint16(b[2:])|bits)
		return b
	}
	tests := []struct {
		name string
		c    Case
		out  []byte
		want string // in the error; "" for none
	}{
		{"a good answer", answer, reply(answer, nil, 0), ""},
		{"a good NOTIMP", notimp, reply(notimp, nil, 0), ""},
		{"TC copied", answer, reply(answer, nil, FlagTC), "copy"},
		{"RA set", notimp, reply(notimp, nil, FlagRA), "copy"},
		{"another id", answer, reply(answer, func(m *dns.Msg) { m.Id++ }, 0), "id"},
		{"another rcode", answer, reply(answer, func(m *dns.Msg) { m.Rcode = dns.RcodeRefused }, 0), "rcode"},
		{"AA missing", answer, reply(answer, func(m *dns.Msg) { m.Authoritative = false }, 0), "AA"},
		{"no answer", answer, reply(answer, func(m *dns.Msg) { m.Answer = nil }, 0), "no answer"},
		{"an OPT not asked for", answer, reply(answer, func(m *dns.Msg) { m.SetEdns0(1232, false) }, 0), "OPT"},
		{"a question on NOTIMP", notimp, reply(notimp, func(m *dns.Msg) {
			m.Question = []dns.Question{{Name: "api.example.com.", Qtype: dns.TypeA, Qclass: dns.ClassINET}}
		}, 0), "questions"},
		{"garbage", answer, []byte{1, 2, 3}, "unpack"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Check(tt.out)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Check: %v, want %q", err, tt.want)
			}
		})
	}
}
