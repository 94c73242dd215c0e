package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/percore/percore/control"
)

// instanceFlags pick the running percore a command is for: by its public
// address, with percore's own --port and --listen, which name its control
// socket (see control.InstanceName), or by that socket itself (--control);
// with none of them, the only percore running.
type instanceFlags struct {
	control *string // nil for status and top
	port    *string
	listen  *string
}

// addInstanceFlags defines --port and --listen on fs, and --control when
// withControl.
func addInstanceFlags(fs *flag.FlagSet, environ []string, withControl bool) instanceFlags {
	var f instanceFlags
	if withControl {
		f.control = fs.String("control", envMap(environ)["PERCORE_CONTROL"],
			"the running percore's control socket, a path or @NAME (env PERCORE_CONTROL); by default the one named after --port or --listen, or the only one running")
	}
	f.port = fs.String("port", "", "the running percore's public port (its --port, or the port of its --listen)")
	f.listen = fs.String("listen", "", "the running percore's public address, HOST:PORT (its --listen)")
	return f
}

// check reports flags that contradict each other or are malformed.
func (f instanceFlags) check() error {
	given := 0
	for _, v := range []*string{f.control, f.port, f.listen} {
		if v != nil && *v != "" {
			given++
		}
	}
	if given > 1 {
		return errors.New("give one of --control, --port and --listen")
	}
	if *f.port != "" {
		if n, err := strconv.Atoi(*f.port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("--port %q: want a port number from 1 to 65535", *f.port)
		}
	}
	if *f.listen != "" {
		if err := checkHostPort(*f.listen); err != nil {
			return fmt.Errorf("--listen %q: %w", *f.listen, err)
		}
	}
	return nil
}

// named says whether the flags name a percore.
func (f instanceFlags) named() bool {
	return (f.control != nil && *f.control != "") || *f.port != "" || *f.listen != ""
}

// severalError says that several percores run here (or several with the
// port asked for) and the command was not told which.
type severalError struct {
	sockets []control.Socket
}

// Error implements error.
func (e *severalError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d percores run here; say which one:", len(e.sockets))
	for _, s := range e.sockets {
		fmt.Fprintf(&b, "\n  %-28s (%s)", choiceFlag(s), terminalSafe(s.Addr))
	}
	return b.String()
}

// choiceFlag is the flag that picks s: --port for a percore on every
// interface, else --listen.
func choiceFlag(s control.Socket) string {
	if s.Port() == s.Name {
		return "--port " + terminalSafe(s.Name)
	}
	return "--listen " + terminalSafe(s.Name)
}

// notFoundError says no running percore has a control socket that the
// flags name, or none has one at all.
type notFoundError struct {
	want    string // what was asked for, "" for any
	running []control.Socket
}

// Error implements error.
func (e *notFoundError) Error() string {
	if e.want == "" {
		return "no running percore found (no control socket @percore/... in /proc/net/unix, nor in " + control.DefaultDir() + ")"
	}
	msg := "no running percore found with " + e.want
	for i, s := range e.running {
		if i == 0 {
			msg += "; running: "
		} else {
			msg += ", "
		}
		msg += choiceFlag(s)
	}
	return msg
}

// socket returns the address of the chosen percore's control socket: a
// *severalError when the choice is not one percore, a *notFoundError when
// it is none.
func (f instanceFlags) socket() (string, error) {
	if f.control != nil && *f.control == "off" { // PERCORE_CONTROL=off, as percore's own
		return "", &notFoundError{want: "--control off"}
	}
	if f.control != nil && *f.control != "" {
		return *f.control, nil
	}
	found, err := control.Sockets()
	if err != nil {
		return "", err
	}
	match, want := found, ""
	switch {
	case *f.listen != "":
		host, port, _ := net.SplitHostPort(*f.listen)
		name := control.InstanceName(host, port)
		match, want = filterSockets(found, func(s control.Socket) bool { return s.Name == name }), "--listen "+*f.listen
	case *f.port != "":
		match, want = filterSockets(found, func(s control.Socket) bool { return s.Port() == *f.port }), "--port "+*f.port
	}
	switch len(match) {
	case 1:
		return match[0].Addr, nil
	case 0:
		return "", &notFoundError{want: want, running: found}
	default:
		return "", &severalError{sockets: match}
	}
}

