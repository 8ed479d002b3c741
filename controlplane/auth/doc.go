// Package auth authenticates admin API requests with bearer tokens.
//
// Tokens live in a YAML tokens file (--tokens-file) as SHA-256 digests, never
// in clear: `tokens: [{name: alice, role: operator, sha256: HEX}]`. A
// request's token is hashed and compared, in constant time, with every entry;
// the entry's name becomes the actor of the audit events the request causes.
// The file is re-read by Reload (the server calls it on SIGHUP); a file that
// does not parse leaves the tokens in force unchanged.
//
// Roles nest: viewer (reads, /metrics), operator (evacuate, restore, freeze,
// drills), admin (config, runbooks, schedules, cluster). /healthz, /readyz
// and the dashboard's static files are open. Required is the single place
// that maps a request to the role it needs. Each token's writes are
// rate-limited by a token bucket (10/s, burst 20), answered 429 with
// Retry-After beyond it.
package auth
