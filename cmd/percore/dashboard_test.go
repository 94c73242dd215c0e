package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/percore/percore/health"
)

// chromiumPath is where Debian's chromium package puts the browser;
// scripts/install-tools.d/chromium.sh installs it.
const chromiumPath = "/usr/bin/chromium"

// pageRow is one worker row as the browser rendered it.
type pageRow struct {
	ID       string `json:"id"`
	PID      string `json:"pid"`
	Restarts string `json:"restarts"`
	Exit     string `json:"exit"`
	RPS      string `json:"rps"`
	Spark    int    `json:"spark"` // points in the RSS history line
}

// pageView is what the test reads off the rendered page.
type pageView struct {
	Conn string    `json:"conn"`
	RPS  string    `json:"rps"`
	Rows []pageRow `json:"rows"`
}

// readPageJS collects pageView from the DOM.
const readPageJS = `({
	conn: document.getElementById("conn").textContent,
	rps: document.getElementById("t-rps").textContent,
	rows: [...document.querySelectorAll("#workers tr")].map(tr => ({
		id: tr.dataset.worker,
		pid: tr.querySelector(".pid").textContent,
		restarts: tr.querySelector(".restarts").textContent,
		exit: tr.querySelector(".exit").textContent,
		rps: tr.querySelector(".rps").textContent,
		spark: tr.querySelector("polyline") ? tr.querySelector("polyline").points.length : 0,
	})),
})`

// TestDashboardInChromium loads the admin page in a real headless browser
// while two node workers serve a request loop, and reads the rendered DOM:
// both pids, a request rate, a SIGKILLed worker shown restarted with its
// exit reason, and "lost contact" once percore stops. With
// PERCORE_SCREENSHOT=path it saves the page as a PNG there (the README's
// docs/dashboard.png).
func TestDashboardInChromium(t *testing.T) {
	needNode(t)
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("%s is missing (scripts/install-tools.d/chromium.sh installs it)", chromiumPath)
	}
	in := start(t, "--workers", "2", "--", "node", appJS())
	admin := "http://" + in.admin
	pids := waitReady(t, admin+"/status", 2)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		requestLoop("http://"+in.addr+"/", stop)
	}()
	defer func() { close(stop); wg.Wait() }()

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()
	if _, err := chromedp.Run(ctx, chromedp.EmulateViewport(980, 330)); err != nil {
		t.Fatalf("set the viewport: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Navigate(admin+"/")); err != nil {
		t.Fatalf("load the page: %v", err)
	}
	read := func() pageView {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[pageView](readPageJS))
		if err != nil {
			t.Fatalf("read the page: %v", err)
		}
		return v
	}
	waitPage := func(what string, within time.Duration, ok func(pageView) bool) pageView {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			v := read()
			if ok(v) {
				return v
			}
			if time.Now().After(deadline) {
				t.Fatalf("the page did not show %s within %s; it shows %+v", what, within, v)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Both pids, a rate above zero per worker and in total, and an RSS line
	// with a few points (one every 2 s).
	waitPage("both pids, requests/s and RSS history", 20*time.Second, func(v pageView) bool {
		shown := map[string]bool{}
		for _, r := range v.Rows {
			if r.Spark < 3 || !positive(r.RPS) {
				return false
			}
			shown[r.PID] = true
		}
		return v.Conn == "live" && positive(v.RPS) && shown[strconv.Itoa(pids[0])] && shown[strconv.Itoa(pids[1])]
	})
	// A worker killed outright shows restarted, with how it ended.
	victim := pids[0]
	if err := syscall.Kill(-victim, syscall.SIGKILL); err != nil {
		t.Fatalf("kill worker group: %v", err)
	}
	killed := time.Now()
	waitPage("the killed worker restarted with its exit reason", 3*time.Second, func(v pageView) bool {
		for _, r := range v.Rows {
			if r.Restarts == "1" && strings.Contains(r.Exit, "crash") && strings.Contains(r.Exit, "signal killed") {
				return true
			}
		}
		return false
	})
	t.Logf("restart shown %s after the kill", time.Since(killed).Round(10*time.Millisecond))
	waitPage("a new pid in the killed worker's place", 20*time.Second, func(v pageView) bool {
		for _, r := range v.Rows {
			if r.Restarts == "1" && r.PID != "–" && r.PID != strconv.Itoa(victim) {
				return true
			}
		}
		return false
	})

	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil || len(png) == 0 {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
	path := os.Getenv("PERCORE_SCREENSHOT")
	if path == "" {
		path = filepath.Join(t.TempDir(), "dashboard.png")
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s, %d bytes", path, len(png))

	// A phone-wide window gets cards, with nothing to scroll sideways.
	if _, err := chromedp.Run(ctx, chromedp.EmulateViewport(360, 800)); err != nil {
		t.Fatalf("set the viewport: %v", err)
	}
	if w, err := chromedp.Run(ctx, chromedp.Evaluate[int]("document.documentElement.scrollWidth")); err != nil || w > 360 {
		t.Errorf("at 360 px the page is %d px wide (%v), want no sideways scrolling", w, err)
	}

	// Stopped, percore leaves the page saying so rather than frozen.
	in.signal(syscall.SIGTERM)
	if code := in.wait(30 * time.Second); code != 0 {
		t.Fatalf("percore exited %d", code)
	}
	waitPage(`"lost contact"`, 10*time.Second, func(v pageView) bool {
		return strings.Contains(v.Conn, "lost contact")
	})
}

// positive reports whether a rendered rate is a number above zero.
func positive(s string) bool {
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && f > 0
}

// waitReady waits until /status shows n ready workers and returns their pids.
func waitReady(t *testing.T, url string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st health.Status
		getJSON(t, url, &st)
		if st.ReadyWorkers == n {
			var pids []int
			for _, w := range st.Workers {
				pids = append(pids, w.PID)
			}
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d workers ready after 30s", st.ReadyWorkers, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// requestLoop GETs url about 200 times a second until stop; errors are
// expected while a worker is killed.
func requestLoop(url string, stop <-chan struct{}) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}
