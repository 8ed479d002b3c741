package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/internal/client"
	"github.com/evac-sh/evac/internal/tlsutil"
)

// Environment variables that stand in for --addr and --token.
const (
	EnvAddr  = "EVAC_ADDR"
	EnvToken = "EVAC_TOKEN"
	// EnvCACert, EnvClientCert and EnvClientKey stand in for --ca-cert,
	// --client-cert and --client-key (https addresses).
	EnvCACert     = "EVAC_CA_CERT"
	EnvClientCert = "EVAC_CLIENT_CERT"
	EnvClientKey  = "EVAC_CLIENT_KEY"
)

// Output formats of -o.
const (
	OutputTable = "table"
	OutputJSON  = "json"
)

// UsageError is bad usage: a wrong flag, a missing argument, a value that
// fails validation. Execute exits 2 on it.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a *UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ExitError makes Execute exit with Code after printing Err (if non-nil).
// Commands outside this package may return it to choose their exit status.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *ExitError) Unwrap() error { return e.Err }

// AddPersistentFlags adds --addr, --token and -o/--output to root as
// persistent flags. It is idempotent, and AddClientCommands calls it, so the
// caller need not.
func AddPersistentFlags(root *cobra.Command) {
	pf := root.PersistentFlags()
	if pf.Lookup("addr") == nil {
		pf.String("addr", client.DefaultAddr, "admin API address of a controller (env "+EnvAddr+")")
	}
	if pf.Lookup("token") == nil {
		pf.String("token", "", "bearer token for the admin API (env "+EnvToken+")")
	}
	if pf.Lookup("ca-cert") == nil {
		pf.String("ca-cert", "", "PEM CA that signed the controller's TLS certificate, for https --addr (env "+EnvCACert+")")
		pf.String("client-cert", "", "PEM client certificate, when the API requires one (env "+EnvClientCert+")")
		pf.String("client-key", "", "PEM key of --client-cert (env "+EnvClientKey+")")
	}
	if pf.Lookup("output") == nil {
		pf.StringP("output", "o", OutputTable, "output format: table or json")
	}
}

// AddClientCommands adds the client commands to root: status, regions,
// services, members, events, apply, config, evacuate, restore, freeze,
// unfreeze and keygen. It calls AddPersistentFlags. It does not add `dev`;
// see DevClientCommands.
func AddClientCommands(root *cobra.Command) {
	AddPersistentFlags(root)
	root.AddCommand(
		statusCmd(), regionsCmd(), servicesCmd(), membersCmd(), eventsCmd(),
		applyCmd(), configCmd(),
		evacuateCmd(), restoreCmd(), freezeCmd(), unfreezeCmd(),
		keygenCmd(), healthzCmd(), explainCmd(),
		drillCmd(), scheduleCmd(), runbookCmd(),
		notificationsCmd(),
		agentsCmd(),
		ClusterCmd(),
	)
	addCompletions(root)
}

// DevClientCommands returns the `fail` and `heal` subcommands of `evac dev`,
// for the caller to add under its own `dev` command. They read --addr,
// --token and -o from the root's persistent flags (AddPersistentFlags), and
// fall back to the environment and defaults when those are absent.
func DevClientCommands() []*cobra.Command {
	return []*cobra.Command{devFailCmd(), devHealCmd()}
}

// Execute runs root with a context cancelled by SIGINT or SIGTERM (a second
// signal kills the process the default way) and returns the exit status; see
// ExecuteContext.
func Execute(root *cobra.Command) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore default handling: a second Ctrl-C kills
	}()
	return ExecuteContext(ctx, root)
}

// ExecuteContext runs root under ctx and returns the exit status: 0 on
// success, 2 on bad usage, 1 on any other error (ExitCode). It silences
// cobra's own error and usage printing and prints the error once, as
// "error: ...", to root's error stream, with a hint where one helps.
func ExecuteContext(ctx context.Context, root *cobra.Command) int {
	root.SilenceErrors = true
	root.SilenceUsage = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &UsageError{Err: err}
	})
	markArgErrors(root)

	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	code := ExitCode(err)
	var ee *ExitError
	if errors.As(err, &ee) && ee.Err == nil {
		return code
	}
	w := root.ErrOrStderr()
	fmt.Fprintf(w, "error: %v\n", err)
	if hint := hintFor(err, code, cmd); hint != "" {
		fmt.Fprintln(w, hint)
	}
	return code
}

