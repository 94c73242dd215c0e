// Command probe is the timing helper of bench/run and bench/reload: it
// finds a free loopback port, it measures how long a freshly started server
// takes to answer its first 200, and it waits for a percore reload to end.
// It is not a load generator (bench/run uses wrk, bench/reload churn) and it
// starts no process itself.
//
// Usage:
//
//	probe port
//	probe first200 [-since EPOCH] [-timeout D] [-every D] URL
//	probe reloaded [-count N] [-timeout D] STATUS-URL
//
// first200 requests URL on a fresh connection every -every (default 1ms)
// until one answers 200, then prints the milliseconds elapsed since EPOCH
// (seconds since 1970 with a fraction, as bash's $EPOCHREALTIME; default
// the time probe started). It exits 1 if no 200 came within -timeout.
//
// reloaded polls percore's /status (STATUS-URL, on the admin listener) every
// 20ms until its reload number -count (default 1) has ended, then prints
// how it ended ("done" or "failed") and how long it took in milliseconds,
// with the error of a failed one. It exits 1 if the reload did not end
// within -timeout (default 2m) or ended failed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: probe port | probe first200 [-since EPOCH] [-timeout D] [-every D] URL | probe reloaded [-count N] [-timeout D] STATUS-URL")
		return 2
	}
	switch args[0] {
	case "port":
		port, err := freePort()
		if err != nil {
			fmt.Fprintf(stderr, "probe: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, port)
		return 0
	case "first200":
		return first200(args[1:], stdout, stderr)
	case "reloaded":
		return reloaded(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "probe: unknown command %q\n", args[0])
		return 2
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func first200(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("first200", flag.ContinueOnError)
	fs.SetOutput(stderr)
	since := fs.String("since", "", "start time as seconds since 1970 (default now)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	every := fs.Duration("every", time.Millisecond, "pause between attempts")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "probe first200: want one URL")
		return 2
	}
	start := time.Now()
	if *since != "" {
		t, err := parseEpoch(*since)
		if err != nil {
			fmt.Fprintf(stderr, "probe first200: -since %q: %v\n", *since, err)
			return 2
		}
		start = t
	}
	elapsed, err := waitFor200(fs.Arg(0), *timeout, *every)
	if err != nil {
		fmt.Fprintf(stderr, "probe first200: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%.1f\n", float64(elapsed.Sub(start).Microseconds())/1000)
	return 0
}

// parseEpoch parses "1700000000.123456" as a time.
func parseEpoch(s string) (time.Time, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, err
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
}

// waitFor200 requests url until it answers 200 and returns when that was.
// The number of attempts is bounded by timeout/every.
func waitFor200(url string, timeout, every time.Duration) (time.Time, error) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return time.Time{}, err
	}
	attempts := int(timeout/every) + 1
	var last error = errors.New("no attempt made")
	for i := 0; i < attempts && ctx.Err() == nil; i++ {
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body) // the status is all that counts
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
			last = fmt.Errorf("status %d", resp.StatusCode)
		} else {
			last = err
		}
		time.Sleep(every)
	}
	return time.Time{}, fmt.Errorf("no 200 from %s within %v: %w", url, timeout, last)
}

func reloaded(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reloaded", flag.ContinueOnError)
	fs.SetOutput(stderr)
	count := fs.Int("count", 1, "the reload to wait for, counted since percore started")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "probe reloaded: want the URL of /status")
		return 2
	}
	r, err := waitReload(fs.Arg(0), *count, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "probe reloaded: %v\n", err)
		return 1
	}
	took := r.Finished.Sub(*r.Started).Milliseconds()
	if r.State != "done" {
		fmt.Fprintf(stdout, "%s %d %s\n", r.State, took, r.Error)
		return 1
	}
	fmt.Fprintf(stdout, "%s %d\n", r.State, took)
	return 0
}

// reloadStatus is the "reload" object of percore's /status.
type reloadStatus struct {
	State    string     `json:"state"`
	Error    string     `json:"error"`
	Started  *time.Time `json:"started"`
	Finished *time.Time `json:"finished"`
	Count    int        `json:"count"`
}

// waitReload polls statusURL until reload number count has ended. The
// number of polls is bounded by timeout.
func waitReload(statusURL string, count int, timeout time.Duration) (reloadStatus, error) {
	const every = 20 * time.Millisecond
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	var last error = errors.New("no attempt made")
	for i := 0; i < int(timeout/every)+1; i++ {
		var st struct {
			Reload reloadStatus `json:"reload"`
		}
		resp, err := client.Get(statusURL)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		switch {
		case err != nil:
			last = err
		case st.Reload.Count > count:
			return st.Reload, fmt.Errorf("reload %d is already over: %d started since", count, st.Reload.Count)
		case st.Reload.Count == count && st.Reload.State != "running" && st.Reload.Started != nil && st.Reload.Finished != nil:
			return st.Reload, nil
		default:
			last = fmt.Errorf("reload %d of %d, %s", st.Reload.Count, count, st.Reload.State)
		}
		time.Sleep(every)
	}
	return reloadStatus{}, fmt.Errorf("reload %d did not end within %v: %w", count, timeout, last)
}
