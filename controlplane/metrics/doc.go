// Package metrics exposes one controller's Prometheus metrics on its own
// registry (three controllers share a process in `evac dev`, so nothing is
// registered globally).
//
// State-derived series (regions, Raft, gossip) are read from the controller
// at scrape time by a collector, so they cost nothing between scrapes.
// Counters and histograms that need every occurrence are fed as things
// happen: DNS replies through DNSObserver (pre-resolved counters, no
// allocation per query), Raft apply latency through ObserveApply, and
// evacuations by outcome and duration through ObserveEvents, which the
// controller calls with each batch of new audit events.
//
// Series:
//
//	evac_region_weight{region}                      traffic weight 0-100
//	evac_region_state{region,state}                 1 for the region's state, else 0
//	evac_region_health{region}                      lowest share of live agents passing a service's checks (absent if unknown)
//	evac_region_service_healthy{region,service}     committed verdict, 1 healthy, 0 unhealthy
//	evac_region_observers{region}                   live agents; 0 with none dead: nothing observes the region
//	evac_region_agents{region,state}                agents by state: alive, dead, left
//	evac_dns_queries_total{qtype,rcode}             replies sent
//	evac_dns_reply_duration_seconds                 time from query to reply written
//	evac_raft_leader / evac_raft_term / evac_raft_commit_index / evac_raft_applied_index
//	evac_raft_apply_duration_seconds                Propose to result, forwarding included
//	evac_gossip_members{state}                      alive, suspect, dead, left
//	evac_evacuations_total{outcome}                 started, completed, reverted
//	evac_evacuation_duration_seconds                start to evacuated
//	evac_frozen, evac_config_version
package metrics
