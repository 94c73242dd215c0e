package proxy

import (
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSessionTable measures one engine.io handshake's work on the
// session table, the session learned from the open packet and then looked
// up by its first poll, with the table empty and full (DefaultMaxSessions
// sessions, none idle long enough to expire). Full must cost about what
// empty does: run
//
//	go test ./proxy -run '^$' -bench SessionTable -benchmem
func BenchmarkSessionTable(b *testing.B) {
	now := time.Now()
	b.Run("empty", func(b *testing.B) {
		// A fresh table every few thousand handshakes keeps it below 4%
		// full; making one allocates a few kilobytes, and its growth is
		// part of what an empty table costs.
		var s *sessions
		var buf [32]byte
		b.ReportAllocs()
		cpu := startCPU()
		for i := uint64(0); b.Loop(); i++ {
			if i%4096 == 0 {
				s = newSessions(DefaultMaxSessions, DefaultSessionIdle)
			}
			benchHandshake(b, s, benchSID(buf[:0], i), now)
		}
		cpu.report(b)
	})
	b.Run("full", func(b *testing.B) {
		s := fullSessions(now)
		var buf [32]byte
		b.ReportAllocs()
		cpu := startCPU()
		for i := uint64(0); b.Loop(); i++ {
			benchHandshake(b, s, benchSID(buf[:0], 2*DefaultMaxSessions+i), now)
		}
		cpu.report(b)
	})
	b.Run("full/parallel", func(b *testing.B) {
		s := fullSessions(now)
		var next atomic.Uint64
		next.Store(2 * DefaultMaxSessions)
		b.ReportAllocs()
		b.ResetTimer() // the fill is not the handshakes measured
		cpu := startCPU()
		b.RunParallel(func(pb *testing.PB) {
			var buf [32]byte
			for pb.Next() {
				benchHandshake(b, s, benchSID(buf[:0], next.Add(1)), now)
			}
		})
		cpu.report(b)
	})
}

// cpuClock is the CPU time the process used since a benchmark started:
// unlike wall time, it does not count the time other processes had the
// CPUs, which on a shared machine is most of the noise.
type cpuClock struct{ start time.Duration }

func startCPU() cpuClock { return cpuClock{start: processCPU()} }

// report adds the CPU time per operation to b's results, as cpu-ns/op.
func (c cpuClock) report(b *testing.B) {
	if c.start < 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(processCPU()-c.start)/float64(b.N), "cpu-ns/op")
}

// processCPU returns the user and system CPU time of the process, -1 when
// it cannot be read.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSessionLookup measures the lookup every request carrying a sid
// makes, in a full table: it must not allocate.
func BenchmarkSessionLookup(b *testing.B) {
	now := time.Now()
	s := fullSessions(now)
	var buf [32]byte
	b.ReportAllocs()
	cpu := startCPU()
	for i := uint64(0); b.Loop(); i++ {
		// The last DefaultMaxSessions/2 learned are all remembered.
		n := 2*DefaultMaxSessions - 1 - i%(DefaultMaxSessions/2)
		if _, ok := s.owner(benchSID(buf[:0], n), now); !ok {
			b.Fatal("a remembered session was not found")
		}
	}
	cpu.report(b)
}

// fullSessions returns a table of DefaultMaxSessions sessions filled with
// twice as many, named by benchSID from 0 and seen at now: every shard is
// full.
func fullSessions(now time.Time) *sessions {
	s := newSessions(DefaultMaxSessions, DefaultSessionIdle)
	var buf [32]byte
	for i := range uint64(2 * DefaultMaxSessions) {
		s.learn(benchSID(buf[:0], i), i%4, now)
	}
	return s
}

// benchHandshake learns the session sid from a handshake's answer and looks
// it up as its first poll does.
func benchHandshake(b *testing.B, s *sessions, sid []byte, now time.Time) {
	s.learn(sid, 1, now)
	if _, ok := s.owner(sid, now); !ok {
		b.Fatal("a session just learned was not found")
	}
}

// benchSID appends a session id made of n, 20 characters long as
// engine.io's own.
func benchSID(dst []byte, n uint64) []byte {
	const digits = "0123456789abcdef"
	dst = append(dst, "sid_"...)
	for shift := 60; shift >= 0; shift -= 4 { // 16 base-16 digits, zero-padded
		dst = append(dst, digits[(n>>shift)&15])
	}
	return dst
}
