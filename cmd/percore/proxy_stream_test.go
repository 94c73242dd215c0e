package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestProxyStreamsResponsesAsProduced(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--", "node", proxyAppJS())

	t.Run("server-sent events", func(t *testing.T) {
		const n, gap = 5, 300 * time.Millisecond
		began := time.Now()
		resp, err := client.Get(fmt.Sprintf("http://%s/sse?n=%d&ms=%d", in.addr, n, gap.Milliseconds()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Errorf("Content-Type = %q", ct)
		}
		if d := time.Since(began); d > gap/2 {
			t.Errorf("the header took %s, want it before the first event", d)
		}
		sc := bufio.NewScanner(resp.Body)
		var at []time.Duration
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				at = append(at, time.Since(began))
			}
		}
		if len(at) != n {
			t.Fatalf("got %d events, want %d", len(at), n)
		}
		if at[0] > 2*gap {
			t.Errorf("first event after %s, want about %s", at[0], gap)
		}
		if spread := at[n-1] - at[0]; spread < gap*(n-1)*3/4 {
			t.Errorf("events arrived within %s of each other (%v), want one by one, %s apart", spread, at, gap)
		}
	})

	t.Run("known length body in pieces", func(t *testing.T) {
		const pieces, gap = 3, 300 * time.Millisecond
		began := time.Now()
		resp, err := client.Get(fmt.Sprintf("http://%s/dribble?size=65536&first=100&n=%d&ms=%d", in.addr, pieces, gap.Milliseconds()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var one [1]byte
		if _, err := io.ReadFull(resp.Body, one[:]); err != nil {
			t.Fatal(err)
		}
		first := time.Since(began)
		rest, err := io.ReadAll(resp.Body)
		if err != nil || len(rest)+1 != 65536 {
			t.Fatalf("body: %d bytes, %v", len(rest)+1, err)
		}
		if total := time.Since(began); first > gap/2 || total-first < gap*(pieces-1) {
			t.Errorf("first byte after %s, whole body after %s: want the first 100 bytes at once", first, total)
		}
	})
}

// periodic returns a table of a pattern with the given period, long enough
// to copy any 64KiB window of the pattern from it.
func periodic(period int, at func(i int) byte) []byte {
	t := make([]byte, period+64<<10)
	for i := range t {
		t[i] = at(i % period)
	}
	return t
}

// uploadPattern is what patternReader yields: byte i is i*7 % 253.
var uploadPattern = periodic(253, func(i int) byte { return byte(i * 7 % 253) })

// downloadPattern is what the app's /download sends: byte i is i % 251.
var downloadPattern = periodic(251, func(i int) byte { return byte(i) })

// patternReader yields n bytes of uploadPattern, without holding them.
type patternReader struct{ off, n int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.off, 64<<10)]
	start := int(r.off % 253)
	n := copy(p, uploadPattern[start:start+len(p)])
	r.off += int64(n)
	return n, nil
}

func TestProxyLargeBodiesStreamInBoundedMemory(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--", "node", proxyAppJS())
	const size = 256 << 20
	const maxRSS = 128 << 10 // KiB
	pid := in.cmd.Process.Pid

	upload := func(t *testing.T, n int64, chunked bool) {
		want := sha256.New()
		body := io.TeeReader(&patternReader{n: n}, want)
		req, err := http.NewRequest("POST", "http://"+in.addr+"/upload", body)
		if err != nil {
			t.Fatal(err)
		}
		if !chunked {
			req.ContentLength = n
		}
		stop := make(chan struct{})
		peak := rssWatch(pid, stop)
		resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
		close(stop)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct {
			Bytes  int64  `json:"bytes"`
			Sha256 string `json:"sha256"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("upload answer: %d %v", resp.StatusCode, err)
		}
		if got.Bytes != n || got.Sha256 != hex.EncodeToString(want.Sum(nil)) {
			t.Errorf("the app received %d bytes with sha256 %s, want %d with %x", got.Bytes, got.Sha256, n, want.Sum(nil))
		}
		if kb := <-peak; kb > maxRSS {
			t.Errorf("percore's RSS peaked at %d MiB during a %d MiB upload, want under %d MiB", kb>>10, n>>20, maxRSS>>10)
		} else {
			t.Logf("percore's RSS peaked at %d MiB during a %d MiB upload", kb>>10, n>>20)
		}
	}
	t.Run("upload with Content-Length", func(t *testing.T) { upload(t, size, false) })
	t.Run("chunked upload", func(t *testing.T) { upload(t, 64<<20, true) })

	t.Run("download", func(t *testing.T) {
		stop := make(chan struct{})
		peak := rssWatch(pid, stop)
		resp, err := (&http.Client{Timeout: 60 * time.Second}).Get(fmt.Sprintf("http://%s/download?bytes=%d", in.addr, size))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var n int64
		buf := make([]byte, 64<<10)
		for {
			k, err := resp.Body.Read(buf)
			start := int(n % 251)
			if !bytes.Equal(buf[:k], downloadPattern[start:start+k]) {
				t.Fatalf("bytes %d to %d differ from the pattern", n, n+int64(k))
			}
			n += int64(k)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("after %d bytes: %v", n, err)
			}
		}
		close(stop)
		if n != size {
			t.Errorf("downloaded %d bytes, want %d", n, size)
		}
		if kb := <-peak; kb > maxRSS {
			t.Errorf("percore's RSS peaked at %d MiB during a %d MiB download, want under %d MiB", kb>>10, size>>20, maxRSS>>10)
		} else {
			t.Logf("percore's RSS peaked at %d MiB during a %d MiB download", kb>>10, size>>20)
		}
	})
}

func TestProxyClientGoneReleasesWorkerConnection(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--", "node", proxyAppJS())
	base := stats(t, in)

	waitFor := func(what string, ok func(workerStats) bool) workerStats {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			s := stats(t, in)
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: worker stats %+v (before: %+v)", what, s, base)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	t.Run("mid-upload", func(t *testing.T) {
		c, err := net.Dial("tcp", in.addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 100<<20)
		if _, err := io.CopyN(c, &patternReader{n: 1 << 20}, 1<<20); err != nil {
			t.Fatal(err)
		}
		waitFor("upload to reach the worker", func(s workerStats) bool { return s.Requests > base.Requests })
		c.Close()
		s := waitFor("worker connection after the client left", func(s workerStats) bool {
			return s.Aborted > base.Aborted && s.Open <= base.Open
		})
		if s.Aborted != base.Aborted+1 {
			t.Errorf("aborted requests %d, want %d", s.Aborted, base.Aborted+1)
		}
	})

	t.Run("mid-event-stream", func(t *testing.T) {
		before := stats(t, in)
		resp, err := client.Get("http://" + in.addr + "/sse?n=1000&ms=50")
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "id: ") {
			t.Fatalf("first line %q, %v", line, err)
		}
		waitFor("stream to open a worker connection", func(s workerStats) bool { return s.Open > before.Open || s.Open >= 2 })
		resp.Body.Close()
		client.CloseIdleConnections()
		waitFor("worker connection after the client left", func(s workerStats) bool { return s.Open <= before.Open })
	})
}
