package client

import (
	"reflect"
	"testing"

	"github.com/evac-sh/evac/controlplane/api"
)

// jsonFields lists a struct's JSON field names and Go types, by tag.
func jsonFields(t reflect.Type) map[string]string {
	out := map[string]string{}
	for i := range t.NumField() {
		f := t.Field(i)
		out[f.Tag.Get("json")] = f.Type.String()
	}
	return out
}

// The membership types mirror the API's, field for field: one wire
// contract.
func TestClusterTypesMatchAPI(t *testing.T) {
	for _, tt := range []struct{ client, api any }{
		{Peer{}, api.Peer{}},
		{JoinRequest{}, api.JoinRequest{}},
		{MembershipRequest{}, api.MembershipRequest{}},
	} {
		c, a := jsonFields(reflect.TypeOf(tt.client)), jsonFields(reflect.TypeOf(tt.api))
		if !reflect.DeepEqual(c, a) {
			t.Errorf("%T fields %v differ from %T's %v", tt.client, c, tt.api, a)
		}
	}
	c, a := jsonFields(reflect.TypeOf(MembershipResult{})), jsonFields(reflect.TypeOf(api.MembershipResult{}))
	delete(c, "peers")
	delete(a, "peers")
	if !reflect.DeepEqual(c, a) {
		t.Errorf("MembershipResult fields %v differ from the API's %v", c, a)
	}
	if CodeBelowQuorum != api.CodeBelowQuorum || CodeOutcomeUnknown != api.CodeOutcomeUnknown ||
		CodeNoLeader != api.CodeNoLeader || CodeUnavailable != api.CodeUnavailable || CodeShuttingDown != api.CodeShuttingDown {
		t.Error("error codes differ from the API's")
	}
}
