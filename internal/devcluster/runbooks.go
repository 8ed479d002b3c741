package devcluster

import (
	"context"
	"fmt"
	"sort"

	"github.com/evac-sh/evac/controlplane/controller"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/runbooks"
)

// putShippedRunbooks stores the runbooks evac ships, so that
// `evac drill start chaos-kong --param region=us-east` works at once.
func putShippedRunbooks(ctx context.Context, ctl *controller.Controller) error {
	shipped := runbooks.Shipped()
	names := make([]string, 0, len(shipped))
	for n := range shipped {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		cmd, _, err := state.PreparePutRunbook(n+".yaml", shipped[n])
		if err != nil {
			return fmt.Errorf("shipped runbook %s: %w", n, err)
		}
		res, err := ctl.Propose(ctx, state.CmdPutRunbook, "evac-dev", "dev-runbook-"+n, cmd)
		if err != nil {
			return fmt.Errorf("store runbook %s: %w", n, err)
		}
		if res.Error != "" {
			return fmt.Errorf("store runbook %s: %s", n, res.Error)
		}
	}
	return nil
}
