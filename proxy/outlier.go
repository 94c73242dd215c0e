package proxy

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/valyala/fasthttp"
)

// Passive health: a worker whose requests fail at the proxy (connection
// refused or reset, a malformed or missing response, a timeout) this many
// times in a row is taken out of rotation for a while, like Envoy's outlier
// detection. Answers the worker gives, even 5xx, are not failures here.
const (
	// EjectAfter is the number of proxy failures in a row that eject a worker.
	EjectAfter = 5
	// EjectBase is the first ejection's length; each further ejection of the
	// same worker lasts one EjectBase longer, up to EjectMax.
	EjectBase = 5 * time.Second
	// EjectMax bounds an ejection.
	EjectMax = 30 * time.Second
)

// ownErrors are the messages of fasthttp's errors about a request it will
// not write (they are not exported): they say nothing of the worker.
var ownErrors = [...]string{
	"missing required host header in request",
	"fasthttp: body stream exceeds content-length",
}

// workerFault reports whether a failed exchange with a worker counts
// against it: a refused, reset or closed connection, a timeout, a malformed
// answer. A request percore refused to write, or could not express, does
// not: checkRequest turns those away before a worker is chosen, and this is
// the net for any it missed, so that no client can eject a worker by the
// shape of its requests.
func workerFault(err error) bool {
	if errors.Is(err, fasthttp.ErrHostClientRedirectToDifferentScheme) {
		return false
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		for _, msg := range ownErrors {
			if e.Error() == msg {
				return false
			}
		}
	}
	return true
}

// succeeded notes an answer from b: its failure streak ends.
func (b *backend) succeeded() {
	if b.fails.Load() != 0 {
		b.fails.Store(0)
	}
}

// failed notes a proxy failure of b and ejects it after EjectAfter in a row.
// It reports whether b was ejected now.
func (p *Pool) failed(b *backend) bool {
	if b.fails.Add(1) < EjectAfter {
		return false
	}
	b.fails.Store(0)
	n := b.ejections.Add(1)
	d := min(time.Duration(n)*EjectBase, EjectMax)
	p.eject(b, time.Now().Add(d).UnixNano())
	return true
}

// eject takes b out of rotation until until (unix nanoseconds) and tells
// the OnEject function.
func (p *Pool) eject(b *backend, until int64) {
	b.ejectedUntil.Store(until)
	for {
		cur := p.ejectedUntil.Load()
		if cur >= until || p.ejectedUntil.CompareAndSwap(cur, until) {
			break
		}
	}
	p.ejected(b, until)
}

// ejectionClock returns now in nanoseconds when some worker may be ejected,
// else 0, so that picks pay for the clock only after an ejection.
func (p *Pool) ejectionClock() int64 {
	until := p.ejectedUntil.Load()
	if until == 0 {
		return 0
	}
	now := time.Now().UnixNano()
	if now >= until {
		p.ejectedUntil.CompareAndSwap(until, 0)
		return 0
	}
	return now
}

// ejected reports whether b is out of rotation at now (0: nobody is).
func (b *backend) ejected(now int64) bool {
	return now != 0 && b.ejectedUntil.Load() > now
}

// requestLimit returns the request count after which a new worker is
// recycled: n plus up to jitter more, so that workers started together are
// not all recycled at once (gunicorn's max_requests_jitter). 0 is none.
func requestLimit(n, jitter int) uint64 {
	if n <= 0 {
		return 0
	}
	if jitter > 0 {
		n += rand.IntN(jitter + 1)
	}
	return uint64(n)
}
