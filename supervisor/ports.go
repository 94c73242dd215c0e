package supervisor

import (
	"fmt"
	"net"
)

// freePort asks the kernel for a loopback port nobody listens on now. Another
// process may take it before the worker does; listensOn tells the two apart.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