func filterSockets(all []control.Socket, keep func(control.Socket) bool) []control.Socket {
	var out []control.Socket
	for _, s := range all {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// signalHint says what a control command's signals are, for a percore
// without a control socket.
func signalHint(command string) string {
	if command == "scale" {
		return "A percore without a control socket (its log says so) adds a worker on SIGTTIN and removes one on SIGTTOU: " +
			"kill -TTIN PID (kill -TTIN 1 in a container where percore is PID 1)."
	}
	return "A percore without a control socket (its log says so) reloads on SIGHUP: kill -HUP PID " +
		"(kill -HUP 1 in a container where percore is PID 1)."
}

// sendControl sends command to the percore that f picks and prints the
// reply; it exits 2 when f picks several, 1 when the command fails.
func sendControl(c *cli, name string, f instanceFlags, command string) int {
	path, err := f.socket()
	if err == nil {
		var reply string
		if reply, err = control.Send(path, command); err == nil {
			fmt.Fprintln(c.stdout, terminalSafe(reply))
			return exitOK
		}
	}
	fmt.Fprintf(c.stderr, "percore %s: %s\n", name, safeLines(err.Error()))
	var several *severalError
	if errors.As(err, &several) {
		return exitUsage
	}
	var none *notFoundError
	var noAnswer *control.NoAnswerError
	if errors.As(err, &none) || errors.As(err, &noAnswer) {
		fmt.Fprintln(c.stderr, signalHint(name))
	}
	return exitError
}

// adminAddr returns the admin address that status and top read: --admin
// (or PERCORE_ADMIN), else the one the chosen percore tells over its
// control socket, else, when no percore is found that way and none was
// named, the default. It returns the sockets when several percores run and
// none was named.
func adminAddr(admin string, f instanceFlags, stderr io.Writer, name string) (string, []control.Socket, error) {
	if admin != "" {
		return admin, nil, nil
	}
	path, err := f.socket()
	var several *severalError
	var none *notFoundError
	switch {
	case errors.As(err, &several):
		return "", several.sockets, nil
	case errors.As(err, &none) && !f.named():
		return defaultAdmin, nil, nil
	case err != nil:
		return "", nil, err
	}
	info, err := control.Ask(path)
	if err != nil && !f.named() {
		fmt.Fprintf(stderr, "percore %s: cannot ask %s for its admin address (%s); trying %s\n",
			name, terminalSafe(path), terminalSafe(err.Error()), defaultAdmin)
		return defaultAdmin, nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("ask %s for its admin address: %w", path, err)
	}
	if info.Admin == "" {
		return "", nil, fmt.Errorf("percore pid %d on %s runs without an admin listener (--admin off)", info.PID, info.Public)
	}
	return info.Admin, nil, nil
}

// printInstances lists the percores behind sockets, with what each one's
// info command tells.
func printInstances(w io.Writer, sockets []control.Socket) {
	fmt.Fprintf(w, "%d percores run here; percore status --port PORT, --listen HOST:PORT or --admin HOST:PORT shows one:\n", len(sockets))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPID\tPUBLIC\tADMIN\tCONTROL")
	var failed []string
	for _, s := range sockets {
		info, err := control.Ask(s.Addr)
		if err != nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\n", terminalSafe(s.Name), terminalSafe(s.Addr))
			failed = append(failed, fmt.Sprintf("%s: %s", s.Addr, err))
			continue
		}
		admin := info.Admin
		if admin == "" {
			admin = "off"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", terminalSafe(s.Name), info.PID, terminalSafe(info.Public),
			terminalSafe(admin), terminalSafe(s.Addr))
	}
	tw.Flush()
	for _, f := range failed {
		fmt.Fprintln(w, terminalSafe(f))
	}
}

// safeLines is terminalSafe for each line of s: the line breaks of a
// message of several lines are kept.
func safeLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = terminalSafe(l)
	}
	return strings.Join(lines, "\n")
}
