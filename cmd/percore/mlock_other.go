//go:build !linux

package main

import "github.com/hashicorp/go-hclog"

// lockMemory does nothing where memory cgroups do not exist.
func lockMemory(hclog.Logger, bool) {}
