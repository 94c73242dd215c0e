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

// runStatus prints a table of the workers of the percore whose admin
// address is admin, like pm2 ls, read from its /status; with raw, /status
// itself.
func runStatus(admin string, raw bool, stdout, stderr io.Writer) int {
	url := "http://" + dialAddr(admin) + "/status"
	if raw {
		body, err := fetch(url)
		if err == nil {
			body, err = jsonTerminalSafe(body)
		}
		if err != nil {
			fmt.Fprintf(stderr, "percore status: %s: %s\n", url, terminalSafe(err.Error()))
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
	fmt.Fprintf(stderr, "percore status: %s\n", terminalSafe(err.Error()))
	return exitError
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
		if len(body) > 0 && len(body) < 200 { // a short reason, such as a 421's
			return nil, fmt.Errorf("%s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
		}
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

// printStatus writes the table; rates come from the two samples. Every
// string of the status goes through terminalSafe: it came over the network.
func printStatus(w io.Writer, before, now health.Status) {
	p := now.Plan
	fmt.Fprintf(w, "percore %s  up %s  %d/%d workers ready  runtime %s  heap %dMiB  cpus %d (%s)  memory %s (%s)\n",
		terminalSafe(now.Version), (time.Duration(now.UptimeS) * time.Second).String(), now.ReadyWorkers,
		len(now.Workers), terminalSafe(p.Runtime), p.HeapMB, p.CPUs, terminalSafe(p.CPUSource),
		machine.FormatBytes(p.MemoryBytes), terminalSafe(p.MemorySource))
	dt := now.UptimeS - before.UptimeS
	fmt.Fprintf(w, "%s req/s  %d in flight  %d queued  %s 5xx/s\n", rate(now.Answered, before.Answered, dt),
		now.Inflight, now.Queue, rate(now.Errors5xx, before.Errors5xx, dt))
	if now.Reload.State != "" {
		fmt.Fprintf(w, "last reload: %s %s\n", terminalSafe(now.Reload.State), terminalSafe(now.Reload.Error))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPID\tSTATE\tUPTIME\tRESTARTS\tRSS\tIN-FLIGHT\tREQ/S\tP50\tP99\tLAST EXIT")
	prev := map[int]health.WorkerStatus{}
	for _, ws := range before.Workers {
		prev[ws.ID] = ws
	}
	for _, ws := range now.Workers {
		r := "-"
		if old, ok := prev[ws.ID]; ok {
			r = rate(ws.Answered, old.Answered, dt)
		}
		last := "-"
		if e := ws.LastExit; e != nil {
			last = fmt.Sprintf("%s (code %d)", terminalSafe(e.Reason), e.Code)
			if e.Signal != "" {
				last = fmt.Sprintf("%s (signal %s)", terminalSafe(e.Reason), terminalSafe(e.Signal))
			}
		}
		p50, p99 := latency(ws.Latency)
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\n", ws.ID, ws.PID, terminalSafe(workerState(ws)),
			(time.Duration(ws.UptimeS) * time.Second).String(), ws.Restarts, machine.FormatBytes(ws.RSSBytes),
			ws.Inflight, r, p50, p99, last)
	}
	tw.Flush()
}

// workerState is a worker's state, with why it takes no new requests when
// that is not its state already ("ready, not accepting", "ready, ejected"),
// as the status page shows it.
func workerState(ws health.WorkerStatus) string {
	if ws.NotRouted != "" && ws.NotRouted != ws.State {
		return ws.State + ", " + ws.NotRouted
	}
	return ws.State
}

// rate is the change of a counter per second, or "-" when it cannot be
// told (no interval, or the counter went back: another percore answered).
func rate(now, before uint64, dt float64) string {
	if dt <= 0 || now < before {
		return "-"
	}
	r := float64(now-before) / dt
	if r >= 100 {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.1f", r)
}

// latency formats the p50 and p99 of a window: "-" with no answers in it,
// "n/m" (not measured) where percore does not see the requests.
func latency(l *health.LatencyStatus) (p50, p99 string) {
	switch {
	case l == nil:
		return "n/m", "n/m"
	case l.Count == 0:
		return "-", "-"
	}
	return formatMs(l.P50Ms), formatMs(l.P99Ms)
}

func formatMs(ms float64) string {
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0fms", ms)
	case ms >= 1:
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.2fms", ms)
}
