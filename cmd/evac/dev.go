package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/dnsserver"
	"github.com/evac-sh/evac/internal/cli"
	"github.com/evac-sh/evac/internal/devcluster"
)

func newDevCmd() *cobra.Command {
	var (
		regions           string
		httpPort, dnsPort int
		raftPort, gossip  int
		dataDir           string
		signed            bool
		logLevel, logFmt  string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system on loopback: 3 controllers, 2 agents per region, demo backends",
		Long: `evac dev starts three controllers, two agents in each region and one demo health
backend per region, all in this process on loopback, applies a steering config
for zone example.com. with service api, and waits for Ctrl-C. Auth is off.
Break a region with 'evac dev fail REGION' and watch it leave the DNS answers.`,
		Example: `  evac dev
  evac dev --regions us-east,eu-west,ap-south --http-port 9080 --dns-port 6353
  evac dev --http-port 9080 --dns-port 6353 --raft-port 7400 --gossip-port 8046   # beside another evac dev
  evac dev fail us-east
  evac dev heal us-east`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lg, err := newLogger(cmd, logLevel, logFmt)
			if err != nil {
				return usageErr(err)
			}
			defer func() { _ = lg.Sync() }()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var rs []string
			for _, r := range strings.Split(regions, ",") {
				if r = strings.TrimSpace(r); r != "" {
					rs = append(rs, r)
				}
			}
			c, err := devcluster.Start(ctx, devcluster.Options{
				Regions: rs, HTTPPort: httpPort, DNSPort: dnsPort, RaftPort: raftPort, GossipPort: gossip, DataDir: dataDir, Logger: lg,
				DNSSEC: signed,
			})
			if err != nil {
				return err
			}
			defer c.Close()
			printDevBanner(cmd, c, rs, httpPort, dnsPort)
			if signed {
				printDNSSECBanner(cmd, c, dnsPort)
			}
			<-ctx.Done()
			fmt.Fprintln(cmd.ErrOrStderr(), "stopping evac dev...")
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&regions, "regions", "us-east,us-west,eu-west", "regions to simulate, comma-separated")
	fl.IntVar(&httpPort, "http-port", 8080, "admin API port of controller 0 (controller i uses port+i)")
	fl.IntVar(&dnsPort, "dns-port", 5353, "DNS port of controller 0 (controller i uses port+i)")
	fl.IntVar(&raftPort, "raft-port", 7300, "Raft port on each controller's address 127.0.9.N")
	fl.IntVar(&gossip, "gossip-port", 7946, "gossip port on each node's address (controllers 127.0.9.N, agents 127.0.R.N)")
	fl.BoolVar(&signed, "dnssec", false, "sign the demo zone (a new key under the data dir) and print its DS")
	fl.StringVar(&dataDir, "data-dir", "", "keep controller state here (default: a temp dir removed on exit)")
	addLogFlags(fl, &logLevel, &logFmt)
	// Quieter by default: the banner is what a first-time user reads.
	_ = fl.Set("log-level", "error")
	fl.Lookup("log-level").DefValue = "error"
	cmd.AddCommand(cli.DevClientCommands()...)
	return cmd
}

// printDNSSECBanner prints the DS of the signed demo zone and how to
// validate it.
func printDNSSECBanner(cmd *cobra.Command, c *devcluster.Cluster, dnsPort int) {
	w := cmd.OutOrStdout()
	ks, err := dnsserver.LoadDNSSECKeys(filepath.Join(c.DataDir(), "dnssec"))
	if err != nil {
		fmt.Fprintf(w, "DNSSEC: %v\n", err)
		return
	}
	fmt.Fprintf(w, "DNSSEC: example.com. is signed (keys %s in %s). Its DS for the parent:\n", strings.Join(ks.Describe(), " "), ks.Dir)
	for _, ds := range ks.DS("example.com.", 3600) {
		fmt.Fprintf(w, "  %s\n", ds)
	}
	fmt.Fprintf(w, "  dig @127.0.0.1 -p %d api.example.com +dnssec\n\n", dnsPort)
}

func printDevBanner(cmd *cobra.Command, c *devcluster.Cluster, regions []string, httpPort, dnsPort int) {
	w := cmd.OutOrStdout()
	fmt.Fprintln(w, "evac dev is running. Ctrl-C stops everything.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Controllers:")
	for i, ctl := range c.Controllers {
		fmt.Fprintf(w, "  c%d  admin API http://%s   DNS 127.0.0.1:%d (UDP+TCP)\n", i+1, ctl.HTTPAddr(), dnsPort+i)
	}
	fmt.Fprintln(w, "Regions (2 agents each, demo backend health URL):")
	for _, r := range regions {
		fmt.Fprintf(w, "  %-10s %-34s endpoints %s\n", r, c.BackendURL(r), strings.Join(c.Endpoints[r], ", "))
	}
	fmt.Fprintf(w, "Zone example.com.: api.example.com. (nearest: clients in 10.1.0.0/16 prefer %s, 10.2.0.0/16 the next, ...), web.example.com. (weighted); data in %s\n", regions[0], c.DataDir())
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Try:")
	addr := ""
	if httpPort != 8080 {
		addr = fmt.Sprintf(" --addr http://127.0.0.1:%d", httpPort)
	}
	first := regions[0]
	last := len(regions)
	fmt.Fprintf(w, "  dig @127.0.0.1 -p %d api.example.com +subnet=10.%d.0.0/24   # nearest: %s\n", dnsPort, last, regions[last-1])
	fmt.Fprintf(w, "  evac%s explain api --client 10.%d.0.0/24\n", addr, last)
	fmt.Fprintf(w, "  evac%s dev fail %s      # its backend fails; watch: evac%s regions\n", addr, first, addr)
	fmt.Fprintf(w, "  evac%s restore %s --reason \"recovered\"   # after: evac%s dev heal %s\n", addr, first, addr, first)
	fmt.Fprintln(w)
}
