package controller

import "github.com/evac-sh/evac/dnsserver"

// Explain explains this controller's DNS answer to name for client (GET
// /v1/explain), from the answers its DNS server is serving.
func (c *Controller) Explain(name, client string) (dnsserver.Explanation, error) {
	return c.dns.Explain(c.State(), name, client)
}
