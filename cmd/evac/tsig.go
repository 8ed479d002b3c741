package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/dnsserver"
	"github.com/evac-sh/evac/internal/cli"
)

// newTSIGCmd is `evac tsig keygen`: a new TSIG key for the --tsig-keys
// file, with the same key in Knot's and BIND's syntax for the secondary.
func newTSIGCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "tsig",
		Short:   "TSIG keys for zone transfers and NOTIFY",
		Example: "  evac tsig keygen --name transfer-key >> /etc/evac/tsig.yaml",
	}
	var name, alg string
	keygen := &cobra.Command{
		Use:   "keygen --name NAME [--algorithm hmac-sha256|hmac-sha512]",
		Short: "Print a new TSIG key line for the --tsig-keys file",
		Long: `Print a new random TSIG key (RFC 8945) as a line of the --tsig-keys file
(under keys:), and the same key for a Knot or BIND secondary as comments.
Put the same line in the keys file of every controller, name the key in
the steering config (secondaries: [{address: IP:PORT, tsig: NAME}]), and
send the controllers SIGHUP. The file must have mode 600.`,
		Example: `  evac tsig keygen --name transfer-key
  evac tsig keygen --name transfer-key --algorithm hmac-sha512`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return cli.Usagef("--name is required")
			}
			k, line, err := dnsserver.GenerateTSIGKey(name, alg)
			if err != nil {
				return cli.Usagef("%v", err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "# add under keys: in the --tsig-keys file of every controller (chmod 600)\n%s\n", line)
			fmt.Fprintf(out, "# knot.conf:  key: [{id: %s, algorithm: %s, secret: %s}]\n", k.Name, k.Algorithm, k.Secret)
			fmt.Fprintf(out, "# named.conf: key \"%s\" { algorithm %s; secret \"%s\"; };\n", k.Name, k.Algorithm, k.Secret)
			return nil
		},
	}
	keygen.Flags().StringVar(&name, "name", "", "the key's name (a domain name, e.g. transfer-key); the same on both ends")
	keygen.Flags().StringVar(&alg, "algorithm", dnsserver.AlgHMACSHA256, "hmac-sha256 or hmac-sha512")
	cmd.AddCommand(keygen)
	return cmd
}
