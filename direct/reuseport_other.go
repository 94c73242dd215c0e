//go:build !linux

package direct

import (
	"errors"
	"os"
)

// errLinuxOnly says direct mode needs Linux: elsewhere SO_REUSEPORT does not
// spread connections over the sockets of a group.
var errLinuxOnly = errors.New("--mode direct needs Linux, whose SO_REUSEPORT spreads connections over the workers")

func listenReusePort(string, int) (*os.File, string, error) {
	return nil, "", errLinuxOnly
}
