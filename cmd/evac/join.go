package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/raftnode"
	"github.com/evac-sh/evac/internal/cli"
	"github.com/evac-sh/evac/internal/client"
	"github.com/evac-sh/evac/internal/tlsutil"
)

// joinFlags make a new controller ask the cluster to add it; each is also
// a config file key.
type joinFlags struct {
	// JoinCluster is the admin API URL of any controller of the cluster.
	JoinCluster string `yaml:"join_cluster"`
	// JoinTokenFile holds an admin token for it (else $EVAC_TOKEN).
	JoinTokenFile string `yaml:"join_token_file"`
	// JoinCACert is the PEM CA of its API's certificate (https URLs).
	JoinCACert string `yaml:"join_ca_cert"`
	// JoinNonvoter joins as a non-voter.
	JoinNonvoter bool `yaml:"join_nonvoter"`
}

func addJoinFlags(fl *pflag.FlagSet, j *joinFlags) {
	fl.StringVar(&j.JoinCluster, "join-cluster", "", "admin API URL of any controller of an existing cluster: ask it to add this controller (retried until added)")
	fl.StringVar(&j.JoinTokenFile, "join-token-file", "", "file holding an admin API token for --join-cluster (default: $"+cli.EnvToken+")")
	fl.StringVar(&j.JoinCACert, "join-ca-cert", "", "PEM CA that signed the --join-cluster controller's API certificate (https)")
	fl.BoolVar(&j.JoinNonvoter, "join-nonvoter", false, "with --join-cluster: join as a non-voter (receives the log, does not count for quorum)")
}

func mergeJoin(fl *pflag.FlagSet, dst *joinFlags, file joinFlags) {
	for name, p := range map[string][2]*string{
		"join-cluster":    {&dst.JoinCluster, &file.JoinCluster},
		"join-token-file": {&dst.JoinTokenFile, &file.JoinTokenFile},
		"join-ca-cert":    {&dst.JoinCACert, &file.JoinCACert},
	} {
		if !fl.Changed(name) && *p[1] != "" {
			*p[0] = *p[1]
		}
	}
	if !fl.Changed("join-nonvoter") && file.JoinNonvoter {
		dst.JoinNonvoter = true
	}
}

// joinBackoff bounds the wait between join attempts.
const (
	joinBackoffMin = 500 * time.Millisecond
	joinBackoffMax = 10 * time.Second
)

// joiner asks a cluster's admin API to add this controller until it is a
// member.
type joiner struct {
	c       *client.Client
	req     wire.JoinRequest
	member  func() bool // this node is in its Raft configuration
	log     *zap.Logger
	backoff time.Duration
}

// newJoiner validates the join flags (nil, nil without --join-cluster).
func (j joinFlags) newJoiner(id, raftAddr string, edge bool, lg *zap.Logger) (*joiner, error) {
	if j.JoinCluster == "" {
		if j.JoinTokenFile != "" || j.JoinCACert != "" || j.JoinNonvoter {
			return nil, errors.New("--join-token-file, --join-ca-cert and --join-nonvoter need --join-cluster")
		}
		return nil, nil
	}
	u, err := url.Parse(j.JoinCluster)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--join-cluster: %q is not an http(s)://host:port URL", j.JoinCluster)
	}
	token := os.Getenv(cli.EnvToken)
	if j.JoinTokenFile != "" {
		b, err := os.ReadFile(j.JoinTokenFile)
		if err != nil {
			return nil, fmt.Errorf("--join-token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return nil, fmt.Errorf("--join-token-file: %s is empty", j.JoinTokenFile)
		}
	}
	var opts []client.Option
	if j.JoinCACert != "" {
		tc, err := tlsutil.Client(j.JoinCACert, "", "")
		if err != nil {
			return nil, fmt.Errorf("--join-ca-cert: %w", err)
		}
		opts = append(opts, client.WithTLSConfig(tc))
	}
	if err := raftnode.ValidatePeer(id, raftAddr); err != nil {
		return nil, fmt.Errorf("--join-cluster: %w", err)
	}
	voter := !j.JoinNonvoter && !edge // an edge always joins as a non-voter
	reason := "evac server --join-cluster"
	if edge {
		reason = "evac server --edge --join-cluster"
	}
	return &joiner{
		c:       client.New(j.JoinCluster, token, append(opts, client.WithTimeout(30*time.Second))...),
		req:     wire.JoinRequest{ID: id, Address: raftAddr, Voter: &voter, Reason: reason},
		log:     lg.Named("join"),
		backoff: joinBackoffMin,
	}, nil
}

// run asks until this node is a member or ctx ends.
func (j *joiner) run(ctx context.Context) {
	for attempt := 1; ; attempt++ {
		if j.member() {
			j.log.Info("this controller is a member of the cluster", zap.String("id", j.req.ID))
			return
		}
		_, err := j.c.Join(ctx, j.req)
		if err == nil {
			j.log.Info("joined the cluster", zap.String("via", j.c.Addr()), zap.String("id", j.req.ID),
				zap.String("address", j.req.Address), zap.Bool("voter", *j.req.Voter))
			return
		}
		lvl := zap.WarnLevel
		var ae *client.APIError
		if errors.As(err, &ae) && (ae.Status == 401 || ae.Status == 403 || ae.Status == 400) {
			lvl = zap.ErrorLevel // will not pass by waiting: the token or the request is wrong
		}
		j.log.Log(lvl, "asking the cluster to add this controller failed; retrying", zap.String("via", j.c.Addr()),
			zap.Int("attempt", attempt), zap.Duration("retry-in", j.backoff), zap.Error(err))
		t := time.NewTimer(j.backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		j.backoff = min(2*j.backoff, joinBackoffMax)
	}
}

// start runs j on a goroutine, member saying whether this node is in its
// Raft configuration; the returned function cancels it and waits.
func (j *joiner) start(ctx context.Context, member func() bool) (stop func()) {
	j.member = member
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { j.run(ctx) })
	return func() { cancel(); wg.Wait() }
}
