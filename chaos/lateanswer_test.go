//go:build chaos

package chaos

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestNoForeignBytesFromNodeWorkers runs real node:http workers that break
// their framing as apps do, each run under 64 keep-alive clients that check
// every answer is their own: "late" writes one fake response per process,
// 2 ms after a random one of its first 100 answers, through the socket the
// answer went out on; "length" sets every Content-Length to the body's
// length in characters, one byte short. A client may get its own answer cut
// short (the app's Content-Length says so), never a byte of another's.
func TestNoForeignBytesFromNodeWorkers(t *testing.T) {
	needNode(t)
	runs := 20
	if testing.Short() {
		runs = 3
	}
	for _, fault := range []string{"late", "length"} {
		t.Run(fault, func(t *testing.T) {
			f := book.row(t, "12b-"+fault, "node:http workers "+map[string]string{
				"late":   "write a fake response 2 ms after a random answer, once per process",
				"length": "send a Content-Length one byte short of the body",
			}[fault]+fmt.Sprintf(", 64 keep-alive clients, %d runs", runs))
			var total foreignTally
			named := 0
			for run := range runs {
				t.Run(fmt.Sprint(run), func(t *testing.T) {
					in := start(t, 2, options{env: []string{"CHAOS_FAULT=" + fault},
						args: []string{"--workers", "2", "--health-interval", "off", "--", "node", appPath("late-app.js")}})
					got := checkOwnAnswers(in.addr, 64, time.Second)
					total.add(got)
					if got.foreign > 0 {
						t.Errorf("run %d: %d of %d answers held bytes of another, e.g. %s", run, got.foreign, got.sent, got.example)
					}
					if fault == "late" && strings.Contains(in.recentStderr(), "wrote to a connection outside any response") {
						named++
					}
				})
			}
			f.requests(tally{sent: total.sent, ok: total.ok, reasons: total.reasons})
			f.add("%d requests in %d runs: %d answers with another's bytes, %d failed", total.sent, runs, total.foreign, total.sent-total.ok)
			if fault == "late" {
				f.add("runs whose log named the worker that wrote late: %d of %d", named, runs)
				if named == 0 {
					t.Errorf("no run's log named a worker that wrote outside a response")
				}
			}
			if total.sent == 0 || float64(total.ok)/float64(total.sent) < 0.99 {
				t.Errorf("%d of %d requests failed: %v", total.sent-total.ok, total.sent, total.reasons)
			}
		})
	}
}

// foreignTally counts what clients got from workers that break framing.
type foreignTally struct {
	sent, ok, foreign int
	reasons           map[string]int
	example           string
}

func (t *foreignTally) add(o foreignTally) {
	t.sent += o.sent
	t.ok += o.ok
	t.foreign += o.foreign
	if t.reasons == nil {
		t.reasons = map[string]int{}
	}
	for k, v := range o.reasons {
		t.reasons[k] += v
	}
}

// checkOwnAnswers runs conns keep-alive clients against addr for dur. Each
// asks for paths of its own and checks that every answer's body is a prefix
// of "for PATH ü\n" and carries no X-Injected field.
func checkOwnAnswers(addr string, conns int, dur time.Duration) foreignTally {
	var mu sync.Mutex
	out := foreignTally{reasons: map[string]int{}}
	var sent, ok, foreign atomic.Int64
	note := func(reason, example string) {
		mu.Lock()
		defer mu.Unlock()
		out.reasons[reason]++
		if example != "" && out.example == "" {
			out.example = example
		}
	}
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn net.Conn
			var br *bufio.Reader
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			for seq := 0; time.Now().Before(deadline); seq++ {
				path := fmt.Sprintf("/c%d-%d-%08x", c, seq, rand.Uint32())
				if conn == nil {
					var err error
					if conn, err = net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
						sent.Add(1)
						note("dial", "")
						time.Sleep(10 * time.Millisecond)
						continue
					}
					br = bufio.NewReader(conn)
				}
				sent.Add(1)
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				resp, body, err := getOn(conn, br, path)
				want := []byte("for " + path + " \u00fc\n")
				switch {
				case err != nil && !bytes.HasPrefix(want, body):
					foreign.Add(1)
					note("foreign", fmt.Sprintf("%s got %q", path, body))
				case err != nil:
					note("error", "")
				case resp.Header.Get("X-Injected") != "" || !bytes.HasPrefix(want, body) || len(body) == 0:
					foreign.Add(1)
					note("foreign", fmt.Sprintf("%s got %q", path, body))
				case resp.StatusCode != 200:
					note(fmt.Sprint(resp.StatusCode), "")
				default:
					ok.Add(1)
				}
				if err != nil || resp.Close {
					conn.Close()
					conn = nil
				}
			}
		}()
	}
	wg.Wait()
	out.sent, out.ok, out.foreign = int(sent.Load()), int(ok.Load()), int(foreign.Load())
	return out
}
