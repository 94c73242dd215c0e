package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	oklog "github.com/oklog/run"
	"github.com/percore/percore/accept"
	"github.com/percore/percore/cmd/percore/internal/earlysignal"
	"github.com/percore/percore/control"
	"github.com/percore/percore/direct"
	"github.com/percore/percore/health"
	"github.com/percore/percore/jsruntime"
	"github.com/percore/percore/machine"
	"github.com/percore/percore/proxy"
	"github.com/percore/percore/supervisor"
	"github.com/percore/percore/watch"
)

// Exit codes; the README documents them.
const (
	exitOK         = 0
	exitError      = 1
	exitUsage      = 2
	exitCrashLoop  = 3
	exitCannotExec = 126
	exitNotFound   = 127
)

// version is set at build time with -ldflags "-X main.version=..."; a
// binary from "go install ...@version" reports its module version instead.
var version = "dev"

// currentVersion is the stamped version, else the module version.
func currentVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

// run is percore's main, testable: it returns the exit code.
func run(args, environ []string, stdout, stderr io.Writer) int {
	return runWith(jsruntime.Default(), args, environ, stdout, stderr)
}

// runWith is run with the runtimes percore knows: jsruntime.Default() in
// the binary, a list of their own in tests.
func runWith(runtimes jsruntime.Registry, args, environ []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "plan", "reload", "scale", "status", "top":
			earlysignal.Release() // these commands end on a signal's default action
		}
		switch args[0] {
		case "version":
			fmt.Fprintf(stdout, "percore %s\n", currentVersion())
			return exitOK
		case "plan":
			return runPlan(runtimes, args[1:], environ, stdout, stderr)
		case "reload", "scale":
			return runControl(args[0], args[1:], environ, stdout, stderr)
		case "status":
			return runStatus(args[1:], environ, stdout, stderr)
		case "top":
			return runTop(args[1:], environ, os.Stdin, stdout, stderr)
		}
	}
	sigs := catchSignals()
	defer earlysignal.Release()
	env := envMap(environ)
	cfg, err := parseConfigFor(runtimes, args, env, true)
	if errors.Is(err, errHelp) {
		printHelp(stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "percore: %v\n", err)
		return exitUsage
	}
	if code, err := checkCommand(cfg.Command); err != nil {
		fmt.Fprintf(stderr, "percore: %v\n", err)
		return code
	}
	log := newLogger(cfg, stderr)
	if err := serve(cfg, environ, log, sigs); err != nil {
		var crash *supervisor.CrashLoopError
		if errors.As(err, &crash) {
			log.Error(crash.Error())
			return exitCrashLoop
		}
		log.Error("percore failed", "error", err)
		var unsafe *control.UnsafePathError
		if errors.As(err, &unsafe) {
			return exitUsage
		}
		return exitError
	}
	return exitOK
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// checkCommand fails fast, with a shell's exit codes, when COMMAND cannot run.
func checkCommand(argv []string) (int, error) {
	_, err := exec.LookPath(argv[0])
	if err == nil {
		return 0, nil
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return exitNotFound, fmt.Errorf("command %q not found", argv[0])
	}
	return exitCannotExec, fmt.Errorf("command %q cannot be run: %v", argv[0], err)
}

func newLogger(cfg *config, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "percore",
		Level:      cfg.LogLevel,
		Output:     w,
		JSONFormat: cfg.LogFormat == "json",
	})
}

