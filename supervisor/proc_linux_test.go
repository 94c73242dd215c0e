//go:build linux

package supervisor

func runtimeHasProc() bool { return true }
