package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestProxyMaxInFlightQueue(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--max-inflight", "1", "--queue", "1", "--queue-timeout", "5s",
		"--", "node", proxyAppJS())

	type result struct {
		status int
		took   time.Duration
	}
	get := func(path string) result {
		began := time.Now()
		resp, err := client.Get("http://" + in.addr + path)
		if err != nil {
			return result{status: -1, took: time.Since(began)}
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return result{status: resp.StatusCode, took: time.Since(began)}
	}

	var wg sync.WaitGroup
	results := make([]result, 3)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = get("/slow?ms=1000")
		}()
		time.Sleep(150 * time.Millisecond) // the first is in flight before the second queues
	}
	results[2] = get("/")
	wg.Wait()

	if results[0].status != 200 || results[1].status != 200 {
		t.Errorf("in flight and queued requests: %+v, want both 200", results[:2])
	}
	if results[1].took < 1700*time.Millisecond {
		t.Errorf("the queued request took %s, want it to wait for the first (about 2s)", results[1].took)
	}
	if results[2].status != http.StatusServiceUnavailable || results[2].took > 500*time.Millisecond {
		t.Errorf("third concurrent request: %+v, want 503 at once", results[2])
	}
	if r := get("/"); r.status != 200 {
		t.Errorf("request after the burst: %+v", r)
	}

	t.Run("queue timeout", func(t *testing.T) {
		in := start(t, "--workers", "1", "--max-inflight", "1", "--queue-timeout", "300ms", "--", "node", proxyAppJS())
		slow := make(chan int, 1)
		go func() {
			resp, err := client.Get("http://" + in.addr + "/slow?ms=1500")
			if err != nil {
				slow <- -1
				return
			}
			resp.Body.Close()
			slow <- resp.StatusCode
		}()
		time.Sleep(150 * time.Millisecond)
		began := time.Now()
		resp, err := client.Get("http://" + in.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if took := time.Since(began); resp.StatusCode != 503 || took < 250*time.Millisecond || took > time.Second {
			t.Errorf("queued request: %d after %s, want 503 after the 300ms queue timeout", resp.StatusCode, took)
		}
		if s := <-slow; s != 200 {
			t.Errorf("the request in flight got %d", s)
		}
	})
}

func TestProxyMaxBody(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--max-body", "1KiB", "--", "node", proxyAppJS())
	before := stats(t, in)

	post := func(t *testing.T, body io.Reader, length int64) int {
		req, err := http.NewRequest("POST", "http://"+in.addr+"/upload", body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = length
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := post(t, strings.NewReader(strings.Repeat("a", 1024)), 1024); s != 200 {
		t.Errorf("body at the limit: %d, want 200", s)
	}
	if s := post(t, strings.NewReader(strings.Repeat("a", 2048)), 2048); s != 413 {
		t.Errorf("Content-Length over the limit: %d, want 413", s)
	}
	if s := stats(t, in); s.Requests != before.Requests+1 {
		t.Errorf("the worker saw the request over the limit (%d requests, want %d)", s.Requests, before.Requests+1)
	}
	// A chunked body is cut as it grows past the limit.
	if s := post(t, io.MultiReader(strings.NewReader(strings.Repeat("b", 600)), strings.NewReader(strings.Repeat("c", 600))), -1); s != 413 {
		t.Errorf("chunked body over the limit: %d, want 413", s)
	}
	if s := post(t, strings.NewReader(strings.Repeat("d", 700)), -1); s != 200 {
		t.Errorf("chunked body under the limit: %d, want 200", s)
	}
}

func TestProxyRequestIDAndForwardedHeaders(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--access-log", "--trusted-proxies", "none", "--", "node", proxyAppJS())

	type seen struct {
		Headers map[string]string `json:"headers"`
	}
	do := func(header map[string]string) (seen, http.Header) {
		req, _ := http.NewRequest("GET", "http://"+in.addr+"/headers?secret=1", nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s seen
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
			t.Fatal(err)
		}
		return s, resp.Header
	}

	s, h := do(map[string]string{"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"})
	id := s.Headers["x-request-id"]
	if id == "" || h.Get("X-Request-Id") != id {
		t.Errorf("request id: worker saw %q, client got %q; want one generated id for both", id, h.Get("X-Request-Id"))
	}
	if s.Headers["x-forwarded-for"] != "127.0.0.1" || s.Headers["x-forwarded-proto"] != "http" {
		t.Errorf("with --trusted-proxies none, the forwarded headers were kept: %v", s.Headers)
	}
	s2, _ := do(nil)
	if s2.Headers["x-request-id"] == id {
		t.Error("two requests got the same id")
	}
	s3, h3 := do(map[string]string{"X-Request-Id": "edge-abc-123"})
	if s3.Headers["x-request-id"] != "edge-abc-123" || h3.Get("X-Request-Id") != "edge-abc-123" {
		t.Errorf("a client's request id was not kept: worker %q, response %q", s3.Headers["x-request-id"], h3.Get("X-Request-Id"))
	}
	s4, _ := do(map[string]string{"X-Request-Id": strings.Repeat("x", 300)})
	if got := s4.Headers["x-request-id"]; len(got) > 128 || got == "" {
		t.Errorf("an overlong request id was passed on: %d bytes", len(got))
	}

	line := in.waitLog("request", 5*time.Second)
	for _, k := range []string{"method", "path", "status", "bytes", "duration", "worker", "request_id"} {
		if _, ok := line[k]; !ok {
			t.Errorf("access log line lacks %q: %v", k, line)
		}
	}
	if line["path"] != "/headers" || line["request_id"] != id || fmt.Sprint(line["status"]) != "200" {
		t.Errorf("access log line = %v, want path /headers, status 200, request id %s", line, id)
	}
}
