package health

import (
	"io"

	"github.com/percore/percore/promtext"
	"github.com/valyala/fasthttp"
)

// MetricsWriter is where /metrics comes from.
type MetricsWriter interface {
	// WriteMetrics writes every metric to w in the Prometheus text format,
	// version 0.0.4. An error after some output leaves that output served.
	WriteMetrics(w io.Writer) error
}

// metrics answers GET /metrics in the Prometheus text format, written by
// cfg.Metrics at each scrape.
func (s *Server) metrics(ctx *fasthttp.RequestCtx) {
	if s.cfg.Metrics == nil {
		ctx.Error("not found\n", fasthttp.StatusNotFound)
		return
	}
	ctx.SetContentType(promtext.ContentType)
	if err := s.cfg.Metrics.WriteMetrics(ctx); err != nil {
		s.cfg.Logger.Warn("write metrics", "error", err)
		if len(ctx.Response.Body()) == 0 {
			ctx.Error("metrics unavailable\n", fasthttp.StatusInternalServerError)
		}
	}
}