// serve sizes the workers, opens the listeners and runs every actor until a
// signal or a crash loop ends them.
func serve(cfg *config, environ []string, log hclog.Logger, sigs chan os.Signal) error {
	lockMemory(log)
	p, err := makePlan(cfg, log)
	if err != nil {
		return err
	}
	var publicLn net.Listener
	var dp *directParts
	if cfg.Mode == modeDirect {
		sockets, err := openDirect(cfg, p.Workers, log)
		if err != nil {
			return err
		}
		dp = &directParts{sockets: sockets}
		defer dp.close()
		publicLn = closedListener{}
	} else if publicLn, err = net.Listen("tcp", cfg.publicAddr()); err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.publicAddr(), err)
	}
	var adminLn net.Listener
	if cfg.Admin != "" {
		if adminLn, err = net.Listen("tcp", cfg.Admin); err != nil {
			publicLn.Close()
			return fmt.Errorf("admin listener on %s: %w", cfg.Admin, err)
		}
	}
	ctl, err := openControl(cfg, log)
	if err != nil {
		publicLn.Close()
		if adminLn != nil {
			adminLn.Close()
		}
		return err
	}
	if ctl != nil {
		defer ctl.Stop()
	}
	reaper, err := supervisor.NewReaper(log.Named("reaper"))
	if err == nil && cfg.User != nil {
		err = becomeUser(cfg, &environ, log)
		if err != nil {
			reaper.Close()
		}
	}
	if err != nil {
		publicLn.Close()
		if adminLn != nil {
			adminLn.Close()
		}
		return err
	}
	defer reaper.Close()

	socketDir, err := makeSocketDir(cfg)
	if err != nil {
		return err
	}
	if socketDir != "" {
		defer os.RemoveAll(socketDir)
	}
	if dp != nil {
		if dp.dir, p.preload, err = writePreload(p.rt, modeDirect); err != nil {
			return err
		}
	} else {
		var dir string
		if dir, p.preload, err = writePreload(p.rt, modeProxy); err != nil {
			return err
		}
		if dir != "" {
			defer os.RemoveAll(dir)
		}
	}
	a, err := assemble(cfg, p, environ, log, reaper, socketDir, dp)
	if err != nil {
		return err
	}
	a.sigs = sigs
	a.ctl = ctl
	pub := publicLn // closedListener in direct mode
	if dp != nil {
		log.Info("direct mode: workers accept on the public address themselves", "addr", dp.sockets.Addr())
	} else {
		log.Info("proxy listening", "addr", publicLn.Addr().String())
		l := accept.New(publicLn, accept.Config{Name: "public", Logger: log})
		a.listeners = append(a.listeners, l)
		pub = l
	}
	var admin *accept.Listener
	if adminLn != nil {
		log.Info("admin listening", "addr", adminLn.Addr().String())
		admin = accept.New(adminLn, accept.Config{Name: "admin", Logger: log, Spare: true})
		a.listeners = append(a.listeners, admin)
		return a.run(pub, admin)
	}
	return a.run(pub, nil)
}

// becomeUser drops to --user once the listeners and the control socket
// are open.
func becomeUser(cfg *config, environ *[]string, log hclog.Logger) error {
	if err := cfg.User.drop(); err != nil {
		return err
	}
	*environ = cfg.User.env(*environ)
	log.Info("running as user", "user", cfg.User.name, "uid", cfg.User.uid, "gid", cfg.User.gid)
	return nil
}

// actors are the long-running parts of percore, wired together.
type actors struct {
	log   hclog.Logger
	sd    *shutdown
	pool  *proxy.Pool
	proxy *proxy.Handler
	srv   proxy.ServerConfig
	sup   *supervisor.Supervisor
	watch *watch.Watcher // nil without --watch

	listeners listeners
	sigs      chan os.Signal  // from catchSignals
	ctl       *control.Server // nil without a control socket
	status    *statusSource
	checks    health.CheckConfig
	checksOn  bool
	readyMin  int
	mode      mode
	direct    *direct.Sockets // nil in proxy mode
}

// makeSocketDir creates the private directory of the workers' sockets for
// --upstream unix, after percore became --user, so the workers can use it.
func makeSocketDir(cfg *config) (string, error) {
	if cfg.Upstream != "unix" {
		return "", nil
	}
	dir, err := os.MkdirTemp("", "percore-sockets-")
	if err != nil {
		return "", fmt.Errorf("--upstream unix: %w", err)
	}
	return dir, nil
}

