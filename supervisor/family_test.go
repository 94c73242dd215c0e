package supervisor

import (
	"slices"
	"testing"
)

// procTable is a process table for tests of the family rules.
type procTable struct {
	procs map[int]proc
	keys  map[int]string
}

func (t procTable) proc(pid int) (proc, bool) {
	p, ok := t.procs[pid]
	return p, ok
}

func (t procTable) children(pid int) []int {
	var out []int
	for _, p := range t.procs {
		if p.ppid == pid {
			out = append(out, p.pid)
		}
	}
	slices.Sort(out)
	return out
}

func (t procTable) workerKey(pid int) string { return t.keys[pid] }

// The table: percore is 1, in session 1; its worker 10 (group 10) started at
// 100. Other processes are placed by each case.
const (
	tPercore = 1
	tWorker  = 10
)

func newTable(ps ...proc) procTable {
	t := procTable{procs: map[int]proc{}, keys: map[int]string{}}
	t.procs[tPercore] = proc{pid: tPercore, ppid: 0, pgid: 1, sid: 1, state: 'S', start: 1}
	for _, p := range ps {
		if p.state == 0 {
			p.state = 'S'
		}
		t.procs[p.pid] = p
	}
	return t
}

func worker10() proc { return proc{pid: tWorker, ppid: tPercore, pgid: tWorker, sid: 1, start: 100} }

func TestFamilyMembers(t *testing.T) {
	for _, c := range []struct {
		name   string
		table  procTable
		seen   []proc // what the worker's samples saw
		before func(tb procTable, fs *families, f *family)
		want   []int
	}{
		{
			name:  "the worker's tree, a detached child included",
			table: newTable(worker10(), proc{pid: 11, ppid: tWorker, pgid: 11, sid: 11, start: 110}),
			want:  []int{10, 11},
		},
		{
			name:  "a zombie is left out",
			table: newTable(worker10(), proc{pid: 11, ppid: tWorker, pgid: 10, sid: 1, start: 110, state: 'Z'}),
			want:  []int{10},
		},
		{
			name:  "an orphan seen in the tree, and its children",
			table: newTable(proc{pid: 20, ppid: tPercore, pgid: 20, sid: 20, start: 120}, proc{pid: 21, ppid: 20, pgid: 20, sid: 20, start: 121}),
			seen:  []proc{{pid: 20, ppid: tWorker, pgid: 20, sid: 20, start: 120}},
			want:  []int{20, 21},
		},
		{
			name:  "a pid seen once, now another process's",
			table: newTable(proc{pid: 20, ppid: tPercore, pgid: 20, sid: 20, start: 999}),
			seen:  []proc{{pid: 20, ppid: tWorker, pgid: 20, sid: 20, start: 120}},
			want:  nil,
		},
		{
			name:  "a process seen once, reparented outside percore (no subreaper)",
			table: newTable(proc{pid: 30, ppid: 999, pgid: 30, sid: 30, start: 130}),
			seen:  []proc{{pid: 30, ppid: tWorker, pgid: 30, sid: 30, start: 130}},
			want:  []int{30},
		},
		{
			name:  "a process outside percore with a pid once seen",
			table: newTable(proc{pid: 30, ppid: 999, pgid: 30, sid: 30, start: 777}),
			seen:  []proc{{pid: 30, ppid: tWorker, pgid: 30, sid: 30, start: 130}},
			want:  nil,
		},
		{
			name:  "an orphan with the worker's key",
			table: newTable(proc{pid: 40, ppid: tPercore, pgid: 39, sid: 39, start: 140}),
			before: func(tb procTable, fs *families, f *family) {
				tb.keys[40] = f.key
			},
			want: []int{40},
		},
		{
			name:  "an orphan with another worker's key, in a session the worker created",
			table: newTable(proc{pid: 40, ppid: tPercore, pgid: 39, sid: 39, start: 140}),
			seen:  []proc{{pid: 39, ppid: tWorker, pgid: 39, sid: 39, start: 139}},
			before: func(tb procTable, fs *families, f *family) {
				tb.keys[40] = fs.keyFor(99)
			},
			want: nil,
		},
		{
			name:  "an orphan in a session a process of the worker created, its leader gone",
			table: newTable(proc{pid: 40, ppid: tPercore, pgid: 40, sid: 39, start: 140}),
			seen:  []proc{{pid: 39, ppid: tWorker, pgid: 39, sid: 39, start: 139}},
			want:  []int{40},
		},
		{
			name: "an orphan in a session whose leader's pid another process took",
			table: newTable(proc{pid: 40, ppid: tPercore, pgid: 40, sid: 39, start: 140},
				proc{pid: 39, ppid: 999, pgid: 39, sid: 39, start: 555}),
			seen: []proc{{pid: 39, ppid: tWorker, pgid: 39, sid: 39, start: 139}},
			want: nil,
		},
		{
			name:  "an orphan in the worker's own process group",
			table: newTable(proc{pid: 41, ppid: tPercore, pgid: tWorker, sid: 1, start: 141}),
			want:  []int{41},
		},
		{
			name:  "an orphan in percore's session only: not the worker's",
			table: newTable(worker10(), proc{pid: 42, ppid: tPercore, pgid: 42, sid: 1, start: 142}),
			want:  []int{10},
		},
		{
			name: "another live worker whose pid was a leader of this worker's",
			table: newTable(worker10(), proc{pid: 50, ppid: tPercore, pgid: 50, sid: 1, start: 150},
				proc{pid: 51, ppid: 50, pgid: 50, sid: 1, start: 151}),
			before: func(tb procTable, fs *families, f *family) {
				f.observe([]proc{{pid: 50, pgid: 50, sid: 50, start: 150}}) // impossible, but even so
				fs.add(50, fs.keyFor(2))
			},
			want: []int{10},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := newFamilies(c.table)
			fs.self = tPercore
			f := fs.add(tWorker, fs.keyFor(1))
			if _, ok := c.table.procs[tWorker]; !ok {
				f.root = worker10() // it ran; it has ended
				f.observe([]proc{f.root})
			}
			f.observe(c.seen)
			if c.before != nil {
				c.before(c.table, fs, f)
			}
			got := pidsOf(fs.members(f))
			slices.Sort(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("members = %v, want %v", got, c.want)
			}
		})
	}
}

