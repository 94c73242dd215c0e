package main

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/percore/percore/proxy"
)

// proxySettings are the flags that shape the public proxy. The zero value
// means every default.
type proxySettings struct {
	HeaderTimeout   time.Duration // 0: proxy.DefaultHeaderTimeout
	IdleTimeout     time.Duration // 0: proxy.DefaultIdleTimeout
	MaxHeaderSize   int           // 0: proxy.DefaultHeaderBufferSize
	ResponseTimeout time.Duration // 0: proxy.DefaultResponseTimeout; negative: none
	BodyTimeout     time.Duration // 0: proxy.DefaultBodyTimeout; negative: none
	MaxBody         int64         // 0: no limit
	MaxInFlight     int           // 0: no limit
	Queue           int           // 0: proxy.DefaultQueue; negative: no queue
	QueueTimeout    time.Duration // 0: proxy.DefaultQueueTimeout
	AccessLog       bool
	Trusted         proxy.Trusted // nil: proxy.DefaultTrusted
	Affinity        proxy.Affinity
	EnginePath      string // "": proxy.DefaultEnginePath; "off": none
	SessionRate     int    // 0: proxy.DefaultSessionRate; negative: no cap
	SessionBurst    int    // 0: twice the rate
}

// proxyOptions are the flags of the public proxy.
func proxyOptions() []option {
	return []option{
		{name: "header-timeout", value: "DURATION", def: proxy.DefaultHeaderTimeout.String(),
			usage: "time a client has to send a request's header (new connections: from connect); cuts slowloris",
			doc:   "proxy.md#timeouts-and-limits",
			set:   positiveDuration(func(p *proxySettings) *time.Duration { return &p.HeaderTimeout })},
		{name: "body-timeout", value: "DURATION|off", def: proxy.DefaultBodyTimeout.String(),
			usage: "time a client may go without sending any of a request body it has started (408)",
			doc:   "proxy.md#timeouts-and-limits",
			set:   setBodyTimeout},
		{name: "idle-timeout", value: "DURATION", def: proxy.DefaultIdleTimeout.String(),
			usage: "closes a client's keep-alive connection idle this long",
			doc:   "proxy.md#timeouts-and-limits",
			set:   positiveDuration(func(p *proxySettings) *time.Duration { return &p.IdleTimeout })},
		{name: "max-header-size", value: "SIZE", def: "16KiB",
			usage: "largest request line and header block; larger gets 431; each connection holds a buffer this big (SIZE such as 32K)",
			doc:   "proxy.md#timeouts-and-limits",
			set:   setMaxHeaderSize},
		{name: "response-timeout", value: "DURATION|off", def: proxy.DefaultResponseTimeout.String(),
			usage: "time a worker has to start its response (status and header) before 504; bodies may stream on",
			doc:   "proxy.md#timeouts-and-limits",
			set:   setResponseTimeout},
		{name: "max-body", value: "SIZE|off", def: "off",
			usage: "largest request body; larger gets 413 (bodies stream to the worker either way)",
			doc:   "proxy.md#timeouts-and-limits",
			set:   setMaxBody},
		{name: "max-inflight", value: "N|off", def: "off",
			usage: "requests one worker serves at once; more wait in the queue (WebSockets do not count)",
			doc:   "proxy.md#timeouts-and-limits",
			set:   setMaxInFlight},
		{name: "queue", value: "N", def: strconv.Itoa(proxy.DefaultQueue),
			usage: "requests that may wait when every worker is at --max-inflight; beyond it 503 (0: none)",
			doc:   "proxy.md#timeouts-and-limits",
			set:   setQueue},
		{name: "queue-timeout", value: "DURATION", def: proxy.DefaultQueueTimeout.String(),
			usage: "time a request may wait in that queue before 503",
			doc:   "proxy.md#timeouts-and-limits",
			set:   positiveDuration(func(p *proxySettings) *time.Duration { return &p.QueueTimeout })},
		{name: "access-log", isBool: true, def: "false",
			usage: "log each request: method, path, status, bytes, duration, worker, request id",
			set:   setAccessLog},
		{name: "trusted-proxies", value: "SET|CIDR,...", def: "loopback",
			usage: "peers whose client-address headers (X-Forwarded-*, Forwarded, X-Real-IP, X-Client-IP, CDN and platform headers) are kept (percore appends to X-Forwarded-For); others' are removed; sets loopback, private, fly, none, mixed with CIDRs",
			doc:   "proxy.md#client-addresses-behind-an-edge",
			set:   setTrustedProxies},
		{name: "affinity", value: "off|cookie|ip|header:NAME", def: "off",
			usage: "pins each client to a worker: by a cookie percore sets, the client address (through --trusted-proxies) or a header's value; moves when that worker cannot take it",
			doc:   "proxy.md#sessions-socketio-and-sticky-routing",
			set:   setAffinity},
		{name: "socketio-path", value: "PATH|off", def: proxy.DefaultEnginePath,
			usage: "path prefix of socket.io (engine.io) requests, whose sessions go to the worker that opened them",
			doc:   "proxy.md#sessions-socketio-and-sticky-routing",
			set:   setEnginePath},
		{name: "socketio-session-rate", value: "N|off", def: strconv.Itoa(proxy.DefaultSessionRate),
			usage: "new socket.io sessions a second one client address may open (an IPv6 one by its /64; loopback clients are not capped); beyond it the handshake gets 429 and no worker sees it",
			doc:   "proxy.md#sessions-socketio-and-sticky-routing",
			set:   setSessionRate},
		{name: "socketio-session-burst", value: "N", def: "twice the rate",
			usage: "new socket.io sessions one client address may open at once before --socketio-session-rate applies",
			doc:   "proxy.md#sessions-socketio-and-sticky-routing",
			set:   intSetter(1, 1<<20, func(c *config) *int { return &c.Proxy.SessionBurst })},
	}
}