func assemble(cfg *config, p plan, environ []string, log hclog.Logger, l supervisor.Launcher, socketDir string,
	dp *directParts) (*actors, error) {
	pool := proxy.NewPool(proxy.UpstreamConfig{Logger: log.Named("proxy")})
	out := supervisor.NewOutput(outputConfig(cfg))
	guard := p.guard(cfg)
	sup, err := supervisor.New(supervisor.Config{
		Command:         cfg.Command,
		Env:             environ,
		Workers:         p.Workers,
		Prepare:         p.prepare,
		Launcher:        l,
		Router:          dp.router(pool),
		Output:          out,
		Logger:          log.Named("supervisor"),
		ReadyTimeout:    cfg.ReadyTimeout,
		StopSignal:      cfg.StopSignal,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Guard:           guard,
		SpareSlot:       p.SpareSlot,
		MaxBootFailures: cfg.MaxBootFailures,
		SocketDir:       socketDir,
		OOM:             oomCounter(),
		Sockets:         dp.supervisorSockets(),
	})
	if err != nil {
		return nil, err
	}
	pool.OnEject(sup.OutOfRotation)
	var watcher *watch.Watcher
	if cfg.Watch.On {
		if watcher, err = newWatcher(cfg, sup, log.Named("watch")); err != nil {
			return nil, err
		}
	}
	handler, srv := proxyParts(cfg, pool, log, func(key uint64) { sup.Recycle(key, "max-requests") })
	return &actors{
		log:   log,
		sd:    &shutdown{timeout: cfg.ShutdownTimeout},
		pool:  pool,
		proxy: handler,
		srv:   srv,
		sup:   sup,
		watch: watcher,

		status: &statusSource{started: time.Now(), res: p.res, plan: p, maxMem: guard.Budget,
			sup: sup, pool: pool, rss: newRSSHistory(sup.Snapshot), mode: cfg.Mode},
		mode:     cfg.Mode,
		direct:   dp.directSockets(),
		checks:   cfg.Checks,
		checksOn: cfg.ChecksOn,
		readyMin: cfg.ReadyMin,
	}, nil
}

// run composes the actors in one oklog run.Group. Interrupts run in the order the
// actors are added, which is the order of a stop: the proxy stops accepting,
// starts the supervisor's stop of the workers beside its own drain, and
// finishes its requests; the supervisor's interrupt waits until the workers
// are gone (in direct mode it starts their stop); the admin server
// (answering 503 on /readyz from the start) goes last.
func (a *actors) run(publicLn, adminLn net.Listener) error {
	defer a.sd.close()
	if a.watch != nil {
		defer a.watch.Close()
	}
	if sig := earlyStop(a.sigs, a.log); sig != nil {
		publicLn.Close()
		if adminLn != nil {
			adminLn.Close()
		}
		a.log.Info("stopped before the workers started", "signal", sig.String())
		return nil
	}
	var g oklog.Group

	if a.watch != nil {
		// First, so that its interrupt, which is at once, comes before the
		// drain: no reload starts while percore stops.
		g.Add(a.watch.Run, func(error) { a.watch.Stop() })
	}
	supDone := make(chan struct{}) // closed when every worker is gone
	if a.mode == modeProxy {
		serve := proxy.NewServe(proxy.NewServer(a.proxy, a.srv, a.log.Named("http")), publicLn)
		drain, end := graceAfter(supDone, answerGrace) // serve.Run uses it after the interrupt
		defer end()
		g.Add(serve.Run, func(error) { a.stopProxy(serve, drain) })
	}

	g.Add(func() error {
		defer close(supDone)
		return a.sup.Run()
	}, func(error) {
		a.sup.Stop(a.sd.begin())
		<-supDone
	})

	if adminLn != nil {
		admin := health.New(adminLn, health.Config{Workers: a, Listeners: a.listeners, Logger: a.log.Named("admin"),
			Status: a.status, ReadyMin: a.readyMin, Metrics: &collector{sup: a.sup, pool: a.pool, handler: a.proxy, mode: a.mode, direct: a.direct}})
		a.sd.onBegin = admin.MarkShuttingDown
		g.Add(admin.Run, func(error) { admin.Stop() })
		g.Add(a.status.rss.run, a.status.rss.interrupt)
	}

	trim := newTrimmer()
	g.Add(trim.run, trim.interrupt)

	if a.checksOn {
		checker := health.NewChecker(a.checks, fleet{a.sup}, a.log.Named("health"))
		g.Add(checker.Run, func(error) { checker.Stop() })
	}

	if a.ctl != nil {
		g.Add(func() error { return a.ctl.Serve(a.sup) }, func(error) { a.ctl.Stop() })
	}

	sigs := newSignals(a.log, a.sd, a.sup, a.sigs)
	g.Add(sigs.run, sigs.interrupt)

	err := g.Run()
	var stopped errStopSignal
	if errors.As(err, &stopped) {
		a.log.Info("stopped")
		return nil
	}
	return err
}

