package main

import (
	"bufio"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func framingWorkerJS() string { return filepath.Join("testdata", "framing-worker.js") }

// getFresh sends one request on a new connection to percore and reads the
// whole answer, trailer fields included.
func getFresh(t *testing.T, in *instance, raw string) (*http.Response, string) {
	t.Helper()
	out := rawExchange(t, in.addr, raw, 10*time.Second)
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
	if err != nil {
		t.Fatalf("answer to %.40q: %v: %q", raw, err, out)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("body of the answer to %.40q: %v: %q", raw, err, out)
	}
	return resp, string(body)
}

func get(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
}

// checkOwnAnswers asks for each path on a fresh connection and checks that
// each client gets the answer to its own request.
func checkOwnAnswers(t *testing.T, in *instance, paths ...string) {
	t.Helper()
	for _, p := range paths {
		resp, body := getFresh(t, in, get(p))
		if resp.StatusCode != 200 || body != "for "+p+"\n" || resp.Header.Get("X-Injected") != "" {
			t.Errorf("GET %s got %d %q (X-Injected %q), want 200 %q", p, resp.StatusCode, body,
				resp.Header.Get("X-Injected"), "for "+p+"\n")
		}
	}
}

// A worker that writes a second response 50 ms after a complete one left it
// on the pooled upstream connection, and the next client read it as its
// answer: alice got INJECTED, bob alice's answer, carol bob's.
func TestWorkerBytesAfterAResponseNeverReachAnotherClient(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--health-interval", "off", "--", "node", framingWorkerJS())
	resp, body := getFresh(t, in, get("/extra"))
	if resp.StatusCode != 200 || body != "ok\n" {
		t.Fatalf("GET /extra got %d %q, want 200 \"ok\\n\"", resp.StatusCode, body)
	}
	// The worker writes its injected response 50 ms after the first one;
	// there is nothing to wait on from outside.
	time.Sleep(200 * time.Millisecond)
	checkOwnAnswers(t, in, "/alice", "/bob", "/carol")
}

// The worker's misbehaviours as the clients see them through percore. After
// each, the next clients still get their own answers.
func TestWorkerFramingFaultsStayWithTheirResponse(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--health-interval", "off", "--", "node", framingWorkerJS())

	t.Run("bytes past Content-Length in the same write are cut", func(t *testing.T) {
		resp, body := getFresh(t, in, get("/extra-same"))
		if resp.StatusCode != 200 || body != "ok\n" || resp.Header.Get("X-Injected") != "" {
			t.Errorf("got %d %q, want 200 \"ok\\n\" alone", resp.StatusCode, body)
		}
		checkOwnAnswers(t, in, "/alice", "/bob")
	})
	for _, c := range []struct{ name, path string }{
		{"unsolicited 101 to a plain GET is a 502", "/switch"},
		{"status 099 is a 502", "/status-099"},
		{"status 600 is a 502", "/status-600"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := getFresh(t, in, get(c.path))
			if resp.StatusCode != 502 {
				t.Errorf("got %d %q, want 502", resp.StatusCode, body)
			}
			checkOwnAnswers(t, in, "/alice")
		})
	}
	t.Run("interim responses are skipped", func(t *testing.T) {
		resp, body := getFresh(t, in, get("/interim"))
		if resp.StatusCode != 200 || body != "final\n" {
			t.Errorf("got %d %q, want 200 \"final\\n\"", resp.StatusCode, body)
		}
		checkOwnAnswers(t, in, "/alice")
	})
	for _, path := range []string{"/trailers", "/trailers-announced"} {
		t.Run("chunked body with trailer fields arrives whole "+path, func(t *testing.T) {
			resp, body := getFresh(t, in, get(path))
			if resp.StatusCode != 200 || body != "hello world\n" {
				t.Fatalf("got %d %q, want 200 \"hello world\\n\"", resp.StatusCode, body)
			}
			if got := resp.Trailer.Get("X-Checksum"); got != "abc123" {
				t.Errorf("trailer X-Checksum %q, want abc123 (trailer %v)", got, resp.Trailer)
			}
			if got := resp.Trailer.Values("Set-Cookie"); len(got) != 0 {
				t.Errorf("trailer Set-Cookie %q relayed; it is not allowed in a trailer section", got)
			}
			if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
				t.Errorf("trailer Set-Cookie %q turned into a header field", got)
			}
			checkOwnAnswers(t, in, "/alice")
		})
	}
	t.Run("response without Content-Type gets none", func(t *testing.T) {
		resp, body := getFresh(t, in, get("/no-type"))
		if resp.StatusCode != 200 || body != "no type\n" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		if got, ok := resp.Header["Content-Type"]; ok {
			t.Errorf("Content-Type %q added to a response that had none", got)
		}
	})
	t.Run("request body without Content-Type gets none", func(t *testing.T) {
		resp, head := getFresh(t, in, "POST /request-head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"+
			"Content-Length: 5\r\n\r\nhello")
		if resp.StatusCode != 200 || !strings.HasPrefix(head, "POST /request-head") {
			t.Fatalf("got %d %q", resp.StatusCode, head)
		}
		if strings.Contains(strings.ToLower(head), "content-type") {
			t.Errorf("the worker got a Content-Type the client did not send:\n%s", head)
		}
	})
}
