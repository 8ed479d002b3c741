// Package dnsserver is evac's authoritative DNS server: it answers for the
// steering config's zone from the local replica of the replicated state, so
// a controller that lost quorum keeps answering from its last state.
//
// Why it is shaped this way:
//   - Prepared at Update, not per query. Update turns a *state.State into an
//     immutable view (view.go): per lower-case owner name and query type, the
//     complete answer (answer, authority and additional sections, CNAMEs in
//     the zone already followed) or, for a weighted service, one such answer
//     per candidate region with its effective weight. Every answer is kept
//     twice: as records, and packed in wire format after the question of the
//     owner name. It rebuilds only when the serial or the config changed and
//     swaps an atomic.Pointer, like a CoreDNS zone reload: a query loads the
//     pointer once and sees one generation throughout.
//   - Two paths, one behaviour. UDP queries go to our own read loops
//     (udp.go: recvmmsg/sendmmsg batches, no goroutine per query) and the
//     fast path (fast.go): it parses only the header, the question and an
//     OPT with at most an ECS option, looks the name up, and writes the
//     header, the question as asked (case kept), the prepared bytes (valid
//     as they are: the question has the same length in any case, so the
//     compression pointers into it hold) and the OPT with the ECS scope. No
//     allocation. Anything else (several questions, compression in the
//     question, other EDNS options or versions, transfers, NOTIFY, answers
//     to truncate) falls back to the general path: screen (strict.go)
//     judges the wire form, miekg/dns unpacks, and ServeDNS answers from
//     the same view; an answer from the zone is rendered exactly as the
//     fast path renders it (wire.go), so both spell names as the question
//     did (0x20). TCP always takes the general path, and so does UDP on a
//     wildcard address (0.0.0.0, ::), where miekg/dns's server picks the
//     source address of each answer; screen sits in front of miekg/dns's
//     servers too (a DecorateReader). A test asks both paths thousands of
//     queries and compares the answers; FuzzPathsAgree demands
//     byte-identical replies from the fast, general and TCP paths on
//     arbitrary packets.
//   - Weighted answers use weighted rendezvous hashing over a deterministic
//     hash of (region, client subnet) (subnet.go): every controller gives a
//     subnet the same region, the split over many subnets follows the weights,
//     and changing one region's weight moves only clients to or from it. The
//     subnet is the EDNS Client Subnet (scope echoed, at most /24 or /56) or
//     the source address truncated to /24 or /56. The choice does not depend
//     on the query type, so a client's A and AAAA come from the same region;
//     if that region has no address of the asked family the answer is NODATA.
//   - Nearest answers (nearest.go) look the client key's address up in the
//     config's compiled topology (package topology: built once per config,
//     reused across weight changes; longest prefix as one binary search),
//     then, with a GeoIP database (SetLocator), its country, continent and
//     distance order; the first region on the list with weight answers, a
//     partial weight w keeping w% of the subnets that reach it by the same
//     hash as weighted. The ECS scope is the shortest prefix of the client
//     for which that holds (the matched range), or the key's length when a
//     partial weight decided. Both answer paths, drain tracking and Explain
//     (explain.go, GET /v1/explain) call the same pick.
//   - Each Server owns its handler and its UDP and TCP listeners (no global
//     mux): `evac dev` runs three in one process. Shutdown waits for queries
//     in flight and leaves no goroutine; TCP writes have a deadline.
//   - Drain tracking (drain.go): after each UDP batch, the answers that named
//     a region are recorded per (client subnet, service) in the reader's own
//     table of recent answers, under one lock and one clock read per batch;
//     UpdateWatching turns the recent answers into the population of a
//     lowered weight, published before the new answers, and every later
//     answer marks its pair drained. Bounded tables, no allocation per query.
//
// Responses: AA on every answer from the zone (NOERROR, NXDOMAIN), never
// RA; names in the zone take the question's case; REFUSED (AA clear)
// outside the zone, for classes other than IN, before any config, for
// transfers not allowed, and for every NOTIFY (we are the primary and have
// no primary of our own); NOTIMP for opcodes other than QUERY and NOTIFY,
// with or without a question; FORMERR for malformed queries (strict.go:
// trailing bytes, two OPTs or one outside the additional section, a bad
// Client Subnet option, a question without type or class, an IXFR without
// the client's SOA); error replies copy only ID, opcode, RD and CD, carry
// no question when the query did not parse, and carry our OPT when the
// query had one; BADVERS for EDNS versions above 0; SERVFAIL if answering
// panics. A UDP answer too big for the client is sent empty with TC, never
// with a partial RRset. ANY gets the RFC 8482 HINFO (the
// CNAME at a CNAME). The zone has no wildcards: a name exists only if the
// config puts it, or a name below it, there.
//
// Zone transfers (transfer.go): AXFR over TCP, and IXFR (RFC 1995), to the
// secondaries' addresses and the transfer_allow networks. IXFR answers
// from the journal (journal.go): the differences between the versions
// this server built, derived at Update from consecutive views (never sent
// between controllers), at most Config.IXFRJournal of them and never more
// records than the zone. A client up to date gets our SOA; one the
// journal reaches gets the changes since its serial; any other the whole
// zone (AXFR-style) over TCP. Over UDP the changes go out when they fit
// the client's size, else our SOA alone ("use TCP"). A transfer cannot
// steer per client, so a weighted or nearest service appears there (and
// in the journal's differences) with the addresses of every serving
// region. The protocol cases every listener must answer alike are one
// table, package conformance, run here and against real processes.
// NOTIFY (notify.go) goes to every secondary whenever the served serial
// changes, from every controller (see notify.go for why). When the server
// signs, transfers carry the signed zone by default (xfrsign.go: DNSKEY,
// an NSEC chain, RRSIGs, identical on every controller) and the served
// serial adds a signing-period offset to the state serial, so a re-sign
// is a new version with its journal entry and NOTIFY.
//
// TSIG (tsig.go, RFC 8945): a Keyring from the --tsig-keys file signs and
// verifies on every listener (miekg/dns's servers verify before ServeDNS;
// the UDP loops' general path does the same itself). A signed request that
// fails gets NOTAUTH with BADKEY, BADSIG or BADTIME in a TSIG record; one
// that verifies is answered signed, outside the fast path. A secondary
// with a key must sign its transfers and gets signed NOTIFY.
//
// DNSSEC (sign.go, dnsseckeys.go; docs/dnssec.md): with EnableDNSSEC,
// every prepared answer gets a signed twin at Update (RRSIGs after each
// RRset, RFC 9824 compact denial for negative answers), which queries with
// DO get on both paths at the same cost; a nonexistent name asked with DO
// is signed on demand on the general path. A loop owned by the server
// re-signs the last state before the signatures expire. SetDNSSECRefusal
// turns answers to DO into SERVFAIL (keys that differ from the cluster's).
// Transfers stay unsigned.
//
// Response-rate limiting (rrl.go) is off unless Config.RateLimit is set;
// `evac server` sets DefaultRateLimit (100 responses/s per client /24).
package dnsserver
