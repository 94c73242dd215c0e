//go:build linux

package main

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// seenByApp is what testdata/listen-styles.js answers: what the app sees
// of where it listens and of the connection a request came on.
type seenByApp struct {
	PID     int    `json:"pid"`
	PORT    string `json:"PORT"`
	Address struct {
		Address string `json:"address"`
		Family  string `json:"family"`
		Port    int    `json:"port"`
	} `json:"address"`
	RemoteAddress string `json:"remoteAddress"`
	LocalAddress  string `json:"localAddress"`
	LocalPort     int    `json:"localPort"`
	Second        struct {
		Port int `json:"port"`
	} `json:"second"`
	Listening bool `json:"listening"`
	Callback  bool `json:"callback"`
}

// TestNodeWorkersListenOnUnixSocketsByDefault runs node apps that listen
// on PORT in the ways apps write it, under default proxy mode: each worker
// serves through percore on the Unix socket percore passed it as
// descriptor 3, holding no TCP listener on PORT, while the app sees PORT as
// a number, server.address() as {127.0.0.1, IPv4, Number(PORT)}, its
// 'listening' event and callback, connections from 127.0.0.1 to PORT, and
// a second server on a port of its own untouched. Behind a wrapper that
// closes descriptor 3 the worker is reached over TCP, and the log says so.
// With percore at 18d0e7b, which gave node workers loopback ports, every
// case but the wrapper's fails: descriptor 3 is no socket.
func TestNodeWorkersListenOnUnixSocketsByDefault(t *testing.T) {
	needNode(t)
	app := filepath.Join("testdata", "listen-styles.js")
	for _, tc := range []struct {
		style   string
		wrapper bool // sh -c 'exec node app 3>&-': descriptor 3 is not passed on
	}{
		{style: "host-callback"},
		{style: "number"},
		{style: "options"},
		{style: "options-host"},
		{style: "express"},
		{style: "number", wrapper: true},
	} {
		name := tc.style
		if tc.wrapper {
			name += " behind a wrapper"
		}
		t.Run(name, func(t *testing.T) {
			env := []string{"LISTEN_STYLE=" + tc.style}
			if tc.style == "express" {
				env = append(env, "NODE_PATH="+testModules(t, "socketio", "express"))
			}
			argv := []string{"node", app}
			if tc.wrapper {
				argv = []string{"sh", "-c", "exec node " + app + " 3>&-"}
			}
			in := launchBin(t, percoreBin, env, nil, append([]string{"--workers", "2", "--"}, argv...)...)
			waitReady(t, "http://"+in.admin+"/status", 2)
			ports := map[int]int{} // pid: PORT
			for range 20 {
				var got seenByApp
				getJSON(t, "http://"+in.addr+"/", &got)
				checkSeen(t, got)
				ports[got.PID], _ = strconv.Atoi(got.PORT)
			}
			if len(ports) != 2 {
				t.Errorf("answers came from %d workers, want 2", len(ports))
			}
			for pid, port := range ports {
				onTCP := hasPort(groupListeners(t, pid), port)
				sock := listeningUnixAt(t, pid, 3)
				if tc.wrapper {
					if !onTCP {
						t.Errorf("worker pid %d behind the wrapper does not listen on PORT %d over TCP", pid, port)
					}
					continue
				}
				if onTCP {
					t.Errorf("worker pid %d listens on PORT %d over TCP, want its Unix socket only", pid, port)
				}
				if !strings.Contains(sock, "/percore-sockets-") {
					t.Errorf("worker pid %d: descriptor 3 is %q, want a listening Unix socket of percore's", pid, sock)
				}
			}
			if tc.wrapper && !strings.Contains(in.logs.String(), "reached over TCP") {
				t.Errorf("the log does not say the workers are reached over TCP:\n%s", in.logs.String())
			}
		})
	}
}

// checkSeen fails t when the app saw anything but loopback TCP on PORT.
func checkSeen(t *testing.T, got seenByApp) {
	t.Helper()
	port, err := strconv.Atoi(got.PORT)
	if err != nil {
		t.Fatalf("PORT = %q, want a number", got.PORT)
	}
	a := got.Address
	if a.Address != "127.0.0.1" || a.Family != "IPv4" || a.Port != port {
		t.Errorf("server.address() = %+v, want {127.0.0.1 IPv4 %d}", a, port)
	}
	if got.RemoteAddress != "127.0.0.1" || got.LocalAddress != "127.0.0.1" || got.LocalPort != port {
		t.Errorf("the connection reads as from %q to %q port %d, want from 127.0.0.1 to 127.0.0.1 port %d",
			got.RemoteAddress, got.LocalAddress, got.LocalPort, port)
	}
	if !got.Listening || !got.Callback {
		t.Errorf("'listening' fired: %v, the listen callback ran: %v; want both", got.Listening, got.Callback)
	}
	if got.Second.Port == 0 || got.Second.Port == port {
		t.Errorf("the second server's port is %d, want one of its own", got.Second.Port)
	}
	if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(got.Second.Port))); err != nil {
		t.Errorf("the second server does not take connections on its port: %v", err)
	} else {
		c.Close()
	}
}

// hasPort reports whether one of addrs has port.
func hasPort(addrs []netip.AddrPort, port int) bool {
	for _, a := range addrs {
		if int(a.Port()) == port {
			return true
		}
	}
	return false
}

// listeningUnixAt returns the path of the listening Unix socket at
// descriptor fd of process pid, or "" when it is none.
func listeningUnixAt(t *testing.T, pid, fd int) string {
	t.Helper()
	target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
	if err != nil || !strings.HasPrefix(target, "socket:[") {
		return ""
	}
	inode := strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path
		x := strings.Fields(sc.Text())
		if len(x) >= 8 && x[6] == inode {
			flags, _ := strconv.ParseUint(x[3], 16, 32)
			if flags&0x10000 != 0 { // __SO_ACCEPTCON: listening
				return x[7]
			}
		}
	}
	return ""
}
