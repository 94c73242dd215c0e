package main

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/percore/percore/proxy"
)

func TestProxyOptionsDefaults(t *testing.T) {
	cfg, err := parseConfig([]string{"node", "s.js"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Proxy, proxySettings{}) {
		t.Errorf("default proxy settings = %+v, want the zero value (every default)", cfg.Proxy)
	}
	_, sc := proxyParts(cfg, proxy.NewPool(proxy.UpstreamConfig{}), hclog.NewNullLogger(), nil)
	if sc != (proxy.ServerConfig{}) {
		t.Errorf("server config %+v, want the proxy's defaults", sc)
	}
}

func TestProxyOptionsValues(t *testing.T) {
	cfg, err := parseConfig([]string{"--header-timeout", "5s", "--idle-timeout=30s", "--max-header-size", "32K",
		"--response-timeout", "off", "--body-timeout", "3s", "--max-body", "10MiB", "--max-inflight", "4", "--queue", "0",
		"--queue-timeout", "1500ms", "--access-log", "--trusted-proxies", " fly, 10.0.0.0/8, 192.168.1.7 ,::ffff:1.2.3.4",
		"--", "node"}, map[string]string{"PERCORE_MAX_INFLIGHT": "9", "PERCORE_MAX_BODY": "1"})
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Proxy
	want := proxySettings{HeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderSize: 32 << 10,
		ResponseTimeout: -1, BodyTimeout: 3 * time.Second, MaxBody: 10 << 20, MaxInFlight: 4, Queue: -1, QueueTimeout: 1500 * time.Millisecond,
		AccessLog: true}
	got := p
	got.Trusted = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("settings = %+v\nwant %+v", got, want)
	}
	wantTrusted := []string{"172.16.0.0/12", "fdaa::/16", "10.0.0.0/8", "192.168.1.7/32", "1.2.3.4/32"}
	if len(p.Trusted) != len(wantTrusted) {
		t.Fatalf("trusted = %v, want %v", p.Trusted, wantTrusted)
	}
	for i, w := range wantTrusted {
		if p.Trusted[i] != netip.MustParsePrefix(w) {
			t.Errorf("trusted[%d] = %v, want %s", i, p.Trusted[i], w)
		}
	}

	cfg, err = parseConfig([]string{"node"}, map[string]string{"PERCORE_MAX_INFLIGHT": "9",
		"PERCORE_TRUSTED_PROXIES": "none", "PERCORE_QUEUE": "7", "PERCORE_ACCESS_LOG": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Proxy.MaxInFlight != 9 || cfg.Proxy.Queue != 7 || !cfg.Proxy.AccessLog ||
		cfg.Proxy.Trusted == nil || len(cfg.Proxy.Trusted) != 0 {
		t.Errorf("from the environment: %+v", cfg.Proxy)
	}

	cfg, err = parseConfig([]string{"node"}, map[string]string{"PERCORE_TRUSTED_PROXIES": "private"})
	if err != nil {
		t.Fatal(err)
	}
	if private, _ := proxy.NamedTrusted(proxy.TrustedPrivate); !reflect.DeepEqual(cfg.Proxy.Trusted, private) {
		t.Errorf("PERCORE_TRUSTED_PROXIES=private: %v, want %v", cfg.Proxy.Trusted, private)
	}
}

func TestSocketIOSessionRateOptions(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		env         map[string]string
		rate, burst int
	}{
		{nil, nil, 0, 0}, // the proxy's defaults
		{[]string{"--socketio-session-rate", "off"}, nil, -1, 0},
		{[]string{"--socketio-session-rate", "20", "--socketio-session-burst", "7"}, nil, 20, 7},
		{nil, map[string]string{"PERCORE_SOCKETIO_SESSION_RATE": "off"}, -1, 0},
		{nil, map[string]string{"PERCORE_SOCKETIO_SESSION_RATE": "5", "PERCORE_SOCKETIO_SESSION_BURST": "9"}, 5, 9},
	} {
		cfg, err := parseConfig(append(tc.args, "node"), tc.env)
		if err != nil {
			t.Fatalf("%q %v: %v", tc.args, tc.env, err)
		}
		if cfg.Proxy.SessionRate != tc.rate || cfg.Proxy.SessionBurst != tc.burst {
			t.Errorf("%q %v: rate %d, burst %d; want %d, %d", tc.args, tc.env,
				cfg.Proxy.SessionRate, cfg.Proxy.SessionBurst, tc.rate, tc.burst)
		}
	}
}

// TestTrustedProxiesErrorNamesEntry checks that a bad entry in a list is
// the one the error names.
func TestTrustedProxiesErrorNamesEntry(t *testing.T) {
	_, err := parseConfig([]string{"--trusted-proxies", "loopback, 10.0.0.0/8, privat", "node"}, nil)
	if err == nil || !strings.Contains(err.Error(), `"privat"`) || !strings.Contains(err.Error(), "private") {
		t.Errorf("err = %v, want one naming \"privat\" and the sets", err)
	}
}

func TestProxyOptionsErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--header-timeout", "0s"},
		{"--header-timeout", "soon"},
		{"--idle-timeout", "-1s"},
		{"--max-header-size", "100"},
		{"--max-header-size", "2G"},
		{"--response-timeout", "never"},
		{"--body-timeout", "0s"},
		{"--body-timeout", "never"},
		{"--max-body", "0"},
		{"--max-body", "lots"},
		{"--max-inflight", "0"},
		{"--max-inflight", "many"},
		{"--queue", "-1"},
		{"--queue-timeout", "0"},
		{"--access-log=maybe"},
		{"--trusted-proxies", "banana"},
		{"--trusted-proxies", "10.0.0.0/33"},
		{"--trusted-proxies", ","},
		{"--trusted-proxies", "loopback,privat"},
		{"--trusted-proxies", "none,fly"},
		{"--socketio-session-rate", "0"},
		{"--socketio-session-rate", "fast"},
		{"--socketio-session-burst", "0"},
		{"--socketio-session-burst", "off"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, err := parseConfig(append(args, "node"), nil)
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), strings.SplitN(args[0], "=", 2)[0]) {
				t.Errorf("err = %v, want a usage error naming %s", err, args[0])
			}
		})
	}
}
