//go:build !linux

package direct

import "os"

func acceptQueue(*os.File) (int, int, error) { return 0, 0, errLinuxOnly }

func descriptors(int) (int, int, error) { return 0, 0, errLinuxOnly }
