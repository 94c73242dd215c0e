// Package health is percore's admin listener: liveness and readiness for
// orchestrators (Fly checks, Kubernetes probes), on a port apart from the
// public one.
//
// It only reads: state comes in through the small interfaces declared here,
// and nothing here changes a worker's life.
package health
