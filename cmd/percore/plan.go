package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/percore/percore/jsruntime"
	"github.com/percore/percore/machine"
	"github.com/percore/percore/sizing"
	"github.com/percore/percore/supervisor"
)

// planFlags are the extra flags of "percore plan": they replace what
// detection finds, to size a machine before it exists.
type planFlags struct {
	cpus   int
	memory uint64
	swap   uint64
	hasSwp bool
}

// runPlan is "percore plan [flags] [-- COMMAND]": it prints what percore
// would run on this machine, or on the one described by --cpus, --memory
// and --swap, and exits.
func runPlan(runtimes jsruntime.Registry, args, environ []string, stdout, stderr io.Writer, usage func(io.Writer)) int {
	var pf planFlags
	rest, err := pf.parse(args)
	if err == nil {
		var cfg *config
		if cfg, err = parseConfigFor(runtimes, rest, envMap(environ), false); err == nil {
			err = printPlan(stdout, cfg, pf, environ)
		}
	}
	if errors.Is(err, errHelp) {
		usage(stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "percore plan: %v\n", err)
		return exitUsage
	}
	return exitOK
}

// parse takes --cpus, --memory and --swap out of args.
func (pf *planFlags) parse(args []string) ([]string, error) {
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(rest, args[i:]...), nil
		}
		name, value, has := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "--") || (name != "cpus" && name != "memory" && name != "swap") {
			rest = append(rest, a)
			continue
		}
		if !has {
			if i+1 >= len(args) {
				return nil, usagef("flag --%s needs a value", name)
			}
			i++
			value = args[i]
		}
		if err := pf.set(name, value); err != nil {
			return nil, usagef("--%s %q: %v", name, value, err)
		}
	}
	return rest, nil
}

func (pf *planFlags) set(name, value string) error {
	if name == "cpus" {
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 || n > 1024 {
			return errors.New("want a whole number of CPUs from 1 to 1024")
		}
		pf.cpus = n
		return nil
	}
	b, err := parseSize(value)
	if err != nil {
		return err
	}
	if name == "memory" {
		if b < 16<<20 {
			return errors.New("want at least 16MiB")
		}
		pf.memory = b
	} else {
		pf.swap, pf.hasSwp = b, true
	}
	return nil
}

// parseSize reads 512M, 512MiB, 1G, 1.5GiB, 1024K or plain bytes. Units are
// binary, as in Kubernetes' Mi/Gi and Fly's MB sizes of machines.
func parseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%q is not a size such as 512M or 1.5G", s)
	}
	mult := map[string]float64{"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "ki": 1 << 10, "kib": 1 << 10,
		"m": 1 << 20, "mb": 1 << 20, "mi": 1 << 20, "mib": 1 << 20,
		"g": 1 << 30, "gb": 1 << 30, "gi": 1 << 30, "gib": 1 << 30}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("%q has an unknown unit (use K, M or G)", s)
	}
	return uint64(f * mult), nil
}

// apply replaces detected figures with the flags.
func (pf planFlags) apply(res *machine.Resources) {
	if pf.cpus > 0 {
		res.CPUs, res.CPUQuota, res.CPUSource = pf.cpus, float64(pf.cpus), "--cpus"
	}
	if pf.memory > 0 {
		res.Memory, res.MemorySource = pf.memory, "--memory"
	}
	if pf.hasSwp {
		res.Swap, res.SwapSource = pf.swap, "--swap"
	}
}

func printPlan(w io.Writer, cfg *config, pf planFlags, environ []string) error {
	res, err := machine.Detect()
	if err != nil {
		return fmt.Errorf("detect resources: %w", err)
	}
	pf.apply(&res)
	rt := cfg.runtime()
	pl := planner(cfg, environ)
	mp, err := pl.Plan(res)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "cpus:     %d (%s)\n", res.CPUs, res.CPUSource)
	fmt.Fprintf(w, "memory:   %s (%s)\n", machine.FormatBytes(res.Memory), res.MemorySource)
	swap := "none"
	if res.Swap > 0 {
		swap = machine.FormatBytes(res.Swap) + " (" + res.SwapSource + ")"
	}
	fmt.Fprintf(w, "swap:     %s, counted: %v\n", swap, cfg.IncludeSwap)
	fmt.Fprintf(w, "cgroup:   %s\n", res.Cgroup)
	fmt.Fprintf(w, "runtime:  %s\n", rt)
	fmt.Fprintf(w, "workers:  %d (%s)\n", mp.Workers, mp.WorkersReason)
	fmt.Fprintf(w, "heap:     %s\n", heapText(mp))
	fmt.Fprintf(w, "budget:   %s RSS per worker (spare slot for replacements: %v)\n",
		machine.FormatBytes(mp.WorkerBudget), mp.SpareSlot)
	for _, note := range res.Notes {
		fmt.Fprintf(w, "note:     %s\n", note)
	}
	for _, warn := range mp.Warnings {
		fmt.Fprintf(w, "warning:  %s\n", warn)
	}
	if warn := modeWarning(cfg); warn != "" {
		fmt.Fprintf(w, "warning:  %s\n", warn)
	}
	if len(cfg.Command) == 0 {
		return nil
	}
	live, err := sizing.NewLive(sizing.LiveConfig{Planner: pl}, res)
	if err != nil {
		return err
	}
	p := plan{live: live, rt: rt, runtimes: cfg.Runtimes}
	for slot := 0; slot < mp.Workers; slot++ {
		base := supervisor.WorkerEnv(environ, slot, "0", mp.Workers)
		argv, env, err := p.prepare(cfg.Command, base, 0)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "worker %d: argv %q\n", slot, argv)
		fmt.Fprintf(w, "          env  %s\n", strings.Join(changedEnv(environ, env), " "))
	}
	return nil
}

// changedEnv lists the variables of env that differ from base: what
// percore sets for a worker, without echoing the rest of the environment.
func changedEnv(base, env []string) []string {
	before := envMap(base)
	var out []string
	seen := map[string]bool{}
	for i := len(env) - 1; i >= 0; i-- {
		k, v, _ := strings.Cut(env[i], "=")
		if seen[k] {
			continue
		}
		seen[k] = true
		if k == "PORT" {
			v = "<its loopback port>"
		}
		if old, ok := before[k]; !ok || old != v {
			out = append([]string{k + "=" + v}, out...)
		}
	}
	return out
}

func heapText(p sizing.Sized) string {
	switch {
	case p.UserHeapSource != "" && p.UserHeapMB > 0:
		return fmt.Sprintf("%dMiB V8 old space per worker (your setting: %s; percore's would be %dMiB)", p.UserHeapMB, p.UserHeapSource, p.HeapMB)
	case p.UserHeapSource != "":
		return fmt.Sprintf("runtime default (your setting: %s=0; percore's would be %dMiB)", p.UserHeapSource, p.HeapMB)
	}
	if p.HeapMB > 0 && p.SemiSpaceMB > 0 {
		return fmt.Sprintf("%dMiB V8 old space per worker (%s), young generation %dMiB (semi-space %dMiB): heap_size_limit %dMiB",
			p.HeapMB, p.HeapReason, p.YoungGenMB(), p.SemiSpaceMB, p.HeapMB+p.YoungGenMB())
	}
	if p.HeapMB > 0 {
		return fmt.Sprintf("%dMiB V8 old space per worker (%s)", p.HeapMB, p.HeapReason)
	}
	return "none passed (" + p.HeapReason + ")"
}
