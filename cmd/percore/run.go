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
	"github.com/percore/percore/memwatch"
	"github.com/percore/percore/proxy"
	"github.com/percore/percore/sizing"
	"github.com/percore/percore/supervisor"
	"github.com/percore/percore/watch"
)

// Exit codes; docs/operations.md documents them.
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
		if sub, ok := findSubcommand(args[0]); ok {
			earlysignal.Release() // a subcommand ends on a signal's default action
			c := &cli{runtimes: runtimes, environ: environ, stdin: os.Stdin, stdout: stdout, stderr: stderr}
			return sub.Run(c, args[1:])
		}
	}
	sigs := catchSignals()
	defer earlysignal.Release()
	environ, launcher, err := takeLauncher(environ)
	if err != nil {
		fmt.Fprintf(stderr, "percore: %v\n", err)
		return exitUsage
	}
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
	if launcher != 0 {
		if err := followLauncher(launcher, sigs); err != nil {
			log.Error("percore failed", "error", err)
			return exitError
		}
		cfg.Launcher = launcher
	}
	if err := serve(cfg, environ, log, sigs); err != nil {
		var crash *supervisor.CrashLoopError
		if errors.As(err, &crash) {
			log.Error(crash.Error())
			return exitCrashLoop
		}
		log.Error("percore failed", "error", err)
		var unsafe *control.UnsafePathError
		var taken *control.TakenError
		if errors.As(err, &unsafe) || errors.As(err, &taken) {
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
	re := &replanner{log: log}
	p, err := makePlan(cfg, log, re.apply)
	if err != nil {
		return err
	}
	var publicLn net.Listener
	var dp *directParts
	if cfg.Mode == modeDirect {
		sockets, err := openDirect(cfg, p.live.Plan().Workers, log)
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
	ctlInfo := control.Info{Public: publicLn.Addr().String()}
	if dp != nil {
		ctlInfo.Public = dp.sockets.Addr()
	}
	if adminLn != nil {
		ctlInfo.Admin = adminLn.Addr().String()
	}
	ctl, err := openControl(cfg, controlName(cfg, ctlInfo.Public), log)
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
	// Before percore drops to --user: registering for the cgroup's
	// notifications needs its files opened as root.
	cgroup := openCgroup(cfg, log)
	if cgroup != nil {
		defer cgroup.Close()
	}
	reaper, err := supervisor.NewReaper(log.Named("reaper"))
	if err == nil && cfg.User != nil {
		err = becomeUser(cfg, &environ, log)
		if err == nil && cfg.Launcher != 0 {
			err = followLauncher(cfg.Launcher, sigs) // a change of user clears it
		}
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

	if dp != nil {
		if dp.dir, p.preload, err = writePreload(p.rt, modeDirect); err != nil {
			return err
		}
	} else {
		var dir string
		if dir, p.preload, err = writePreload(p.rt, modeProxy); err != nil {
			// Not fatal: without the preload the proxy gives each request
			// a connection of its own, and the workers listen where the
			// app says.
			log.Warn("running the workers without percore's preload: no directory could hold it, so each request "+
				"gets a connection of its own and workers listen where the app names (mount a tmpfs on /tmp)", "error", err)
		}
		if dir != "" {
			defer os.RemoveAll(dir)
		}
	}
	up, err := workerSockets(cfg, p, dp != nil, log)
	if err != nil {
		return err
	}
	if up.dir != "" {
		defer os.RemoveAll(up.dir)
	}
	a, err := assemble(cfg, p, environ, log, reaper, up, dp, cgroup)
	if err != nil {
		return err
	}
	re.sup.Store(a.sup)
	if dp != nil {
		watchAccepting(dp.sockets, a.sup)
	}
	a.sigs = sigs
	a.ctl, a.ctlInfo = ctl, ctlInfo
	// The admin listener keeps a spare descriptor to answer probes while
	// percore has none left; the public listener's retries refill it
	// before they take a descriptor that frees.
	var admin *accept.Listener
	var refill []*accept.Listener
	if adminLn != nil {
		admin = accept.New(adminLn, accept.Config{Name: "admin", Logger: log, Spare: true})
		refill = append(refill, admin)
	}
	pub := publicLn // closedListener in direct mode
	if dp != nil {
		log.Info("direct mode: workers accept on the public address themselves", "addr", dp.sockets.Addr())
	} else {
		log.Info("proxy listening", "addr", publicLn.Addr().String())
		l := accept.New(publicLn, accept.Config{Name: "public", Logger: log, Refill: refill})
		a.listeners = append(a.listeners, l)
		pub = l
	}
	if admin != nil {
		log.Info("admin listening", "addr", adminLn.Addr().String())
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
	live  *sizing.Live
	log   hclog.Logger
	sd    *shutdown
	pool  *proxy.Pool
	proxy *proxy.Handler
	srv   proxy.ServerConfig
	sup   *supervisor.Supervisor
	watch *watch.Watcher // nil without --watch

	cgroup *memwatch.Watch // nil where no memory cgroup limits percore

	listeners  listeners
	sigs       chan os.Signal  // from catchSignals
	ctl        *control.Server // nil without a control socket
	ctlInfo    control.Info    // what ctl's info command tells
	status     *statusSource
	load       *loadWindow // nil in direct mode
	checks     health.CheckConfig
	checksOn   bool
	readyMin   int
	adminHosts []string
	mode       mode
	direct     *direct.Sockets // nil in proxy mode
}

// upstreamSockets says how the proxy reaches the workers: over loopback
// TCP when dir is "", else over Unix sockets in dir, which percore binds and
// passes to each worker when inherit is set, or which PORT names.
type upstreamSockets struct {
	dir     string
	inherit bool
}

// workerSockets creates the private directory of the workers' sockets,
// after percore became --user, so the workers can use it: for --upstream
// unix, and by default for a runtime whose proxy-mode preload takes a
// Unix socket passed to it (node), unless percore has no preload to load
// or runs in direct mode.
func workerSockets(cfg *config, p plan, direct bool, log hclog.Logger) (upstreamSockets, error) {
	var up upstreamSockets
	switch {
	case cfg.Upstream == "unix":
	case cfg.Upstream == "auto" && !direct && p.preload != "" && p.rt.UnixUpstream:
		up.inherit = true
	default:
		return up, nil
	}
	dir, err := os.MkdirTemp("", "percore-sockets-")
	if err != nil && up.inherit {
		log.Warn("the workers are reached over loopback TCP: no directory could hold their Unix sockets", "error", err)
		return upstreamSockets{}, nil
	}
	if err != nil {
		return up, fmt.Errorf("--upstream unix: %w", err)
	}
	up.dir = dir
	return up, nil
}

func assemble(cfg *config, p plan, environ []string, log hclog.Logger, l supervisor.Launcher, up upstreamSockets,
	dp *directParts, cgroup *memwatch.Watch) (*actors, error) {
	pool := proxy.NewPool(proxy.UpstreamConfig{Logger: log.Named("proxy")})
	out := supervisor.NewOutput(outputConfig(cfg))
	first := p.live.Plan()
	guard := guardOf(first)
	var cg supervisor.CgroupMemory
	if cgroup != nil {
		cg = cgroup
	}
	sup, err := supervisor.New(supervisor.Config{
		Command:         cfg.Command,
		Env:             environ,
		Workers:         first.Workers,
		Prepare:         p.prepare,
		Launcher:        l,
		Router:          dp.router(pool),
		Output:          out,
		Logger:          log.Named("supervisor"),
		ReadyTimeout:    cfg.ReadyTimeout,
		Probation:       cfg.Probation,
		StopSignal:      cfg.StopSignal,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Guard:           guard,
		SpareSlot:       first.SpareSlot,
		MaxBootFailures: cfg.MaxBootFailures,
		SocketDir:       up.dir,
		InheritSockets:  up.inherit,
		OOM:             oomCounter(),
		Cgroup:          cg,
		Sockets:         dp.supervisorSockets(),
		Ping:            p.preload != "",
		RefusedExitCode: dp.refusedExitCode(),
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
	handler, srv := proxyParts(cfg, pool, log, func(key uint64) { sup.Recycle(key, supervisor.EndMaxRequests) })
	var load *loadWindow
	if cfg.Mode == modeProxy {
		load = newLoadWindow(pool.Load)
	}
	return &actors{
		live:  p.live,
		log:   log,
		sd:    &shutdown{timeout: cfg.ShutdownTimeout},
		pool:  pool,
		proxy: handler,
		srv:   srv,
		sup:   sup,
		watch: watcher,

		cgroup: cgroup,

		status: &statusSource{started: time.Now(), plan: p,
			sup: sup, pool: pool, rss: newRSSHistory(sup.Snapshot), mode: cfg.Mode, direct: dp.directSockets()},
		load:       load,
		mode:       cfg.Mode,
		direct:     dp.directSockets(),
		checks:     cfg.Checks,
		checksOn:   cfg.ChecksOn,
		readyMin:   cfg.ReadyMin,
		adminHosts: cfg.AdminHosts,
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

	if a.cgroup != nil {
		g.Add(a.cgroup.Run, func(error) { a.cgroup.Close() })
	}

	g.Add(func() error {
		defer close(supDone)
		return a.sup.Run()
	}, func(error) {
		a.sup.Stop(a.sd.begin())
		<-supDone
	})

	var checker *health.Checker
	if a.checksOn {
		checker = health.NewChecker(a.checks, fleet{a.sup}, a.log.Named("health"))
	}
	if adminLn != nil {
		metrics := &collector{sup: a.sup, pool: a.pool, handler: a.proxy, load: a.load, mode: a.mode, direct: a.direct, checks: checker}
		admin := health.New(adminLn, health.Config{Workers: a, Listeners: a.listeners, Logger: a.log.Named("admin"),
			Status: a.status, ReadyMin: a.readyMin, StartWorkers: a.startWorkers(), Hosts: a.adminHosts, Metrics: metrics})
		a.sd.onBegin = admin.MarkShuttingDown
		g.Add(admin.Run, func(error) { admin.Stop() })
		g.Add(a.status.rss.run, a.status.rss.interrupt)
		if a.load != nil { // only /metrics reads it
			g.Add(a.load.run, a.load.interrupt)
		}
	}

	trim := newTrimmer()
	g.Add(trim.run, trim.interrupt)

	if checker != nil {
		g.Add(checker.Run, func(error) { checker.Stop() })
	}

	steer := steering{live: a.live, sup: a.sup, log: a.log}
	if a.ctl != nil {
		g.Add(func() error { return a.ctl.Serve(steer, a.ctlInfo) }, func(error) { a.ctl.Stop() })
	}

	follow := newLiveActor(a.live)
	g.Add(follow.run, follow.interrupt)

	sigs := newSignals(a.log, a.sd, steer, a.sigs)
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
// percore: the --control path, else the default socket of the percore
// named name. An unsafe --control path, or one another user holds, stops
// percore; a default one that cannot be had is logged loudly, with what to
// do instead, and percore runs without a control socket.
func openControl(cfg *config, name string, log hclog.Logger) (*control.Server, error) {
	if cfg.ControlOff {
		return nil, nil
	}
	explicit := cfg.Control != ""
	var ctl *control.Server
	var err error
	if explicit {
		ctl, err = control.Listen(cfg.Control, log.Named("control"))
	} else {
		ctl, err = control.ListenInstance(name, log.Named("control"))
	}
	var unsafe *control.UnsafePathError
	var taken *control.TakenError
	foreign := errors.As(err, &taken) && taken.Foreign()
	switch {
	case err == nil:
		log.Info("control socket", "path", ctl.Path())
		return ctl, nil
	case explicit && (foreign || errors.As(err, &unsafe)):
		return nil, fmt.Errorf("--control %s: %w", cfg.Control, err)
	case foreign:
		log.Error("refusing to share the control socket's name: "+withoutControl, "pid", os.Getpid(), "error", err)
	case errors.As(err, &unsafe):
		log.Error("refusing the control socket's directory: "+withoutControl, "pid", os.Getpid(), "error", err)
	default:
		log.Warn("running without a control socket: "+withoutControl, "pid", os.Getpid(), "error", err)
	}
	return nil, nil
}

// withoutControl says what a percore without a control socket means, and
// what to do instead.
const withoutControl = "percore reload and scale will not reach this percore; " +
	"send it SIGHUP to reload, SIGTTIN or SIGTTOU to scale (kill -HUP PID)"

// controlName names percore's default control socket after its public
// address, bound is where it listens: the port alone with --port, HOST:PORT
// with --listen, with the port it got for port 0.
func controlName(cfg *config, bound string) string {
	port := cfg.Port
	if _, p, err := net.SplitHostPort(bound); err == nil {
		port = p
	}
	host := ""
	if cfg.Listen != "" {
		host, _, _ = net.SplitHostPort(cfg.Listen)
	}
	return control.InstanceName(host, port)
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
func (a *actors) ReadyWorkers() int { return workersReady(a.sup, a.direct) }

// plan is the live sizing plan and the way workers get their heap limit.
type plan struct {
	live     *sizing.Live
	rt       jsruntime.Runtime
	runtimes jsruntime.Registry
	preload  string // the mode's preload's path; "" for none
}

// prepare implements supervisor.PrepareFunc with the plan in force.
func (p plan) prepare(argv, env []string, port int) ([]string, []string, error) {
	w, _, err := p.runtimes.Prepare(jsruntime.Worker{Argv: argv, Env: env}, p.options(port))
	return w.Argv, w.Env, err
}

// openCgroup opens the memory cgroup whose limit holds percore, for the
// memory guard; nil where none limits it, or with --max-memory off.
func openCgroup(cfg *config, log hclog.Logger) *memwatch.Watch {
	if cfg.MaxMemorySet && cfg.MaxMemoryMB == 0 {
		return nil
	}
	mc, ok := (machine.Detector{Root: "/"}).MemoryCgroup()
	if !ok {
		return nil
	}
	w, err := memwatch.Open(mc.Dir, mc.Version, log)
	if err != nil {
		log.Warn("memory cgroup: cannot read it; the memory guard samples each worker only", "cgroup", mc.Dir, "error", err)
		return nil
	}
	if n := w.Notifies(); n != "" {
		log.Info("memory cgroup: the memory guard reads it after each round of samples, and samples at once on "+n,
			"cgroup", mc.Dir)
	}
	return w
}

// oomCounter returns the OOM kill counter of percore's memory cgroup, or
// nil where there is none.
func oomCounter() supervisor.OOMCounter {
	if c, ok := (machine.Detector{Root: "/"}).OOMCounter(); ok {
		return c
	}
	return nil
}

// options are the settings Prepare gives a worker listening on port, from
// the plan in force.
func (p plan) options(port int) jsruntime.Options {
	s := p.live.Plan()
	return jsruntime.Options{Runtime: p.rt, HeapMB: s.RuntimeHeapMB, SemiSpaceMB: s.SemiSpaceMB, Port: port,
		Preload: p.preload}
}

// planner is the sizing of cfg's command, started with environment env.
func planner(cfg *config, env []string) sizing.Planner {
	return sizing.Planner{
		Settings: sizing.Settings{
			Workers: cfg.Workers, WorkersSource: cfg.WorkersSource,
			Heap: cfg.Heap, HeapMB: cfg.HeapMB, IncludeSwap: cfg.IncludeSwap,
			MaxMemoryMB: cfg.MaxMemoryMB, MaxMemorySet: cfg.MaxMemorySet,
		},
		Runtime: cfg.runtime(), Runtimes: cfg.Runtimes, Command: cfg.Command, Env: env,
	}
}

// makePlan detects the machine, decides workers and heap, and logs the plan
// line. The plan follows the cgroup's limits when cfg says so; apply puts a
// new plan in force.
func makePlan(cfg *config, log hclog.Logger, apply func(sizing.Change)) (plan, error) {
	res, err := machine.Detect()
	if err != nil {
		return plan{}, fmt.Errorf("detect resources: %w", err)
	}
	for _, n := range res.Notes {
		log.Info("resources", "note", n)
	}
	live, err := sizing.NewLive(sizing.LiveConfig{
		Planner: planner(cfg, os.Environ()), Follow: cfg.followLimits(res),
		Apply: apply, Logger: log,
	}, res)
	if err != nil {
		return plan{}, err
	}
	first := live.Plan()
	for _, w := range first.Warnings {
		log.Warn(w)
	}
	p := plan{live: live, rt: cfg.runtime(), runtimes: cfg.Runtimes}
	applied, err := p.dryRun(cfg.Command)
	if err != nil {
		return plan{}, err
	}
	log.Info(first.Line(applied))
	if applied.Warning != "" {
		log.Warn(applied.Warning)
	}
	if w := modeWarning(cfg); w != "" {
		log.Warn(w)
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
