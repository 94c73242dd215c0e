package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestEngineQuery(t *testing.T) {
	long := strings.Repeat("a", maxSIDLen+1)
	for _, tc := range []struct {
		uri     string
		eio     bool
		wantSID string
	}{
		{"/socket.io/?EIO=4&transport=polling&t=abc", true, ""},
		{"/socket.io/?EIO=4&transport=polling&sid=lv_VI97HAXpY6yYWAAAC", true, "lv_VI97HAXpY6yYWAAAC"},
		{"/socket.io/?sid=abc-DEF.1~2&EIO=3", true, "abc-DEF.1~2"},
		{"/socket.io/?EIO=4&sid=" + long, true, ""},          // oversized: not a session
		{"/socket.io/?EIO=4&sid=a%22b", true, ""},            // characters no sid has
		{"/socket.io/?EIO=4&sid=", true, ""},                 // empty
		{"/socket.io/?transport=polling&sid=abc", false, ""}, // no EIO: not engine.io
		{"/socket.io/", false, ""},
		{"/other/?EIO=4&sid=abc", false, ""},
		{"/socket.iox/?EIO=4&sid=abc", false, ""},
		{"/", false, ""},
	} {
		eio, sid := engineQuery([]byte(tc.uri), DefaultEnginePath)
		if eio != tc.eio || string(sid) != tc.wantSID {
			t.Errorf("engineQuery(%q) = %v, %q; want %v, %q", tc.uri, eio, sid, tc.eio, tc.wantSID)
		}
	}
	if eio, _ := engineQuery([]byte("/socket.io/?EIO=4"), ""); eio {
		t.Error("engineQuery with no path saw an engine.io request")
	}
}

func TestOpenScanFindsSIDByteByByte(t *testing.T) {
	for _, body := range []string{
		`0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`,
		`97:0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000}2:40`,
	} {
		var s openScan
		var got []byte
		for i := 0; i < len(body) && got == nil; i++ {
			got = s.feed([]byte{body[i]})
		}
		if string(got) != "lv_VI97HAXpY6yYWAAAC" {
			t.Errorf("scan of %q found %q", body, got)
		}
		if string(openSID([]byte(body))) != "lv_VI97HAXpY6yYWAAAC" {
			t.Errorf("openSID(%q) = %q", body, openSID([]byte(body)))
		}
	}
}

func TestOpenScanIgnoresOtherBodies(t *testing.T) {
	for _, body := range []string{
		`{"code":1,"message":"Session ID unknown"}`,
		`<html>{"sid":"x"}</html>`,
		`4{"sid":"abc"}`,
		`0{"sid":"` + strings.Repeat("a", maxSIDLen+1) + `"}`,
		`0{"sid":"a b"}`,
		`0{"x":"` + strings.Repeat("y", 2*maxOpenScan) + `","sid":"late"}`,
	} {
		var s openScan
		for i := 0; i < len(body); i += 7 {
			if got := s.feed([]byte(body[i:min(i+7, len(body))])); got != nil {
				t.Errorf("scan of %.40q found %q", body, got)
			}
		}
		if got := openSID([]byte(body)); got != nil {
			t.Errorf("openSID(%.40q) = %q", body, got)
		}
	}
}

func TestSessionsForgetAndBound(t *testing.T) {
	now := time.Now()
	s := newSessions(4, time.Minute)
	s.learn([]byte("a"), 1, now)
	s.learn([]byte("b"), 2, now)
	s.learn([]byte("bad sid"), 2, now)
	if s.count(now) != 2 {
		t.Fatalf("remembered %d sessions, want 2 (an invalid sid is not learned)", s.count(now))
	}
	if k, ok := s.owner([]byte("a"), now); !ok || k != 1 {
		t.Errorf("owner(a) = %d, %v; want 1", k, ok)
	}
	if _, ok := s.owner([]byte("forged"), now); ok {
		t.Error("an unknown sid has an owner")
	}
	s.forget(2)
	if _, ok := s.owner([]byte("b"), now); ok {
		t.Error("a session of a worker that left is still followed")
	}
	if ev := s.evictions(); ev != (SessionEvictions{WorkerGone: 1}) {
		t.Errorf("evictions %+v, want 1 for the worker gone", ev)
	}
	if _, ok := s.owner([]byte("a"), now.Add(2*time.Minute)); ok {
		t.Error("a session idle past the limit is still followed")
	}
	for i := range 100 {
		s.learn([]byte(fmt.Sprint("s", i)), 1, now)
	}
	if s.count(now) > 4 {
		t.Errorf("remembered %d sessions, bound is 4", s.count(now))
	}
	if k, ok := s.owner([]byte("s99"), now); !ok || k != 1 {
		t.Error("the newest session was not remembered at the bound")
	}
}

// engineWorker is a worker that plays engine.io's part: a handshake opens a
// session it names in an open packet, and a request carrying a sid it did
// not open gets 400 "Session ID unknown", as engine.io answers.
func engineWorker(t *testing.T, name string, streamed bool) string {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sid := r.URL.Query().Get("sid")
		if sid == "" {
			open := fmt.Sprintf(`0{"sid":"%s%d","upgrades":["websocket"],"pingInterval":25000}`, name, n.Add(1))
			if streamed { // chunked, and larger than percore reads whole
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, open)
				w.(http.Flusher).Flush()
				io.WriteString(w, strings.Repeat(" ", 8<<10))
				return
			}
			io.WriteString(w, open)
			return
		}
		if !strings.HasPrefix(sid, name) {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"code":1,"message":"Session ID unknown"}`)
			return
		}
		io.WriteString(w, "ok "+name)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func TestEngineSessionsFollowTheirWorker(t *testing.T) {
	for _, streamed := range []bool{false, true} {
		t.Run(fmt.Sprint("streamed=", streamed), func(t *testing.T) {
			p := startProxy(t, Config{}, ServerConfig{}, engineWorker(t, "A", streamed), engineWorker(t, "B", streamed))
			c := &http.Client{}
			seen := map[string]int{}
			for i := range 20 {
				body := get(t, c, "http://"+p.addr+"/socket.io/?EIO=4&transport=polling&t="+fmt.Sprint(i))
				sid, _ := openPacketSID([]byte(body))
				if sid == nil {
					t.Fatalf("handshake answered %.60q", body)
				}
				for range 4 { // with the handshake, an odd number of picks: rotation alternates
					got := get(t, c, "http://"+p.addr+"/socket.io/?EIO=4&transport=polling&sid="+string(sid))
					if got != "ok "+string(sid[:1]) {
						t.Fatalf("poll of session %s answered %q", sid, got)
					}
				}
				seen[string(sid[:1])]++
			}
			if seen["A"] == 0 || seen["B"] == 0 {
				t.Errorf("sessions opened on %v, want both workers", seen)
			}
			st := p.pool.Sticky()
			if st.Followed != 80 || st.Moved != 0 || st.Sessions != 20 {
				t.Errorf("sticky counts %+v, want 80 followed, 0 moved, 20 sessions", st)
			}
			// A forged sid is routed like any request and gets a worker's
			// own answer.
			if got := get(t, c, "http://"+p.addr+"/socket.io/?EIO=4&transport=polling&sid=Zforged"); !strings.Contains(got, "Session ID unknown") {
				t.Errorf("forged sid answered %q", got)
			}
			// A worker that leaves takes its sessions with it.
			p.pool.Drain(1)
			if st := p.pool.Sticky(); st.Sessions != seen["B"] {
				t.Errorf("after worker 1 left, %d sessions remembered, want %d", st.Sessions, seen["B"])
			}
		})
	}
}

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
