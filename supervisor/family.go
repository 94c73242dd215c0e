package supervisor

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"sync"
)

// A worker's family is every process it started, detached or not, and
// percore ends the family with the worker. percore finds the family in
// /proc rather than in a cgroup of its own per worker:
//
//   - percore usually runs as a container's entrypoint, where it cannot
//     create cgroups (the hierarchy is read-only or not delegated to it). A
//     cgroup used only where it can be created would leave the other hosts
//     with the fault, and the tests with a path production rarely takes.
//   - /proc is there wherever percore runs on Linux, and percore is a child
//     subreaper (or PID 1): however a process of a worker detaches (a session
//     of its own, a double fork), it stays below percore in the process tree
//     until it ends, reparented to percore when its parent dies. So the
//     family is found among percore's own descendants, and percore never
//     signals a process outside them, except one it saw in the worker's tree
//     itself, known by its pid and start time.
//
// A process reparented to percore no longer shows which worker it came
// from. It is the worker's when percore saw it in the worker's tree (the
// memory sampler walks it every second or faster), when its environment
// holds the worker's EnvWorkerKey (inherited unless a program clears it), or
// when its session or process group is one a process of the worker created.
// A pid is never trusted alone: pid_max is often 32768, and a pid the family
// held may name an unrelated process a moment later, so every process is
// compared by its start time too, and signalled through a pidfd opened
// before that comparison. What escapes all three (a program that clears its
// environment and double-forks between two samples) is ended when percore
// stops, with every process still below it. What neither design helps: a
// SIGKILL of percore itself, outside a PID namespace, leaves detached
// processes running, as it leaves the grandchildren of wrapper commands.

// EnvWorkerKey is the variable each worker gets with a value unique to it,
// so that percore recognises the processes the worker started even after
// they left its process tree. Programs that keep their environment pass it
// on to their children.
const EnvWorkerKey = "PERCORE_WORKER_KEY"

// maxTree bounds how many processes of one worker's tree are read, and how
// many percore remembers of one family.
const maxTree = 1024

// proc is one process as /proc/PID/stat shows it. A pid alone may name
// another process a moment later; with its start time it names one process
// for good.
type proc struct {
	pid, ppid, pgid, sid int
	state                byte   // 'Z' for a zombie
	start                uint64 // clock ticks after boot
}

// leads reports whether the process created a process group or a session.
func (p proc) leads() bool { return p.pgid == p.pid || p.sid == p.pid }

// same reports whether p and q are the same process.
func (p proc) same(q proc) bool { return p.pid == q.pid && p.start == q.start }

// parseStat reads the fields percore needs from the contents of
// /proc/pid/stat. The command name may hold spaces and parentheses: the
// fields are counted from its last ')'.
func parseStat(pid int, data []byte) (proc, bool) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return proc{}, false
	}
	f := bytes.Fields(data[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return proc{}, false
	}
	p := proc{pid: pid, state: f[0][0]}
	var err error
	for _, v := range []struct {
		dst *int
		src []byte
	}{{&p.ppid, f[1]}, {&p.pgid, f[2]}, {&p.sid, f[3]}} {
		if *v.dst, err = strconv.Atoi(string(v.src)); err != nil {
			return proc{}, false
		}
	}
	if p.start, err = strconv.ParseUint(string(f[19]), 10, 64); err != nil {
		return proc{}, false
	}
	return p, true
}

// workerKeyIn returns the value of EnvWorkerKey in the contents of
// /proc/pid/environ: the last one, as in an environment built by appending.
func workerKeyIn(environ []byte) string {
	key := ""
	prefix := []byte(EnvWorkerKey + "=")
	for _, kv := range bytes.Split(environ, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, prefix); ok {
			key = string(v)
		}
	}
	return key
}

// withWorkerKey returns env with EnvWorkerKey set to key, and no other
// value of it: a percore that runs as another's worker inherits one.
func withWorkerKey(env []string, key string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, EnvWorkerKey+"=") {
			out = append(out, kv)
		}
	}
	return append(out, EnvWorkerKey+"="+key)
}

