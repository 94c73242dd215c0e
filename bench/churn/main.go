// Command churn is the load client of bench/reload. For a fixed time it
// keeps keep-alive clients busy with sequential GETs and opens new
// connections at a fixed rate, one request each, and counts, separately for
// each kind, the requests sent, answered 2xx and failed (a transport error
// or a 5xx), with the first distinct error messages. It ends by itself, or
// early on SIGINT or SIGTERM, and prints one JSON line. It only talks to
// loopback addresses.
//
// Usage:
//
//	churn [-duration D] [-keepalive K] [-raw K] [-rate N] [-timeout D] URL
//
// The three kinds of client, each counted apart:
//
//   - keepalive: K clients, each with a Go net/http client of its own (one
//     connection, kept alive), sending GETs one after the other as a real
//     client does. net/http sends a GET again on a new connection when the
//     server closed the idle connection it was reused on, so what fails here
//     is what a careful client sees.
//   - raw: K clients that write GETs on one kept-alive connection and read
//     the answers, and never send a request again: a request lost when the
//     server closes the connection counts as failed, then they reconnect.
//     This is what a naive client sees.
//   - new: N new connections a second, each with one GET and
//     "Connection: close" (at most 512 at once; more are counted as skipped).
//
// A client pauses 10 ms after a failure, so that a refused port does not
// turn into a flood of counted failures. Requests still in flight when the
// time is up are waited for (up to -timeout) and counted.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"sync"
	"syscall"
	"time"
)

const (
	maxErrors    = 5                     // distinct error messages kept per kind
	failurePause = 10 * time.Millisecond // pause after a failed request
	maxNewInFly  = 512                   // new-connection requests in flight at once
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("churn", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 10*time.Second, "how long to send requests")
	keepalive := fs.Int("keepalive", 16, "net/http keep-alive clients")
	raw := fs.Int("raw", 0, "raw keep-alive clients that never send a request again")
	rate := fs.Int("rate", 100, "new connections a second, one request each")
	timeout := fs.Duration("timeout", 5*time.Second, "time one request may take")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *keepalive < 0 || *raw < 0 || *rate < 0 || *duration <= 0 || *timeout <= 0 {
		fmt.Fprintln(stderr, "usage: churn [-duration D] [-keepalive K] [-raw K] [-rate N] [-timeout D] URL")
		return 2
	}
	target, err := loopbackURL(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "churn: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()

	l := &load{url: target, timeout: *timeout}
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < *keepalive; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); l.keepAliveClient(ctx) }()
	}
	for i := 0; i < *raw; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); l.rawClient(ctx) }()
	}
	if *rate > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); l.newConnections(ctx, *rate, &wg) }()
	}
	<-ctx.Done()
	sending := time.Since(start)
	wg.Wait() // bounded: every request has its timeout

	out := report{
		Seconds:   sending.Round(time.Millisecond).Seconds(),
		KeepAlive: l.keepAlive.summary(*keepalive),
		Raw:       l.raw.summary(*raw),
		New:       l.fresh.summary(0),
	}
	out.New.Rate = *rate
	line, err := json.Marshal(out)
	if err != nil {
		fmt.Fprintf(stderr, "churn: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, string(line))
	return 0
}

// loopbackURL parses s and refuses any host but a loopback address.
func loopbackURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parse url %q: %w", s, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("url %q: only http", s)
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil || !ip.IsLoopback() || u.Port() == "" {
		return nil, fmt.Errorf("url %q: want a loopback address with a port, such as http://127.0.0.1:8080/", s)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return u, nil
}

// load is one run's clients and their counts.
type load struct {
	url     *url.URL
	timeout time.Duration

	keepAlive, raw, fresh tally
}

// keepAliveClient sends GETs one after the other on a net/http client of
// its own until ctx is done.
func (l *load) keepAliveClient(ctx context.Context) {
	dialer := &net.Dialer{Timeout: l.timeout}
	transport := &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: 1,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			l.keepAlive.connected()
			return dialer.DialContext(ctx, network, addr)
		},
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: l.timeout}
	for ctx.Err() == nil {
		if !l.keepAlive.record(get(client, l.url.String())) {
			time.Sleep(failurePause)
		}
	}
}

