//go:build linux

package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// frameworkApp is a framework's app as its users start it: the command,
// the variables it needs beside PORT, and how its page's text begins.
type frameworkApp struct {
	argv  []string
	env   []string
	hello string
}

// expressApp is testdata/express-app.js with the express that
// scripts/install-tools.d/socketio.sh installs; it skips the test when
// express is not installed.
func expressApp(t *testing.T) frameworkApp {
	modules := testModules(t, "socketio", "express")
	return frameworkApp{
		argv:  []string{"node", filepath.Join("testdata", "express-app.js")},
		env:   []string{"NODE_PATH=" + modules},
		hello: "hello from express, worker ",
	}
}

// nextAppDir returns the folder where scripts/install-tools.d/next.sh
// built testdata/next-app, and skips the test when it is not built.
func nextAppDir(t *testing.T) string {
	dir := filepath.Dir(testModules(t, "next", "next", "react", "react-dom"))
	if _, err := os.Stat(filepath.Join(dir, ".next", "standalone", "server.js")); err != nil {
		t.Skip("the Next.js app is not built in .tools/npm/next: run ./scripts/install-tools")
	}
	return dir
}

// nextStartApp is the Next.js app run by `next start`, which listens on
// every interface unless told a host with -H.
func nextStartApp(t *testing.T) frameworkApp {
	dir := nextAppDir(t)
	return frameworkApp{
		argv:  []string{filepath.Join(dir, "node_modules", ".bin", "next"), "start", dir},
		env:   []string{"NEXT_TELEMETRY_DISABLED=1"},
		hello: "hello from next, worker ",
	}
}

// nextStandaloneApp is the Next.js app's standalone server, which listens
// on HOSTNAME; Next's Docker example sets it to 0.0.0.0, as here.
func nextStandaloneApp(t *testing.T) frameworkApp {
	dir := nextAppDir(t)
	return frameworkApp{
		argv:  []string{"node", filepath.Join(dir, ".next", "standalone", "server.js")},
		env:   []string{"HOSTNAME=0.0.0.0", "NEXT_TELEMETRY_DISABLED=1"},
		hello: "hello from next, worker ",
	}
}

// TestFrameworksListenOnLoopbackOnly runs express, `next start` and Next's
// standalone server on 2 workers each, as their users write them: each
// asks for every interface (checked first by starting the app alone, with
// only PORT set). Under percore, the app answers through the public port,
// and no process of a worker listens anywhere but on loopback or on the
// Unix socket percore passed it, where only percore reaches it. With percore at 3e4d9c6, before node workers had
// their preload, every case fails: the workers listen on :: or 0.0.0.0.
func TestFrameworksListenOnLoopbackOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts express and Next.js servers; skipped with -short")
	}
	for _, tc := range []struct {
		name string
		app  func(*testing.T) frameworkApp
	}{
		{"express", expressApp},
		{"next start", nextStartApp},
		{"next standalone", nextStandaloneApp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := tc.app(t)
			alone := listenersAlone(t, app)
			if !hasNonLoopback(alone) {
				t.Fatalf("alone, the app listens on %v: want every interface, or the test proves nothing", alone)
			}
			t.Logf("alone, the app listens on %v", alone)

			args := append([]string{"--workers", "2", "--"}, app.argv...)
			in := launchBin(t, percoreBin, app.env, nil, args...)
			pids := waitReady(t, "http://"+in.admin+"/status", 2)
			if code := status(t, "http://"+in.admin+"/readyz"); code != 200 {
				t.Fatalf("/readyz = %d with 2 workers ready, want 200", code)
			}
			for range 4 {
				code, body := getPage(t, "http://"+in.addr+"/")
				if code != 200 || !strings.Contains(body, app.hello) {
					t.Fatalf("GET / through percore: %d, want 200 with %q in %.300q", code, app.hello, body)
				}
			}
			for _, pid := range pids {
				addrs := groupListeners(t, pid)
				if len(addrs) == 0 && listeningUnixAt(t, pid, 3) == "" {
					t.Errorf("worker pid %d: its process group holds no listening TCP socket, nor the Unix socket "+
						"percore passed", pid)
				}
				if hasNonLoopback(addrs) {
					t.Errorf("worker pid %d listens on %v: want loopback only", pid, addrs)
				}
				t.Logf("worker pid %d listens on %v", pid, addrs)
			}
		})
	}
}

// getPage GETs url and returns the status and body.
func getPage(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// listenersAlone starts app by itself with PORT set to a free port, waits
// until it listens, and returns where its processes listen; it kills the
// app's process group before returning.
func listenersAlone(t *testing.T, app frameworkApp) []netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(app.argv[0], app.argv[1:]...)
	cmd.Env = append(append(os.Environ(), app.env...), "PORT="+strconv.Itoa(port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", app.argv, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			t.Errorf("kill the app's group: %v", err)
		}
		<-exited
	}()
	deadline := time.After(60 * time.Second)
	for {
		if addrs := groupListeners(t, cmd.Process.Pid); len(addrs) > 0 {
			return addrs
		}
		select {
		case err := <-exited:
			exited <- err // for the deferred wait
			t.Fatalf("%v exited before it listened: %v; output:\n%s", app.argv, err, out.String())
		case <-deadline:
			t.Fatalf("%v does not listen after 60s", app.argv)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// hasNonLoopback reports whether one of addrs is not a loopback address:
// 0.0.0.0, :: or a host's own address.
func hasNonLoopback(addrs []netip.AddrPort) bool {
	for _, a := range addrs {
		if !a.Addr().Unmap().IsLoopback() {
			return true
		}
	}
	return false
}

// groupListeners returns the addresses of the TCP sockets that the
// processes of group pgid hold and that listen, as `ss -ltnp` shows them.
func groupListeners(t *testing.T, pgid int) []netip.AddrPort {
	t.Helper()
	listening := listeningSockets(t)
	var addrs []netip.AddrPort
	for _, pid := range processGroup(pgid) {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		entries, _ := os.ReadDir(dir) // the process may be gone
		for _, e := range entries {
			target, err := os.Readlink(filepath.Join(dir, e.Name()))
			if a, ok := listening[target]; err == nil && ok {
				addrs = append(addrs, a)
			}
		}
	}
	return addrs
}

// processGroup lists the live processes of group pgid, from /proc/PID/stat.
func processGroup(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name in parentheses may hold spaces: the fields
		// after its closing one are state, ppid, pgrp.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// listeningSockets maps the fd link "socket:[INODE]" of every listening
// TCP socket to its address, read from /proc/net/tcp and /proc/net/tcp6.
func listeningSockets(t *testing.T) map[string]netip.AddrPort {
	t.Helper()
	sockets := make(map[string]netip.AddrPort)
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		lines := strings.Split(string(data), "\n")
		for _, line := range lines[1:] { // after the header
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // 0A is LISTEN
				continue
			}
			a, err := procNetAddr(f[1])
			if err != nil {
				t.Fatalf("%s: %q: %v", name, line, err)
			}
			sockets["socket:["+f[9]+"]"] = a
		}
	}
	return sockets
}

// procNetAddr decodes an address of /proc/net/tcp or tcp6, "0100007F:1F90":
// the address in hex as 32-bit words in the machine's byte order (little
// endian on the machines this runs on), then the port in hex.
func procNetAddr(s string) (netip.AddrPort, error) {
	host, port, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("no port in %q", s)
	}
	b, err := hex.DecodeString(host)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q: not 4 or 16 hex bytes", host)
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	addr, _ := netip.AddrFromSlice(b)
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: %w", port, err)
	}
	return netip.AddrPortFrom(addr, uint16(p)), nil
}
