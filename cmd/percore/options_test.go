package main

import (
	"bytes"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/sizing"
)

func TestParseConfigPrecedence(t *testing.T) {
	cases := []struct {
		name          string
		args          []string
		env           map[string]string
		wantAddr      string
		wantWorkers   int
		workersSource string
	}{
		{"defaults", []string{"node", "s.js"}, nil, ":8080", 0, ""},
		{"PORT", []string{"node", "s.js"}, map[string]string{"PORT": "3000"}, ":3000", 0, ""},
		{"--port beats PORT", []string{"--port", "4000", "node"}, map[string]string{"PORT": "3000"}, ":4000", 0, ""},
		{"PERCORE_PORT beats PORT", []string{"node"}, map[string]string{"PORT": "3000", "PERCORE_PORT": "5000"}, ":5000", 0, ""},
		{"--listen beats --port", []string{"--listen", "127.0.0.1:9", "--port", "4000", "node"}, nil, "127.0.0.1:9", 0, ""},
		{"PERCORE_LISTEN beats --port", []string{"--port", "4000", "node"}, map[string]string{"PERCORE_LISTEN": "[::1]:7"}, "[::1]:7", 0, ""},
		{"WEB_CONCURRENCY", []string{"node"}, map[string]string{"WEB_CONCURRENCY": "3"}, ":8080", 3, "WEB_CONCURRENCY"},
		{"PERCORE_WORKERS beats WEB_CONCURRENCY", []string{"node"}, map[string]string{"WEB_CONCURRENCY": "3", "PERCORE_WORKERS": "5"}, ":8080", 5, "PERCORE_WORKERS"},
		{"--workers beats both", []string{"--workers=7", "node"}, map[string]string{"WEB_CONCURRENCY": "3", "PERCORE_WORKERS": "5"}, ":8080", 7, "--workers"},
		{"--workers auto beats env", []string{"--workers", "auto", "node"}, map[string]string{"WEB_CONCURRENCY": "3", "PERCORE_WORKERS": "5"}, ":8080", 0, ""},
		{"PERCORE_WORKERS=auto ignores WEB_CONCURRENCY", []string{"node"}, map[string]string{"WEB_CONCURRENCY": "3", "PERCORE_WORKERS": "auto"}, ":8080", 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseConfig(c.args, c.env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.publicAddr() != c.wantAddr || cfg.Workers != c.wantWorkers || cfg.WorkersSource != c.workersSource {
				t.Errorf("addr %q workers %d (%q), want %q %d (%q)", cfg.publicAddr(), cfg.Workers,
					cfg.WorkersSource, c.wantAddr, c.wantWorkers, c.workersSource)
			}
		})
	}
}

