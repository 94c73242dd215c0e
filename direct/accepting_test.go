package direct

import (
	"strings"
	"testing"
	"time"
)

func TestJudgeOfAcceptQueues(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type step struct {
		s    acceptSample
		out  bool
		want string // part of the reason while out
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"a queue that drains now and then stays in", []step{
			{acceptSample{at: at(0), queued: 3, backlog: 128}, false, ""},
			{acceptSample{at: at(600), queued: 5, backlog: 128}, false, ""},
			{acceptSample{at: at(900), queued: 0, backlog: 128}, false, ""},
			{acceptSample{at: at(1500), queued: 2, backlog: 128}, false, ""},
			{acceptSample{at: at(2400), queued: 1, backlog: 128}, false, ""}, // it shrank: it accepts
			{acceptSample{at: at(3300), queued: 4, backlog: 128}, false, ""},
		}},
		{"a queue that does not shrink for the window goes out, and comes back empty", []step{
			{acceptSample{at: at(0), queued: 2, backlog: 128}, false, ""},
			{acceptSample{at: at(500), queued: 2, backlog: 128}, false, ""},
			{acceptSample{at: at(1200), queued: 3, backlog: 128}, true, "not accepting for 1.2s (3 queued)"},
			{acceptSample{at: at(1400), queued: 1, backlog: 128}, true, "not accepting for 1.2s"},
			{acceptSample{at: at(1600), queued: 0, backlog: 128}, false, ""},
		}},
		{"a full queue goes out at once", []step{
			{acceptSample{at: at(0), queued: 128, backlog: 128}, true, "accept queue full: 128 of 128"},
			{acceptSample{at: at(200), queued: 129, backlog: 128}, true, "accept queue full: 128 of 128"},
			{acceptSample{at: at(400), queued: 0, backlog: 128}, false, ""},
		}},
		{"all descriptors open goes out; back with some to spare", []step{
			{acceptSample{at: at(0), backlog: 511, open: 1023, limit: 1024}, false, ""},
			{acceptSample{at: at(200), backlog: 511, open: 1024, limit: 1024}, true, "out of file descriptors: 1024 open, limit 1024"},
			{acceptSample{at: at(400), backlog: 511, open: 1020, limit: 1024}, true, "out of file descriptors"},
			{acceptSample{at: at(600), backlog: 511, open: 1003, limit: 1024}, false, ""},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var st acceptState
			for i, s := range c.steps {
				st.judge(s.s, time.Second)
				if st.out != s.out || !strings.Contains(st.reason, s.want) || (!st.out && st.reason != "") {
					t.Fatalf("step %d (%+v): out %v reason %q, want out %v reason with %q", i, s.s, st.out, st.reason, s.out, s.want)
				}
			}
		})
	}
}

func TestJudgeReportsOnlyChanges(t *testing.T) {
	var st acceptState
	full := acceptSample{at: time.Unix(1, 0), queued: 4, backlog: 4}
	if !st.judge(full, time.Second) {
		t.Error("going out was not reported as a change")
	}
	if st.judge(full, time.Second) {
		t.Error("staying out was reported as a change")
	}
	if !st.judge(acceptSample{at: time.Unix(2, 0), backlog: 4}, time.Second) {
		t.Error("coming back was not reported as a change")
	}
}

func TestSpareDescriptors(t *testing.T) {
	for limit, want := range map[int]int{1: 1, 64: 2, 1024: 21, 65536: 1311} {
		if got := spareDescriptors(limit); got != want {
			t.Errorf("spareDescriptors(%d) = %d, want %d", limit, got, want)
		}
	}
}
