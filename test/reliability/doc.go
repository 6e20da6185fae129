// Package reliability is the ecosystem's fault-injection suite. It drives the built binaries
// (every service, and the broker as `ecosystem --broker-only` with a data directory) as real
// processes, and injects what production will do to them: SIGKILL of each service and of the
// broker under load, loss of one of several Orders instances, poison records on every input
// topic, hostile HTTP clients, and a long soak. After each fault it checks the promise made
// to users: every accepted order reaches exactly one final state, stock is never reserved
// twice, no email is sent twice, and no input crashes a service.
//
// The suite is opt-in, because it takes minutes: the environment variable
// ORDERSYS_RELIABILITY selects what runs.
//
//	ORDERSYS_RELIABILITY=short   every scenario, briefly (what CI runs)
//	ORDERSYS_RELIABILITY=full    every scenario with more load and more kills
//	ORDERSYS_RELIABILITY=soak    the soak test alone (10 minutes; ORDERSYS_SOAK_DURATION overrides)
//
// Without it every test skips, so `go test ./...` stays fast. docs/reliability.md records
// what the scenarios inject and the counts measured in real runs.
package reliability
