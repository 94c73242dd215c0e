// Package supervisor runs a command as N worker processes and keeps them
// alive: it gives each worker its own loopback port, waits until the worker
// listens there, tells a Router which workers may take traffic, restarts
// crashed workers with backoff, gives up on a crash loop, and stops every
// process group within one shutdown budget.
//
// It is not a proxy and knows nothing of HTTP: the traffic side learns about
// workers only through the Router interface declared here. It does not decide
// how many workers to run or how large their heaps are; the caller passes a
// Prepare function that builds each worker's argv and environment.
package supervisor
