package main

import (
	"errors"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// TestReloadKeepsOpenWebSocketUntilDrainDeadline opens a WebSocket that the
// app does not close on SIGTERM, reloads, and checks that the tunnel keeps
// working on the old worker while new requests go to the new one, and that
// it ends at the drain deadline, which runs from the end of the new
// worker's probation.
func TestReloadKeepsOpenWebSocketUntilDrainDeadline(t *testing.T) {
	needNode(t)
	const budget = 3 * time.Second
	in := start(t, "--workers", "1", "--shutdown-timeout", budget.String(), "--", "node", proxyAppJS())
	old := servingPids(t, in, 3)
	ws, resp := dialWS(t, in.addr, "/ws?linger=1", "")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	ws.roundTrip(t)

	began := time.Now()
	in.signal(syscall.SIGHUP)
	in.waitLog("worker ready", 20*time.Second)
	stop := make(chan struct{})
	res, wait := steadyLoad("http://"+in.addr+"/", 2, stop)
	// During the drain the tunnel still reaches the old worker.
	time.Sleep(500 * time.Millisecond)
	if err := ws.send(1, []byte("mid-reload")); err != nil {
		t.Fatal(err)
	}
	if op, got, err := ws.recv(time.Second); err != nil || op != 1 || string(got) != "mid-reload" {
		t.Fatalf("echo during the reload: %d %q %v", op, got, err)
	}
	if now := servingPids(t, in, 5); sameKeys(now, old) {
		t.Errorf("new requests still go to the old worker %v", old)
	}
	_, _, err := ws.recv(defaultProbation + budget + 4*time.Second)
	closedAfter := time.Since(began)
	close(stop)
	wait()
	res.check(t, "load during a reload with an open WebSocket")
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("tunnel after the drain deadline: %v, want it closed", err)
	}
	if closedAfter < defaultProbation+budget-500*time.Millisecond {
		t.Errorf("tunnel closed %s after the reload began, before the %s probation and the %s drain deadline",
			closedAfter, defaultProbation, budget)
	}
	in.waitLog("reload done", 10*time.Second)
}