// ExitCode maps an error returned by a command to evac's exit status: 0 for
// nil, 2 for bad usage (a *UsageError or one of cobra's parse errors), an
// *ExitError's Code, and 1 for everything else (a failed request, a
// connection error, a runtime failure).
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		return 2
	}
	var ae *client.APIError
	var ce *client.ConnError
	if errors.As(err, &ae) || errors.As(err, &ce) {
		return 1
	}
	if isCobraUsage(err) {
		return 2
	}
	return 1
}

// cobraUsagePrefixes start the errors cobra returns for bad command lines
// that do not pass through a FlagErrorFunc or an Args validator.
var cobraUsagePrefixes = []string{
	"unknown command ",
	"unknown flag",
	"unknown shorthand flag",
	"flag needs an argument",
	"invalid argument ",
	"required flag(s) ",
	"if any flags in the group ",
	"at least one of the flags in the group ",
	"accepts ",
	"requires at least ",
	"requires at most ",
}

func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range cobraUsagePrefixes {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// markArgErrors wraps every command's Args validator so that its errors are
// usage errors.
func markArgErrors(cmd *cobra.Command) {
	if args := cmd.Args; args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error {
			if err := args(c, a); err != nil {
				var ue *UsageError
				if errors.As(err, &ue) {
					return err
				}
				return &UsageError{Err: err}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		markArgErrors(sub)
	}
}

func hintFor(err error, code int, cmd *cobra.Command) string {
	if code == 2 && cmd != nil {
		return fmt.Sprintf("Run '%s --help' for usage.", cmd.CommandPath())
	}
	var ce *client.ConnError
	var unknownCA x509.UnknownAuthorityError
	if errors.As(err, &ce) && errors.As(err, &unknownCA) {
		return "hint: the controller's certificate is not signed by a CA you trust: set --ca-cert or " + EnvCACert + "."
	}
	if errors.As(err, &ce) && !errors.Is(err, context.Canceled) {
		return "hint: is an evac controller listening there? Set --addr or " + EnvAddr + "."
	}
	var ae *client.APIError
	if errors.As(err, &ae) && strings.Contains(ae.Message, "HTTP request to an HTTPS server") {
		return "hint: that controller serves HTTPS: use an https:// --addr."
	}
	if errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden) {
		return "hint: set --token or " + EnvToken + " to a token with the needed role."
	}
	return ""
}

// opts are the persistent flags as one command sees them.
type opts struct {
	addr, token, output           string
	caCert, clientCert, clientKey string
}

// optsOf resolves --addr, --token and -o for cmd: a flag set on the command
// line wins, then the environment, then the default.
func optsOf(cmd *cobra.Command) (opts, error) {
	o := opts{
		addr:   flagOrEnv(cmd, "addr", EnvAddr, client.DefaultAddr),
		token:  flagOrEnv(cmd, "token", EnvToken, ""),
		output: flagOrEnv(cmd, "output", "", OutputTable),

		caCert:     flagOrEnv(cmd, "ca-cert", EnvCACert, ""),
		clientCert: flagOrEnv(cmd, "client-cert", EnvClientCert, ""),
		clientKey:  flagOrEnv(cmd, "client-key", EnvClientKey, ""),
	}
	if o.output != OutputTable && o.output != OutputJSON {
		return o, Usagef("-o must be table or json, got %q", o.output)
	}
	return o, nil
}

// OutputFormat is -o as cmd sees it (table or json), for commands outside
// this package that print in either form.
func OutputFormat(cmd *cobra.Command) (string, error) {
	o, err := optsOf(cmd)
	return o.output, err
}

func flagOrEnv(cmd *cobra.Command, name, env, def string) string {
	if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
		return f.Value.String()
	}
	if env != "" {
		if v := os.Getenv(env); v != "" {
			return v
		}
	}
	if f := cmd.Flags().Lookup(name); f != nil {
		return f.Value.String()
	}
	return def
}

// session is what a client command needs: a client, the output format and
// where to write.
type session struct {
	*client.Client
	cmd    *cobra.Command
	output string
}

func newSession(cmd *cobra.Command) (*session, error) {
	o, err := optsOf(cmd)
	if err != nil {
		return nil, err
	}
	tc, err := tlsutil.Client(o.caCert, o.clientCert, o.clientKey)
	if err != nil {
		return nil, Usagef("--ca-cert/--client-cert/--client-key: %v", err)
	}
	return &session{Client: client.New(o.addr, o.token, client.WithTLSConfig(tc)), cmd: cmd, output: o.output}, nil
}

func (s *session) json() bool { return s.output == OutputJSON }
