package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/percore/percore/health"
	"github.com/percore/percore/jsruntime"
	"github.com/percore/percore/sizing"
)

// config is everything percore was asked to do.
type config struct {
	Port              string   // the public port, used when Listen is empty
	Listen            string   // the public address; wins over Port
	Workers           int      // 0 = auto
	WorkersSource     string   // which input set Workers
	Admin             string   // "" = off
	AdminHosts        []string // names the admin listener answers as Host, besides IP addresses and localhost
	Heap              sizing.HeapMode
	HeapMB            int
	Runtime           string             // "" = detect from the command
	Runtimes          jsruntime.Registry // the runtimes percore knows
	IncludeSwap       bool
	FollowLimits      bool // --follow-limits, when FollowLimitsSet
	FollowLimitsSet   bool
	ShutdownTimeout   time.Duration
	ReadyTimeout      time.Duration
	Probation         time.Duration // 0 = off
	WorkerWait        time.Duration
	StopSignal        syscall.Signal
	LogLevel          hclog.Level
	LogFormat         string
	MaxMemoryMB       int  // 0 = off, or the runtime's default (without a hard heap cap: the budget)
	MaxMemorySet      bool // --max-memory was given (even "off")
	MaxRequests       int  // recycle a worker after this many requests; 0 = never
	MaxRequestsJitter int
	Control           string // --control: a path, or @name; "" = the default, named after the public address
	ControlOff        bool   // --control off
	Checks            health.CheckConfig
	ChecksOn          bool
	ReadyMin          int
	MaxBootFailures   int
	LogPrefix         string // "auto", "on" or "off"
	User              *runAs // nil: workers run as percore does
	Upstream          string // "auto", "tcp" or "unix"
	Mode              mode   // proxy or direct
	Proxy             proxySettings
	Watch             watchSettings
	Command           []string
	Launcher          int // the npm launcher's pid (PERCORE_LAUNCHER_PID), 0 = none
}

// The flags table of docs/reference/flags.md is made from options() and
// subcommands(); TestDocsFlagsTable fails when it differs.
//go:generate go test -run ^TestDocsFlagsTable$ -update-docs .

// option is one flag, with the environment variable that can also set it.
// The same fields make percore --help and docs/reference/flags.md.
type option struct {
	name   string
	value  string // shown in help, e.g. "N|auto"
	def    string
	usage  string
	doc    string // the guide that says more, a path below docs/ with an anchor; "" when usage says it all
	isBool bool
	set    func(c *config, v string) error
}

// envName is the variable that sets an option: PERCORE_ and the flag name
// in capitals with dashes as underscores.
func (o option) envName() string {
	return "PERCORE_" + strings.ToUpper(strings.ReplaceAll(o.name, "-", "_"))
}

// synopsis is the flag as it is written: "--workers N|auto".
func (o option) synopsis() string {
	if o.value == "" {
		return "--" + o.name
	}
	return "--" + o.name + " " + o.value
}

// Defaults that are not another package's.
const (
	defaultPort            = "8080"
	defaultAdmin           = ":8081"
	defaultShutdownTimeout = 8 * time.Second
	// defaultProbation covers the new code that dies soon after it
	// listens: a failed connection to a database or a queue, an unhandled
	// rejection, a first timer or request; each worker's replacement in a
	// reload serves for it beside the worker it replaces.
	defaultProbation = 3 * time.Second
)

func options() []option {
	return append(append(coreOptions(), proxyOptions()...), watchOptions()...)
}