// procSource reads the process table: /proc on Linux, a table in tests.
type procSource interface {
	// proc returns the process pid, zombies included.
	proc(pid int) (proc, bool)
	// children lists the children of pid.
	children(pid int) []int
	// workerKey returns the EnvWorkerKey of pid's environment, "" when it
	// has none or cannot be read.
	workerKey(pid int) string
}

// family is what percore knows of one worker's processes. It is safe for
// concurrent use.
type family struct {
	root proc   // the worker itself; start is 0 if it ended before it was read
	key  string // its EnvWorkerKey

	mu        sync.Mutex     // protects seen, leaders, stopped and signalled
	seen      map[int]uint64 // pid → start of the processes seen in the worker's tree
	leaders   map[int]uint64 // pid → start of those that created a group or session
	stopped   bool           // the worker was sent its stop signal
	signalled map[int]uint64 // pid → start of the processes sent the stop signal with it
}

func newFamily(root proc, key string) *family {
	f := &family{root: root, key: key, seen: map[int]uint64{}, leaders: map[int]uint64{}, signalled: map[int]uint64{}}
	if root.start != 0 {
		f.observe([]proc{root})
	}
	return f
}

// observe remembers processes found to be the worker's.
func (f *family) observe(ps []proc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range ps {
		if _, ok := f.seen[p.pid]; ok || len(f.seen) < maxTree {
			f.seen[p.pid] = p.start
		}
		if _, ok := f.leaders[p.pid]; p.leads() && (ok || len(f.leaders) < maxTree) {
			f.leaders[p.pid] = p.start
		}
	}
}

// prune forgets the processes seen that have ended, except those of tree,
// the worker's tree now, and the leaders whose pid another process took: a
// group or session outlives its leader, and holds its pid while it does.
func (f *family) prune(tree []proc, src procSource) {
	now := make(map[int]bool, len(tree))
	for _, p := range tree {
		now[p.pid] = true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for pid, start := range f.seen {
		if p, ok := src.proc(pid); !now[pid] && (!ok || p.start != start || p.state == 'Z') {
			delete(f.seen, pid)
		}
	}
	for pid, start := range f.leaders {
		if p, ok := src.proc(pid); ok && p.start != start {
			delete(f.leaders, pid)
		}
	}
}

// saw reports whether p was seen in the worker's tree.
func (f *family) saw(p proc) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	start, ok := f.seen[p.pid]
	return ok && start == p.start
}

// leads reports whether id, a process group or session id, is one a
// process of the worker created. The id is the creator's pid, which the
// kernel gives no other process while the group or session has members: a
// pid that names another process now means that group or session is gone.
func (f *family) leads(id int, src procSource) bool {
	f.mu.Lock()
	start, ok := f.leaders[id]
	f.mu.Unlock()
	if !ok {
		return false
	}
	p, live := src.proc(id)
	return !live || p.start == start
}

// seenList returns the processes seen in the worker's tree.
func (f *family) seenList() []proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]proc, 0, len(f.seen))
	for pid, start := range f.seen {
		out = append(out, proc{pid: pid, start: start})
	}
	return out
}

// noteStop records that the worker and the processes ps were sent the stop
// signal.
func (f *family) noteStop(ps []proc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	for _, p := range ps {
		f.signalled[p.pid] = p.start
	}
}

// unstopped returns the processes of ps not sent the stop signal yet, and
// whether the worker was.
func (f *family) unstopped(ps []proc) ([]proc, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []proc
	for _, p := range ps {
		if start, ok := f.signalled[p.pid]; !ok || start != p.start {
			out = append(out, p)
		}
	}
	return out, f.stopped
}

// families are the families of a supervisor's live workers. It is safe for
// concurrent use.
type families struct {
	self  int    // percore's pid: the families live below it
	nonce string // this supervisor's part of every worker key
	src   procSource

	mu   sync.Mutex // protects live
	live map[*family]bool
}

func newFamilies(src procSource) *families {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return &families{self: os.Getpid(), nonce: hex.EncodeToString(b), src: src, live: map[*family]bool{}}
}