// proxyParts builds the proxy's handler and server settings from cfg.
func proxyParts(cfg *config, pool *proxy.Pool, log hclog.Logger, recycle func(key uint64)) (*proxy.Handler, proxy.ServerConfig) {
	p := cfg.Proxy
	hc := proxy.Config{
		MaxRequests:       cfg.MaxRequests,
		MaxRequestsJitter: cfg.MaxRequestsJitter,
		OnMaxRequests:     recycle,
		Pool:              pool,
		Logger:            log.Named("proxy"),
		WorkerWait:        cfg.WorkerWait,
		Trusted:           p.Trusted,
		MaxBody:           p.MaxBody,
		MaxInFlight:       p.MaxInFlight,
		Queue:             p.Queue,
		QueueTimeout:      p.QueueTimeout,
		ResponseTimeout:   p.ResponseTimeout,
		BodyTimeout:       p.BodyTimeout,
		Affinity:          p.Affinity,
		EnginePath:        p.EnginePath,
		SessionRate:       p.SessionRate,
		SessionBurst:      p.SessionBurst,
	}
	if p.AccessLog {
		hc.AccessLog = log.Named("access")
	}
	return proxy.New(hc), proxy.ServerConfig{
		HeaderTimeout:    p.HeaderTimeout,
		IdleTimeout:      p.IdleTimeout,
		HeaderBufferSize: p.MaxHeaderSize,
	}
}

// positiveDuration sets a duration of the proxy's settings.
func positiveDuration(field func(*proxySettings) *time.Duration) func(*config, string) error {
	return durationSetter(func(c *config) *time.Duration { return field(&c.Proxy) })
}

func setResponseTimeout(c *config, v string) error {
	if v == "off" {
		c.Proxy.ResponseTimeout = -1
		return nil
	}
	return positiveDuration(func(p *proxySettings) *time.Duration { return &p.ResponseTimeout })(c, v)
}

func setBodyTimeout(c *config, v string) error {
	if v == "off" {
		c.Proxy.BodyTimeout = -1
		return nil
	}
	return positiveDuration(func(p *proxySettings) *time.Duration { return &p.BodyTimeout })(c, v)
}

func setMaxHeaderSize(c *config, v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	if n < 1<<10 || n > 1<<20 {
		return errors.New("want a size from 1KiB to 1MiB")
	}
	c.Proxy.MaxHeaderSize = int(n)
	return nil
}

func setMaxBody(c *config, v string) error {
	if v == "off" {
		c.Proxy.MaxBody = 0
		return nil
	}
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	if n < 1 || n > 1<<62 {
		return errors.New(`want a size above zero, or "off"`)
	}
	c.Proxy.MaxBody = int64(n)
	return nil
}

func setMaxInFlight(c *config, v string) error {
	if v == "off" {
		c.Proxy.MaxInFlight = 0
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1<<20 {
		return errors.New(`want a number of requests from 1 to 1048576, or "off"`)
	}
	c.Proxy.MaxInFlight = n
	return nil
}

func setQueue(c *config, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1<<20 {
		return errors.New("want a number of requests from 0 to 1048576")
	}
	if n == 0 {
		n = -1 // none; zero in proxySettings means the default
	}
	c.Proxy.Queue = n
	return nil
}

func setAccessLog(c *config, v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return errors.New("want true or false")
	}
	c.Proxy.AccessLog = b
	return nil
}

// setTrustedProxies reads a comma-separated list of named sets, CIDRs and
// single addresses (proxy.ParseTrusted).
func setTrustedProxies(c *config, v string) error {
	t, err := proxy.ParseTrusted(v)
	if err != nil {
		return err
	}
	c.Proxy.Trusted = t
	return nil
}

func setAffinity(c *config, v string) error {
	a, err := proxy.ParseAffinity(v)
	if err != nil {
		return proxy.ErrAffinity
	}
	c.Proxy.Affinity = a
	return nil
}

// setEnginePath reads the socket.io path: "off", or an absolute path,
// which is matched as a prefix with a slash at its end.
func setEnginePath(c *config, v string) error {
	switch {
	case v == "off":
		c.Proxy.EnginePath = v
		return nil
	case !strings.HasPrefix(v, "/") || strings.ContainsAny(v, "?# "):
		return errors.New(`want a path such as /socket.io/, or "off"`)
	}
	if !strings.HasSuffix(v, "/") {
		v += "/"
	}
	c.Proxy.EnginePath = v
	return nil
}

func setSessionRate(c *config, v string) error {
	if v == "off" {
		c.Proxy.SessionRate = -1
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1<<20 {
		return errors.New(`want a number of sessions a second from 1 to 1048576, or "off"`)
	}
	c.Proxy.SessionRate = n
	return nil
}
