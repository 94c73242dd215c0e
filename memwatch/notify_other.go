//go:build !linux

package memwatch

import "errors"

// notifier is empty where memory cgroups do not exist.
type notifier struct {
	what       string
	thresholds bool
}

func openNotifier(string, int) (*notifier, error) {
	return nil, errors.New("memory cgroup notifications need Linux")
}

func (w *Watch) loop() error { return nil }
func (w *Watch) waitClosed() {}
func (n *notifier) wakeUp()  {}
func (n *notifier) close()   {}
