package main

import (
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// trimmer hands memory back to the system after a burst. A connection flood
// leaves percore's heap large: fasthttp's pools keep buffers until garbage
// collections run, and with light traffic afterwards none may run for
// minutes. Every trimEvery, when the heap holds more than trimAbove,
// trimmer forces a collection and returns free pages to the system; the
// pools empty after two such rounds.
type trimmer struct {
	stop chan struct{}
	once sync.Once
}

const (
	trimEvery = 10 * time.Second
	trimAbove = 24 << 20
)

func newTrimmer() *trimmer { return &trimmer{stop: make(chan struct{})} }

// run is a run.Group actor.
func (t *trimmer) run() error {
	tick := time.NewTicker(trimEvery)
	defer tick.Stop()
	var ms runtime.MemStats
	for {
		select {
		case <-t.stop:
			return nil
		case <-tick.C:
			runtime.ReadMemStats(&ms)
			if ms.HeapSys-ms.HeapReleased > trimAbove {
				debug.FreeOSMemory()
			}
		}
	}
}

func (t *trimmer) interrupt(error) { t.once.Do(func() { close(t.stop) }) }
