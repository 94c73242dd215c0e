package main

import (
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/percore/percore/proxy"
)

// fakeLoad is a load the test sets and the window reads.
type fakeLoad struct {
	mu sync.Mutex
	l  proxy.Load
}

func (f *fakeLoad) set(l proxy.Load) {
	f.mu.Lock()
	f.l = l
	f.mu.Unlock()
}

func (f *fakeLoad) read() proxy.Load {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.l
}

// TestLoadWindowMeans drives the sampler on a fake clock: the figures are
// means over the last 10 s, so half a window with one of two workers busy
// reads 0.25, not 0 or 0.5, and a window later the moment is forgotten.
func TestLoadWindowMeans(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var f fakeLoad
		w := newLoadWindow(f.read)
		done := make(chan error)
		go func() { done <- w.run() }()
		check := func(when string, want loadMeans) {
			t.Helper()
			synctest.Wait() // the sampler has taken every tick due
			got := w.means()
			if math.Abs(got.Saturation-want.Saturation) > 1e-9 || math.Abs(got.PerWorker-want.PerWorker) > 1e-9 ||
				math.Abs(got.Queued-want.Queued) > 1e-9 {
				t.Errorf("%s: %+v, want %+v", when, got, want)
			}
		}
		check("before the first sample", loadMeans{})
		// Off the ticks by half a step, so that each check sees a whole
		// number of samples.
		time.Sleep(loadStep / 2)

		f.set(proxy.Load{Ready: 2, Busy: 1, Inflight: 3})
		time.Sleep(2 * time.Second)
		check("2 s after the start, one of two busy with 3 requests", loadMeans{0.5, 1.5, 0})
		time.Sleep(3 * time.Second)
		check("5 s of one of two busy", loadMeans{0.5, 1.5, 0})

		f.set(proxy.Load{Ready: 2})
		time.Sleep(5 * time.Second)
		check("then 5 s of both idle", loadMeans{0.25, 0.75, 0})

		f.set(proxy.Load{Ready: 2, Busy: 2, Inflight: 8, Queued: 4})
		time.Sleep(5 * time.Second)
		check("then 5 s of both busy and 4 queued", loadMeans{0.5, 2, 2})

		f.set(proxy.Load{Ready: 3, Busy: 3, Inflight: 3})
		time.Sleep(10 * time.Second)
		check("a whole window of three busy", loadMeans{1, 1, 0})

		// A moment with no worker ready (all restarting) weighs nothing.
		f.set(proxy.Load{})
		time.Sleep(5 * time.Second)
		check("then 5 s with no worker ready", loadMeans{1, 1, 0})

		f.set(proxy.Load{Ready: 3})
		time.Sleep(10 * time.Second)
		check("a whole window idle", loadMeans{})

		w.interrupt(nil)
		w.interrupt(nil) // idempotent
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
}
