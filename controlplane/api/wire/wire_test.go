package wire

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
)

func TestVoterDecodes(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Voter
		wantErr bool
	}{
		{in: `{"id":"c0","addr":"127.0.9.1:7300","leader":true}`, want: Voter{ID: "c0", Addr: "127.0.9.1:7300", Leader: true}},
		{in: `"c0=127.0.9.1:7300"`, want: Voter{ID: "c0", Addr: "127.0.9.1:7300"}},
		{in: `"c1"`, want: Voter{ID: "c1"}},
		{in: `{"name":"c2","address":"127.0.9.3:7300"}`, want: Voter{ID: "c2", Addr: "127.0.9.3:7300"}},
		{in: `42`, wantErr: true},
	} {
		var v Voter
		err := json.Unmarshal([]byte(tc.in), &v)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && v != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.in, v, tc.want)
		}
	}
	// Encoding is the object form, and it decodes back the same.
	v := Voter{ID: "c0", Addr: "a:1", Leader: true}
	b, _ := json.Marshal(v)
	var back Voter
	if err := json.Unmarshal(b, &back); err != nil || back != v {
		t.Errorf("round trip %s: %+v, %v", b, back, err)
	}
	if got := v.String(); got != "c0=a:1" {
		t.Errorf("String = %q", got)
	}
}

func TestActorContext(t *testing.T) {
	r := httptest.NewRequest("GET", "/v1/status", nil)
	if got := ActorOf(r); got != Anonymous {
		t.Errorf("no auth: actor %q, want %q", got, Anonymous)
	}
	if !MayForce(r.Context()) {
		t.Error("no auth: MayForce false, want true (auth off lets anyone force)")
	}
	for _, tc := range []struct {
		name  string
		admin bool
	}{{"ops", false}, {"root", true}} {
		ctx := WithAdmin(WithActor(context.Background(), tc.name), tc.admin)
		if got := Actor(ctx); got != tc.name {
			t.Errorf("actor %q, want %q", got, tc.name)
		}
		if got := MayForce(ctx); got != tc.admin {
			t.Errorf("%s: MayForce %v, want %v", tc.name, got, tc.admin)
		}
	}
	if got := Actor(WithActor(context.Background(), "")); got != Anonymous {
		t.Errorf("empty name: actor %q, want %q", got, Anonymous)
	}
}

func TestRegionHealthShare(t *testing.T) {
	h := 0.25
	for _, tc := range []struct {
		r    Region
		want float64
	}{{Region{}, 0}, {Region{Health: &h}, 0.25}} {
		if got := tc.r.HealthShare(); got != tc.want {
			t.Errorf("HealthShare(%v) = %v, want %v", tc.r.Health, got, tc.want)
		}
	}
}
