package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
)

// remoteAnswer is what testdata/remote-addr.js answers.
type remoteAnswer struct {
	Remote string `json:"remote"`
	Client string `json:"client"`
	Worker string `json:"PERCORE_WORKER_ID"`
	PID    int    `json:"pid"`
}

// askFrom sends one request, claiming X-Forwarded-For: 6.6.6.6, on a new
// connection from the loopback address src, and returns the answer.
func askFrom(src, addr string, wait time.Duration) (remoteAnswer, error) {
	var a remoteAnswer
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: wait}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return a, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n"); err != nil {
		return a, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return a, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&a)
	return a, err
}

// A slot whose worker hangs (stopped, so the health check ejects it) has
// its queued connections passed to the other worker as themselves: the app
// sees each client's own address, never 127.0.0.1, so it never takes a
// client's X-Forwarded-For for the truth, and no connection is lost.
func TestDirectModePassedConnectionsKeepTheClientsAddress(t *testing.T) {
	needNode(t)
	in := start(t, "--mode", "direct", "--workers", "2", "--health-interval", "200ms", "--shutdown-timeout", "2s",
		"--", "node", filepath.Join("testdata", "remote-addr.js"))
	waitDirectServing(t, in, 2, "start")
	victim := 0
	for i := 0; i < 60 && victim == 0; i++ {
		a, err := askFrom("127.0.0.1", in.addr, testutil.Scaled(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if a.Worker == "1" {
			victim = a.PID
		}
	}
	if victim == 0 {
		t.Fatal("worker 1 answered none of 60 new connections")
	}
	if err := syscall.Kill(victim, syscall.SIGSTOP); err != nil {
		t.Fatalf("stop worker 1: %v", err)
	}
	t.Cleanup(func() { syscall.Kill(victim, syscall.SIGCONT) })

	const clients = 40
	answers := make([]remoteAnswer, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], errs[i] = askFrom(clientAddr(i), in.addr, testutil.Scaled(60*time.Second))
		}()
	}
	wg.Wait()
	in.findLog("ejecting worker", 20*time.Second)
	lost, loopback, believed, byVictim := 0, 0, 0, 0
	for i, a := range answers {
		switch {
		case errs[i] != nil:
			lost++
			t.Errorf("client %s: %v", clientAddr(i), errs[i])
		case a.Remote != clientAddr(i):
			t.Errorf("client %s: the app saw the connection come from %q", clientAddr(i), a.Remote)
		}
		if a.Remote == "127.0.0.1" {
			loopback++
		}
		if a.Client == "6.6.6.6" {
			believed++
		}
		if a.PID == victim {
			byVictim++
		}
	}
	passed := queuedPassed(t, in)
	t.Logf("%d clients while worker 1 hung: %d lost, %d seen from 127.0.0.1, %d believed X-Forwarded-For, "+
		"%d passed on from the hung worker's queue, %d answered by it", clients, lost, loopback, believed, passed, byVictim)
	if passed == 0 {
		t.Errorf("no connection was passed on from the hung worker's queue; logs:\n%s", in.logs.String())
	}
}

// clientAddr is the loopback address client i connects from.
func clientAddr(i int) string { return fmt.Sprintf("127.0.%d.%d", 1+i/200, 10+i%200) }

var passedMetric = regexp.MustCompile(`percore_direct_queued_connections_total\{result="passed"\} (\d+)`)

// queuedPassed reads how many queued connections percore passed on.
func queuedPassed(t *testing.T, in *instance) int {
	t.Helper()
	m := passedMetric.FindStringSubmatch(adminBody(t, in, "/metrics"))
	if m == nil {
		t.Fatal("no passed count in /metrics")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
