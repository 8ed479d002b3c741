package state

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"
)

// Agent enrolment: the agents whose health reports the controllers accept,
// each with its region and Ed25519 public key (gossip/identity.go).
// The commands are proposed with IgnoreUnknownFlag: a controller of an
// older build skips them (it does not check reports anyway) instead of
// stopping during a rolling upgrade.

// MaxAgents bounds the enrolled agents.
const MaxAgents = 10000

// agentKeySize is an Ed25519 public key's size.
const agentKeySize = 32

// AgentRecord is an enrolled agent.
type AgentRecord struct {
	Name   string `json:"name"`
	Region string `json:"region"`
	// PublicKey is the agent's Ed25519 public key, standard base64.
	PublicKey string `json:"public_key"`
	// Fingerprint is "SHA256:" and the unpadded base64 of the key's
	// SHA-256, as ssh-keygen shows keys.
	Fingerprint string    `json:"fingerprint"`
	Index       uint64    `json:"index"`
	Time        time.Time `json:"time"`
	Actor       string    `json:"actor"`
}

// EnrollAgent enrols an agent, or replaces an enrolled agent's region and
// key (a key rotation). Normalize it before proposing.
type EnrollAgent struct {
	Name      string `json:"name"`
	Region    string `json:"region"`
	PublicKey string `json:"public_key"`
	Reason    string `json:"reason,omitempty"`
}

// RevokeAgent removes an enrolled agent: its reports count no more.
type RevokeAgent struct {
	Name   string `json:"name"`
	Reason string `json:"reason,omitempty"`
}

// Event kinds of agent enrolment.
const (
	EventAgentEnrolled = "agent.enrolled"
	EventAgentRevoked  = "agent.revoked"
)

// ValidAgentName reports what is wrong with an agent name (a gossip node
// name), or "".
func ValidAgentName(v string) string {
	if v == "" {
		return "required"
	}
	if len(v) > 128 {
		return "longer than 128 characters"
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Sprintf("%q: only letters, digits, '-', '_' and '.' allowed", v)
		}
	}
	return ""
}

// ParseAgentKey decodes an Ed25519 public key given as base64 (standard
// or URL alphabet, padded or not, as `evac agent keygen` prints it).
func ParseAgentKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimRight(s, "=")
	var key []byte
	var err error
	if strings.ContainsAny(s, "-_") {
		key, err = base64.RawURLEncoding.DecodeString(s)
	} else {
		key, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, fmt.Errorf("public_key: not base64 (use the key `evac agent keygen` printed)")
	}
	if len(key) != agentKeySize {
		return nil, fmt.Errorf("public_key: %d bytes, want %d (an Ed25519 public key)", len(key), agentKeySize)
	}
	return key, nil
}

// AgentKeyFingerprint is the fingerprint shown for a public key.
func AgentKeyFingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// Normalize checks the request, naming the bad field, and puts the key in
// standard padded base64. Run it before proposing; Apply checks again.
func (e *EnrollAgent) Normalize() error {
	if msg := ValidAgentName(e.Name); msg != "" {
		return fmt.Errorf("name: %s", msg)
	}
	e.Region = strings.TrimSpace(e.Region)
	if !labelRE.MatchString(e.Region) {
		return fmt.Errorf("region: %q is not a region name (lowercase letters, digits and '-')", e.Region)
	}
	key, err := ParseAgentKey(e.PublicKey)
	if err != nil {
		return err
	}
	e.PublicKey = base64.StdEncoding.EncodeToString(key)
	if len(e.Reason) > 1024 {
		return fmt.Errorf("reason: longer than 1024 characters")
	}
	return nil
}

// AgentNames returns the enrolled agents' names, sorted.
func (s *State) AgentNames() []string {
	names := make([]string, 0, len(s.Agents))
	for n := range s.Agents {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (a *applier) enrollAgent(b EnrollAgent) *refusal {
	if err := b.Normalize(); err != nil {
		return refuse(CodeInvalid, "enrol agent: %v", err)
	}
	old, replacing := a.s.Agents[b.Name]
	if !replacing && len(a.s.Agents) >= MaxAgents {
		return refuse(CodeConflict, "enrol agent: %d agents are enrolled, the limit (revoke one first)", MaxAgents)
	}
	key, _ := base64.StdEncoding.DecodeString(b.PublicKey) // checked by Normalize
	rec := AgentRecord{Name: b.Name, Region: b.Region, PublicKey: b.PublicKey, Fingerprint: AgentKeyFingerprint(key),
		Index: a.index, Time: a.cmd.Time, Actor: a.cmd.Actor}
	agents := maps.Clone(a.s.Agents)
	if agents == nil {
		agents = map[string]AgentRecord{}
	}
	agents[b.Name] = rec
	a.s.Agents = agents
	detail := "agent " + b.Name + ", key " + rec.Fingerprint
	if replacing {
		detail += fmt.Sprintf(" (was region %s, key %s)", old.Region, old.Fingerprint)
	}
	a.event(Event{Kind: EventAgentEnrolled, Region: b.Region, Reason: b.Reason, Detail: detail})
	return nil
}

func (a *applier) revokeAgent(b RevokeAgent) *refusal {
	old, ok := a.s.Agents[b.Name]
	if !ok {
		return refuse(CodeNotFound, "no enrolled agent %q", b.Name)
	}
	agents := maps.Clone(a.s.Agents)
	delete(agents, b.Name)
	a.s.Agents = agents
	a.event(Event{Kind: EventAgentRevoked, Region: old.Region, Reason: b.Reason,
		Detail: "agent " + b.Name + ", key " + old.Fingerprint})
	return nil
}

// Enrolment policies, from the steering config's
// policy.require_enrolled_agents.
const (
	// AgentPolicyAuto (key absent): enforced once any agent is enrolled.
	AgentPolicyAuto = "auto"
	// AgentPolicyRequired (true): enforced, even with no agent enrolled.
	AgentPolicyRequired = "required"
	// AgentPolicyOptional (false): agents not enrolled count too, as
	// before enrolment existed; an enrolled name is still checked.
	AgentPolicyOptional = "optional"
)

// AgentPolicy is the enrolment policy in force.
func (s *State) AgentPolicy() string {
	if s.Config == nil || s.Config.Policy.RequireEnrolledAgents == nil {
		return AgentPolicyAuto
	}
	if *s.Config.Policy.RequireEnrolledAgents {
		return AgentPolicyRequired
	}
	return AgentPolicyOptional
}

// AgentsEnforced reports whether only enrolled agents' signed reports
// count.
func (s *State) AgentsEnforced() bool {
	switch s.AgentPolicy() {
	case AgentPolicyRequired:
		return true
	case AgentPolicyOptional:
		return false
	}
	return len(s.Agents) > 0
}
