package proxy

import (
	"bytes"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"
)

// accessEntry is what the access log line of one request says, copied from
// the request while the handler runs, written when the response ends.
type accessEntry struct {
	log     hclog.Logger
	method  string
	path    string
	status  int
	worker  int // -1 when no worker was involved
	id      string
	started time.Time
}

func (h *Handler) newEntry(ctx *fasthttp.RequestCtx, b *backend, status int, rid []byte) *accessEntry {
	uri := ctx.Request.Header.RequestURI()
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i] // a query string may carry secrets
	}
	e := &accessEntry{log: h.access, method: string(ctx.Method()), path: string(uri), status: status,
		worker: -1, id: string(rid), started: ctx.Time()}
	if b != nil {
		e.worker = b.slot
	}
	return e
}

// write logs the entry; a nil entry (access log off) writes nothing. err is
// why the body ended early, if it did.
func (e *accessEntry) write(n int64, err error) {
	if e == nil {
		return
	}
	args := []any{"method", e.method, "path", e.path, "status", e.status, "bytes", n,
		"duration", time.Since(e.started).Round(time.Microsecond), "worker", e.worker, "request_id", e.id}
	if err != nil {
		args = append(args, "error", err.Error())
	}
	e.log.Info("request", args...)
}