// openControl opens the control socket before percore drops to --user, so
// that the kernel vouches for it (SO_PEERCRED) as the user who started
// percore. An unsafe --control path stops percore; a default one that cannot
// be had is logged loudly and percore runs without a control socket.
func openControl(cfg *config, log hclog.Logger) (*control.Server, error) {
	if cfg.Control == "" {
		return nil, nil
	}
	explicit := cfg.Control != control.DefaultPath()
	var ctl *control.Server
	var err error
	if explicit {
		ctl, err = control.Listen(cfg.Control, log.Named("control"))
	} else {
		ctl, err = control.ListenDefault(log.Named("control"))
	}
	var unsafe *control.UnsafePathError
	switch {
	case err == nil:
		log.Info("control socket", "path", ctl.Path())
		return ctl, nil
	case errors.As(err, &unsafe) && explicit:
		return nil, fmt.Errorf("--control %s: %w", cfg.Control, err)
	case errors.As(err, &unsafe):
		log.Error("refusing the control socket's directory: percore reload and scale will not reach this percore (remove the path, or give --control)", "error", err)
	default:
		log.Warn("running without a control socket: percore reload and scale will not reach this percore", "error", err)
	}
	return nil, nil
}

// listeners are percore's listeners, as health sees them.
type listeners []*accept.Listener

// NotAccepting implements health.Listeners.
func (ls listeners) NotAccepting() string {
	var why []string
	for _, l := range ls {
		if err := l.Err(); err != nil {
			why = append(why, err.Error())
		}
	}
	return strings.Join(why, "; ")
}

// ReadyWorkers implements health.Workers.
func (a *actors) ReadyWorkers() int { return a.sup.ReadyWorkers() }

// plan is the sizing decision and the way workers get their heap limit.
type plan struct {
	machine.Plan
	rt       jsruntime.Runtime
	runtimes jsruntime.Registry
	Heap     machine.HeapMode
	res      machine.Resources
	preload  string // the direct-mode preload's path; "" in proxy mode
}

func (p plan) prepare(argv, env []string, port int) ([]string, []string, error) {
	w, _, err := p.runtimes.Prepare(jsruntime.Worker{Argv: argv, Env: env},
		p.options(port))
	return w.Argv, w.Env, err
}

// oomCounter returns the OOM kill counter of percore's memory cgroup, or
// nil where there is none.
func oomCounter() supervisor.OOMCounter {
	if c, ok := (machine.Detector{Root: "/"}).OOMCounter(); ok {
		return c
	}
	return nil
}

// options are the settings Prepare gives a worker listening on port.
func (p plan) options(port int) jsruntime.Options {
	return jsruntime.Options{Runtime: p.rt, HeapMB: p.heapMB(), SemiSpaceMB: p.SemiSpaceMB, Port: port,
		Preload: p.preload}
}

// heapMB is the heap setting handed to the runtime. A runtime with no hard
// heap cap (Bun) is told the worker's memory budget, as the RAM size its
// collector plans for, which keeps its resident size down.
func (p plan) heapMB() int {
	if p.rt.Memory == jsruntime.RecycleByRSS && p.HeapMB == 0 && p.Heap == machine.HeapAuto {
		return int(p.WorkerBudget / machine.MiB)
	}
	return p.HeapMB
}

// makePlan detects the machine, decides workers and heap, and logs the plan line.
func makePlan(cfg *config, log hclog.Logger) (plan, error) {
	rt := cfg.runtime()
	res, err := machine.Detect()
	if err != nil {
		return plan{}, fmt.Errorf("detect resources: %w", err)
	}
	for _, n := range res.Notes {
		log.Info("resources", "note", n)
	}
	mp, err := newPlan(cfg, res, rt, os.Environ())
	if err != nil {
		return plan{}, err
	}
	for _, w := range mp.Warnings {
		log.Warn(w)
	}
	p := plan{Plan: mp, rt: rt, runtimes: cfg.Runtimes, Heap: cfg.Heap, res: res}
	applied, err := p.dryRun(cfg.Command)
	if err != nil {
		return plan{}, err
	}
	log.Info(planLine(res, mp, rt, applied))
	if applied.Warning != "" {
		log.Warn(applied.Warning)
	}
	return p, nil
}

