package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/percore/percore/health"
	"github.com/percore/percore/machine"
)

// runStatus is "percore status [--admin ADDR] [--json]": a table of the
// workers of a running percore, like pm2 ls, read from its /status.
func runStatus(args, environ []string, stdout, stderr io.Writer) int {
	admin := firstSet(envMap(environ)["PERCORE_ADMIN"], defaultAdmin)
	raw := false
	for i := 0; i < len(args); i++ {
		name, value, has := strings.Cut(args[i], "=")
		switch name {
		case "--json":
			raw = true
		case "--admin":
			if !has {
				if i+1 >= len(args) {
					fmt.Fprintln(stderr, "percore status: flag --admin needs a value (HOST:PORT)")
					return exitUsage
				}
				i++
				value = args[i]
			}
			admin = value
		default:
			fmt.Fprintf(stderr, "percore status: unknown argument %q (want --admin HOST:PORT, --json)\n", args[i])
			return exitUsage
		}
	}
	url := "http://" + dialAddr(admin) + "/status"
	if raw {
		body, err := fetch(url)
		if err != nil {
			fmt.Fprintf(stderr, "percore status: %v\n", err)
			return exitError
		}
		stdout.Write(body)
		return exitOK
	}
	first, err := fetchStatus(url)
	if err == nil {
		time.Sleep(time.Second)
		var second health.Status
		if second, err = fetchStatus(url); err == nil {
			printStatus(stdout, first, second)
			return exitOK
		}
	}
	fmt.Fprintf(stderr, "percore status: %v\n", err)
	return exitError
}

func firstSet(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// dialAddr turns a listen address into one to connect to: an empty or
// wildcard host means this machine.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func fetch(url string) ([]byte, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, fmt.Errorf("no percore answers at %s (is it running, and is this its --admin address?): %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return body, nil
}

func fetchStatus(url string) (health.Status, error) {
	var st health.Status
	body, err := fetch(url)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("decode %s: %w", url, err)
	}
	return st, nil
}

// printStatus writes the table; req/s comes from the two samples.
func printStatus(w io.Writer, before, now health.Status) {
	p := now.Plan
	fmt.Fprintf(w, "percore %s  up %s  %d/%d workers ready  runtime %s  heap %dMiB  cpus %d (%s)  memory %s (%s)\n",
		now.Version, (time.Duration(now.UptimeS) * time.Second).String(), now.ReadyWorkers, len(now.Workers),
		p.Runtime, p.HeapMB, p.CPUs, p.CPUSource, machine.FormatBytes(p.MemoryBytes), p.MemorySource)
	if now.Reload.State != "" {
		fmt.Fprintf(w, "last reload: %s %s\n", now.Reload.State, now.Reload.Error)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPID\tSTATE\tUPTIME\tRESTARTS\tRSS\tIN-FLIGHT\tREQ/S\tLAST EXIT")
	prev := map[int]health.WorkerStatus{}
	for _, ws := range before.Workers {
		prev[ws.ID] = ws
	}
	for _, ws := range now.Workers {
		rate := "-"
		if old, ok := prev[ws.ID]; ok && old.PID == ws.PID && ws.Requests >= old.Requests {
			rate = fmt.Sprintf("%.0f", float64(ws.Requests-old.Requests)/max(now.UptimeS-before.UptimeS, 0.001))
		}
		last := "-"
		if e := ws.LastExit; e != nil {
			last = fmt.Sprintf("%s (code %d)", e.Reason, e.Code)
			if e.Signal != "" {
				last = fmt.Sprintf("%s (signal %s)", e.Reason, e.Signal)
			}
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", ws.ID, ws.PID, ws.State,
			(time.Duration(ws.UptimeS) * time.Second).String(), ws.Restarts, machine.FormatBytes(ws.RSSBytes),
			ws.Inflight, rate, last)
	}
	tw.Flush()
}
