package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/auth"
	"github.com/evac-sh/evac/controlplane/controller"
	"github.com/evac-sh/evac/internal/cli"
	"github.com/evac-sh/evac/internal/keyfile"
	"github.com/evac-sh/evac/internal/tlsutil"
)

// securityFlags are the server's auth and TLS settings; each is also a
// config file key.
type securityFlags struct {
	TokensFile     string `yaml:"tokens_file"`
	InsecureNoAuth bool   `yaml:"insecure_no_auth"`
	TLSCert        string `yaml:"tls_cert"`
	TLSKey         string `yaml:"tls_key"`
	TLSClientCA    string `yaml:"tls_client_ca"`
	RaftTLSCert    string `yaml:"raft_tls_cert"`
	RaftTLSKey     string `yaml:"raft_tls_key"`
	RaftTLSCA      string `yaml:"raft_tls_ca"`
	// InsecureNoRaftTLS runs Raft and leader forwarding over plain TCP.
	InsecureNoRaftTLS bool `yaml:"insecure_no_raft_tls"`
}

func addSecurityFlags(fl *pflag.FlagSet, s *securityFlags) {
	fl.StringVar(&s.TokensFile, "tokens-file", "", "YAML file of API tokens: tokens: [{name, role, sha256}] (evac token create); reloaded on SIGHUP")
	fl.BoolVar(&s.InsecureNoAuth, "insecure-no-auth", false, "serve the admin API without authentication (anyone who can reach it may evacuate regions)")
	fl.StringVar(&s.TLSCert, "tls-cert", "", "PEM certificate of the admin API (serves HTTPS)")
	fl.StringVar(&s.TLSKey, "tls-key", "", "PEM key of --tls-cert")
	fl.StringVar(&s.TLSClientCA, "tls-client-ca", "", "PEM CA bundle: require API clients to present a certificate it signed")
	fl.StringVar(&s.RaftTLSCert, "raft-tls-cert", "", "PEM certificate for mutual TLS between controllers: serverAuth and clientAuth, naming --node-id (DNS SAN) and the --raft-addr IP (IP SAN)")
	fl.StringVar(&s.RaftTLSKey, "raft-tls-key", "", "PEM key of --raft-tls-cert (mode 0600)")
	fl.StringVar(&s.RaftTLSCA, "raft-tls-ca", "", "PEM CA bundle that signed every controller's --raft-tls-cert")
	fl.BoolVar(&s.InsecureNoRaftTLS, "insecure-no-raft-tls", false, "run Raft without mutual TLS (anyone who reaches the Raft port can commit any change)")
}

// mergeSecurity fills the security fields not set by flags from the file.
func mergeSecurity(fl *pflag.FlagSet, dst *securityFlags, file securityFlags) {
	for name, p := range map[string][2]*string{
		"tokens-file":   {&dst.TokensFile, &file.TokensFile},
		"tls-cert":      {&dst.TLSCert, &file.TLSCert},
		"tls-key":       {&dst.TLSKey, &file.TLSKey},
		"tls-client-ca": {&dst.TLSClientCA, &file.TLSClientCA},
		"raft-tls-cert": {&dst.RaftTLSCert, &file.RaftTLSCert},
		"raft-tls-key":  {&dst.RaftTLSKey, &file.RaftTLSKey},
		"raft-tls-ca":   {&dst.RaftTLSCA, &file.RaftTLSCA},
	} {
		if !fl.Changed(name) && *p[1] != "" {
			*p[0] = *p[1]
		}
	}
	if !fl.Changed("insecure-no-auth") && file.InsecureNoAuth {
		dst.InsecureNoAuth = true
	}
	if !fl.Changed("insecure-no-raft-tls") && file.InsecureNoRaftTLS {
		dst.InsecureNoRaftTLS = true
	}
}

// errNoAuth is why a server without a tokens file does not start.
var errNoAuth = errors.New("no --tokens-file: the admin API would accept anyone. " +
	"Create tokens with `evac token create --name NAME --role admin` and pass --tokens-file FILE, " +
	"or pass --insecure-no-auth to run without authentication")

// errNoRaftTLS is why a server without Raft TLS does not start.
var errNoRaftTLS = errors.New("no --raft-tls-cert/--raft-tls-key/--raft-tls-ca: anyone who reaches the Raft port could commit any change. " +
	"Give every controller a certificate naming its --node-id and --raft-addr, signed by one CA (docs/security.md), " +
	"or pass --insecure-no-raft-tls to run Raft over plain TCP")

// Warnings shown at start, in the log and in GET /v1/status.
const (
	warnNoAuth    = "admin API authentication is off (--insecure-no-auth): anyone who reaches the API may evacuate regions"
	warnNoRaftTLS = "Raft runs without mutual TLS (--insecure-no-raft-tls): anyone who reaches the Raft port can commit any change"
	// The agent logs the same words (agentcmd.go).
	warnNoGossipKey = "gossip is NOT encrypted (--insecure-no-gossip-key): anyone who reaches the gossip port can join the pool and inject health reports"
)

