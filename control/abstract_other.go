//go:build !linux

package control

// abstractOK says the system has abstract Unix sockets; only Linux does,
// so the default control socket is a file here.
const abstractOK = false
