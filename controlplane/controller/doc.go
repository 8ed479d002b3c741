// Package controller wires one evac controller together: the Raft node and
// its FSM, the gossip member that receives the agents' reports, the DNS
// server answering from the local replica, the admin API, and the steering
// engine that runs while this node leads.
//
// Ownership: Start launches every goroutine under one context and a
// WaitGroup; Close cancels it and shuts the components down in reverse order
// (stop taking writes, stop serving, then leave gossip and stop Raft), so a
// Controller can be started and stopped many times in one process, as
// `evac dev` and the tests do.
package controller
