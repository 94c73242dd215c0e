//go:build unix

package jsruntime

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// denoHeapScript prints deno's heap limit and PORT as runtimeOutput.
const denoHeapScript = `import { getHeapStatistics } from "node:v8";
console.log(JSON.stringify({
  limitMiB: getHeapStatistics().heap_size_limit / 1048576,
  port: Deno.env.get("PORT"),
}));
`

// denoServeScript answers every request with deno's heap limit.
const denoServeScript = `import { getHeapStatistics } from "node:v8";
export default {
  fetch() {
    return Response.json({ limitMiB: getHeapStatistics().heap_size_limit / 1048576 });
  },
};
`

// denoHeapMB is the limit the deno process tests ask for. Deno 2.9's V8
// reports it in heap_size_limit plus a young generation of 96 MiB.
const denoHeapMB = 300

// denoHigh is the highest heap_size_limit, exclusive, that still reflects
// denoHeapMB; deno's default on a machine with a few GiB is far above it.
const denoHigh = denoHeapMB + 150

func TestDenoProcessHeapLimit(t *testing.T) {
	deno := toolBinary(t, "deno")
	dir := writeFiles(t, map[string]string{
		"heap.ts":   denoHeapScript,
		"deno.json": `{"tasks": {"start": "deno run --allow-env heap.ts"}}`,
	})
	port := freePort(t)
	defaultLimit := run(t, Worker{Argv: []string{deno, "run", "--allow-env", "heap.ts"}, Env: baseEnv(port)}, dir).LimitMiB
	pathEnv := "PATH=" + strings.TrimSuffix(deno, "/deno") + ":" + envValue(baseEnv(port), "PATH")

	tests := []struct {
		name      string
		argv      []string
		env       []string
		heapFlag  string
		low, high float64
	}{
		{"deno run", []string{deno, "run", "--allow-env", "heap.ts", "--app-arg"}, nil,
			"--v8-flags=--max-old-space-size=300 (argv)", denoHeapMB, denoHigh},
		{"deno given the script directly", []string{deno, "-A", "heap.ts"}, nil,
			"--v8-flags=--max-old-space-size=300 (argv)", denoHeapMB, denoHigh},
		{"the user's --v8-flags extended", []string{deno, "run", "-E", "--v8-flags=--stack-size=900", "heap.ts"}, nil,
			"--v8-flags=--stack-size=900,--max-old-space-size=300 (argv)", denoHeapMB, denoHigh},
		{"deno behind sh -c", []string{"sh", "-c", deno + " run --allow-env=PORT heap.ts"}, nil,
			"--max-old-space-size=300 (DENO_V8_FLAGS)", denoHeapMB, denoHigh},
		{"deno task", []string{deno, "task", "start"}, []string{pathEnv},
			"--max-old-space-size=300 (DENO_V8_FLAGS)", denoHeapMB, denoHigh},
		{"the user's --v8-flags are kept", []string{deno, "run", "-A", "--v8-flags=--max-old-space-size=200", "heap.ts"}, nil,
			"", 200, denoHeapMB},
		{"the user's DENO_V8_FLAGS is kept", []string{deno, "run", "-A", "heap.ts"},
			[]string{"DENO_V8_FLAGS=--max-old-space-size=200"}, "", 200, denoHeapMB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := Worker{Argv: tt.argv, Env: append(baseEnv(port), tt.env...)}
			prepared, applied := prepare(t, w, Options{Runtime: Detect(tt.argv), HeapMB: denoHeapMB, Port: port})
			if applied.HeapFlag != tt.heapFlag {
				t.Errorf("HeapFlag = %q, want %q", applied.HeapFlag, tt.heapFlag)
			}
			got := run(t, prepared, dir)
			t.Logf("heap_size_limit %.0f MiB (default %.0f MiB)", got.LimitMiB, defaultLimit)
			checkLimit(t, tt.name, got.LimitMiB, tt.low, tt.high)
			if got.LimitMiB == defaultLimit {
				t.Errorf("heap_size_limit is deno's default %.0f MiB", defaultLimit)
			}
			if got.Port != itoa(port) {
				t.Errorf("PORT = %q, want %d", got.Port, port)
			}
		})
	}
}

func TestDenoProcessRunWithoutAllowEnv(t *testing.T) {
	deno := toolBinary(t, "deno")
	dir := writeFiles(t, map[string]string{"heap.ts": denoHeapScript})
	port := freePort(t)
	argv := []string{deno, "run", "heap.ts"}
	prepared, applied := prepare(t, Worker{Argv: argv, Env: baseEnv(port)}, Options{Runtime: Deno(), HeapMB: denoHeapMB, Port: port})
	if applied.Warning == "" {
		t.Error("no warning for deno run without --allow-env")
	}
	if out, err := runRaw(t, prepared, dir); err == nil {
		t.Errorf("deno run without --allow-env read PORT after all; the warning is wrong:\n%s", out)
	}
}

func TestDenoProcessServeListensOnPort(t *testing.T) {
	deno := toolBinary(t, "deno")
	dir := writeFiles(t, map[string]string{"serve.ts": denoServeScript})
	port := freePort(t)
	argv := []string{deno, "serve", "serve.ts"}
	prepared, applied := prepare(t, Worker{Argv: argv, Env: baseEnv(port)}, Options{Runtime: Deno(), HeapMB: denoHeapMB, Port: port})
	if want := fmt.Sprintf("--port=%d", port); applied.PortFlag != want {
		t.Errorf("PortFlag = %q, want %q", applied.PortFlag, want)
	}
	start(t, prepared, dir)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitListening(t, addr, 10*time.Second)

	body := get(t, "http://"+addr+"/")
	var got runtimeOutput
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("GET / = %q: %v", body, err)
	}
	t.Logf("deno serve on %s: heap_size_limit %.0f MiB", addr, got.LimitMiB)
	checkLimit(t, "deno serve", got.LimitMiB, denoHeapMB, denoHigh)
}

// waitListening waits until something accepts TCP connections on addr.
func waitListening(t *testing.T, addr string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after %v: %v", addr, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// get fetches url, checks that the answer is 200 OK and returns its body.
func get(t *testing.T, url string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %s: %s", url, resp.Status, body)
	}
	return body
}

// envValue returns the value of name in env, "" when it is not there.
func envValue(env []string, name string) string {
	value, _ := lookupEnv(env, name)
	return value
}