func coreOptions() []option {
	return []option{
		{name: "port", value: "PORT", def: "$PORT, else " + defaultPort,
			usage: "public port, on all interfaces", set: setPort},
		{name: "listen", value: "HOST:PORT", usage: "public address (wins over --port)", set: setListen},
		{name: "workers", value: "N|auto", def: "auto",
			usage: "worker processes; auto = usable CPUs, capped by memory (WEB_CONCURRENCY is read when unset)",
			doc:   "sizing.md#how-sizing-works",
			set:   setWorkers},
		{name: "heap", value: "MB|auto|off", def: "auto",
			usage: "V8 old-space limit per worker in MiB (--max-old-space-size)",
			doc:   "sizing.md#how-sizing-works", set: setHeap},
		{name: "runtime", value: strings.Join(jsruntime.Default().Names(), "|"), def: "detected from COMMAND",
			usage: "how to pass the heap limit to the workers",
			doc:   "sizing.md#how-each-runtime-gets-its-limit", set: setRuntime},
		{name: "include-swap", isBool: true, def: "false",
			usage: "count swap as memory when sizing heaps",
			doc:   "sizing.md#how-sizing-works", set: setIncludeSwap},
		{name: "follow-limits", value: "on|off", def: "on where a cgroup limits the CPUs or memory",
			usage: "read the cgroup's limits every 2s and on SIGHUP, and plan again when they change",
			doc:   "sizing.md#the-live-plan", set: setFollowLimits},
		{name: "admin", value: "HOST:PORT|off", def: defaultAdmin,
			usage: "admin listener for /healthz and /readyz",
			doc:   "operations.md#admin-endpoints", set: setAdmin},
		{name: "admin-hosts", value: "NAME,...", def: "none: IP addresses and localhost",
			usage: "names, besides IP addresses and localhost, that requests to the admin listener may give as Host; others get 421 (against DNS rebinding)",
			doc:   "operations.md#admin-endpoints", set: setAdminHosts},
		{name: "shutdown-timeout", value: "DURATION", def: defaultShutdownTimeout.String(),
			usage: "budget for a graceful stop: drain, stop signal, then SIGKILL",
			doc:   "operations.md#stopping-and-the-platforms-deadline", set: durationSetter(func(c *config) *time.Duration { return &c.ShutdownTimeout })},
		{name: "ready-timeout", value: "DURATION", def: "30s",
			usage: "how long a worker may take to listen on its port", set: durationSetter(func(c *config) *time.Duration { return &c.ReadyTimeout })},
		{name: "probation", value: "DURATION", def: defaultProbation.String(),
			usage: "in a reload, how long a new worker serves beside the one it replaces before that one stops; a new worker that dies within it fails the reload, the old workers serve on; 0 = off",
			doc:   "operations.md#signals-reloads-scaling-and-recycling",
			set:   setProbation},
		{name: "worker-wait", value: "DURATION", def: "10s",
			usage: "how long a request waits for a ready worker before 503",
			doc:   "proxy.md#how-a-request-is-routed", set: durationSetter(func(c *config) *time.Duration { return &c.WorkerWait })},
		{name: "stop-signal", value: "SIGNAL", def: "SIGTERM",
			usage: "signal that asks a worker to stop",
			doc:   "operations.md#stopping-and-the-platforms-deadline", set: setStopSignal},
		{name: "max-memory", value: "MB|off", def: "the worker's memory budget when a cgroup limits memory (" + recycledByRSS(jsruntime.Default()) + ": always), else off",
			usage: "memory guard: recycle a worker so that it is gone before its memory (its processes' PSS, with its descendants) exceeds this, at the rate it grows; kill it above a hard limit",
			doc:   "sizing.md#the-memory-guard", set: setMaxMemory},
		{name: "max-requests", value: "N|off", def: "off",
			usage: "recycle a worker after N requests (replaced first, then drained)",
			doc:   "operations.md#recycling", set: setMaxRequests},
		{name: "max-requests-jitter", value: "N", def: "0",
			usage: "recycle after up to N more requests, so workers are not recycled together", set: intSetter(0, 1<<30, func(c *config) *int { return &c.MaxRequestsJitter })},
		{name: "control", value: "PATH|@NAME|off", def: "@percore/PORT or @percore/HOST:PORT after --port or --listen (Linux), else PORT.sock in $XDG_RUNTIME_DIR/percore",
			usage: "Unix socket for percore reload and percore scale; @NAME is an abstract socket (Linux)",
			doc:   "operations.md#the-control-socket", set: setControl},
		{name: "health-path", value: "PATH", def: "a ping",
			usage: "GET this path on each worker to check it (2xx/3xx passes); by default percore pings the preload's private listener, out of the app's sight (OPTIONS * where none answers)",
			doc:   "operations.md#active-health-checks", set: setHealthPath},
		{name: "health-interval", value: "DURATION|off", def: health.DefaultCheckInterval.String(),
			usage: "how often each worker is checked",
			doc:   "operations.md#active-health-checks", set: setHealthInterval},
		{name: "health-timeout", value: "DURATION", def: health.DefaultCheckTimeout.String(),
			usage: "how long one check may take",
			doc:   "operations.md#active-health-checks", set: durationSetter(func(c *config) *time.Duration { return &c.Checks.Timeout })},
		{name: "health-threshold", value: "N", def: strconv.Itoa(health.DefaultCheckThreshold),
			usage: "failed checks in a row that take a worker out of rotation and restart it",
			doc:   "operations.md#active-health-checks", set: intSetter(1, 100, func(c *config) *int { return &c.Checks.Threshold })},
		{name: "ready-min", value: "N", def: "1",
			usage: "ready workers needed for /readyz to answer 200 (in --mode direct the first 200 also waits for every worker of the plan)",
			doc:   "reference/admin-api.md#endpoints", set: intSetter(1, 1024, func(c *config) *int { return &c.ReadyMin })},
		{name: "max-boot-failures", value: "N", def: "5",
			usage: "failed starts in a row, with no worker ready, before percore gives up (exit 3)",
			doc:   "operations.md#supervision-and-exit-codes", set: intSetter(1, 1000, func(c *config) *int { return &c.MaxBootFailures })},
		{name: "log-prefix", value: "auto|on|off", def: "auto (on when stdout is a terminal)",
			usage: "put [worker id] before each line of worker output (coloured on a terminal)",
			doc:   "operations.md#what-each-worker-gets", set: setLogPrefix},
		{name: "mode", value: "proxy|direct", def: "proxy",
			usage: "proxy: percore's HTTP/1.1 proxy balances each request; direct: the kernel hands each connection to a worker (no hop, any protocol; node, and deno run and bun with servers that take an inherited socket)",
			doc:   "direct-mode.md", set: setMode},
		{name: "upstream", value: "auto|tcp|unix", def: "auto",
			usage: "how the proxy reaches workers: auto gives node workers a Unix socket that their listen(process.env.PORT) takes, PORT staying a number (TCP when that cannot work, and for deno and bun); tcp a loopback port; unix a Unix socket whose path is PORT (the app must listen on PORT as given; not deno serve)",
			doc:   "design/performance.md#levers-measured", set: setUpstream},
		{name: "user", value: "NAME|UID[:GID]", def: "percore's own user",
			usage: "when started as root, run the workers, and percore once its ports are open, as this user (HOME, USER and LOGNAME set to theirs)", set: setUser},
		{name: "log-level", value: "LEVEL", def: "info",
			usage: "trace, debug, info, warn or error", set: setLogLevel},
		{name: "log-format", value: "text|json", def: "text",
			usage: "format of percore's own log lines", set: setLogFormat},
	}
}