// newConnections starts rate requests a second, each on a new connection,
// until ctx is done. Their goroutines join wg.
func (l *load) newConnections(ctx context.Context, rate int, wg *sync.WaitGroup) {
	transport := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	client := &http.Client{Transport: transport, Timeout: l.timeout}
	slots := make(chan struct{}, maxNewInFly)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			l.fresh.skip()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			l.fresh.connected()
			l.fresh.record(get(client, l.url.String()))
		}()
	}
}

// get sends one GET and reads the whole answer: nil for a 2xx.
func get(client *http.Client, target string) error {
	resp, err := client.Get(target)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// rawClient writes GETs on one connection and reads each answer; after a
// failure or an answer with "Connection: close" it connects again. It never
// sends a request a second time.
func (l *load) rawClient(ctx context.Context) {
	request := []byte("GET " + l.url.RequestURI() + " HTTP/1.1\r\nHost: " + l.url.Host + "\r\n\r\n")
	var conn net.Conn
	var br *bufio.Reader
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for ctx.Err() == nil {
		if conn == nil {
			c, err := net.DialTimeout("tcp", l.url.Host, l.timeout)
			l.raw.connected()
			if err != nil {
				l.raw.record(err)
				time.Sleep(failurePause)
				continue
			}
			conn, br = c, bufio.NewReader(c)
		}
		keep, err := rawRequest(conn, br, request, l.timeout)
		l.raw.record(err)
		if err != nil || !keep {
			conn.Close()
			conn = nil
		}
		if err != nil {
			time.Sleep(failurePause)
		}
	}
}

// rawRequest sends request on conn and reads its answer from br: whether the
// connection may carry another request, and nil for a 2xx.
func rawRequest(conn net.Conn, br *bufio.Reader, request []byte, timeout time.Duration) (bool, error) {
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return false, fmt.Errorf("set deadline: %w", err)
	}
	if _, err := conn.Write(request); err != nil {
		return false, fmt.Errorf("write request: %w", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return false, fmt.Errorf("read response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return !resp.Close, fmt.Errorf("status %d", resp.StatusCode)
	}
	return !resp.Close, nil
}

// tally counts one kind of request. It is safe for concurrent use.
type tally struct {
	mu      sync.Mutex // protects the fields below
	sent    int64
	ok      int64
	failed  int64
	skipped int64
	conns   int64
	errs    []errorCount
}

type errorCount struct {
	Error string `json:"error"`
	Count int64  `json:"count"`
}

// record counts one request that ended with err (nil: answered 2xx) and
// says whether it succeeded.
func (t *tally) record(err error) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent++
	if err == nil {
		t.ok++
		return true
	}
	t.failed++
	msg := normalize(err)
	for i := range t.errs {
		if t.errs[i].Error == msg {
			t.errs[i].Count++
			return false
		}
	}
	if len(t.errs) < maxErrors {
		t.errs = append(t.errs, errorCount{Error: msg, Count: 1})
	}
	return false
}

func (t *tally) connected() { t.mu.Lock(); t.conns++; t.mu.Unlock() }
func (t *tally) skip()      { t.mu.Lock(); t.skipped++; t.mu.Unlock() }

func (t *tally) summary(clients int) counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	errs := append([]errorCount{}, t.errs...)
	return counts{Clients: clients, Sent: t.sent, OK: t.ok, Failed: t.failed, Skipped: t.skipped, Conns: t.conns, Errors: errs}
}

var addrPattern = regexp.MustCompile(`(\[[0-9a-f:]+\]|[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+):[0-9]+`)

// normalize is err's text with the ports left out, so that the same
// failure on two connections reads the same.
func normalize(err error) string {
	return addrPattern.ReplaceAllString(err.Error(), "$1")
}

// counts is one kind's figures in the JSON line.
type counts struct {
	Clients int          `json:"clients,omitempty"`
	Rate    int          `json:"rate,omitempty"`
	Sent    int64        `json:"sent"`
	OK      int64        `json:"ok"`
	Failed  int64        `json:"failed"`
	Skipped int64        `json:"skipped,omitempty"`
	Conns   int64        `json:"conns"`
	Errors  []errorCount `json:"errors"`
}

// report is the JSON line churn prints.
type report struct {
	Seconds   float64 `json:"seconds"`
	KeepAlive counts  `json:"keepalive"`
	Raw       counts  `json:"raw"`
	New       counts  `json:"new"`
}
