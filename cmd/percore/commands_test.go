package main

import (
	"bytes"
	"strings"
	"testing"
)

// Every subcommand answers -h and --help with its usage on standard output
// and exit 0, and percore --help lists every one.
func TestEverySubcommandHasHelp(t *testing.T) {
	var top bytes.Buffer
	if code := run([]string{"--help"}, nil, &top, &bytes.Buffer{}); code != exitOK {
		t.Fatalf("percore --help exited %d", code)
	}
	for _, sub := range subcommands() {
		if !strings.Contains(top.String(), sub.Usage()) {
			t.Errorf("percore --help does not list %q", sub.Usage())
		}
		for _, flag := range []string{"--help", "-h"} {
			var out, errOut bytes.Buffer
			code := run([]string{sub.Name(), flag}, nil, &out, &errOut)
			if code != exitOK || !strings.Contains(out.String(), "Usage: "+sub.Usage()) || errOut.Len() > 0 {
				t.Errorf("percore %s %s: exit %d, stdout %q, stderr %q", sub.Name(), flag, code, out.String(), errOut.String())
			}
		}
	}
}

// A subcommand's bad arguments are usage errors (exit 2) that name the
// problem and show the usage.
func TestSubcommandUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"scale"}, "want one count"},
		{[]string{"scale", "+1", "+2"}, "want one count"},
		{[]string{"scale", "many"}, "many"},
		{[]string{"reload", "now"}, `unexpected argument "now"`},
		{[]string{"status", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"top", "--admin"}, "flag needs an argument: -admin"},
		{[]string{"version", "x"}, `unexpected argument "x"`},
		{[]string{"reload", "--port", "8080", "--listen", "127.0.0.1:8080"}, "give one of --control, --port and --listen"},
		{[]string{"reload", "--port", "8080", "--control", "/run/x.sock"}, "give one of --control, --port and --listen"},
		{[]string{"scale", "+1", "--port", "http"}, `--port "http": want a port number`},
		{[]string{"reload", "--listen", "8080"}, `--listen "8080": want HOST:PORT`},
		{[]string{"status", "--admin", "127.0.0.1:8081", "--port", "8080"}, "give one of --admin, --port and --listen"},
		{[]string{"top", "--port", "0"}, `--port "0": want a port number`},
	} {
		var out, errOut bytes.Buffer
		code := run(c.args, nil, &out, &errOut)
		if code != exitUsage || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("percore %q: exit %d, stderr %q; want 2 and %q", c.args, code, errOut.String(), c.want)
		}
	}
}

// Flags and the count may come in any order, and a negative count is a
// count, not a flag.
func TestScaleTakesFlagsAnywhere(t *testing.T) {
	for _, args := range [][]string{
		{"scale", "-1", "--control", "/nonexistent/percore.sock"},
		{"scale", "--control=/nonexistent/percore.sock", "+2"},
	} {
		var out, errOut bytes.Buffer
		code := run(args, nil, &out, &errOut)
		// No percore listens there: the send fails (1), not the parse (2).
		if code != exitError || !strings.Contains(errOut.String(), "/nonexistent/percore.sock") {
			t.Errorf("percore %q: exit %d, stderr %q", args, code, errOut.String())
		}
	}
}

// A control command that finds no percore says how to do the same with a
// signal, for a percore that runs without a control socket.
func TestControlCommandWithoutSocketNamesTheSignal(t *testing.T) {
	for _, c := range []struct {
		args, env []string
		want      []string
	}{
		{[]string{"reload"}, []string{"PERCORE_CONTROL=off"}, []string{"--control off", "SIGHUP", "kill -HUP 1"}},
		{[]string{"reload", "--port", "1"}, nil, []string{"no running percore found with --port 1", "kill -HUP 1"}},
		{[]string{"scale", "+1", "--port", "1"}, nil, []string{"SIGTTIN", "SIGTTOU", "kill -TTIN 1"}},
	} {
		var out, errOut bytes.Buffer
		code := run(c.args, c.env, &out, &errOut)
		if code != exitError || out.Len() > 0 {
			t.Errorf("percore %q: exit %d, stdout %q; want 1 and nothing", c.args, code, out.String())
		}
		for _, want := range c.want {
			if !strings.Contains(errOut.String(), want) {
				t.Errorf("percore %q: stderr %q does not say %q", c.args, errOut.String(), want)
			}
		}
	}
}