// dryRun prepares a worker without starting it, to report what each worker
// will get and to fail before any start when the command cannot be prepared.
func (p plan) dryRun(argv []string) (jsruntime.Applied, error) {
	_, applied, err := p.runtimes.Prepare(jsruntime.Worker{Argv: argv, Env: os.Environ()},
		p.options(1))
	if err != nil {
		return applied, fmt.Errorf("prepare the worker command: %w", err)
	}
	return applied, nil
}

// newPlan sizes the workers of cfg.Command, started with environment env,
// checking a heap limit that the command or env sets like percore's own.
func newPlan(cfg *config, res machine.Resources, rt jsruntime.Runtime, env []string) (machine.Plan, error) {
	userMB, userAt, err := userHeap(cfg.Runtimes, cfg.Command, env, rt)
	if err != nil {
		return machine.Plan{}, err
	}
	return machine.NewPlan(res, machine.Request{
		Workers: cfg.Workers, WorkersSource: cfg.WorkersSource,
		Heap: cfg.Heap, HeapMB: cfg.HeapMB, IncludeSwap: cfg.IncludeSwap,
		Memory: memoryPolicy(rt.Memory), SemiSpace: rt.SemiSpace,
		UserHeapMB: userMB, UserHeapSource: userAt,
	}), nil
}

// memoryPolicy is a runtime's memory policy as the plan takes it.
func memoryPolicy(m jsruntime.MemoryPolicy) machine.MemoryPolicy {
	switch m {
	case jsruntime.HeapCap:
		return machine.HeapCap
	case jsruntime.RecycleByRSS:
		return machine.RecycleByRSS
	}
	return machine.NoHeapLimit
}

// userHeap returns the heap limit that argv or env sets for the runtime
// and where, as "NODE_OPTIONS --max-old-space-size"; "" when none is set.
// Without argv it looks for the runtime's own variables in env.
func userHeap(runtimes jsruntime.Registry, argv, env []string, rt jsruntime.Runtime) (int, string, error) {
	if len(argv) == 0 {
		argv = []string{rt.String()}
		if len(rt.Binaries) > 0 {
			argv[0] = rt.Binaries[0]
		}
	}
	_, a, err := runtimes.Prepare(jsruntime.Worker{Argv: argv, Env: env}, jsruntime.Options{Runtime: rt})
	if err != nil {
		return 0, "", fmt.Errorf("prepare the worker command: %w", err)
	}
	if a.UserHeapAt == "" || rt.Memory != jsruntime.HeapCap {
		// A setting of a runtime without a hard heap cap (Bun's
		// BUN_JSC_forceRAMSize) caps nothing; the plan line reports it.
		return 0, "", nil
	}
	return a.UserHeapMB, a.UserHeapAt + " " + rt.HeapSetting, nil
}

func planLine(res machine.Resources, p machine.Plan, rt jsruntime.Runtime, a jsruntime.Applied) string {
	heap := "none"
	switch {
	case a.UserHeapAt != "":
		heap = fmt.Sprintf("%dMiB each (your setting in %s; percore's would be %dMiB)", a.UserHeapMB, a.UserHeapAt, p.HeapMB)
	case p.HeapMB > 0:
		heap = fmt.Sprintf("%dMiB each (%s)", p.HeapMB, p.HeapReason)
	case p.HeapReason != "":
		heap = "none (" + p.HeapReason + ")"
	}
	return fmt.Sprintf("plan: cpus=%d (%s) memory=%s (%s) workers=%d (%s) heap=%s runtime=%s",
		res.CPUs, res.CPUSource, machine.FormatBytes(res.Memory), res.MemorySource,
		p.Workers, p.WorkersReason, heap, rt)
}

// runtime is the runtime of cfg.Command: the one --runtime names, else the
// one detected from the command; without a command (percore plan), the
// first runtime percore knows.
func (cfg *config) runtime() jsruntime.Runtime {
	if cfg.Runtime != "" {
		rt, _ := cfg.Runtimes.Lookup(cfg.Runtime) // checked when parsed
		return rt
	}
	if len(cfg.Command) == 0 {
		return cfg.Runtimes.Primary()
	}
	return cfg.Runtimes.Detect(cfg.Command)
}