func TestFamilyPruneKeepsWhatMayStillMatter(t *testing.T) {
	tb := newTable(worker10(), proc{pid: 39, ppid: 999, pgid: 39, sid: 39, start: 555})
	fs := newFamilies(tb)
	fs.self = tPercore
	f := fs.add(tWorker, fs.keyFor(1))
	f.observe([]proc{
		{pid: 38, pgid: 38, sid: 38, start: 138}, // ended: its session may live on
		{pid: 39, pgid: 39, sid: 39, start: 139}, // its pid is another process's now
	})
	f.prune([]proc{worker10()}, tb)
	if f.saw(proc{pid: 38, start: 138}) || f.saw(proc{pid: 39, start: 139}) {
		t.Error("processes that ended are still remembered as seen")
	}
	if !f.saw(worker10()) {
		t.Error("the worker, in the tree, was forgotten")
	}
	if !f.leads(38, tb) {
		t.Error("the session of an ended leader was forgotten")
	}
	if f.leads(39, tb) {
		t.Error("a session id whose pid another process took still counts")
	}
}

func TestParseStat(t *testing.T) {
	for _, c := range []struct {
		in   string
		ok   bool
		want proc
	}{
		{"42 (node) S 1 42 42 0 -1 4194304 1 0 0 0 0 0 0 0 20 0 11 0 12345 1000 10", true,
			proc{pid: 42, ppid: 1, pgid: 42, sid: 42, state: 'S', start: 12345}},
		{"42 (a) b (c) Z 7 8 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0", true,
			proc{pid: 42, ppid: 7, pgid: 8, sid: 9, state: 'Z', start: 99}},
		{"42 (node) S 1 42 42", false, proc{}},
		{"42 node S 1 42 42 0 -1 4194304 1 0 0 0 0 0 0 0 20 0 11 0 12345", false, proc{}},
		{"42 (node) S x 42 42 0 -1 4194304 1 0 0 0 0 0 0 0 20 0 11 0 12345", false, proc{}},
	} {
		got, ok := parseStat(42, []byte(c.in))
		if ok != c.ok || got != c.want {
			t.Errorf("parseStat(%q) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("42 (node) S 1 42 42 0 -1 4194304 1 0 0 0 0 0 0 0 20 0 11 0 12345 1000 10"))
	f.Add([]byte("1 ()) R 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if p, ok := parseStat(7, data); ok && p.pid != 7 {
			t.Errorf("pid %d, want 7", p.pid)
		}
	})
}

func TestWorkerKey(t *testing.T) {
	env := withWorkerKey([]string{"A=1", EnvWorkerKey + "=outer", "B=2"}, "inner")
	if n := slices.IndexFunc(env, func(kv string) bool { return kv == EnvWorkerKey+"=outer" }); n >= 0 {
		t.Errorf("the inherited key is kept: %v", env)
	}
	if env[len(env)-1] != EnvWorkerKey+"=inner" {
		t.Errorf("env = %v", env)
	}
	raw := []byte("A=1\x00" + EnvWorkerKey + "=first\x00" + EnvWorkerKey + "=last\x00")
	if got := workerKeyIn(raw); got != "last" {
		t.Errorf("workerKeyIn = %q, want the last one", got)
	}
	if got := workerKeyIn([]byte("A=1\x00X" + EnvWorkerKey + "=no\x00")); got != "" {
		t.Errorf("workerKeyIn = %q, want none", got)
	}
}
