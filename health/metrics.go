package health

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/valyala/fasthttp"
)

// metrics answers GET /metrics in the Prometheus text format, gathered from
// cfg.Metrics at each scrape.
func (s *Server) metrics(ctx *fasthttp.RequestCtx) {
	if s.cfg.Metrics == nil {
		ctx.Error("not found\n", fasthttp.StatusNotFound)
		return
	}
	families, err := s.cfg.Metrics.Gather()
	if err != nil {
		s.cfg.Logger.Warn("gather metrics", "error", err)
	}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	ctx.SetContentType(string(format))
	enc := expfmt.NewEncoder(ctx, format)
	for _, mf := range families {
		if err := enc.Encode(mf); err != nil {
			s.cfg.Logger.Warn("encode metrics", "error", err)
			return
		}
	}
}

// Gatherer is where /metrics comes from.
type Gatherer = prometheus.Gatherer
