package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestUnixSocketUpstream(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "2", "--upstream", "unix", "--health-interval", "200ms", "--", "node", appJS())
	in.waitLog("worker ready", 20*time.Second)
	var env map[string]any
	getJSON(t, "http://"+in.addr+"/env", &env)
	sock, _ := env["PORT"].(string)
	if !strings.HasPrefix(sock, "/") || !strings.HasSuffix(sock, ".sock") {
		t.Fatalf("PORT = %q, want a socket path", sock)
	}
	if len(servingPids(t, in, 40)) != 2 {
		t.Error("both workers must serve over their sockets")
	}
	stop := make(chan struct{})
	res, wait := steadyLoad("http://"+in.addr+"/", 4, stop)
	in.signal(syscall.SIGHUP)
	in.waitLog("reload done", 20*time.Second)
	time.Sleep(600 * time.Millisecond) // health checks reach the workers over their sockets
	close(stop)
	wait()
	res.check(t, "reload over Unix sockets")
	if strings.Contains(in.logs.String(), "failed a health check") {
		t.Errorf("health checks failed over Unix sockets:\n%s", in.logs.String())
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the replaced worker's socket %s was left behind", sock)
	}
	in.signal(syscall.SIGTERM)
	if code := in.wait(15 * time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if _, err := os.Stat(strings.TrimSuffix(sock, "/"+sock[strings.LastIndexByte(sock, '/')+1:])); !os.IsNotExist(err) {
		t.Errorf("the socket directory of %s was left behind", sock)
	}
}
