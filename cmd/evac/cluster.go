package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/controlplane/fsm"
	"github.com/evac-sh/evac/controlplane/raftnode"
)

// addClusterRecover adds the offline `evac cluster recover` under the
// client commands' `evac cluster`.
func addClusterRecover(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() == "cluster" {
			c.AddCommand(newClusterRecoverCmd())
			return
		}
	}
}

func newClusterRecoverCmd() *cobra.Command {
	var dataDir, peersFlag, logLevel, logFormat string
	cmd := &cobra.Command{
		Use:   "recover --data-dir DIR --peers id=addr,...",
		Short: "Offline: rewrite a stopped controller's Raft membership after a quorum was lost for good",
		Long: `Rewrite the Raft state in a STOPPED controller's data directory so that it starts
in a cluster whose voters are exactly --peers (hashicorp/raft's RecoverCluster).
Use it only when a majority of the controllers is gone for good: it replays the
latest snapshot and every entry of the local log (also entries the old cluster
may not have committed), writes a new snapshot carrying the new membership and
empties the log. Run it on one survivor with --peers naming only that survivor,
start it, then join new controllers with 'evac cluster join' (or
--join-cluster). docs/operations.md has the steps.`,
		Example: `  systemctl stop evac-server
  evac cluster recover --data-dir /var/lib/evac --peers c1=10.0.0.1:7300
  systemctl start evac-server`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir == "" {
				return usageErr(errors.New("--data-dir is required"))
			}
			peers, err := raftnode.ParsePeers(peersFlag)
			if err != nil {
				return usageErr(fmt.Errorf("--peers: %w", err))
			}
			if len(peers) == 0 {
				return usageErr(errors.New("--peers is required: id=host:port,... (the voters of the recovered cluster)"))
			}
			lg, err := newLogger(cmd, logLevel, logFormat)
			if err != nil {
				return usageErr(err)
			}
			defer func() { _ = lg.Sync() }()
			if err := raftnode.Recover(filepath.Clean(dataDir), peers, fsm.New(lg.Named("fsm")), lg); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "recovered %s: the cluster's voters are now %s; start the controller(s) named there\n", dataDir, peersFlag)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&dataDir, "data-dir", "", "the stopped controller's data directory")
	fl.StringVar(&peersFlag, "peers", "", "voters of the recovered cluster, id=host:port,... (their Raft addresses)")
	addLogFlags(fl, &logLevel, &logFormat)
	return cmd
}
