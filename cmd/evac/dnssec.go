package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/dnsserver"
	"github.com/evac-sh/evac/internal/cli"
)

// newDNSSECCmd is `evac dnssec`: keys for signing the zone, and the DS
// records for the parent (docs/dnssec.md).
func newDNSSECCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dnssec",
		Short: "DNSSEC keys for signing the zone, and its DS records for the parent",
		Example: `  evac dnssec keygen --dir /etc/evac/dnssec --zone example.com
  evac dnssec ds --dir /etc/evac/dnssec --zone example.com
  evac dnssec rollover status`,
	}
	cmd.AddCommand(newDNSSECKeygenCmd(), newDNSSECDSCmd(), cli.DNSSECRolloverCommand())
	return cmd
}

func newDNSSECKeygenCmd() *cobra.Command {
	var dir, zone, alg, role string
	var pair bool
	cmd := &cobra.Command{
		Use:   "keygen --dir DIR [--algorithm ecdsap256sha256|ed25519] [--zone ZONE] [--ksk-zsk | --role ksk|zsk|csk]",
		Short: "Make a DNSSEC signing key (a CSK, or a KSK and a ZSK) in a key directory",
		Long: `Make a new DNSSEC key in DIR (created with mode 700 if missing), as BIND's
dnssec-keygen writes them: K<zone>.+<alg>+<tag>.key (the public DNSKEY) and
K<zone>.+<alg>+<tag>.private (the private key, mode 600). By default one
combined signing key (CSK, flags 257) of algorithm 13 (ECDSAP256SHA256);
--ksk-zsk makes a key-signing key and a zone-signing key instead; --role
makes one key of that role (a rollover's new key: evac dnssec rollover).
Copy the directory to every controller and run them with --dnssec-keys DIR;
then give the parent zone the DS records of evac dnssec ds. The private key
is never printed.`,
		Example: `  evac dnssec keygen --dir /etc/evac/dnssec --zone example.com
  evac dnssec keygen --dir /etc/evac/dnssec --algorithm ed25519 --ksk-zsk
  evac dnssec keygen --dir /etc/evac/dnssec --zone example.com --role zsk   # the next ZSK`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return cli.Usagef("--dir is required")
			}
			var files []string
			var err error
			switch role {
			case "":
				files, err = dnsserver.GenerateDNSSECKeys(dir, zone, alg, pair)
			case "ksk", "csk", "zsk":
				if pair {
					return cli.Usagef("--role and --ksk-zsk exclude each other")
				}
				var f string
				f, err = dnsserver.GenerateDNSSECKey(dir, zone, alg, role != "zsk")
				files = []string{f}
			default:
				return cli.Usagef("--role %q: must be ksk, zsk or csk", role)
			}
			if err != nil {
				return cli.Usagef("%v", err)
			}
			for _, f := range files {
				fmt.Fprintln(cmd.OutOrStdout(), f)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&dir, "dir", "", "key directory (the same on every controller: --dnssec-keys)")
	fl.StringVar(&alg, "algorithm", dnsserver.AlgECDSAP256SHA256, "ecdsap256sha256 (13) or ed25519 (15)")
	fl.StringVar(&zone, "zone", "", "the zone, for the key files' names and owner (the server publishes them at its config's zone in any case)")
	fl.BoolVar(&pair, "ksk-zsk", false, "make a KSK and a ZSK instead of one combined signing key")
	fl.StringVar(&role, "role", "", "make one key of this role: ksk or csk (flags 257) or zsk (256), e.g. a rollover's new key")
	return cmd
}

func newDNSSECDSCmd() *cobra.Command {
	var dir, zone string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "ds [--dir DIR --zone ZONE | --addr URL]",
		Short: "Print the zone's DS records (SHA-256) for the parent zone",
		Long: `Print the DS records (digest type 2, SHA-256) of the zone's key-signing or
combined keys, for the parent zone: from a key directory (--dir, with --zone
unless the keys were made with --zone), or from the controller at --addr
(GET /v1/status, which has them for the served zone).`,
		Example: `  evac dnssec ds --dir /etc/evac/dnssec --zone example.com
  evac dnssec ds --addr http://127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if dir == "" {
				st, err := cli.ControllerStatus(cmd)
				if err != nil {
					return err
				}
				if st.DNSSEC == nil || len(st.DNSSEC.DS) == 0 {
					return errors.New("the controller has no DNSSEC keys (evac server --dnssec-keys DIR) or no zone yet")
				}
				for _, ds := range st.DNSSEC.DS {
					fmt.Fprintln(out, ds)
				}
				return nil
			}
			ks, err := dnsserver.LoadDNSSECKeys(dir)
			if err != nil {
				return cli.Usagef("--dir: %v", err)
			}
			if zone == "" {
				zone = ks.Keys[0].DNSKEY.Hdr.Name
				if zone == "." {
					return cli.Usagef("--zone is required: the keys in %s were made without one", dir)
				}
			}
			for _, ds := range ks.DS(zone, uint32(ttl/time.Second)) {
				fmt.Fprintln(out, ds)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&dir, "dir", "", "key directory; without it, ask the controller at --addr")
	fl.StringVar(&zone, "zone", "", "the zone (with --dir)")
	fl.DurationVar(&ttl, "ttl", time.Hour, "TTL of the printed DS records")
	return cmd
}
