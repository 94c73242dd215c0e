// Package health is percore's admin side: the admin listener, which answers
// liveness and readiness for orchestrators (Fly checks, Kubernetes probes),
// /status, /metrics and the live page on a port apart from the public one,
// and the Checker, which sends active health checks to the workers.
//
// The admin listener only reads: state comes in through the small
// interfaces declared here (Workers, Listeners, StatusSource,
// MetricsWriter), and no request to it changes a worker's life. The Checker
// acts: a worker that fails Threshold checks in a row is ejected (taken out
// of rotation and restarted) through the Fleet interface, which
// cmd/percore implements over the supervisor's own Eject; the package never
// imports the supervisor.
//
// It is not a proxy and does not start processes.
package health
