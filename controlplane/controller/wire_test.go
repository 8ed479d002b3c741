package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/client"
)

// TestClientDecodesEveryRead: every read the API serves decodes into the
// wire type the client decodes it into (controlplane/api/wire), with
// unknown fields refused. Client and server share those types, so this
// checks what the handlers really write: a handler that answers with an
// ad-hoc map or struct instead of its wire type, or a field added beside
// the contract, fails here, not in front of an operator (the drift that
// once made `evacuate --dry-run` lie).
func TestClientDecodesEveryRead(t *testing.T) {
	c := startCluster(t, 3)
	f := c.follower()
	var wr struct{ Index uint64 }
	if code := call(t, f, "PUT", "/v1/config", steeringYAML, &wr); code != 200 {
		t.Fatalf("apply: %d", code)
	}
	if code := call(t, f, "PUT", "/v1/runbooks/quick", quickRunbook, nil); code != 200 {
		t.Fatalf("put runbook: %d", code)
	}
	if code := call(t, f, "POST", "/v1/drills", `{"runbook":"quick","params":{"region":"eu-west","hold":"1h"},"reason":"wire"}`, nil); code != 201 {
		t.Fatalf("start drill: %d", code)
	}
	if code := call(t, f, "POST", "/v1/schedules", `{"cron":"@daily","runbook":"quick","params":{"region":"us-west"}}`, nil); code != 201 && code != 200 {
		t.Fatalf("add schedule: %d", code)
	}
	for _, ctl := range c.ctls {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := ctl.WaitApplied(ctx, f.State().Index)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	strict := func(path string, into any) {
		t.Helper()
		resp, err := http.Get("http://" + f.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(into); err != nil {
			t.Errorf("GET %s does not decode into the wire type %T: %v", path, into, err)
		}
	}
	var (
		status    wire.Status
		regions   []wire.Region
		region    wire.Region
		services  []wire.Service
		members   []wire.Member
		config    wire.ConfigInfo
		events    []state.Event
		drills    []wire.DrillReport
		runbooks  []wire.Runbook
		schedules []wire.ScheduleReport
		sinks     []wire.Notification
		peers     []wire.Peer
		explain   client.Explanation
		agents    wire.Agents
	)
	for path, into := range map[string]any{
		"/v1/status": &status, "/v1/regions": &regions, "/v1/regions/eu-west": &region, "/v1/services": &services,
		"/v1/members": &members, "/v1/config": &config, "/v1/events?limit=1000": &events, "/v1/drills": &drills,
		"/v1/runbooks": &runbooks, "/v1/schedules": &schedules, "/v1/notifications": &sinks,
		"/v1/cluster/peers": &peers, "/v1/explain?name=api&client=10.1.0.0%2F24": &explain,
		"/v1/agents": &agents,
	} {
		strict(path, into)
	}
	if len(drills) == 0 {
		t.Fatal("no drill listed")
	}
	strict(fmt.Sprintf("/v1/drills/%s", drills[0].ID), new(wire.DrillReport))
	strict("/v1/runbooks/quick", new(wire.Runbook))
	if len(schedules) == 0 {
		t.Fatal("no schedule listed")
	}
	strict("/v1/schedules/"+schedules[0].ID, new(wire.ScheduleReport))
	if !strings.HasPrefix(drills[0].ID, "d-") {
		t.Errorf("drill id %q", drills[0].ID)
	}
}
