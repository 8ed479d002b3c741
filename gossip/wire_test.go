package gossip

import (
	"bytes"
	"testing"
	"time"
)

func TestReportV2RoundTrip(t *testing.T) {
	capacity := 1234.5
	base := Report{Origin: "agent-1", Region: "eu-west", Service: "api", Check: "http", Status: StatusPassing,
		Output: "HTTP 200", Seq: 1 << 62, Time: time.Unix(0, 1_795_000_000_123_456_789)}
	cases := []struct {
		name string
		mod  func(r *Report)
	}{
		{"passing", func(*Report) {}},
		{"failing with capacity", func(r *Report) { r.Status = StatusFailing; r.Capacity = &capacity }},
		{"tombstone", func(r *Report) { r.Status = statusWithdrawn; r.Output = "" }},
		{"status this version does not know", func(r *Report) { r.Status = "warning" }},
		{"no region, no output", func(r *Report) { r.Region, r.Output = "", "" }},
		{"zero capacity", func(r *Report) { z := 0.0; r.Capacity = &z }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := base
			c.mod(&r)
			b := encodeReportV2(r)
			got, err := decodeReportV2(b)
			if err != nil {
				t.Fatal(err)
			}
			if got.Origin != r.Origin || got.Region != r.Region || got.Service != r.Service || got.Check != r.Check ||
				got.Status != r.Status || got.Output != r.Output || got.Seq != r.Seq || !got.Time.Equal(r.Time) ||
				(got.Capacity == nil) != (r.Capacity == nil) || (r.Capacity != nil && *got.Capacity != *r.Capacity) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
			}
			h, _, err := readReportHeader(b)
			if err != nil || string(h.origin) != r.Origin || string(h.service) != r.Service || string(h.check) != r.Check || h.seq != r.Seq {
				t.Fatalf("header %+v %v", h, err)
			}
			if v1 := encodeReport(r); len(b) >= len(v1) {
				t.Errorf("binary %d bytes, JSON %d: should be smaller", len(b), len(v1))
			}
		})
	}
}

func TestReportV2Rejects(t *testing.T) {
	good := encodeReportV2(Report{Origin: "o", Service: "s", Check: "c", Status: StatusPassing, Seq: 7, Time: time.Now()})
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"type only", []byte{msgReportV2}},
		{"wrong type", append([]byte{msgReport}, good[1:]...)},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"unknown status code", func() []byte {
			b := encodeReportV2(Report{Origin: "o", Service: "s", Check: "c", Status: StatusPassing, Seq: 7, Time: time.Now()})
			b[len(b)-2] = 9 // status code, before the empty output's length byte
			return b
		}()},
		{"huge length", []byte{msgReportV2, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"no seq", encodeReportV2(Report{Origin: "o", Service: "s", Check: "c", Status: StatusPassing, Seq: 0, Time: time.Now()})},
		{"no origin", encodeReportV2(Report{Service: "s", Check: "c", Status: StatusPassing, Seq: 3, Time: time.Now()})},
	}
	for i := 1; i < len(good); i++ {
		cases = append(cases, struct {
			name string
			b    []byte
		}{"truncated", good[:i]})
	}
	for _, c := range cases {
		if _, err := decodeReportV2(c.b); err == nil {
			t.Errorf("%s (% x): decoded", c.name, c.b)
		}
	}
}

func TestRefreshWire(t *testing.T) {
	f := refresh{origin: "agent-7", seq: 99, table: 42, sent: 1_000_000_500, asOf: 1_000_000_000}
	b := encodeRefresh(f)
	origin, got, err := readRefresh(b)
	if err != nil || string(origin) != "agent-7" || got.seq != 99 || got.table != 42 || got.sent != f.sent || got.asOf != f.asOf {
		t.Fatalf("round trip: %q %+v %v", origin, got, err)
	}
	relay := append([]byte(nil), b...)
	relay[0] = msgRefreshRelay
	if _, _, err := readRefresh(relay); err != nil {
		t.Fatalf("relay form: %v", err)
	}
	bad := [][]byte{
		nil, {msgRefresh}, b[:len(b)-1], append(append([]byte(nil), b...), 1),
		encodeRefresh(refresh{origin: "", seq: 1, table: 1}),
		encodeRefresh(refresh{origin: "x", seq: 0, table: 1}),
		encodeRefresh(refresh{origin: "x", seq: 1, table: 0}),
		append([]byte{msgReportV2}, b[1:]...),
	}
	for _, x := range bad {
		if _, _, err := readRefresh(x); err == nil {
			t.Errorf("% x: accepted", x)
		}
	}
	if !bytes.Equal(encodeRefresh(f), b) {
		t.Fatal("encoding not deterministic")
	}
}
