// Package evac is the root of the evac module: a regional failover and
// traffic-steering control plane. See README.md.
package evac