// usageError is a mistake in the command line or the environment; percore
// exits 2 on it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errHelp asks for the help text.
var errHelp = errors.New("help requested")

// recycledByRSS names the runtimes without a hard heap cap, which the
// memory guard always watches: "bun".
func recycledByRSS(runtimes jsruntime.Registry) string {
	var names []string
	for _, rt := range runtimes.Runtimes() {
		if rt.Memory == jsruntime.RecycleByRSS {
			names = append(names, rt.Name)
		}
	}
	return strings.Join(names, ", ")
}

// parseConfig reads flags from args and PERCORE_* variables from env; a flag
// given on the command line wins over the environment.
func parseConfig(args []string, env map[string]string) (*config, error) {
	return parseConfigFor(jsruntime.Default(), args, env, true)
}

// parseConfigFor is parseConfig with the runtimes percore knows;
// requireCommand is false for "percore plan".
func parseConfigFor(runtimes jsruntime.Registry, args []string, env map[string]string, requireCommand bool) (*config, error) {
	opts := options()
	c := defaultConfig(env)
	c.Runtimes = runtimes
	explicit, command, err := parseFlags(args, opts, c)
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		if explicit[o.name] {
			continue
		}
		v, ok := env[o.envName()]
		if !ok || v == "" {
			continue
		}
		if err := o.set(c, v); err != nil {
			return nil, usagef("%s=%q: %v", o.envName(), v, err)
		}
		if o.name == "workers" && c.Workers > 0 {
			c.WorkersSource = o.envName()
		}
	}
	if !explicit["workers"] && c.Workers == 0 && env["PERCORE_WORKERS"] == "" && env["WEB_CONCURRENCY"] != "" {
		if err := setWorkers(c, env["WEB_CONCURRENCY"]); err != nil {
			return nil, usagef("WEB_CONCURRENCY=%q: %v", env["WEB_CONCURRENCY"], err)
		}
		c.WorkersSource = "WEB_CONCURRENCY"
	}
	if c.Listen == "" {
		if err := setPort(c, c.Port); err != nil {
			return nil, usagef("PORT=%q: %v", c.Port, err)
		}
	}
	if len(command) == 0 && requireCommand {
		return nil, usagef("missing COMMAND: say what to run, e.g. percore -- node server.js")
	}
	c.Command = command
	if err := checkMode(c); err != nil {
		return nil, err
	}
	return c, nil
}

