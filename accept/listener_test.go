package accept

import (
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/percore/percore/internal/testutil"
)

// scriptedListener returns the errors of its script, one per Accept (a nil
// one accepts), then accepts on the real listener it embeds.
type scriptedListener struct {
	*net.TCPListener
	mu     sync.Mutex // protects script, calls
	script []error
	calls  int
}

func (s *scriptedListener) Accept() (net.Conn, error) {
	s.mu.Lock()
	s.calls++
	if len(s.script) > 0 {
		err := s.script[0]
		s.script = s.script[1:]
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
	}
	s.mu.Unlock()
	return s.TCPListener.Accept()
}

func emfile() error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

func newScripted(t *testing.T, script ...error) *scriptedListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &scriptedListener{TCPListener: ln.(*net.TCPListener), script: script}
}

func newLogger(buf *testutil.LockedBuffer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: buf, Level: hclog.Debug})
}

// acceptResult is what one Accept call returned.
type acceptResult struct {
	c   net.Conn
	err error
}

func acceptAsync(l net.Listener) <-chan acceptResult {
	ch := make(chan acceptResult, 1)
	go func() {
		c, err := l.Accept()
		ch <- acceptResult{c, err}
	}()
	return ch
}

// TestAcceptRetriesEMFILE is fault 2 of the out-of-descriptors report: an
// accept loop must outlive EMFILE, with one warning per burst.
func TestAcceptRetriesEMFILE(t *testing.T) {
	fake := newScripted(t, emfile(), emfile(), emfile(), emfile(), emfile())
	var logs testutil.LockedBuffer
	l := New(fake, Config{Name: "public", Logger: newLogger(&logs), Settle: 50 * time.Millisecond})
	defer l.Close()

	res := acceptAsync(l)
	deadline := time.Now().Add(5 * time.Second)
	for l.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the listener never reported it is not accepting")
		}
		time.Sleep(time.Millisecond)
	}
	var nae *NotAcceptingError
	if err := l.Err(); !errors.As(err, &nae) || !errors.Is(err, syscall.EMFILE) || nae.Listener != "public" {
		t.Fatalf("Err() = %v, want a NotAcceptingError for EMFILE", err)
	}
	c, err := net.Dial("tcp", fake.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case r := <-res:
		if r.err != nil {
			t.Fatalf("Accept: %v", r.err)
		}
		r.c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("Accept did not return after the failures passed")
	}
	if err := l.Err(); err != nil {
		t.Fatalf("Err() = %v after a successful accept", err)
	}
	if got := l.Failures(); got != 5 {
		t.Errorf("Failures() = %d, want 5", got)
	}
	deadline = time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "listener accepting again") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	out := logs.String()
	if n := strings.Count(out, "cannot accept connections"); n != 1 {
		t.Errorf("%d warnings for one burst, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "listener accepting again") || !strings.Contains(out, "failed_accepts=5") {
		t.Errorf("no end-of-burst line with the count:\n%s", out)
	}
}

// TestAcceptRecoversWithoutClient: once descriptors are back, the state
// says so even when no client connects.
func TestAcceptRecoversWithoutClient(t *testing.T) {
	fake := newScripted(t, emfile(), emfile())
	l := New(fake, Config{Name: "public"})
	defer l.Close()
	res := acceptAsync(l)
	deadline := time.Now().Add(5 * time.Second)
	for l.Failures() < 2 || l.Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("still not accepting after the failures passed: %v", l.Err())
		}
		time.Sleep(time.Millisecond)
	}
	l.Close()
	if r := <-res; !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("Accept after Close = %v, want net.ErrClosed", r.err)
	}
}

// TestAcceptOtherErrorsReturn: an error that is not a shortage ends Accept.
func TestAcceptOtherErrorsReturn(t *testing.T) {
	boom := errors.New("boom")
	l := New(newScripted(t, boom), Config{})
	defer l.Close()
	if _, err := l.Accept(); !errors.Is(err, boom) {
		t.Fatalf("Accept = %v, want boom", err)
	}
}

// TestCloseEndsBackoff: Close during a backoff makes Accept return at once.
func TestCloseEndsBackoff(t *testing.T) {
	script := make([]error, 1000)
	for i := range script {
		script[i] = emfile()
	}
	fake := newScripted(t, script...)
	l := New(fake, Config{})
	res := acceptAsync(l)
	for l.Failures() < 8 { // 5ms+10+20+...: now in a long pause
		time.Sleep(time.Millisecond)
	}
	l.Close()
	select {
	case r := <-res:
		if !errors.Is(r.err, net.ErrClosed) {
			t.Fatalf("Accept = %v, want net.ErrClosed", r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still waiting after Close")
	}
}

// TestFlappingIsOneBurst: a listener at the limit lets one accept through
// whenever a descriptor frees; that is one burst in the log, not one per flap.
func TestFlappingIsOneBurst(t *testing.T) {
	fake := newScripted(t, emfile(), nil, emfile(), nil)
	var logs testutil.LockedBuffer
	l := New(fake, Config{Name: "public", Logger: newLogger(&logs), Settle: 200 * time.Millisecond})
	defer l.Close()
	for range 2 {
		c, err := net.Dial("tcp", fake.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		got.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "listener accepting again") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	out := logs.String()
	if strings.Count(out, "cannot accept connections") != 1 || strings.Count(out, "accepting again") != 1 ||
		!strings.Contains(out, "failed_accepts=2") {
		t.Errorf("want one burst of 2 failures in the log:\n%s", out)
	}
}
