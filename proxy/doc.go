// Package proxy is percore's public HTTP side: a fasthttp handler that
// forwards each request to the least busy ready worker over a keep-alive
// connection pool of that worker, retries what can safely be retried on
// another worker, and streams bodies both ways.
//
// It is not a general-purpose reverse proxy: upstreams are local workers
// that the supervisor adds and drains through Pool, which implements the
// supervisor's Router interface. The package does not start processes, and
// it never reads the admin server's state.
package proxy