func defaultConfig(env map[string]string) *config {
	port := defaultPort
	if p := env["PORT"]; p != "" {
		port = p
	}
	return &config{
		Port:            port,
		Runtimes:        jsruntime.Default(),
		Admin:           defaultAdmin,
		Heap:            sizing.HeapAuto,
		ShutdownTimeout: defaultShutdownTimeout,
		ReadyTimeout:    30 * time.Second,
		Probation:       defaultProbation,
		WorkerWait:      10 * time.Second,
		StopSignal:      syscall.SIGTERM,
		LogLevel:        hclog.Info,
		LogFormat:       "text",
		ChecksOn:        true,
		ReadyMin:        1,
		LogPrefix:       "auto",
		Upstream:        "auto",
	}
}

// parseFlags reads flags up to "--" or the first argument that is not a
// flag, which starts COMMAND. It reports which options were given.
func parseFlags(args []string, opts []option, c *config) (map[string]bool, []string, error) {
	byName := make(map[string]option, len(opts))
	for _, o := range opts {
		byName[o.name] = o
	}
	explicit := make(map[string]bool)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return explicit, args[i+1:], nil
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			return explicit, args[i:], nil
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "h" || name == "help" {
			return nil, nil, errHelp
		}
		o, ok := byName[name]
		if !ok {
			return nil, nil, usagef("unknown flag %s (see percore --help)", a)
		}
		if o.isBool && !hasValue {
			value, hasValue = "true", true
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, nil, usagef("flag --%s needs a value (%s)", name, o.value)
			}
			i++
			value = args[i]
		}
		if err := o.set(c, value); err != nil {
			return nil, nil, usagef("--%s %q: %v", name, value, err)
		}
		explicit[name] = true
		if name == "workers" && c.Workers > 0 {
			c.WorkersSource = "--workers"
		}
	}
	return explicit, nil, nil
}

// publicAddr is where the proxy listens: --listen, else all interfaces on --port.
func (c *config) publicAddr() string {
	if c.Listen != "" {
		return c.Listen
	}
	return ":" + c.Port
}

func setPort(c *config, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		return errors.New("want a port number from 0 to 65535")
	}
	c.Port = strconv.Itoa(n)
	return nil
}

func setListen(c *config, v string) error {
	if err := checkHostPort(v); err != nil {
		return err
	}
	c.Listen = v
	return nil
}

func checkHostPort(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("want HOST:PORT: %w", err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func setWorkers(c *config, v string) error {
	if v == "auto" {
		c.Workers, c.WorkersSource = 0, ""
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return errors.New(`want a whole number of workers or "auto"`)
	}
	if n < 1 {
		return errors.New("at least 1 worker is needed")
	}
	if n > 1024 {
		return errors.New("more than 1024 workers is surely a mistake")
	}
	c.Workers = n
	return nil
}

func setHeap(c *config, v string) error {
	switch v {
	case "auto":
		c.Heap, c.HeapMB = sizing.HeapAuto, 0
	case "off":
		c.Heap, c.HeapMB = sizing.HeapOff, 0
	default:
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New(`want a size in MiB, "auto" or "off"`)
		}
		if n < 16 || n > 1<<20 {
			return errors.New("want a heap size in MiB from 16 to 1048576")
		}
		c.Heap, c.HeapMB = sizing.HeapFixed, n
	}
	return nil
}

func setRuntime(c *config, v string) error {
	rt, err := c.Runtimes.Lookup(v)
	if err != nil {
		return err
	}
	c.Runtime = rt.String()
	return nil
}

func setFollowLimits(c *config, v string) error {
	switch v {
	case "on":
		c.FollowLimits = true
	case "off":
		c.FollowLimits = false
	default:
		return errors.New("want on or off")
	}
	c.FollowLimitsSet = true
	return nil
}

func setIncludeSwap(c *config, v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return errors.New("want true or false")
	}
	c.IncludeSwap = b
	return nil
}

func setAdmin(c *config, v string) error {
	if v == "off" {
		c.Admin = ""
		return nil
	}
	if err := checkHostPort(v); err != nil {
		return err
	}
	c.Admin = v
	return nil
}

// setAdminHosts takes host names (or IP addresses, always served anyway),
// without ports.
func setAdminHosts(c *config, v string) error {
	names := splitList(v)
	for _, n := range names {
		if _, err := netip.ParseAddr(n); err != nil && !isHostName(n) {
			return fmt.Errorf("%q is not a host name (want names such as percore.internal, separated by commas, without ports)", n)
		}
	}
	c.AdminHosts = names
	return nil
}

// isHostName reports whether n is a DNS name: dot-separated labels of
// letters, digits, '-' and '_', with an optional trailing dot.
func isHostName(n string) bool {
	n = strings.TrimSuffix(n, ".")
	if n == "" || len(n) > 253 {
		return false
	}
	for label := range strings.SplitSeq(n, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") {
			return false
		}
		for _, r := range label {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

func durationSetter(field func(*config) *time.Duration) func(*config, string) error {
	return func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("want a duration such as 500ms, 10s or 1m")
		}
		if d <= 0 {
			return errors.New("want a duration above zero")
		}
		*field(c) = d
		return nil
	}
}

