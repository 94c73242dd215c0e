package main

import (
	"sync"
	"time"

	"github.com/percore/percore/proxy"
)

// The load window keeps the pool's load sampled every loadStep over the last
// loadSamples samples: 10 s, like the latency window of /status. An
// autoscaler reads its means on /metrics, so that one scrape shows how busy
// the workers were, not whether a request happened to be in flight at that
// instant. A Prometheus scraping every 10 s or more often sees every sample.
const (
	loadStep    = 100 * time.Millisecond
	loadSamples = 100
)

// loadWindow samples the proxy's load into a ring. It is a run.Group actor;
// its figures are safe for concurrent use.
type loadWindow struct {
	read func() proxy.Load

	mu      sync.Mutex // protects samples, n, next
	samples [loadSamples]proxy.Load
	n       int // samples written, up to loadSamples
	next    int

	stop chan struct{}
	once sync.Once
}

func newLoadWindow(read func() proxy.Load) *loadWindow {
	return &loadWindow{read: read, stop: make(chan struct{})}
}

// run samples until interrupt.
func (w *loadWindow) run() error {
	tick := time.NewTicker(loadStep)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return nil
		case <-tick.C:
			w.add(w.read())
		}
	}
}

func (w *loadWindow) interrupt(error) { w.once.Do(func() { close(w.stop) }) }

// add records one sample, replacing the oldest once the ring is full.
func (w *loadWindow) add(l proxy.Load) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples[w.next] = l
	w.next = (w.next + 1) % loadSamples
	w.n = min(w.n+1, loadSamples)
}

// loadMeans are a load window's figures.
type loadMeans struct {
	// Saturation is the busy workers' share of the ready ones: the sums of
	// both over the samples, so that a moment with more workers weighs more
	// and one with none counts for nothing.
	Saturation float64
	// PerWorker is the requests in flight per ready worker, summed alike.
	PerWorker float64
	// Queued is the mean number of requests waiting for a worker.
	Queued float64
}

// means returns the window's figures; all 0 before the first sample.
func (w *loadWindow) means() loadMeans {
	w.mu.Lock()
	defer w.mu.Unlock()
	var busy, ready int
	var inflight, queued int64
	for _, l := range w.samples[:w.n] {
		busy += l.Busy
		ready += l.Ready
		inflight += l.Inflight
		queued += l.Queued
	}
	var m loadMeans
	if ready > 0 {
		m.Saturation = float64(busy) / float64(ready)
		m.PerWorker = float64(inflight) / float64(ready)
	}
	if w.n > 0 {
		m.Queued = float64(queued) / float64(w.n)
	}
	return m
}
