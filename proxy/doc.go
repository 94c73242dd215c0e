// Package proxy is percore's public HTTP side: a fasthttp handler that
// forwards each request to the least busy ready worker over a keep-alive
// connection pool of that worker, retries what can safely be retried on
// another worker, streams bodies both ways, and tunnels upgraded
// connections (WebSocket and any other "Connection: Upgrade" protocol) to a
// worker byte for byte. A selector chooses the worker (selector.go): least
// outstanding requests, under a layer that keeps engine.io (socket.io)
// sessions on the worker that opened them and, on request, pins clients by
// cookie, address or header (affinity.go, engineio.go).
//
// It is not a general-purpose reverse proxy: upstreams are local workers
// that the supervisor adds and drains through Pool, which implements the
// supervisor's Router interface. The package does not start processes, and
// it never reads the admin server's state.
//
// # Limits
//
// Memory is bounded by buffers, not by body sizes: request and response
// bodies stream through, and an open tunnel holds two 8KiB copy buffers
// besides fasthttp's read buffer of the client's connection. Nothing limits
// how long a stream or a tunnel may last. The limits that exist, and their
// defaults, are on ServerConfig (header timeout 20s, idle keep-alive 75s,
// header block 16KiB) and Config (response timeout 2m; body size, requests
// per worker and the queue off unless asked for; new engine.io sessions 50
// a second per client address). The engine.io session table holds at most
// DefaultMaxSessions sessions in 8MiB, and forgets the least recently seen
// when full; a handshake costs the same whatever its fill (sessions.go).
// On Linux the timeouts fire on time or up to a thirty-second of their
// length late, never early: a read deadline reaches Go's poller only when a
// read has to wait (rawio.go).
//
// # Requests percore refuses
//
// A request that fasthttp cannot parse gets 400 (431 for a header block over
// the buffer, 408 when the header timeout runs out). Of those it parses,
// checkRequest refuses the shapes that smuggle requests past another proxy;
// see its documentation for the full list. A refused request never reaches
// a worker, and its connection is closed.
//
// # Clients that go away
//
// fasthttp notices a client has gone only when it reads from or writes to
// its connection. An upload notices at once: the next read of the body
// fails, the worker's connection is closed, and the worker sees its request
// aborted. A streamed response (server-sent events, a download) notices at
// its next write, so the worker's connection closes within one event or
// heartbeat. A long poll, whose request was read whole and whose answer has
// not started, is not noticed until the worker answers: the worker finishes
// the poll and its answer is dropped. Long polls are bounded by the app's
// own poll interval, and by the response timeout.
package proxy