func setProbation(c *config, v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return errors.New("want a duration such as 3s or 500ms, or 0 to turn it off")
	}
	c.Probation = d
	return nil
}

// stopSignals are the signals a worker may be asked to stop with.
var stopSignals = map[string]syscall.Signal{
	"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT,
	"HUP": syscall.SIGHUP, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2,
	"KILL": syscall.SIGKILL,
}

func setStopSignal(c *config, v string) error {
	s, err := parseSignal(v)
	if err != nil {
		return err
	}
	c.StopSignal = s
	return nil
}

// parseSignal accepts TERM, SIGTERM, sigterm or a number of a known signal.
func parseSignal(v string) (syscall.Signal, error) {
	name := strings.TrimPrefix(strings.ToUpper(v), "SIG")
	if s, ok := stopSignals[name]; ok {
		return s, nil
	}
	if n, err := strconv.Atoi(v); err == nil {
		for _, s := range stopSignals {
			if int(s) == n {
				return s, nil
			}
		}
	}
	return 0, errors.New("want one of TERM, INT, QUIT, HUP, USR1, USR2, KILL")
}

func setMaxMemory(c *config, v string) error {
	c.MaxMemorySet = true
	if v == "off" {
		c.MaxMemoryMB = 0
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 16 {
		return errors.New(`want a size in MiB of at least 16, or "off"`)
	}
	c.MaxMemoryMB = n
	return nil
}

func setMaxRequests(c *config, v string) error {
	if v == "off" {
		c.MaxRequests = 0
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return errors.New(`want a whole number of requests above zero, or "off"`)
	}
	c.MaxRequests = n
	return nil
}

func setControl(c *config, v string) error {
	if v == "off" {
		c.Control, c.ControlOff = "", true
		return nil
	}
	if v == "@" || (!strings.HasPrefix(v, "/") && !strings.HasPrefix(v, ".") && !strings.HasPrefix(v, "@")) {
		return errors.New(`want a socket path, @NAME, or "off"`)
	}
	c.Control, c.ControlOff = v, false
	return nil
}

func setHealthPath(c *config, v string) error {
	if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, " \r\n") {
		return errors.New("want a path starting with / and without spaces")
	}
	c.Checks.Path = v
	return nil
}

func setHealthInterval(c *config, v string) error {
	if v == "off" {
		c.ChecksOn = false
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return errors.New(`want a duration above zero such as 5s, or "off"`)
	}
	c.Checks.Interval, c.ChecksOn = d, true
	return nil
}

func intSetter(lo, hi int, field func(*config) *int) func(*config, string) error {
	return func(c *config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("want a whole number from %d to %d", lo, hi)
		}
		*field(c) = n
		return nil
	}
}

func setUpstream(c *config, v string) error {
	if v != "auto" && v != "tcp" && v != "unix" {
		return errors.New("want auto, tcp or unix")
	}
	c.Upstream = v
	return nil
}

func setLogPrefix(c *config, v string) error {
	if v != "auto" && v != "on" && v != "off" {
		return errors.New("want auto, on or off")
	}
	c.LogPrefix = v
	return nil
}

func setLogLevel(c *config, v string) error {
	l := hclog.LevelFromString(v)
	if l == hclog.NoLevel {
		return errors.New("want trace, debug, info, warn or error")
	}
	c.LogLevel = l
	return nil
}

func setLogFormat(c *config, v string) error {
	if v != "text" && v != "json" {
		return errors.New("want text or json")
	}
	c.LogFormat = v
	return nil
}

// printHelp writes the usage text with every flag, its variable and default.
func printHelp(w io.Writer) {
	fmt.Fprint(w, `percore runs a JavaScript server as one worker per usable CPU behind a
load-balancing proxy, and supervises the workers.

Usage:
  percore [flags] [--] COMMAND [ARGS...]
`)
	printSubcommands(w)
	fmt.Fprint(w, `
Each command takes --help.

Flags (each can also be set by the variable shown; a flag wins):
`)
	for _, o := range options() {
		fmt.Fprintf(w, "  %s\n      %s\n      env %s", o.synopsis(), o.usage, o.envName())
		if o.def != "" {
			fmt.Fprintf(w, ", default %s", o.def)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, `
Exit codes: 0 after a graceful stop, 2 on a usage error, 3 when the app keeps
failing at start-up, 126/127 when COMMAND cannot be run, 1 on other errors.
`)
}