// keyFor is the EnvWorkerKey of the worker with router key k: unique among
// every percore on the machine, and every supervisor of a test binary.
func (fs *families) keyFor(k uint64) string {
	return fs.nonce + "-" + strconv.FormatUint(k, 10)
}

// add registers the family of the worker pid started with key.
func (fs *families) add(pid int, key string) *family {
	root, ok := fs.src.proc(pid)
	if !ok {
		root = proc{pid: pid, pgid: pid}
	}
	f := newFamily(root, key)
	fs.mu.Lock()
	fs.live[f] = true
	fs.mu.Unlock()
	return f
}

// remove forgets a family whose processes have all ended.
func (fs *families) remove(f *family) {
	fs.mu.Lock()
	delete(fs.live, f)
	fs.mu.Unlock()
}

// byKey returns the live family with key, or nil.
func (fs *families) byKey(key string) *family {
	for _, f := range fs.list() {
		if f.key == key {
			return f
		}
	}
	return nil
}

func (fs *families) list() []*family {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]*family, 0, len(fs.live))
	for f := range fs.live {
		out = append(out, f)
	}
	return out
}

// members returns the live processes of f's worker, zombies left out: the
// worker while it lives and its tree, the trees of percore's other children
// that are f's (owner), and the processes seen in the worker's tree that
// have left percore's (where percore is no subreaper: a test binary). It
// remembers what it found.
func (fs *families) members(f *family) []proc {
	var out []proc
	visited := map[int]bool{}
	for _, c := range fs.src.children(fs.self) {
		p, ok := fs.src.proc(c)
		if ok && fs.owns(f, p) {
			out = fs.appendTree(out, p, visited)
		}
	}
	for _, s := range f.seenList() {
		if visited[s.pid] {
			continue
		}
		if p, ok := fs.src.proc(s.pid); ok && p.start == s.start && !fs.isWorker(p) {
			out = fs.appendTree(out, p, visited)
		}
	}
	f.observe(out)
	return out
}

// owns reports whether p, a child of percore, and its tree are f's.
func (fs *families) owns(f *family, p proc) bool {
	if p.pid == f.root.pid {
		return p.start == f.root.start
	}
	return !fs.isWorker(p) && fs.owner(p) == f
}

// isWorker reports whether p is a live worker of this supervisor.
func (fs *families) isWorker(p proc) bool {
	for _, f := range fs.list() {
		if f.root.same(p) {
			return true
		}
	}
	return false
}

// owner returns the family of p, a process reparented to percore, or nil:
// the family that saw it, else the one its worker key names (none when the
// key names a worker gone, or one this supervisor did not start), else the
// one that created its session or process group.
func (fs *families) owner(p proc) *family {
	all := fs.list()
	for _, f := range all {
		if f.saw(p) {
			return f
		}
	}
	if key := fs.src.workerKey(p.pid); key != "" {
		return fs.byKey(key)
	}
	for _, f := range all {
		if f.leads(p.sid, fs.src) || f.leads(p.pgid, fs.src) {
			return f
		}
	}
	return nil
}

// appendTree appends p and its descendants, zombies left out, up to
// maxTree processes.
func (fs *families) appendTree(out []proc, p proc, visited map[int]bool) []proc {
	queue := []proc{p}
	for i := 0; i < len(queue) && len(out) < maxTree; i++ {
		q := queue[i]
		if visited[q.pid] {
			continue
		}
		visited[q.pid] = true
		if q.state != 'Z' {
			out = append(out, q)
		}
		for _, c := range fs.src.children(q.pid) {
			if cp, ok := fs.src.proc(c); ok {
				queue = append(queue, cp)
			}
		}
	}
	return out
}

// outsideGroup returns the processes of ps that are not in the process
// group pgid: those a signal to the worker's group misses.
func outsideGroup(ps []proc, pgid int) []proc {
	var out []proc
	for _, p := range ps {
		if p.pgid != pgid {
			out = append(out, p)
		}
	}
	return out
}