// apply loads the tokens file and the TLS material into cfg. Warnings go to
// stderr and the log.
func (s securityFlags) apply(cfg *controller.Config, lg *zap.Logger, stderr io.Writer) error {
	var errs []error
	switch {
	case s.TokensFile != "" && s.InsecureNoAuth:
		errs = append(errs, errors.New("--tokens-file and --insecure-no-auth exclude each other"))
	case s.TokensFile != "":
		// The file holds only hashes, but whoever may write it may grant
		// themselves any role.
		if err := keyfile.CheckNotWritable(s.TokensFile); err != nil {
			errs = append(errs, fmt.Errorf("--tokens-file: %w", err))
			break
		}
		st, err := auth.Load(s.TokensFile, lg.Named("auth"))
		if err != nil {
			errs = append(errs, fmt.Errorf("--tokens-file: %w", err))
		}
		cfg.Auth = st
	case s.InsecureNoAuth:
		fmt.Fprintln(stderr, "WARNING: --insecure-no-auth: the admin API accepts every request without a token")
		lg.Warn(warnNoAuth)
		cfg.Warnings = append(cfg.Warnings, warnNoAuth)
	default:
		errs = append(errs, errNoAuth)
	}
	if s.TLSCert != "" || s.TLSKey != "" || s.TLSClientCA != "" {
		c, err := tlsutil.Server(s.TLSCert, s.TLSKey, s.TLSClientCA)
		if err != nil {
			errs = append(errs, fmt.Errorf("--tls-cert/--tls-key/--tls-client-ca: %w", err))
		}
		cfg.TLS = c
	}
	raftTLS := s.RaftTLSCert != "" || s.RaftTLSKey != "" || s.RaftTLSCA != ""
	switch {
	case raftTLS && s.InsecureNoRaftTLS:
		errs = append(errs, errors.New("--raft-tls-* and --insecure-no-raft-tls exclude each other"))
	case raftTLS:
		c, err := tlsutil.Mutual(s.RaftTLSCert, s.RaftTLSKey, s.RaftTLSCA)
		if err != nil {
			errs = append(errs, fmt.Errorf("--raft-tls-cert/--raft-tls-key/--raft-tls-ca: %w", err))
		}
		cfg.RaftTLS = c
	case s.InsecureNoRaftTLS:
		fmt.Fprintln(stderr, "WARNING: --insecure-no-raft-tls: Raft and leader forwarding run over plain, unauthenticated TCP")
		lg.Warn(warnNoRaftTLS)
		cfg.Warnings = append(cfg.Warnings, warnNoRaftTLS)
	default:
		errs = append(errs, errNoRaftTLS)
	}
	return errors.Join(errs...)
}

// check loads every file s names, as apply does, but needs no auth or
// Raft TLS decision: --tokens-file or --insecure-no-auth, and --raft-tls-*
// or --insecure-no-raft-tls, may come as flags.
func (s securityFlags) check() error {
	if s.TokensFile == "" {
		s.InsecureNoAuth = true
	}
	if s.RaftTLSCert == "" && s.RaftTLSKey == "" && s.RaftTLSCA == "" {
		s.InsecureNoRaftTLS = true
	}
	var cfg controller.Config
	return s.apply(&cfg, zap.NewNop(), io.Discard)
}

// reloadOnSIGHUP re-reads the tokens file on every SIGHUP until stop is
// called; a bad file is logged by Reload and the old tokens stay. Without a
// tokens file (st nil) SIGHUP is logged and otherwise ignored, rather than
// ending the process.
func reloadOnSIGHUP(st *auth.Store, lg *zap.Logger) (stop func()) {
	return onSIGHUP(func() {
		if st == nil {
			lg.Info("SIGHUP: no tokens file to reload")
			return
		}
		_ = st.Reload()
	})
}

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "token",
		Short:   "Manage admin API tokens",
		Example: "  evac token create --name alice --role operator",
	}
	var name, role string
	create := &cobra.Command{
		Use:   "create --name NAME --role viewer|operator|admin",
		Short: "Print a new random token and its tokens-file line",
		Long: `Print a new random token and the line to add to the --tokens-file.
The file holds only the token's SHA-256; keep the token itself secret and
give it to its user (evac --token or EVAC_TOKEN). Send the servers SIGHUP
after editing the file.`,
		Example: `  evac token create --name alice --role operator`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return cli.Usagef("--name is required")
			}
			r, err := auth.ParseRole(role)
			if err != nil {
				return cli.Usagef("--role: %v", err)
			}
			tok, sum, err := auth.NewToken()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "token: %s\n", tok)
			fmt.Fprintf(out, "# add to the tokens file, under tokens:\n%s\n", auth.FileLine(name, r, sum))
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "who the token is for; the actor of its audit events")
	create.Flags().StringVar(&role, "role", "", "viewer, operator or admin")
	cmd.AddCommand(create)
	return cmd
}
