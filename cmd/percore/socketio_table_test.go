package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/percore/percore/proxy"
	dto "github.com/prometheus/client_model/go"
)

var socketIOTable = flag.Bool("socketio-table", false,
	"run TestSocketIOSessionTableFullCostsWhatEmptyDoes: fill percore's socket.io session table with real handshakes (a minute or two)")

// TestSocketIOSessionTableFullCostsWhatEmptyDoes sends engine.io handshakes
// through percore to workers that answer them as engine.io does, and
// measures their latency and percore's CPU time per handshake with the
// session table empty, then again once handshakes have filled it to its
// 131,072 sessions: full must cost at most twice what empty does. (The
// table used to sweep every session on each handshake once full: 73 to 116
// handshakes a second, p99 near a second.) The clients are on the
// loopback, which --socketio-session-rate does not cap. Run with
//
//	go test ./cmd/percore -run SocketIOSessionTable -socketio-table -v
func TestSocketIOSessionTableFullCostsWhatEmptyDoes(t *testing.T) {
	if !*socketIOTable {
		t.Skip("fills the session table with 131,072 handshakes: run with -socketio-table")
	}
	needNode(t)
	in := start(t, "--workers", "2", "--", "node", filepath.Join("testdata", "engineio-worker.js"))
	deadline := time.Now().Add(30 * time.Second)
	for getStatus(t, in).ReadyWorkers != 2 {
		if time.Now().After(deadline) {
			t.Fatal("2 workers not ready in time")
		}
		time.Sleep(50 * time.Millisecond)
	}
	pid := in.cmd.Process.Pid
	const conns, sample = 4, 8000
	// Warm up: connections, and the workers' JIT. The table then holds
	// under 8% of its sessions while "empty" is measured.
	handshakes(t, in.addr, conns, 2000, time.Now().Add(30*time.Second))
	empty := measureHandshakes(t, in.addr, pid, conns, sample)
	start := time.Now()
	filled := fillSessionTable(t, in)
	t.Logf("filled the table: %d handshakes in %v", filled, time.Since(start).Round(time.Second))
	full := measureHandshakes(t, in.addr, pid, conns, sample)
	m := scrape(t, in)
	evicted := map[string]float64{}
	for _, s := range m["percore_socketio_session_evictions_total"].GetMetric() {
		evicted[s.GetLabel()[0].GetValue()] = s.GetCounter().GetValue()
	}
	t.Logf("sessions remembered at the end: %v; forgotten, by reason: %v", sessionsGauge(m), evicted)
	for _, r := range []struct {
		name string
		m    handshakeFigures
	}{{"empty", empty}, {"full", full}} {
		t.Logf("table %-5s: %5d handshakes in %5.2fs (%6.0f/s), p50 %6.2fms, p99 %6.2fms, percore CPU %5.1fµs/handshake, RSS %3d MiB",
			r.name, r.m.n, r.m.wall.Seconds(), float64(r.m.n)/r.m.wall.Seconds(), ms(r.m.p50), ms(r.m.p99),
			float64(r.m.cpu.Microseconds())/float64(r.m.n), r.m.rss>>20)
	}
	if full.p99 > 2*empty.p99 {
		t.Errorf("p99 %v with the table full, %v empty: want at most twice", full.p99, empty.p99)
	}
	if perFull, perEmpty := full.cpu/time.Duration(full.n), empty.cpu/time.Duration(empty.n); perFull > 2*perEmpty {
		t.Errorf("percore CPU %v a handshake with the table full, %v empty: want at most twice", perFull, perEmpty)
	}
}

// handshakeFigures are one measurement's results.
type handshakeFigures struct {
	n        int
	wall     time.Duration
	p50, p99 time.Duration
	cpu      time.Duration // percore's user and system time
	rss      int64         // percore's resident memory at the end
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// measureHandshakes sends n handshakes to addr over conns keep-alive
// connections, at most 30 s' worth, and measures their latency and the CPU
// time of percore (pid) meanwhile.
func measureHandshakes(t *testing.T, addr string, pid, conns, n int) handshakeFigures {
	t.Helper()
	cpu0 := processCPU(t, pid)
	start := time.Now()
	lat := handshakes(t, addr, conns, n, start.Add(30*time.Second))
	f := handshakeFigures{n: len(lat), wall: time.Since(start), cpu: processCPU(t, pid) - cpu0, rss: processRSS(t, pid)}
	slices.Sort(lat)
	f.p50, f.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	return f
}

// fillSessionTable opens sessions until percore remembers
// proxy.DefaultMaxSessions of them, and returns how many it opened. The
// table's shards fill unevenly, so a little more than that is needed.
func fillSessionTable(t *testing.T, in *instance) int {
	t.Helper()
	total := 0
	for total < 2*proxy.DefaultMaxSessions {
		total += len(handshakes(t, in.addr, 16, 16384, time.Now().Add(2*time.Minute)))
		if sessionsGauge(scrape(t, in)) >= proxy.DefaultMaxSessions {
			return total
		}
	}
	t.Fatalf("%d handshakes did not fill the session table", total)
	return 0
}

// sessionsGauge reads percore_socketio_sessions from a scrape.
func sessionsGauge(m map[string]*dto.MetricFamily) int {
	return int(m["percore_socketio_sessions"].GetMetric()[0].GetGauge().GetValue())
}

// handshakes sends n engine.io handshakes to addr over conns keep-alive
// connections, until deadline, and returns the latency of each.
func handshakes(t *testing.T, addr string, conns, n int, deadline time.Time) []time.Duration {
	t.Helper()
	var (
		mu   sync.Mutex // protects lat, next and err
		lat  = make([]time.Duration, 0, n)
		next int
		err  error
		wg   sync.WaitGroup
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= n || err != nil || time.Now().After(deadline) {
			return 0, false
		}
		next++
		return next, true
	}
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, e := net.Dial("tcp", addr)
			if e != nil {
				mu.Lock()
				err = e
				mu.Unlock()
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for i, ok := take(); ok; i, ok = take() {
				d, e := handshake(c, br, i)
				mu.Lock()
				if e != nil && err == nil {
					err = e
				}
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return lat
}

// handshake sends one handshake on c and reads its answer: an open packet.
func handshake(c net.Conn, br *bufio.Reader, i int) (time.Duration, error) {
	start := time.Now()
	_ = c.SetDeadline(start.Add(30 * time.Second))
	if _, err := fmt.Fprintf(c, "GET /socket.io/?EIO=4&transport=polling&t=%d HTTP/1.1\r\nHost: x\r\n\r\n", i); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), `0{"sid":"`) {
		return 0, fmt.Errorf("handshake answered %d %.60q", resp.StatusCode, body)
	}
	return time.Since(start), nil
}

// processCPU returns the user and system time pid has used, from
// /proc/PID/stat in clock ticks of 10ms.
func processCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// processRSS returns the resident memory of pid, from /proc/PID/status.
func processRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
