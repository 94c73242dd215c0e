package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/percore/percore/health"
)

const (
	osc52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07" // write "echo pwned" to the clipboard
	csi   = "\x1b[2J\x1b[31m"                // clear the screen, then red
	c1CSI = "\u009b2J"                       // the same clear with the 8-bit CSI
)

func TestTerminalSafe(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"ready", "ready"},
		{"boot failure: exit code 1", "boot failure: exit code 1"},
		{"héllo, 世界 ✓", "héllo, 世界 ✓"},
		{osc52, `\x1b]52;c;ZWNobyBwd25lZA==\x07`},
		{"a" + csi + "b", `a\x1b[2J\x1b[31mb`},
		{"\x1bP1$r\x1b\\", `\x1bP1$r\x1b\`}, // DCS ... ST
		{"tab\there", `tab\x09here`},
		{"two\nlines\r", `two\x0alines\x0d`},
		{"nul\x00 bell\x07 del\x7f", `nul\x00 bell\x07 del\x7f`},
		{c1CSI + " \u009d0;title\u009c", `\u009b2J \u009d0;title\u009c`},
		{"\u0085next line", `\u0085next line`},
		{"\u00a0no-break space", "\u00a0no-break space"}, // the first character past C1
		{"lone \x9b byte, cut \xe4\xb8", `lone \x9b byte, cut \xe4\xb8`},
	}
	for _, c := range cases {
		got := terminalSafe(c.in)
		if got != c.want {
			t.Errorf("terminalSafe(%q) = %q, want %q", c.in, got, c.want)
		}
		if strings.ContainsAny(got, "\x1b\x07\x7f\u009b\u009d") {
			t.Errorf("terminalSafe(%q) = %q still holds a control character", c.in, got)
		}
	}
}

func TestJSONTerminalSafe(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"a":"b"}`, `{"a":"b"}`},
		{"{\n  \"a\": \"é\"\n}\n", "{\n  \"a\": \"é\"\n}\n"},
		{"{\"a\":\"x\u009b2Jy\u007f\"}", `{"a":"x\u009b2Jy\u007f"}`},
		{"{\"a\":\"\x9b\"}", `{"a":"\ufffd"}`},
	}
	for _, c := range cases {
		got, err := jsonTerminalSafe([]byte(c.in))
		if err != nil || string(got) != c.want {
			t.Errorf("jsonTerminalSafe(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
		var before, after any
		if json.Unmarshal([]byte(c.in), &before) != nil || json.Unmarshal(got, &after) != nil {
			t.Errorf("jsonTerminalSafe(%q) = %q: not JSON", c.in, got)
		}
	}
	for _, bad := range []string{"", "not json", "{\"a\":\"\x1b]52;c;eA==\x07\"}", "{}\x1b[2J"} {
		if got, err := jsonTerminalSafe([]byte(bad)); err == nil {
			t.Errorf("jsonTerminalSafe(%q) = %q, want an error: not JSON", bad, got)
		}
	}
}

// hostileStatus serves a /status whose every string field carries terminal
// escapes, as a worker's text or whatever answers on the admin address
// could.
func hostileStatus(t *testing.T) string {
	t.Helper()
	bad := "x" + osc52 + csi + c1CSI
	started := time.Now()
	st := health.Status{Version: "v" + bad, UptimeS: 10,
		Plan:   health.PlanStatus{CPUs: 2, CPUSource: bad, MemorySource: bad, Runtime: bad, WorkersReason: bad},
		Reload: health.ReloadStatus{State: "failed" + bad, Error: bad, Started: &started, Count: 1},
		Workers: []health.WorkerStatus{{ID: 0, PID: 42, State: "ready" + bad,
			LastExit: &health.ExitStatus{Code: -1, Signal: "killed" + bad, Reason: "crash" + bad}}}}
	body, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	body = append(body[:len(body)-1], []byte(`,"extra":"`+"\u009d0;title\u009c"+`"}`)...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// checkNoEscapes fails when out holds one of the injected sequences, or no
// visible trace of them.
func checkNoEscapes(t *testing.T, what, out string) {
	t.Helper()
	for _, bad := range []string{"\x1b]", "\x07", "\x1b[2J", "\x1b[31m", "\u009b", "\u009d"} {
		if strings.Contains(out, bad) {
			t.Errorf("%s printed %q unfiltered:\n%q", what, bad, out)
		}
	}
	if !strings.Contains(out, `\x1b]52;c;ZWNobyBwd25lZA==\x07`) {
		t.Errorf("%s does not show the filtered sequence visibly:\n%q", what, out)
	}
}

// TestStatusAndTopFilterTerminalEscapes: text read from /status reaches the
// terminal of percore status and percore top with its control characters
// shown, not obeyed; an OSC 52 sequence could otherwise write the clipboard.
func TestStatusAndTopFilterTerminalEscapes(t *testing.T) {
	admin := hostileStatus(t)

	out, err := exec.Command(percoreBin, "status", "--admin", admin).CombinedOutput()
	if err != nil {
		t.Fatalf("percore status: %v\n%q", err, out)
	}
	checkNoEscapes(t, "percore status", string(out))

	out, err = exec.Command(percoreBin, "status", "--json", "--admin", admin).CombinedOutput()
	if err != nil {
		t.Fatalf("percore status --json: %v\n%q", err, out)
	}
	if strings.ContainsAny(string(out), "\u009b\u009d") {
		t.Errorf("percore status --json printed C1 controls unescaped:\n%q", out)
	}
	var st health.Status
	if err := json.Unmarshal(out, &st); err != nil || !strings.Contains(st.Reload.Error, osc52) {
		t.Errorf("percore status --json: %v; the JSON must still say what /status said: %q", err, st.Reload.Error)
	}

	cmd := exec.Command(percoreBin, "top", "--admin", admin)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 400})
	if err != nil {
		t.Fatalf("start percore top in a pty: %v", err)
	}
	defer tty.Close()
	screen := &ptyOutput{}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(screen, tty) // ends with EIO once percore top exits
	}()
	screen.waitFor(t, "two frames", func(s string) bool { return strings.Count(s, homeCursor) >= 2 })
	if _, err := tty.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("percore top: %v", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatal("percore top did not quit on q")
	}
	<-copied
	checkNoEscapes(t, "percore top", screen.String())
}
