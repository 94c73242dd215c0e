package proxy

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the per-worker request limit's queue.
const (
	// DefaultQueue is how many requests may wait for a worker slot when every
	// worker is at its limit (Passenger's max_request_queue_size is 100 too).
	DefaultQueue = 100
	// DefaultQueueTimeout is how long a request waits in that queue.
	DefaultQueueTimeout = 10 * time.Second
)

// Errors that make a request get 503 instead of a worker.
var (
	// ErrNoWorker means no worker became ready within the worker wait.
	ErrNoWorker = errors.New("no worker ready")
	// ErrQueueFull means every worker was at its limit and the queue was full.
	ErrQueueFull = errors.New("every worker is at its limit and the queue is full")
	// ErrQueueTimeout means a queued request found no free worker in time.
	ErrQueueTimeout = errors.New("no worker became free within the queue timeout")
)

// limit caps the requests each worker serves at once, as Fly's hard_limit
// does, and queues the requests over the cap in arrival order, as
// Passenger's request queue does. A freed slot goes straight to the request
// that waited longest. It is safe for concurrent use.
type limit struct {
	max     int64         // requests per worker
	size    int           // queue capacity; 0 refuses at once
	timeout time.Duration // longest wait in the queue

	waiting atomic.Int64 // len(queue), read without the lock when a slot frees
	mu      sync.Mutex   // protects queue
	queue   []*waiter    // oldest first
}

// waiter is one queued request. A slot handed to it arrives on slot with
// the backend's busy count already taken.
type waiter struct {
	slot chan *backend
}

// enqueue adds a waiter at the end of the queue, or returns nil when the
// queue is full.
func (l *limit) enqueue() *waiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) >= l.size {
		return nil
	}
	w := &waiter{slot: make(chan *backend, 1)}
	l.queue = append(l.queue, w)
	l.waiting.Add(1)
	return w
}

// leave takes w out of the queue. It reports false when a slot was handed to
// w meanwhile; that slot is then on w.slot.
func (l *limit) leave(w *waiter) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, q := range l.queue {
		if q == w {
			l.removeLocked(i)
			return true
		}
	}
	return false
}

// handoff gives b's busy slot to the oldest waiter and reports whether there
// was one.
func (l *limit) handoff(b *backend) bool {
	if l.waiting.Load() == 0 {
		return false
	}
	l.mu.Lock()
	if len(l.queue) == 0 {
		l.mu.Unlock()
		return false
	}
	w := l.queue[0]
	l.removeLocked(0)
	l.mu.Unlock()
	w.slot <- b // buffered and sent once: never blocks
	return true
}

func (l *limit) removeLocked(i int) {
	copy(l.queue[i:], l.queue[i+1:])
	l.queue[len(l.queue)-1] = nil
	l.queue = l.queue[:len(l.queue)-1]
	l.waiting.Add(-1)
}
