// Package cli holds the client commands of the evac binary (`evac status`,
// `evac evacuate`, ...; see SPEC.md "The binary") and the exit-code
// convention every evac command follows.
//
// Why it is shaped this way:
//   - cmd/evac owns the root command and the commands that run processes
//     (server, agent, dev). This package only adds commands to a root it is
//     given (AddClientCommands, DevClientCommands) and runs it (Execute), so
//     that tests build a fresh root per case and capture its output.
//   - Exit codes are decided in one place, Execute: 0 success, 1 a failed
//     request or other runtime failure, 2 bad usage. Commands return a
//     *UsageError for bad input and the client's *APIError or *ConnError for
//     failed requests; cobra's own parse errors are mapped to 2.
//   - Everything bad input can be caught locally (a malformed steering file, a
//     ramp that does not end on 0) is caught before any request is sent.
//   - `-o json` prints the response body as the server sent it (indented), so
//     scripts see every field, including ones this CLI does not know.
package cli
