package accept

import (
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fullTable is a listener in a process with no free descriptor but its
// listener's spare: an accept fails with EMFILE unless the spare is out.
type fullTable struct {
	*net.TCPListener
	l       atomic.Pointer[Listener]
	full    atomic.Bool // the table is full; false: descriptors are back
	refused atomic.Int64
}

func (f *fullTable) Accept() (net.Conn, error) {
	if l := f.l.Load(); f.full.Load() && (l == nil || l.spareFile() != nil) {
		f.refused.Add(1)
		return nil, emfile()
	}
	return f.TCPListener.Accept()
}

// newSpareListener returns a listener with a spare over a full table.
func newSpareListener(t *testing.T) (*Listener, *fullTable) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fullTable{TCPListener: ln.(*net.TCPListener)}
	f.full.Store(true)
	l := New(f, Config{Name: "admin", Spare: true})
	f.l.Store(l)
	t.Cleanup(func() { l.Close() })
	return l, f
}

// TestSpareAcceptsEachClientAtOnce: while no descriptor is free, the spare
// stays reserved as long as no client comes, even through the longest
// backoff; a client that comes is accepted on the spare at once, not after
// the backoff; and the spare is reserved again when its connection closes.
func TestSpareAcceptsEachClientAtOnce(t *testing.T) {
	l, f := newSpareListener(t)
	first := l.spareFile()
	if first == nil {
		t.Fatal("no spare descriptor reserved")
	}
	accepted := make(chan acceptResult)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			c, err := l.Accept()
			select {
			case accepted <- acceptResult{c, err}:
			case <-stop:
				if c != nil {
					c.Close()
				}
				return
			}
			if err != nil {
				return
			}
		}
	}()
	// 5+10+...+640 ms: the retries now pause for a second.
	deadline := time.Now().Add(10 * time.Second)
	for l.Failures() < 9 {
		if time.Now().After(deadline) {
			t.Fatalf("%d failed accepts in 10s", l.Failures())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := l.spareFile(); got != first {
		t.Fatal("the spare was released while no client came")
	}
	if l.Err() == nil {
		t.Fatal("Err() = nil while accepts fail")
	}
	for i := range 3 {
		c, err := net.Dial("tcp", f.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		begun := time.Now()
		var r acceptResult
		select {
		case r = <-accepted:
		case <-time.After(5 * time.Second):
			t.Fatalf("client %d: not accepted within 5s", i)
		}
		took := time.Since(begun)
		if r.err != nil {
			t.Fatalf("client %d: Accept: %v", i, r.err)
		}
		if _, ok := r.c.(*spareConn); !ok {
			t.Fatalf("client %d: accepted %T, want the spare's connection", i, r.c)
		}
		if took > 500*time.Millisecond {
			t.Errorf("client %d accepted after %s, want at once (the backoff is 1s)", i, took)
		}
		r.c.Close()
		spare := l.spareFile()
		if spare == nil {
			t.Fatalf("client %d: the spare was not reserved again after its connection closed", i)
		}
		if flags, err := fdFlags(spare); err != nil || flags&syscall.FD_CLOEXEC == 0 {
			t.Errorf("spare descriptor flags %#x (%v), want close-on-exec", flags, err)
		}
	}
	// Descriptors are back: the next client comes through a plain accept.
	f.full.Store(false)
	c, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case r := <-accepted:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if _, ok := r.c.(*spareConn); ok {
			t.Error("accepted on the spare although descriptors are free")
		}
		r.c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("not accepted within 5s once descriptors are back")
	}
	if err := l.Err(); err != nil {
		t.Errorf("Err() = %v once descriptors are back", err)
	}
}

// TestRefillBeforeRetry: a listener that retries after a shortage first
// reserves the spare of the listeners it refills, so a descriptor that
// frees goes back to their reserve before it takes it for a connection.
func TestRefillBeforeRetry(t *testing.T) {
	admin, _ := newSpareListener(t)
	if !admin.releaseSpare() { // as if another part of percore had taken it
		t.Fatal("no spare to release")
	}
	fake := newScripted(t, emfile(), emfile(), emfile())
	public := New(fake, Config{Name: "public", Refill: []*Listener{admin}})
	defer public.Close()
	res := acceptAsync(public)
	deadline := time.Now().Add(5 * time.Second)
	for admin.spareFile() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the admin spare is still out after %d retries of the public listener", public.Failures())
		}
		time.Sleep(time.Millisecond)
	}
	c, err := net.Dial("tcp", fake.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r := <-res; r.err != nil {
		t.Fatal(r.err)
	} else {
		r.c.Close()
	}
}

// TestCloseEndsSpareWait: Close while the listener watches its queue
// through the spare makes Accept return at once.
func TestCloseEndsSpareWait(t *testing.T) {
	l, _ := newSpareListener(t)
	res := acceptAsync(l)
	for l.Failures() < 8 {
		time.Sleep(time.Millisecond)
	}
	l.Close()
	select {
	case r := <-res:
		if r.err == nil {
			t.Fatal("Accept after Close returned a connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still waiting after Close")
	}
	if l.spareFile() != nil {
		t.Error("Close left the spare open")
	}
}

// fdFlags returns the descriptor flags of f without making it blocking,
// as its Fd method would.
func fdFlags(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var flags int
	var ferr error
	if err := rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFD, 0) }); err != nil {
		return 0, err
	}
	return flags, ferr
}
