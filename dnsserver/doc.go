// Package dnsserver is evac's authoritative DNS server: it answers for the
// steering config's zone from the local replica of the replicated state, so
// a controller that lost quorum keeps answering from its last state.
//
// Why it is shaped this way:
//   - Prepared at Update, not per query. Update turns a *state.State into an
//     immutable view (view.go): per lower-case owner name, the RR sets of the
//     apex and name-server hosts, and per service either the fixed answer
//     (failover, all, or weighted with one serving region) or the candidate
//     regions with their effective weights and records. It rebuilds only when
//     the serial or the config changed and swaps an atomic.Pointer, like a
//     CoreDNS zone reload: a query loads the pointer once and sees one
//     generation throughout. Weights are baked into the view; they change only
//     with the serial.
//   - The hot path (handler.go) lower-cases the qname into a stack buffer,
//     looks it up, hashes the client subnet for weighted services, and points
//     the reply's sections at the prepared slices. Prepared slices are clipped
//     so a reply can never append into them. The reply's own parts (header,
//     question, OPT, ECS) live in one pooled struct and the packing buffer is
//     pooled too (reply.go). Packing wire format ahead of time would replace
//     the []dns.RR in rrset/region with bytes and change only reply.pack.
//   - Weighted answers use weighted rendezvous hashing over a deterministic
//     hash of (region, client subnet) (subnet.go): every controller gives a
//     subnet the same region, the split over many subnets follows the weights,
//     and changing one region's weight moves only clients to or from it. The
//     subnet is the EDNS Client Subnet (scope echoed, at most /24 or /56) or
//     the source address truncated to /24 or /56. The choice does not depend
//     on the query type, so a client's A and AAAA come from the same region;
//     if that region has no address of the asked family the answer is NODATA.
//   - Each Server owns its handler and its UDP and TCP listeners (no global
//     mux): `evac dev` runs three in one process. Shutdown waits for queries
//     in flight and leaves no goroutine; TCP writes have a deadline.
//
// Responses: AA on every answer from the zone (NOERROR, NXDOMAIN), never
// RA; REFUSED (AA clear) outside the zone, for classes other than IN, for
// zone transfers (not implemented yet) and before any config; NOTIMP for
// opcodes other than QUERY; FORMERR for malformed queries (miekg/dns);
// BADVERS for EDNS versions above 0; SERVFAIL if answering panics.
package dnsserver
