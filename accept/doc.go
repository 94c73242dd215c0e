// Package accept keeps a listener accepting through a shortage of file
// descriptors, socket buffers or kernel memory.
//
// A plain accept loop (fasthttp's Serve among them) treats EMFILE, ENFILE,
// ENOBUFS and ENOMEM as permanent and stops for good, although each passes
// as soon as a connection closes. A Listener retries them itself with a
// backoff, as Go's net/http server does, logs one warning per burst, and
// reports its state so that a health endpoint can say it is not accepting.
//
// It is not a connection limiter and knows nothing of HTTP.
package accept