func TestParseConfigValues(t *testing.T) {
	cfg, err := parseConfig([]string{"--heap", "300", "--shutdown-timeout", "25s", "--stop-signal", "SIGINT",
		"--admin", "off", "--log-format", "json", "--include-swap", "--", "npm", "start", "--", "--x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Heap != sizing.HeapFixed || cfg.HeapMB != 300 || cfg.ShutdownTimeout != 25*time.Second ||
		cfg.StopSignal != syscall.SIGINT || cfg.Admin != "" || cfg.LogFormat != "json" || !cfg.IncludeSwap {
		t.Errorf("config = %+v", cfg)
	}
	if got := strings.Join(cfg.Command, " "); got != "npm start -- --x" {
		t.Errorf("command = %q", got)
	}
	cfg, err = parseConfig([]string{"node", "--heap", "1"}, map[string]string{"PERCORE_HEAP": "off"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Heap != sizing.HeapOff || strings.Join(cfg.Command, " ") != "node --heap 1" {
		t.Errorf("flags after COMMAND must belong to it: %+v", cfg)
	}
}

// TestAdminHostsOption: --admin-hosts and PERCORE_ADMIN_HOSTS take a
// comma-separated list of names; the flag wins.
func TestAdminHostsOption(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want []string
	}{
		{[]string{"node"}, nil, nil},
		{[]string{"--admin-hosts", "percore.internal, Admin.Example.,10.0.0.7,::1", "node"}, nil,
			[]string{"percore.internal", "Admin.Example.", "10.0.0.7", "::1"}},
		{[]string{"node"}, map[string]string{"PERCORE_ADMIN_HOSTS": "a.example,b_c.example"}, []string{"a.example", "b_c.example"}},
		{[]string{"--admin-hosts=flag.example", "node"}, map[string]string{"PERCORE_ADMIN_HOSTS": "env.example"}, []string{"flag.example"}},
		{[]string{"--admin-hosts", "", "node"}, nil, nil},
	}
	for _, c := range cases {
		cfg, err := parseConfig(c.args, c.env)
		if err != nil {
			t.Fatalf("%q %v: %v", c.args, c.env, err)
		}
		if strings.Join(cfg.AdminHosts, " ") != strings.Join(c.want, " ") {
			t.Errorf("%q %v: AdminHosts = %q, want %q", c.args, c.env, cfg.AdminHosts, c.want)
		}
	}
}

// TestParseConfigProbation: a reload's probation is on by default, set by
// --probation or PERCORE_PROBATION (the flag wins), and 0 turns it off.
func TestParseConfigProbation(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want time.Duration
	}{
		{[]string{"node"}, nil, defaultProbation},
		{[]string{"--probation", "0", "node"}, nil, 0},
		{[]string{"--probation=10s", "node"}, nil, 10 * time.Second},
		{[]string{"node"}, map[string]string{"PERCORE_PROBATION": "500ms"}, 500 * time.Millisecond},
		{[]string{"--probation", "1s", "node"}, map[string]string{"PERCORE_PROBATION": "0"}, time.Second},
	} {
		cfg, err := parseConfig(c.args, c.env)
		if err != nil || cfg.Probation != c.want {
			t.Errorf("%q %v: probation %v, %v; want %s", c.args, c.env, cfg.Probation, err, c.want)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--workers", "banana", "node"}, nil, `--workers "banana"`},
		{[]string{"--workers", "0", "node"}, nil, "--workers"},
		{[]string{"--workers", "-3", "node"}, nil, "--workers"},
		{[]string{"--heap", "-5", "node"}, nil, "--heap"},
		{[]string{"--heap", "lots", "node"}, nil, "--heap"},
		{[]string{"--shutdown-timeout", "5x", "node"}, nil, "--shutdown-timeout"},
		{[]string{"--ready-timeout", "-1s", "node"}, nil, "--ready-timeout"},
		{[]string{"--probation", "-1s", "node"}, nil, "--probation"},
		{[]string{"--probation", "3", "node"}, nil, "--probation"},
		{[]string{"node"}, map[string]string{"PERCORE_PROBATION": "soon"}, "PERCORE_PROBATION"},
		{[]string{"--stop-signal", "SIGBOGUS", "node"}, nil, "--stop-signal"},
		{[]string{"--log-level", "loud", "node"}, nil, "--log-level"},
		{[]string{"--log-format", "xml", "node"}, nil, "--log-format"},
		{[]string{"--runtime", "python", "node"}, nil, "--runtime"},
		{[]string{"--listen", "nonsense", "node"}, nil, "--listen"},
		{[]string{"--admin", "localhost:99999", "node"}, nil, "--admin"},
		{[]string{"--admin-hosts", "percore.internal:8081", "node"}, nil, "--admin-hosts"},
		{[]string{"--admin-hosts", "http://percore.internal", "node"}, nil, "--admin-hosts"},
		{[]string{"--admin-hosts", "*.example", "node"}, nil, "--admin-hosts"},
		{[]string{"node"}, map[string]string{"PERCORE_ADMIN_HOSTS": "a..b"}, "PERCORE_ADMIN_HOSTS"},
		{[]string{"--port"}, nil, "--port needs a value"},
		{[]string{"--nope", "node"}, nil, "unknown flag --nope"},
		{[]string{}, nil, "missing COMMAND"},
		{[]string{"node"}, map[string]string{"PERCORE_WORKERS": "many"}, "PERCORE_WORKERS"},
		{[]string{"node"}, map[string]string{"WEB_CONCURRENCY": "x"}, "WEB_CONCURRENCY"},
		{[]string{"node"}, map[string]string{"PORT": "http"}, "PORT"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			_, err := parseConfig(c.args, c.env)
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want a usage error", err)
			}
			if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %q, want one line containing %q", err, c.want)
			}
		})
	}
}

func TestHelpListsEveryFlagWithItsVariable(t *testing.T) {
	var b bytes.Buffer
	if code := run([]string{"--help"}, nil, &b, &b); code != 0 {
		t.Fatalf("--help exit code %d", code)
	}
	for _, o := range options() {
		if !strings.Contains(b.String(), "--"+o.name) || !strings.Contains(b.String(), o.envName()) {
			t.Errorf("help lacks --%s or %s", o.name, o.envName())
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add("--workers", "3", "PORT", "80")
	f.Add("--heap", "auto", "WEB_CONCURRENCY", "x")
	f.Add("--shutdown-timeout", "1h", "PERCORE_LISTEN", "::")
	f.Fuzz(func(t *testing.T, flag, value, envKey, envValue string) {
		cfg, err := parseConfig([]string{flag, value, "node"}, map[string]string{envKey: envValue})
		if err == nil && (cfg.publicAddr() == "" || len(cfg.Command) == 0) {
			t.Fatalf("accepted config without address or command: %+v", cfg)
		}
	})
}
