package main

import (
	"github.com/hashicorp/go-hclog"
	"github.com/percore/percore/proxy"
)

// proxySettings are the flags that shape the public proxy.
type proxySettings struct{}

// proxyOptions are the flags of the public proxy.
func proxyOptions() []option { return nil }

// proxyParts builds the proxy's handler and server settings from cfg.
func proxyParts(cfg *config, pool *proxy.Pool, log hclog.Logger) (*proxy.Handler, proxy.ServerConfig) {
	h := proxy.New(proxy.Config{Pool: pool, Logger: log.Named("proxy"), WorkerWait: cfg.WorkerWait})
	return h, proxy.ServerConfig{}
}
