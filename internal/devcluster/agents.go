package devcluster

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/evac-sh/evac/agent"
	"github.com/evac-sh/evac/controlplane/state"
)

func agentName(region string, k int) string { return fmt.Sprintf("%s-agent-%d", region, k+1) }

// enrollAgents gives every dev agent a key pair in the data dir (kept
// across runs with --data-dir) and enrols it, unless it is enrolled with
// that key already. It returns each agent's key file.
func (c *Cluster) enrollAgents(ctx context.Context) (map[string]string, error) {
	dir := filepath.Join(c.opts.DataDir, "agent-keys")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create agent key dir: %w", err)
	}
	files := map[string]string{}
	ctl := c.Controllers[0]
	for _, r := range c.opts.Regions {
		for k := 0; k < c.opts.AgentsPer; k++ {
			name := agentName(r, k)
			path := filepath.Join(dir, name+".key")
			var pub ed25519.PublicKey
			priv, err := agent.ReadIdentity(path)
			switch {
			case err == nil:
				pub = priv.Public().(ed25519.PublicKey)
			case errors.Is(err, fs.ErrNotExist):
				if pub, err = agent.GenerateIdentity(path); err != nil {
					return nil, err
				}
			default:
				return nil, err
			}
			files[name] = path
			enc := agent.EncodePublicKey(pub)
			if rec, ok := ctl.State().Agents[name]; ok && rec.PublicKey == enc && rec.Region == r {
				continue
			}
			res, err := ctl.Propose(ctx, state.CmdEnrollAgent|state.IgnoreUnknownFlag, "evac-dev", "dev-enroll-"+name+"-"+enc,
				state.EnrollAgent{Name: name, Region: r, PublicKey: enc, Reason: "evac dev"})
			if err != nil {
				return nil, fmt.Errorf("enrol dev agent %s: %w", name, err)
			}
			if res.Error != "" {
				return nil, fmt.Errorf("enrol dev agent %s: %s", name, res.Error)
			}
			if err := ctl.WaitApplied(ctx, res.Index); err != nil {
				return nil, fmt.Errorf("enrol dev agent %s: %w", name, err)
			}
		}
	}
	return files, nil
}
