//go:build chaos

package chaos

import (
	"sync"
	"time"
)

// usage is one reading of a process's resident memory and open files.
type usage struct {
	at  time.Time
	rss uint64
	fds int
}

// sampler reads a process's usage every 100 ms until stopped.
type sampler struct {
	pid    int
	stopCh chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	mu     sync.Mutex // protects samples
	all    []usage
}

func newSampler(pid int) *sampler {
	s := &sampler{pid: pid, stopCh: make(chan struct{})}
	s.wg.Add(1)
	go s.run()
	return s
}

func (s *sampler) run() {
	defer s.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	deadline := time.Now().Add(10 * time.Minute)
	for n := 0; n < 10_000 && time.Now().Before(deadline); n++ {
		s.read()
		select {
		case <-s.stopCh:
			return
		case <-t.C:
		}
	}
}

// read takes a reading now and returns it.
func (s *sampler) read() usage {
	u := usage{at: time.Now(), rss: vmRSS(s.pid), fds: fdCount(s.pid)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, u)
	return u
}

func (s *sampler) stop() {
	s.once.Do(func() { close(s.stopCh) })
	s.wg.Wait()
}

// peak returns the highest readings since from.
func (s *sampler) peak(from time.Time) usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p usage
	for _, u := range s.all {
		if !u.at.Before(from) {
			p.rss = max(p.rss, u.rss)
			p.fds = max(p.fds, u.fds)
		}
	}
	return p
}

// since returns the readings taken since from.
func (s *sampler) since(from time.Time) []usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []usage
	for _, u := range s.all {
		if !u.at.Before(from) {
			out = append(out, u)
		}
	}
	return out
}

// settle waits until the open files are back to at most fds, or timeout,
// and returns the reading then.
func (s *sampler) settle(fds int, timeout time.Duration) (usage, bool) {
	deadline := time.Now().Add(timeout)
	for {
		u := s.read()
		if u.fds <= fds {
			return u, true
		}
		if time.Now().After(deadline) {
			return u, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}
