//go:build !linux

package supervisor

// treeMemory is unknown without /proc: memory recycling is Linux-only.
func treeMemory(root proc, pss bool) ([]proc, treeUse, bool) { return nil, treeUse{}, false }
